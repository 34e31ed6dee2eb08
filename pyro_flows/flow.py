"""The base class of every layer (:class:`Flow`) and the bound view that ``Flow.condition`` returns.

See :mod:`pyro_flows.base` for the contract and :mod:`pyro_flows.cache` for the cache.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pyro.distributions.conditional import ConditionalTransform
from pyro.distributions.torch_transform import TransformModule
from torch.distributions import constraints

from . import state
from .base import FlowLike, Layer
from .cache import CachedCalls
from .validation import event_shape as _event_shape
from .validation import optional_positive_int

__all__ = ["Flow", "Bound"]

Tensor = torch.Tensor


class Flow(CachedCalls, FlowLike, TransformModule, ConditionalTransform):
    """Base class of every pyro_flows layer; see ``pyro_flows.base`` for the contract.

    Subclasses call ``super().__init__(event_shape=..., context_dim=...)`` and implement
    ``_forward_and_log_det(x, context)`` and, where an inverse exists, ``_inverse_and_log_det(y, context)``.

    Args:
        event_shape: the shape of one input (``(input_dim,)`` for vectors).
        context_dim: size of the context vector, or ``None`` for an unconditional flow.
        cache_size: 1 (default) keeps the (x, y, log-det) of every live output; 0 disables caching.
    """

    #: The direction that costs one pass, one of :data:`~pyro_flows.FAST`.
    fast = "both"
    #: The sign of the Jacobian determinant.
    sign = 1

    def __init__(self, *, event_shape: Sequence[int], context_dim: int | None = None, cache_size: int = 1):
        if cache_size not in (0, 1):
            raise ValueError(f"cache_size must be 0 or 1, got {cache_size!r}")
        shape = _event_shape(event_shape, name=f"{type(self).__name__}'s input_dim")
        super().__init__(cache_size=cache_size)
        self.event_shape = torch.Size(shape)
        self._domain = constraints.independent(constraints.real, len(self.event_shape))
        self.context_dim = optional_positive_int("context_dim", context_dim)

    @property
    def domain(self):
        return self._domain

    @property
    def codomain(self):
        return self._domain

    def _cache_key(self) -> tuple:
        return state.module_key(self)

    def with_cache(self, cache_size: int = 1):
        """This flow with another cache size: a view sharing the parameters (torch's ``with_cache``)."""
        return self if cache_size == self._cache_size else self._view(cache_size)

    def condition(self, context: Tensor):
        """Binds a context: returns a view with this flow's maths and parameters and ``context``.

        An unconditional flow returns itself, so it mixes freely with conditional ones in a
        ``ConditionalTransformedDistribution``.
        """
        if self.context_dim is None:
            return self
        self.check_context(context)
        return Bound(self, context)

    def _apply(self, fn, *args, **kwargs):
        self.clear_cache()
        return super()._apply(fn, *args, **kwargs)

    def extra_repr(self) -> str:
        s = f"event_shape={tuple(self.event_shape)}"
        return s + (f", context_dim={self.context_dim}" if self.context_dim is not None else "")


class Bound(CachedCalls, FlowLike, TransformModule):
    """A flow with its context bound (what :meth:`Flow.condition` returns): a transform module sharing the
    flow's parameters, with its own cache. An in-place edit of the context makes its cached entries stale."""

    context_dim = None

    def __init__(self, flow: Flow, context: Tensor):
        super().__init__(cache_size=flow._cache_size)
        self.flow = flow
        self.context = context

    def _cache_key(self) -> tuple:
        return state.module_key(self.flow) + state.key([self.context])

    @property
    def bound_context(self):
        return self.context

    def check_args(self, value, context, *, what="input"):
        if context is not None and context is not self.context:
            raise ValueError(f"this {type(self.flow).__name__} has its context bound already; got another one")
        self.flow.check_args(value, self.context, what=what)

    def layers(self) -> list[Layer]:
        return [step.within("", context=self.context) for step in self.flow.layers()]

    def _forward_and_log_det(self, x, context):
        return self.flow._forward_and_log_det(x, self.context)

    def _inverse_and_log_det(self, y, context):
        return self.flow._inverse_and_log_det(y, self.context)

    @property
    def event_shape(self):
        return self.flow.event_shape

    @property
    def fast(self):
        return self.flow.fast

    @property
    def sign(self):
        return self.flow.sign

    @property
    def domain(self):
        return self.flow.domain

    @property
    def codomain(self):
        return self.flow.codomain

    def with_cache(self, cache_size: int = 1):
        return self if cache_size == self._cache_size else Bound(self.flow.with_cache(cache_size), self.context)

    def condition(self, context: Tensor):
        """Binds another context to the same flow."""
        return self.flow.condition(context)
