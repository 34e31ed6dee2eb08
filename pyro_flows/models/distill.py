r"""Probability density distillation (Parallel WaveNet): a student flow that samples in one pass learns a
teacher flow that scores in one pass, by minimizing

.. math::

    \mathrm{KL}(S \,\|\, T) = \mathbb{E}_{x \sim S}[\log p_S(x) - \log p_T(x)] = H(S, T) - H(S),

the cross-entropy ``H(S, T) = -E_S log p_T`` minus the student's entropy ``H(S) = -E_S log p_S``. The student
is IAF-type (an :func:`~pyro_flows.iaf` stack: ``rsample`` and the ``log_prob`` of its own sample are one pass,
through the cache), the teacher MAF-type (an :func:`~pyro_flows.maf` stack: ``log_prob`` is one pass).

Two ways to train:

* :func:`distillation_loss` returns a :class:`DistillationLoss` (the loss to minimize and its parts, kept
  apart), for a plain PyTorch loop; a :class:`~pyro_flows.models.monitor.DistillationMonitor` records the parts and warns
  (:class:`~pyro_flows.models.monitor.StudentCollapseWarning`) when the student's entropy keeps falling while the KL stalls.
* :func:`distillation_model_guide` builds a Pyro ``(model, guide)`` whose ``Trace_ELBO`` loss is the KL:
  ``SVI(model, guide, optim, Trace_ELBO())`` trains the student, the teacher stays frozen.

Estimators (``estimator=`` of :func:`distillation_loss`):

* ``"monte_carlo"`` (default, any pair of flow distributions): ``log p_S(x) - log p_T(x)`` at student samples.
* ``"per_step"`` (Parallel WaveNet's lower-variance estimator): for a stack of affine autoregressive layers
  sharing one order over a Normal or Logistic base, each entry given the earlier ones is a location-scale
  variable under the student (:func:`~pyro_flows.models.steps.student_conditionals`) and under the teacher
  (:func:`~pyro_flows.models.steps.teacher_conditionals`, from ONE teacher pass on the student's sample). The student's entropy is
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
import torch

from ..base import sum_rightmost
from ..distributions import check_distribution, modules_of
from ..validation import is_finite_number, positive_int
from .steps import ENTROPY, bind_pair, check_one_order, draw_student, score_teacher, standard_draws

__all__ = [
    "ESTIMATORS",
    "DistillationLoss",
    "distillation_loss",
    "distillation_model_guide",
]

Tensor = torch.Tensor

#: The values of ``estimator`` in :func:`distillation_loss`.
ESTIMATORS = ("monte_carlo", "per_step", "closed_form")


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
        sample: the student's sample(s), ``(num_samples, *batch, *event)`` (e.g. for :func:`~pyro_flows.models.power.power_loss`).
        estimator: the estimator used, one of :data:`~pyro_flows.models.ESTIMATORS`.
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


def _per_step(
    student: Any, teacher: Any, sample_shape: Sequence[int], estimator: str, num_draws: int, regularizer: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-sample ``(entropy, cross_entropy, regularizer, sample)``."""
    s, s_steps = draw_student(student, sample_shape)
    t, t_steps = score_teacher(teacher, s.sample)
    check_one_order([s_steps[0], *t_steps])
    event_dim = len(student.event_shape)
    entropy = sum_rightmost(s.log_scale + ENTROPY[s.family], event_dim)
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
        noise = standard_draws(s.family, (num_draws, *s.loc.shape), s.loc)
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
    s, t = bind_pair(student, teacher, context)
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
        site(bind_pair(student, teacher, ctx)[0])

    def model(ctx: Tensor | None = None) -> None:
        site(bind_pair(student, teacher, ctx)[1])

    return model, guide
