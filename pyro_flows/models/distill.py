r"""Probability density distillation (Parallel WaveNet): a student flow that samples in one pass learns a
teacher flow that scores in one pass, by minimizing

.. math::

    \mathrm{KL}(S \,\|\, T) = \mathbb{E}_{x \sim S}[\log p_S(x) - \log p_T(x)] = H(S, T) - H(S),

the cross-entropy ``H(S, T) = -E_S log p_T`` minus the student's entropy ``H(S) = -E_S log p_S``. The student
is IAF-type (an :func:`~pyro_flows.iaf` stack: ``rsample`` and the ``log_prob`` of its own sample are one pass,
through the cache), the teacher MAF-type (an :func:`~pyro_flows.maf` stack: ``log_prob`` is one pass).

Two ways to train:

* :func:`distillation_loss` returns a :class:`DistillationLoss` (the loss to minimize and its parts, kept
  apart), for a plain PyTorch loop; a :class:`~pyro_flows.models.DistillationMonitor` records the parts and warns
  (:class:`StudentCollapseWarning`) when the student's entropy keeps falling while the KL stalls.
* :func:`distillation_model_guide` builds a Pyro ``(model, guide)`` whose ``Trace_ELBO`` loss is the KL:
  ``SVI(model, guide, optim, Trace_ELBO())`` trains the student, the teacher stays frozen.

Estimators (``estimator=`` of :func:`distillation_loss`):

* ``"monte_carlo"`` (default, any pair of flow distributions): ``log p_S(x) - log p_T(x)`` at student samples.
* ``"per_step"`` (Parallel WaveNet's lower-variance estimator): for a stack of affine autoregressive layers
  sharing one order over a Normal or Logistic base, each entry given the earlier ones is a location-scale
  variable under the student (:func:`student_conditionals`) and under the teacher
  (:func:`teacher_conditionals`, from ONE teacher pass on the student's sample). The student's entropy is
  then exact per step, ``sum_t [log s_t + H(base)]``, and the cross-entropy of each step is averaged over
  ``num_draws`` fresh draws of that step from the student's conditional, scored by the teacher's.
* ``"closed_form"`` (ClariNet, Normal student and teacher bases): the per-step KL of two Gaussians in closed
  form, no draws.

Both per-step estimators are Rao-Blackwellized versions of the Monte Carlo one: the same expectation, a lower
variance. They need every layer of both stacks to share ONE order (the conditioners' ``degrees``: e.g. all
WaveNets over time, or MADEs built with the same ``ordering=``; :func:`~pyro_flows.maf`'s default alternates
orders, which breaks the step decomposition) and refuse anything else with a message naming the part. KL is
unchanged by a bijection applied to both sides, so a shared elementwise tail (e.g. the same
:class:`~pyro_flows.MuLaw` ``.inv`` at the end of both) can be left out of both stacks before distilling.

Example:
    >>> import pyro.distributions as dist, torch, pyro_flows as pf
    >>> from pyro_flows.models import distillation_loss
    >>> _ = torch.manual_seed(0)
    >>> base = dist.Logistic(torch.zeros(3), torch.ones(3)).to_event(1)
    >>> student = pf.flow_distribution(pf.Compose([pf.IAF(3, (8,), ordering="natural")]), base=base)
    >>> teacher = pf.flow_distribution(pf.Compose([pf.MAF(3, (8,), ordering="natural")]), base=base)
    >>> out = distillation_loss(student, teacher, num_samples=16, estimator="per_step")
    >>> out.kl.shape, out.kl_samples.shape, bool(torch.allclose(out.kl, out.cross_entropy - out.entropy))
    (torch.Size([]), torch.Size([16]), True)

References:
    van den Oord et al., Parallel WaveNet: Fast High-Fidelity Speech Synthesis, arXiv:1711.10433.
    Ping, Peng & Chen, ClariNet: Parallel Wave Generation in End-to-End Text-to-Speech, arXiv:1807.07281.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F

from ..base import layers, sum_rightmost
from ..distributions import bind, check_distribution, is_conditional, modules_of
from ..protocols import AffineOp
from ..transforms.autoregressive import AffineAutoregressive
from ..validation import is_finite_number, positive_int

__all__ = [
    "ESTIMATORS",
    "DistillationLoss",
    "StepConditionals",
    "distillation_loss",
    "student_conditionals",
    "teacher_conditionals",
    "distillation_model_guide",
]

Tensor = torch.Tensor

#: The values of ``estimator`` in :func:`distillation_loss`.
ESTIMATORS = ("monte_carlo", "per_step", "closed_form")

# the location-scale families of a base, by name: entropy of the standard member, its log-density
_ENTROPY = {"normal": 0.5 * math.log(2 * math.pi * math.e), "logistic": 2.0}


def _standard_log_density(family: str, z: Tensor) -> Tensor:
    if family == "normal":
        return -0.5 * z * z - 0.5 * math.log(2 * math.pi)
    return -z - 2 * F.softplus(-z)  # logistic: log sigmoid(z) + log sigmoid(-z)


def _standard_draws(family: str, shape: Sequence[int], like: Tensor) -> Tensor:
    if family == "normal":
        return torch.randn(*shape, dtype=like.dtype, device=like.device)
    tiny = torch.finfo(like.dtype).tiny
    u = torch.rand(*shape, dtype=like.dtype, device=like.device).clamp(tiny, 1 - torch.finfo(like.dtype).eps)
    return torch.log(u) - torch.log1p(-u)


# --- the result ----------------------------------------------------------------------------------------------
class DistillationLoss(NamedTuple):
    """What :func:`distillation_loss` returns. Every value is in nats per sample (summed over the event),
    averaged over the samples (and the batch of contexts) unless said otherwise.

    Attributes:
        loss: the scalar to minimize, ``kl + regularizer``.
        kl: the estimate of ``KL(student || teacher) = cross_entropy - entropy``.
        entropy: the estimate of the student's entropy ``H(S) = -E log p_S``.
        cross_entropy: the estimate of ``H(S, T) = -E log p_T`` at the student's samples.
        regularizer: ClariNet's ``lambda * sum_t (log s_S,t - log s_T,t)^2`` (zero unless asked for).
        kl_samples: the KL estimate of each sample, shaped ``(num_samples, *batch)``; ``kl`` is its mean.
        sample: the student's sample(s), ``(num_samples, *batch, *event)`` (e.g. for :func:`~pyro_flows.models.power_loss`).
        estimator: the estimator used, one of :data:`ESTIMATORS`.
    """

    loss: Tensor
    kl: Tensor
    entropy: Tensor
    cross_entropy: Tensor
    regularizer: Tensor
    kl_samples: Tensor
    sample: Tensor
    estimator: str

    @property
    def standard_error(self) -> Tensor:
        """The standard error of ``kl`` over the independent samples (NaN for a single one)."""
        flat = self.kl_samples.detach().reshape(-1)
        return flat.std() / math.sqrt(flat.numel())


class StepConditionals(NamedTuple):
    """Each entry of ``sample`` given the entries before it in the flows' order is ``family(loc, scale)``, a
    Normal or Logistic with ``scale = exp(log_scale)``; all tensors are shaped like ``sample``.

    Attributes:
        sample: the point the conditionals were computed at (the student's sample).
        loc: the location of each entry's conditional.
        log_scale: the log-scale of each entry's conditional.
        family: ``"normal"`` or ``"logistic"``, the base's family.
    """

    sample: Tensor
    loc: Tensor
    log_scale: Tensor
    family: str

    def log_prob(self, value: Tensor | None = None) -> Tensor:
        """``log family(value; loc, scale)`` per entry (at ``sample`` by default), not summed."""
        value = self.sample if value is None else value
        z = (value - self.loc) * torch.exp(-self.log_scale)
        return _standard_log_density(self.family, z) - self.log_scale


# --- binding contexts, reading the flows -------------------------------------------------------------------
def _bind(d: Any, who: str, context: Tensor | None) -> Any:
    """``d`` with ``context`` bound (:func:`pyro_flows.distributions.bind`) when it is conditional, its
    batch shape widened to the context's (samples then come one per context); an unconditional one as it is
    (the context is the other one's of the pair)."""
    if not is_conditional(d):
        return bind(d, None, who=f"the {who}")
    bound = bind(d, context, who=f"the {who}")
    assert context is not None  # bind refused a conditional distribution without one
    batch = torch.broadcast_shapes(bound.batch_shape, context.shape[:-1])
    return bound if batch == bound.batch_shape else bound.expand(batch)


def _bind_pair(student: Any, teacher: Any, context: Tensor | None) -> tuple[Any, Any]:
    """Binds ``context`` to whichever of the two is conditional; refused when neither is, needed when one is."""
    if context is not None and not (is_conditional(student) or is_conditional(teacher)):
        raise ValueError("neither the student nor the teacher is conditional, but a context was given")
    return _bind(student, "student", context), _bind(teacher, "teacher", context)


class _Step(NamedTuple):
    label: str
    layer: AffineAutoregressive
    context: Tensor | None


def _layers(d: Any, who: str, *, sampling_fast: bool) -> list[_Step]:
    """The affine autoregressive layers of a flow distribution in sampling order (:func:`pyro_flows.layers`),
    each with its bound context. ``sampling_fast``: every layer's one-pass side must be the sampling direction
    (the student) or else the density direction (the teacher)."""
    if not isinstance(d, torch.distributions.TransformedDistribution):
        raise TypeError(
            f"the per-step estimators need the {who} as a flow distribution (a TransformedDistribution of "
            f"affine autoregressive layers), got {type(d).__name__}; use estimator='monte_carlo'"
        )
    steps: list[_Step] = []
    for i, transform in enumerate(d.transforms):
        for step in layers(transform):
            t, path = step.layer, step.path
            label = f"[{i}]" + ("." if path and not path.startswith(".") else "") + path
            name = f"{who} part {label} ({type(t).__name__})"
            if not isinstance(t, AffineAutoregressive):
                raise TypeError(
                    f"{name} is not an affine autoregressive layer; the per-step estimators need a stack of IAF "
                    "(student) or MAF (teacher) layers only: use estimator='monte_carlo'"
                )
            if not isinstance(t.op, AffineOp):
                raise TypeError(
                    f"{name}: its op {t.op!r} is not affine (no coefficients(params) -> (log_scale, shift)); "
                    "the per-step estimators need affine ops (Affine, GatedAffine, Additive)"
                )
            if t.context_dim is not None and step.context is None:
                raise ValueError(f"{name} is conditional and has no context bound: give context=")
            if ((t.fast == "forward") != step.inverted) != sampling_fast:
                if sampling_fast:
                    problem = "samples sequentially (a MAF-type layer): the student must be IAF-type"
                else:
                    problem = "scores sequentially (an IAF-type layer): the teacher must be MAF-type"
                raise ValueError(f"{name} {problem} for the per-step estimators")
            steps.append(_Step(name, t, step.context))
    if not steps:
        raise ValueError(f"the {who} has no affine autoregressive layer")
    return steps


def _check_one_order(steps: Sequence[_Step]) -> None:
    """Every layer must order the entries alike (equal degrees), else no entry is a per-step conditional."""
    first = steps[0]
    reference = first.layer.conditioner.degrees
    for step in steps[1:]:
        degrees = step.layer.conditioner.degrees
        if tuple(degrees.shape) != tuple(reference.shape) or not torch.equal(degrees.cpu(), reference.cpu()):
            raise ValueError(
                f"{step.label} orders the entries differently from {first.label} (conditioner degrees "
                f"{_short(degrees)} vs {_short(reference)}); the per-step estimators need ONE order in every layer "
                "of the student and the teacher (e.g. MADEs built with the same ordering=)"
            )


def _short(t: Tensor) -> str:
    values = t.reshape(-1).tolist()
    return str(values) if len(values) <= 8 else str(values[:8])[:-1] + ", ...]"


def _loc_scale_base(base: Any, who: str) -> tuple[str, Tensor, Tensor]:
    """``(family, loc, log_scale)`` of a factorized Normal or Logistic base (behind any ``Independent``)."""
    d = base
    while isinstance(d, torch.distributions.Independent):
        d = d.base_dist
    if isinstance(d, torch.distributions.Normal):
        family = "normal"
    elif isinstance(d, dist.Logistic):
        family = "logistic"
    else:
        raise TypeError(
            f"the per-step estimators need the {who}'s base to be a Normal or Logistic over the event "
            f"(e.g. Logistic(zeros, ones).to_event(1)), got {type(d).__name__}"
        )
    return family, d.loc, torch.log(d.scale)


def _coefficients(step: _Step, u: Tensor) -> tuple[Tensor, Tensor]:
    layer = step.layer
    op: Any = layer.op  # an AffineOp: _layers checked it
    return op.coefficients(layer.params(u, step.context))


def _student(d: Any, sample_shape: Sequence[int]) -> tuple[StepConditionals, list[_Step]]:
    steps = _layers(d, "student", sampling_fast=True)
    _check_one_order(steps)
    family, loc, log_scale = _loc_scale_base(d.base_dist, "student")
    if family == "logistic":  # Pyro's Logistic.rsample gives -inf at a uniform draw of exactly 0: clamp it
        shape = torch.Size(sample_shape) + d.base_dist.batch_shape + d.base_dist.event_shape
        u = loc + torch.exp(log_scale) * _standard_draws(family, shape, loc)
    else:
        u = d.base_dist.rsample(torch.Size(sample_shape))
    # u = loc + exp(log_scale) * noise throughout, loc and log_scale depending on earlier noise only
    loc, log_scale = loc.expand_as(u), log_scale.expand_as(u)
    for step in steps:
        log_a, b = _coefficients(step, u)
        u = u * torch.exp(log_a) + b
        loc = loc * torch.exp(log_a) + b
        log_scale = log_scale + log_a
    return StepConditionals(u, loc, log_scale, family), steps


def _teacher(d: Any, x: Tensor) -> tuple[StepConditionals, list[_Step]]:
    steps = _layers(d, "teacher", sampling_fast=False)
    _check_one_order(steps)
    family, base_loc, base_log_scale = _loc_scale_base(d.base_dist, "teacher")
    # data to base runs the layers backwards; z = exp(log_a) * x + b throughout, a and b from earlier entries
    u, log_a, b = x, torch.zeros_like(x), torch.zeros_like(x)
    for step in reversed(steps):
        log_ak, bk = _coefficients(step, u)
        u = u * torch.exp(log_ak) + bk
        log_a, b = log_a + log_ak, b * torch.exp(log_ak) + bk
    # z ~ family(base_loc, base_scale): x = (z - b) / a is family((base_loc - b) / a, base_scale / a)
    return StepConditionals(x, (base_loc - b) * torch.exp(-log_a), base_log_scale - log_a, family), steps


def student_conditionals(
    student: Any, sample_shape: Sequence[int] = (), *, context: Tensor | None = None
) -> StepConditionals:
    """Draws a sample of ``student`` in one pass and returns each entry's conditional given the earlier ones.

    For a stack of affine IAF layers (``x^k = x^{k-1} exp(log_a^k) + b^k``, ``a^k``, ``b^k`` from earlier
    entries) over a Normal or Logistic base, the coefficients compose in sampling order: ``x_t`` given the
    earlier noise is ``base(loc_t, s_t)`` with ``s_t = s0_t prod_k a^k_t`` and
    ``loc_t = sum_k b^k_t prod_{j>k} a^j_t`` (plus the base's own location, carried through).

    Args:
        student: a flow distribution of affine IAF-type layers sharing one order (see the module docstring).
        sample_shape: the sample shape, as in ``rsample``.
        context: bound to a conditional student.

    Returns:
        :class:`StepConditionals`; ``sample`` is the same draw ``student.rsample(sample_shape)`` makes with the
        same random state, reparametrized (differentiable in the student's parameters).

    Example:
        >>> import torch, pyro_flows as pf
        >>> d = pf.flow_distribution(pf.Compose([pf.IAF(2, (8,), ordering="natural")]))
        >>> c = student_conditionals(d, (5,))
        >>> torch.allclose(c.log_prob().sum(-1), d.log_prob(c.sample.clone()), atol=1e-5)
        True
    """
    return _student(_bind(student, "student", context), sample_shape)[0]


def teacher_conditionals(teacher: Any, x: Tensor, *, context: Tensor | None = None) -> StepConditionals:
    """Each entry's conditional under ``teacher`` given the earlier entries of ``x``, from one teacher pass.

    For a stack of affine MAF layers (data to base: ``z = x exp(log_a) + b`` layer by layer, ``a``, ``b`` from
    earlier entries; the layers run in reverse order of the stack), ``z_t = A_t x_t + B_t``, so ``x_t`` given
    ``x_<t`` is ``base((loc0 - B_t) / A_t, s0 / A_t)``.

    Args:
        teacher: a flow distribution of affine MAF-type layers sharing one order.
        x: the points, ``(*batch, *event)``.
        context: bound to a conditional teacher.

    Returns:
        :class:`StepConditionals` at ``x``.

    Example:
        >>> import torch, pyro_flows as pf
        >>> d = pf.flow_distribution(pf.Compose([pf.MAF(2, (8,), ordering="natural")]))
        >>> x = torch.randn(5, 2)
        >>> torch.allclose(teacher_conditionals(d, x).log_prob().sum(-1), d.log_prob(x), atol=1e-5)
        True
    """
    return _teacher(_bind(teacher, "teacher", context), x)[0]


def _per_step(
    student: Any, teacher: Any, sample_shape: Sequence[int], estimator: str, num_draws: int, regularizer: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-sample ``(entropy, cross_entropy, regularizer, sample)``."""
    s, s_steps = _student(student, sample_shape)
    t, t_steps = _teacher(teacher, s.sample)
    _check_one_order([s_steps[0], *t_steps])
    event_dim = len(student.event_shape)
    entropy = sum_rightmost(s.log_scale + _ENTROPY[s.family], event_dim)
    if estimator == "closed_form":
        if s.family != "normal" or t.family != "normal":
            raise ValueError(
                "estimator='closed_form' is the KL of two Gaussians per step (ClariNet): both bases must be "
                f"Normal, got a {s.family} student and a {t.family} teacher; use estimator='per_step'"
            )
        # KL(N(m_S, s_S) || N(m_T, s_T)) = log(s_T / s_S) + (s_S^2 + (m_S - m_T)^2) / (2 s_T^2) - 1/2
        kl = (t.log_scale - s.log_scale) + 0.5 * (
            torch.exp(2 * (s.log_scale - t.log_scale)) + ((s.loc - t.loc) * torch.exp(-t.log_scale)) ** 2
        )
        cross_entropy = entropy + sum_rightmost(kl - 0.5, event_dim)
    else:  # each step's cross-entropy from num_draws draws of that step alone, given the sample's earlier ones
        noise = _standard_draws(s.family, (num_draws, *s.loc.shape), s.loc)
        draws = s.loc + torch.exp(s.log_scale) * noise
        cross_entropy = -sum_rightmost(t.log_prob(draws), event_dim).mean(0)
    reg = regularizer * sum_rightmost((s.log_scale - t.log_scale) ** 2, event_dim)
    return entropy, cross_entropy, reg, s.sample


def distillation_loss(
    student: Any,
    teacher: Any,
    *,
    num_samples: int = 1,
    context: Tensor | None = None,
    estimator: str = "monte_carlo",
    num_draws: int = 8,
    regularizer: float = 0.0,
) -> DistillationLoss:
    r"""The probability density distillation loss ``KL(student || teacher)`` with its parts kept apart.

    Gradients reach the student through its reparametrized samples (and its log-density); they reach the
    teacher's parameters too unless it is frozen (``teacher.requires_grad_(False)``, or give the optimizer the
    student's parameters only).

    Args:
        student: the student's flow distribution (:func:`~pyro_flows.flow_distribution`; IAF-type for one pass),
            or a conditional one.
        teacher: the teacher's flow distribution (MAF-type for one pass), or a conditional one.
        num_samples: student samples per context.
        context: bound to whichever distribution is conditional (e.g. a one-hot class, ``(*batch, C)``).
        estimator: ``"monte_carlo"``, ``"per_step"`` or ``"closed_form"`` (see the module docstring).
        num_draws: draws per step of the ``"per_step"`` cross-entropy.
        regularizer: ClariNet's ``lambda`` (per-step estimators): adds
            ``lambda * sum_t (log s_S,t - log s_T,t)^2`` to the loss (ClariNet uses 4).

    Returns:
        A :class:`DistillationLoss`.

    Example:
        >>> import pyro.distributions as dist, torch, pyro_flows as pf
        >>> _ = torch.manual_seed(0)
        >>> base = dist.Normal(torch.zeros(2), torch.ones(2)).to_event(1)
        >>> student = pf.flow_distribution(pf.Compose([pf.IAF(2, (8,), ordering="natural")]), base=base)
        >>> teacher = pf.flow_distribution(pf.Compose([pf.MAF(2, (8,), ordering="natural")]), base=base)
        >>> out = distillation_loss(student, teacher, num_samples=4, estimator="closed_form")
        >>> round(out.kl.item(), 6)  # both are the identity when new: KL 0
        0.0
        >>> out.loss.backward()

    References:
        van den Oord et al., Parallel WaveNet: Fast High-Fidelity Speech Synthesis, arXiv:1711.10433 (section
        3 and appendix A). Ping, Peng & Chen, ClariNet, arXiv:1807.07281 (section 3.2).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    num_samples = positive_int("num_samples", num_samples)
    num_draws = positive_int("num_draws", num_draws)
    if not is_finite_number(regularizer) or regularizer < 0:
        raise ValueError(f"regularizer must be a finite number >= 0, got {regularizer!r}")
    if regularizer and estimator == "monte_carlo":
        raise ValueError("regularizer= needs the per-step scales: use estimator='per_step' or 'closed_form'")
    s, t = _bind_pair(student, teacher, context)
    shape = (num_samples,)
    if estimator == "monte_carlo":
        if not s.has_rsample:
            raise TypeError(f"the student ({type(s).__name__}) has no rsample: no gradient reaches it")
        x = s.rsample(shape)
        entropy, cross_entropy = -s.log_prob(x), -t.log_prob(x)
        reg = torch.zeros_like(entropy)
    else:
        entropy, cross_entropy, reg, x = _per_step(s, t, shape, estimator, num_draws, float(regularizer))
    if not bool(torch.isfinite(x).all()):
        raise FloatingPointError(
            "the student drew a non-finite sample (e.g. Pyro's Logistic.rsample returns -inf when its uniform draw "
            "is exactly 0, about once in 2^24 draws; estimator='per_step' draws safely): skip this step"
        )
    kl_samples = cross_entropy - entropy
    kl = kl_samples.mean()
    regularization = reg.mean()
    return DistillationLoss(
        loss=kl + regularization,
        kl=kl,
        entropy=entropy.mean(),
        cross_entropy=cross_entropy.mean(),
        regularizer=regularization,
        kl_samples=kl_samples,
        sample=x,
        estimator=estimator,
    )


# --- Pyro ----------------------------------------------------------------------------------------------------
def distillation_model_guide(
    student: Any, teacher: Any, *, name: str = "x", freeze_teacher: bool = True
) -> tuple[Callable[..., None], Callable[..., None]]:
    """A Pyro ``(model, guide)`` pair whose ``Trace_ELBO`` loss estimates ``KL(student || teacher)``.

    The guide samples the site ``name`` from the student, the model scores it under the teacher (it observes
    nothing), so ``-ELBO = E_q[log q(x) - log p(x)] = KL``; with a batch of contexts the site is one event
    per context, scaled by ``1 / batch size``: the loss is the batch mean, the number
    ``distillation_loss(student, teacher, num_samples=1, context=context).kl`` estimates (with
    ``Trace_ELBO(num_particles=n, vectorize_particles=True)``, the mean over ``n`` samples).

    The teacher stays fixed: its modules are not registered with Pyro (``pyro.module``), so no optimizer of
    ``SVI`` sees them, and with ``freeze_teacher`` (default) this call also sets
    ``requires_grad_(False)`` on them, so that backward passes compute no gradient for them (gradients still
    flow through the teacher to the student's sample). Undo with ``requires_grad_(True)``. The student's
    transforms are registered as the Pyro module ``"distill.student"``; parameters of its base distribution are
    not.

    Args:
        student: the student's flow distribution, or a conditional one.
        teacher: the teacher's flow distribution, or a conditional one.
        name: the sample site's name.
        freeze_teacher: turn off the gradients of the teacher's parameters.

    Returns:
        ``(model, guide)``, both called as ``f(ctx=None)``: the context ``ctx`` is bound to whichever
        distribution is conditional (``svi.step(c)`` or ``svi.step(ctx=c)``; not ``context=``, a name Pyro's
        handlers take for themselves).

    Example:
        >>> import pyro, torch, pyro_flows as pf
        >>> from pyro.infer import SVI, Trace_ELBO
        >>> student = pf.flow_distribution(pf.Compose([pf.IAF(2, (8,), ordering="natural")]))
        >>> teacher = pf.flow_distribution(pf.Compose([pf.MAF(2, (8,), ordering="natural")]))
        >>> model, guide = distillation_model_guide(student, teacher)
        >>> svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), Trace_ELBO())
        >>> isinstance(svi.step(), float)
        True
    """
    check_distribution(student, "the student")
    check_distribution(teacher, "the teacher")
    student_modules = modules_of(student)
    if not student_modules:
        raise ValueError("the student has no transform modules (no parameters to train)")
    student_module = torch.nn.ModuleList(student_modules)
    if freeze_teacher:
        for module in modules_of(teacher):
            module.requires_grad_(False)

    def site(d: Any) -> None:
        batch = d.batch_shape
        if len(batch):
            d = d.to_event(len(batch))
        with pyro.poutine.scale(scale=1.0 / max(1, batch.numel())):
            pyro.sample(name, d)

    # the argument is not called "context": Pyro's handlers pass their own first argument by that name
    def guide(ctx: Tensor | None = None) -> None:
        pyro.module("distill.student", student_module)
        site(_bind_pair(student, teacher, ctx)[0])

    def model(ctx: Tensor | None = None) -> None:
        site(_bind_pair(student, teacher, ctx)[1])

    return model, guide
