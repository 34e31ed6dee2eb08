"""A flow and a base distribution as one Pyro distribution, which checks what it is asked to score."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import pyro.distributions as dist
import torch
from pyro.distributions.conditional import ConditionalTransform, ConditionalTransformedDistribution

from .base import FlowLike
from .validation import check_tensor

__all__ = ["FlowDistribution", "ConditionalFlowDistribution", "flow_distribution"]

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
        parts = [t.condition(context) if isinstance(t, ConditionalTransform) else t for t in self.transforms]
        return FlowDistribution(base, parts)


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
