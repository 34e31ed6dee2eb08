"""A flow and a base distribution as one Pyro distribution, which checks what it is asked to score; binding a
context to such a distribution (:func:`bind`) and the modules that hold its parameters (:func:`modules_of`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import pyro.distributions as dist
import torch
from pyro.distributions.conditional import ConditionalTransformedDistribution

from .base import FlowLike, layers
from .base import bind as bind_transforms
from .validation import check_tensor

__all__ = ["FlowDistribution", "ConditionalFlowDistribution", "flow_distribution", "bind", "modules_of"]

Tensor = torch.Tensor


def _check_value(d, value) -> None:
    """A clear error unless ``value`` is a finite floating tensor of ``d``'s event shape."""
    shape = tuple(d.event_shape)
    check_tensor(value, shape, what="value", owner="log_prob")
    if not bool(torch.isfinite(value).all()):
        bad = (~torch.isfinite(value)).flatten(value.dim() - len(shape)).any(-1) if value.dim() > len(shape) else None
        rows = [tuple(i) if len(i) > 1 else i[0] for i in bad.nonzero().tolist()] if bad is not None else []
        where = f" at batch index {rows[:5]}{' ...' if len(rows) > 5 else ''}" if rows else ""
        raise ValueError(f"log_prob expected finite values, got NaN or inf{where}")


class FlowDistribution(dist.TransformedDistribution):
    """Pyro's ``TransformedDistribution`` whose ``log_prob`` first checks its value: a floating tensor with
    the event shape in the trailing dims and no NaN or inf (``ValueError``/``TypeError`` saying what was
    expected, instead of a NaN log-density or a message from deep inside torch). An empty batch scores to
    an empty tensor."""

    def log_prob(self, value: Tensor) -> Tensor:
        _check_value(self, value)
        if value.numel() == 0:
            batch = torch.broadcast_shapes(value.shape[: value.dim() - len(self.event_shape)], self.batch_shape)
            return value.new_zeros(batch)
        return super().log_prob(value)


class _CallableBase(dist.ConditionalDistribution):
    """A conditional base distribution given as a callable from context to distribution."""

    def __init__(self, make):
        self.make = make

    def condition(self, context):
        return _checked_base(self.make(context), "base(context)")


class ConditionalFlowDistribution(ConditionalTransformedDistribution):
    """Pyro's ``ConditionalTransformedDistribution`` whose ``condition(context)`` gives a
    :class:`FlowDistribution`; the base may itself be conditional (a callable from context to distribution)."""

    def __init__(self, base_dist, transforms):
        if callable(base_dist) and not isinstance(
            base_dist, (torch.distributions.Distribution, dist.ConditionalDistribution)
        ):
            base_dist = _CallableBase(base_dist)
        super().__init__(base_dist, transforms)

    def condition(self, context: Tensor) -> FlowDistribution:
        base = self.base_dist.condition(context)
        return FlowDistribution(base, bind_transforms(self.transforms, context))


def _checked_base(base, what: str):
    if not isinstance(base, torch.distributions.Distribution):
        raise TypeError(f"{what} must be a torch/Pyro Distribution, got {type(base).__name__}")
    return base


def flow_distribution(
    flow,
    *,
    base: torch.distributions.Distribution | Callable[[Tensor], torch.distributions.Distribution] | None = None,
    context: Tensor | None = None,
):
    """Wraps ``flow`` with a base distribution into one distribution over its event shape.

    Args:
        flow: a pyro_flows transform (a layer, ``Compose`` or ``Inverse``) with an ``event_shape``.
        base: the base distribution: a standard normal over the event shape by default (in the
            parameters' dtype and device), any distribution with that event shape (e.g.
            ``Normal(mu, scale).to_event(1)`` in a guide), or a callable from a context to one (a
            conditional base: a conditional flow's distribution then needs no wrapper of the user's).
        context: for a conditional flow (or base), the context to bind; without it, a conditional flow
            gives a :class:`ConditionalFlowDistribution` to ``.condition(context)`` later.

    Returns:
        A :class:`FlowDistribution` (or its conditional counterpart).

    Example:
        >>> import torch, pyro_flows as pf
        >>> d = pf.flow_distribution(pf.realnvp(2, num_layers=2, hidden_dims=(8,)))
        >>> d.log_prob(torch.zeros(3, 2)).shape
        torch.Size([3])
    """
    if not isinstance(flow, FlowLike) or flow.event_shape is None:
        raise TypeError(f"flow_distribution takes a pyro_flows transform, got {type(flow).__name__}")
    shape = flow.event_shape
    if base is not None and not isinstance(base, torch.distributions.Distribution) and not callable(base):
        raise TypeError(f"base must be a torch/Pyro Distribution or a callable from context to one, got {base!r}")
    conditional_base = base is not None and not isinstance(base, torch.distributions.Distribution)
    if base is None:
        ref = next(iter(cast(torch.nn.Module, flow).parameters()), None)
        kw: dict = dict(dtype=ref.dtype, device=ref.device) if ref is not None else {}
        base = dist.Normal(torch.zeros(shape, **kw), torch.ones(shape, **kw)).to_event(len(shape))
    elif isinstance(base, torch.distributions.Distribution):
        if tuple(base.event_shape) != tuple(shape):
            raise ValueError(
                f"flow_distribution expected a base with the flow's event shape {tuple(shape)}, got "
                f"{tuple(base.event_shape)} (use .to_event(n) to declare event dims)"
            )
    if flow.context_dim is None and not conditional_base:
        if context is not None:
            raise ValueError("flow_distribution: this flow is unconditional but was given a context")
        return FlowDistribution(base, flow)
    conditional = ConditionalFlowDistribution(base, [flow])
    return conditional if context is None else conditional.condition(context)


def bound_contexts(distribution) -> list[Tensor]:
    """The distinct contexts bound to a flow distribution's transforms (none for a conditional distribution)."""
    found: dict[int, Tensor] = {}
    for t in getattr(distribution, "transforms", []):
        c = t.bound_context if isinstance(t, FlowLike) else None
        if c is not None:
            found.setdefault(id(c), c)
    return list(found.values())


def is_conditional(distribution) -> bool:
    """Whether ``distribution`` needs a context: a conditional distribution (``.condition(context)``)."""
    return isinstance(distribution, dist.ConditionalDistribution)


def check_distribution(distribution, who: str = "the distribution") -> None:
    """``TypeError`` unless ``distribution`` is a (conditional) torch/Pyro distribution."""
    if not isinstance(distribution, (torch.distributions.Distribution, dist.ConditionalDistribution)):
        raise TypeError(
            f"{who} must be a flow distribution (pyro_flows.flow_distribution(...)), got {type(distribution).__name__}"
        )


def bind(distribution, context: Tensor | None, *, who: str = "the distribution", what: str = "a context"):
    """THE binding of a context to a flow distribution: a conditional distribution conditioned on it, a
    distribution whose transforms are bound already bound anew to it; ``context=None`` returns an
    unconditional or bound distribution as it is. ``who`` names it and ``what`` the context in errors.

    Raises:
        TypeError: ``distribution`` is no distribution, or the context no tensor.
        ValueError: a conditional distribution without a context, or an unconditional one given one.

    Example:
        >>> import torch, pyro_flows as pf
        >>> d = pf.flow_distribution(pf.maf(2, num_layers=1, hidden_dims=(8,), context_dim=3))
        >>> bind(d, torch.zeros(4, 3)).log_prob(torch.zeros(4, 2)).shape
        torch.Size([4])
    """
    check_distribution(distribution, who)
    conditional = is_conditional(distribution)
    if context is None:
        if conditional:
            raise ValueError(f"{who} is conditional and needs {what}: a tensor of shape (N, context_dim)")
        return distribution
    if not isinstance(context, torch.Tensor):
        raise TypeError(f"{who} expected {what} to be a torch.Tensor, got {type(context).__name__}")
    if conditional:
        return distribution.condition(context)
    if not bound_contexts(distribution):
        raise ValueError(f"{who} is unconditional but was given {what}")
    return FlowDistribution(distribution.base_dist, bind_transforms(distribution.transforms, context))


def modules_of(distribution_or_transforms) -> list[torch.nn.Module]:
    """The distinct modules (each layer, once, in sampling order) of a flow distribution's transforms, a
    transform, or a list of transforms: what holds the parameters a trainer optimizes and puts in train or
    eval mode. Looks through compositions, inverses and bound views (:func:`pyro_flows.base.layers`).

    Example:
        >>> import pyro_flows as pf
        >>> d = pf.flow_distribution(pf.maf(2, num_layers=2, hidden_dims=(8,)))
        >>> [type(m).__name__ for m in modules_of(d)]
        ['MAF', 'MAF']
    """
    obj = distribution_or_transforms
    if isinstance(obj, (torch.distributions.Distribution, dist.ConditionalDistribution)):
        transforms = list(getattr(obj, "transforms", []))
    else:
        transforms = list(obj) if isinstance(obj, (list, tuple)) else [obj]
    found: dict[int, torch.nn.Module] = {}
    for transform in transforms:
        for step in layers(transform):
            if isinstance(step.layer, torch.nn.Module):
                found.setdefault(id(step.layer), step.layer)
    return list(found.values())
