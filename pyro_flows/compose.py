"""A chain of transforms: :class:`Compose`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pyro.distributions.conditional import ConditionalTransform
from pyro.distributions.torch_transform import ComposeTransformModule

from . import state
from .base import FlowLike, Layer, bind, layers, sum_rightmost
from .cache import CachedCalls
from .validation import check_context

__all__ = ["Compose"]

Tensor = torch.Tensor


class Compose(CachedCalls, FlowLike, ComposeTransformModule, ConditionalTransform):
    """A chain of transforms applied left to right: a Pyro ``ComposeTransformModule`` with the contract.

    ``forward_and_log_det`` runs the parts once and sums their log-dets; the inverse runs them backwards. The
    chain caches ``(x, y, log-det)`` of its own passes, so a sample's log-density is one lookup.
    ``condition(context)`` binds the context of every conditional part and returns a bound
    ``ComposeTransformModule``. Parts that are not pyro_flows transforms (Pyro's or torch's own) are used
    through torch's interface.

    Args:
        parts: the transforms, first applied first. All must share one event shape and one context size.
        cache_size: 1 (default) keeps the (x, y, log-det) of every live output; 0 disables caching.

    Example:
        >>> import torch, pyro_flows as pf
        >>> flow = pf.Compose([pf.Planar(3), pf.Radial(3)])
        >>> y, ld = flow.forward_and_log_det(torch.randn(5, 3))
        >>> y.shape, ld.shape
        (torch.Size([5, 3]), torch.Size([5]))
    """

    def __init__(self, parts: Sequence, *, cache_size: int = 1, _context: Tensor | None = None):
        if isinstance(parts, torch.distributions.Transform) or not isinstance(parts, (list, tuple)):
            raise TypeError(f"Compose takes a list of transforms, got {type(parts).__name__}")
        parts = list(parts)
        if not parts:
            raise ValueError("Compose needs at least one transform")
        bad = [type(p).__name__ for p in parts if not isinstance(p, torch.distributions.Transform)]
        if bad:
            raise TypeError(f"Compose expected transforms (torch.distributions.Transform), got {bad}")
        shapes = {tuple(p.event_shape) for p in parts if getattr(p, "event_shape", None) is not None}
        if len(shapes) > 1:
            raise ValueError(f"Compose parts must share one event shape, got {sorted(shapes)}")
        if not shapes:
            raise ValueError("Compose needs at least one part with an event_shape (a pyro_flows transform)")
        if cache_size not in (0, 1):
            raise ValueError(f"cache_size must be 0 or 1, got {cache_size!r}")
        super().__init__(parts, cache_size=cache_size)
        self.parts = parts
        self.event_shape = torch.Size(shapes.pop())
        dims = {d for d in (getattr(p, "context_dim", None) for p in parts) if d is not None}
        if len(dims) > 1:
            raise ValueError(f"Compose parts must share one context_dim, got {sorted(dims)}")
        self.context_dim = dims.pop() if dims else None
        self._context = _context

    @property
    def fast(self) -> str:
        kinds = {getattr(p, "fast", "both") for p in self.parts} - {"both"}
        if not kinds:
            return "both"
        return kinds.pop() if len(kinds) == 1 else "neither"

    @property
    def bound_context(self):
        return self._context

    def _cache_key(self) -> tuple:
        key = state.module_key(self)
        return key if self._context is None else key + state.key([self._context])

    def check_context(self, context, *, batch_shape=None, what="input"):
        if self._context is None:
            return super().check_context(context, batch_shape=batch_shape, what=what)
        if context is not None and context is not self._context:
            raise ValueError("this Compose has its context bound already; got another one")
        width = self._context.shape[-1]  # checked when it was bound
        check_context(self._context, width, owner="Compose", dtype=self.dtype, batch_shape=batch_shape, what=what)

    def layers(self) -> list[Layer]:
        return [step.within(f"parts[{i}]") for i, part in enumerate(self.parts) for step in layers(part)]

    def _forward_and_log_det(self, x: Tensor, context):
        return _chain(self.parts, x, context, len(self.event_shape), forward=True)

    def _inverse_and_log_det(self, y: Tensor, context):
        return _chain(self.parts[::-1], y, context, len(self.event_shape), forward=False)

    def condition(self, context: Tensor):
        """Binds ``context`` to every conditional part: a ``ComposeTransformModule`` sharing the parameters.
        On a bound chain, binds the parts anew to ``context``."""
        if self.context_dim is None and self._context is None:
            return self
        width = self.context_dim if self._context is None else self._context.shape[-1]
        check_context(context, width, owner="Compose.condition", dtype=self.dtype)
        return Compose(bind(self.parts, context), cache_size=self._cache_size, _context=context)

    def with_cache(self, cache_size: int = 1):
        """A chain whose parts have another cache size (views sharing the parameters)."""
        if cache_size == self._cache_size:
            return self
        return Compose([p.with_cache(cache_size) for p in self.parts], cache_size=cache_size, _context=self._context)

    def clear_cache(self) -> None:
        super().clear_cache()
        for part in self.parts:
            if hasattr(part, "clear_cache"):
                part.clear_cache()

    def __hash__(self):
        return object.__hash__(self)


def _chain(parts, value: Tensor, context: Tensor | None, event_dim: int, *, forward: bool):
    """Runs ``parts`` forwards on ``value`` (or, with ``forward=False``, the inverses of a reversed list), with
    ``context`` given to the conditional ones, summing the forward log-dets to the batch shape of ``value``'s
    ``event_dim``-dimensional events. Runs inside a checked pass: the parts do not check again."""
    total: Tensor | float = 0.0
    for part in parts:
        if isinstance(part, FlowLike):  # one pass gives the value and its log-det
            ctx = context if part.context_dim is not None else None
            out, ld = part._forward_and_log_det(value, ctx) if forward else part._inverse_and_log_det(value, ctx)
        else:  # torch/Pyro transforms, through torch's interface
            if context is not None and isinstance(part, ConditionalTransform):
                part = part.condition(context)
            out = part(value) if forward else part.inv(value)
            ld = part.log_abs_det_jacobian(*((value, out) if forward else (out, value)))
            ld = sum_rightmost(ld, ld.dim() - (value.dim() - event_dim))
        total = total + ld
        value = out
    return value, total
