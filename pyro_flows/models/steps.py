"""The per-step view of affine autoregressive stacks that Parallel WaveNet's estimators need: each entry's
conditional given the earlier ones under a student (:func:`student_conditionals`, drawn in one pass) and under
a teacher (:func:`teacher_conditionals`, from one pass), and the checks that make the view exact (one order in
every layer, affine ops, a Normal or Logistic base). Used by :mod:`pyro_flows.models.distill`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import pyro.distributions as dist
import torch
import torch.nn.functional as F

from ..base import layers
from ..distributions import bind, is_conditional
from ..protocols import AffineOp
from ..transforms.autoregressive import AffineAutoregressive

__all__ = ["StepConditionals", "student_conditionals", "teacher_conditionals"]

Tensor = torch.Tensor

# the location-scale families of a base, by name: entropy of the standard member, its log-density
ENTROPY = {"normal": 0.5 * math.log(2 * math.pi * math.e), "logistic": 2.0}


def standard_log_density(family: str, z: Tensor) -> Tensor:
    if family == "normal":
        return -0.5 * z * z - 0.5 * math.log(2 * math.pi)
    return -z - 2 * F.softplus(-z)  # logistic: log sigmoid(z) + log sigmoid(-z)


def standard_draws(family: str, shape: Sequence[int], like: Tensor) -> Tensor:
    if family == "normal":
        return torch.randn(*shape, dtype=like.dtype, device=like.device)
    tiny = torch.finfo(like.dtype).tiny
    u = torch.rand(*shape, dtype=like.dtype, device=like.device).clamp(tiny, 1 - torch.finfo(like.dtype).eps)
    return torch.log(u) - torch.log1p(-u)


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
        return standard_log_density(self.family, z) - self.log_scale


# --- binding contexts, reading the flows -------------------------------------------------------------------
def bind_one(d: Any, who: str, context: Tensor | None) -> Any:
    """``d`` with ``context`` bound (:func:`pyro_flows.distributions.bind`) when it is conditional, its
    batch shape widened to the context's (samples then come one per context); an unconditional one as it is
    (the context is the other one's of the pair)."""
    if not is_conditional(d):
        return bind(d, None, who=f"the {who}")
    bound = bind(d, context, who=f"the {who}")
    assert context is not None  # bind refused a conditional distribution without one
    batch = torch.broadcast_shapes(bound.batch_shape, context.shape[:-1])
    return bound if batch == bound.batch_shape else bound.expand(batch)


def bind_pair(student: Any, teacher: Any, context: Tensor | None) -> tuple[Any, Any]:
    """Binds ``context`` to whichever of the two is conditional; refused when neither is, needed when one is."""
    if context is not None and not (is_conditional(student) or is_conditional(teacher)):
        raise ValueError("neither the student nor the teacher is conditional, but a context was given")
    return bind_one(student, "student", context), bind_one(teacher, "teacher", context)


class Step(NamedTuple):
    label: str
    layer: AffineAutoregressive
    context: Tensor | None


def affine_layers(d: Any, who: str, *, sampling_fast: bool) -> list[Step]:
    """The affine autoregressive layers of a flow distribution in sampling order (:func:`pyro_flows.layers`),
    each with its bound context. ``sampling_fast``: every layer's one-pass side must be the sampling direction
    (the student) or else the density direction (the teacher)."""
    if not isinstance(d, torch.distributions.TransformedDistribution):
        raise TypeError(
            f"the per-step estimators need the {who} as a flow distribution (a TransformedDistribution of "
            f"affine autoregressive layers), got {type(d).__name__}; use estimator='monte_carlo'"
        )
    steps: list[Step] = []
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
            steps.append(Step(name, t, step.context))
    if not steps:
        raise ValueError(f"the {who} has no affine autoregressive layer")
    return steps


def check_one_order(steps: Sequence[Step]) -> None:
    """Every layer must order the entries alike (equal degrees), else no entry is a per-step conditional."""
    first = steps[0]
    reference = first.layer.conditioner.degrees
    for step in steps[1:]:
        degrees = step.layer.conditioner.degrees
        if tuple(degrees.shape) != tuple(reference.shape) or not torch.equal(degrees.cpu(), reference.cpu()):
            raise ValueError(
                f"{step.label} orders the entries differently from {first.label} (conditioner degrees "
                f"{short(degrees)} vs {short(reference)}); the per-step estimators need ONE order in every layer "
                "of the student and the teacher (e.g. MADEs built with the same ordering=)"
            )


def short(t: Tensor) -> str:
    values = t.reshape(-1).tolist()
    return str(values) if len(values) <= 8 else str(values[:8])[:-1] + ", ...]"


def loc_scale_base(base: Any, who: str) -> tuple[str, Tensor, Tensor]:
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


def coefficients(step: Step, u: Tensor) -> tuple[Tensor, Tensor]:
    layer = step.layer
    op: Any = layer.op  # an AffineOp: _layers checked it
    return op.coefficients(layer.params(u, step.context))


def draw_student(d: Any, sample_shape: Sequence[int]) -> tuple[StepConditionals, list[Step]]:
    steps = affine_layers(d, "student", sampling_fast=True)
    check_one_order(steps)
    family, loc, log_scale = loc_scale_base(d.base_dist, "student")
    if family == "logistic":  # Pyro's Logistic.rsample gives -inf at a uniform draw of exactly 0: clamp it
        shape = torch.Size(sample_shape) + d.base_dist.batch_shape + d.base_dist.event_shape
        u = loc + torch.exp(log_scale) * standard_draws(family, shape, loc)
    else:
        u = d.base_dist.rsample(torch.Size(sample_shape))
    # u = loc + exp(log_scale) * noise throughout, loc and log_scale depending on earlier noise only
    loc, log_scale = loc.expand_as(u), log_scale.expand_as(u)
    for step in steps:
        log_a, b = coefficients(step, u)
        u = u * torch.exp(log_a) + b
        loc = loc * torch.exp(log_a) + b
        log_scale = log_scale + log_a
    return StepConditionals(u, loc, log_scale, family), steps


def score_teacher(d: Any, x: Tensor) -> tuple[StepConditionals, list[Step]]:
    steps = affine_layers(d, "teacher", sampling_fast=False)
    check_one_order(steps)
    family, base_loc, base_log_scale = loc_scale_base(d.base_dist, "teacher")
    # data to base runs the layers backwards; z = exp(log_a) * x + b throughout, a and b from earlier entries
    u, log_a, b = x, torch.zeros_like(x), torch.zeros_like(x)
    for step in reversed(steps):
        log_ak, bk = coefficients(step, u)
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
    return draw_student(bind_one(student, "student", context), sample_shape)[0]


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
    return score_teacher(bind_one(teacher, "teacher", context), x)[0]
