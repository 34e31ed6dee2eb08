"""The transform contract, written once.

Every pyro_flows transform is a :class:`Flow`: a Pyro ``TransformModule`` (so a ``torch.nn.Module`` and a
``torch.distributions.Transform``) that plugs into ``pyro.distributions.TransformedDistribution``.

The contract
------------
* A subclass computes ``(y, log|det dy/dx|)`` in :meth:`Flow.forward_and_log_det` and, where it has one,
  ``(x, log|det dy/dx|)`` in :meth:`Flow.inverse_and_log_det`. The log-det is always the one of the FORWARD
  map, summed over the event dims, with the batch shape of the input. Everything torch needs (``__call__``,
  ``_inverse``, ``log_abs_det_jacobian``, ``inv``) is derived here from these two methods.
* ``fast`` names the direction that costs one network pass (``"forward"``, ``"inverse"`` or ``"both"``); a
  log-det that is not in the cache is recomputed in that direction.
* A transform without an inverse raises ``NotImplementedError`` with a sentence saying why (never a
  ``KeyError``).
* Conditioning without twin classes: a flow built with ``context_dim`` needs a context. Its
  :meth:`~Flow.condition` returns a bound, parameter-free view usable in
  ``pyro.distributions.ConditionalTransformedDistribution``. Called without its context, or with one of the
  wrong shape, it raises ``ValueError``. An unconditional flow's ``condition`` returns the flow itself.
* Caching: one entry ``(x, y, log-det)`` per flow (torch's ``cache_size=1``), looked up by tensor identity,
  so ``t.inv(y.clone())`` always recomputes. An entry made while gradients were off is not used while they
  are on: ``log_prob(d.sample())`` then recomputes, so its graph reaches the flow's parameters (Pyro's flows
  return a graph-less cached value there). An entry made before the flow's parameters or buffers changed
  in place (an optimizer step, ``load_state_dict``) is stale and not used.
* ``Inverse(t)`` (also ``t.inv``) is itself a module holding ``t``, so ``pyro.module`` sees its parameters.
* New tensors take dtype and device from their inputs.
"""

from __future__ import annotations

import copy
import itertools
from typing import Optional, Sequence, Tuple

import pyro.distributions as dist
import torch
from pyro.distributions.conditional import ConditionalTransform, ConditionalTransformedDistribution
from pyro.distributions.torch_transform import ComposeTransformModule, TransformModule
from torch.distributions import constraints

__all__ = ["Flow", "Inverse", "Compose", "flow_distribution", "as_event_shape", "check_input", "sum_rightmost"]

Tensor = torch.Tensor


def sum_rightmost(value: Tensor, dims: int) -> Tensor:
    """Sums the rightmost ``dims`` dimensions of ``value`` (none when ``dims`` is 0)."""
    return value.sum(tuple(range(-dims, 0))) if dims > 0 else value


def as_event_shape(input_dim, *, name: str = "input_dim") -> tuple:
    """``(D,)`` for an int D, the tuple itself for a shape such as ``(C, H, W)``; raises ``ValueError`` unless
    every size is a positive int.

    Example:
        >>> as_event_shape(3), as_event_shape((1, 28, 28))
        ((3,), (1, 28, 28))
    """
    shape = (input_dim,) if isinstance(input_dim, int) else tuple(input_dim)
    if not shape or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape):
        raise ValueError(
            f"{name} must be a positive int (vectors) or a shape of positive ints such as (C, H, W), "
            f"got {input_dim!r}"
        )
    return shape


def check_input(value, event_shape: Sequence[int], *, what: str, owner: str) -> None:
    """Raises a clear error unless ``value`` is a floating tensor whose trailing shape is ``event_shape``.

    Args:
        value: the tensor to check.
        event_shape: the expected trailing shape.
        what: what the tensor is, for the message ("input", "context", ...).
        owner: who expects it, for the message.

    Raises:
        TypeError: ``value`` is not a floating-point tensor.
        ValueError: the trailing shape differs.
    """
    event_shape = tuple(event_shape)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{owner} expected its {what} to be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{owner} expected a floating-point {what}, got dtype {value.dtype}")
    n = len(event_shape)
    if value.dim() < n or tuple(value.shape[value.dim() - n:]) != event_shape:
        raise ValueError(
            f"{owner} expected its {what} to have shape (*batch, {', '.join(map(str, event_shape))}), "
            f"got {tuple(value.shape)}"
        )


_INVERSE = "_inverse_module"


def _cached_inverse(t) -> "Inverse":
    """``Inverse(t)``, made once and kept outside nn.Module's registry (the Inverse holds ``t``, not the other
    way round, so ``t.modules()`` and ``state_dict`` never loop). Dropped from pickles and copies."""
    inverse = t.__dict__.get(_INVERSE)
    if inverse is None:
        inverse = t.__dict__[_INVERSE] = Inverse(t)
    return inverse


class _Entry:
    """One cached evaluation: the pair (x, y) and its forward log-det, with the grad mode it was made in and
    the versions of the flow's parameters and buffers it was made with."""

    __slots__ = ("x", "y", "log_det", "grad", "stamp")

    def __init__(self, x: Tensor, y: Tensor, log_det: Tensor, stamp: tuple):
        self.x, self.y, self.log_det, self.stamp = x, y, log_det, stamp
        self.grad = torch.is_grad_enabled()

    def usable(self, stamp: tuple) -> bool:
        # A graph-less entry must not stand in for a computation that wants gradients, and an entry made
        # before an optimizer step (or any in-place change of the flow's state) is stale.
        return (self.grad or not torch.is_grad_enabled()) and stamp == self.stamp


_STATE = "_state_tensors"


def _stamp(flow) -> tuple:
    """Versions of the flow's parameters and buffers; the list of tensors is kept until ``_apply`` (``.to``,
    ``.double()``, ...) replaces them, since walking the module tree costs tens of microseconds."""
    tensors = flow.__dict__.get(_STATE)
    if tensors is None:
        tensors = flow.__dict__[_STATE] = tuple(itertools.chain(flow.parameters(), flow.buffers()))
    return tuple(t._version for t in tensors)


class _CachedCalls:
    """Derives torch's transform interface from ``_fwd(x) -> (y, ld)`` and ``_bwd(y) -> (x, ld)``.

    Shared by :class:`Flow` and its bound view :class:`_Conditioned`; ``_flow`` is the flow holding the maths.
    """

    _entry: Optional[_Entry] = None

    def _fwd(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _bwd(self, y: Tensor) -> Tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _lookup(self, x=None, y=None) -> Optional[_Entry]:
        e = self._entry
        if self._cache_size == 0 or e is None or not e.usable(_stamp(self._flow)):
            return None
        if (x is None or x is e.x) and (y is None or y is e.y):
            return e
        return None

    def _store(self, x: Tensor, y: Tensor, log_det: Tensor) -> None:
        if self._cache_size:
            self._entry = _Entry(x, y, log_det, _stamp(self._flow))

    def __call__(self, x: Tensor) -> Tensor:
        e = self._lookup(x=x)
        if e is not None:
            return e.y
        y, ld = self._fwd(x)
        self._store(x, y, ld)
        return y

    def _inv_call(self, y: Tensor) -> Tensor:
        e = self._lookup(y=y)
        if e is not None:
            return e.x
        x, ld = self._bwd(y)
        self._store(x, y, ld)
        return x

    def _call(self, x: Tensor) -> Tensor:
        return self._fwd(x)[0]

    def _inverse(self, y: Tensor) -> Tensor:
        return self._bwd(y)[0]

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        e = self._lookup(x=x, y=y)
        if e is not None:
            return e.log_det
        if self._flow.fast == "inverse":
            x2, ld = self._bwd(y)
            self._store(x2, y, ld)
        else:
            y2, ld = self._fwd(x)
            self._store(x, y2, ld)
        return ld

    def clear_cache(self) -> None:
        """Drops the cached (x, y, log-det) entry."""
        self._entry = None


class Flow(_CachedCalls, TransformModule, ConditionalTransform):
    """Base class of every pyro_flows transform; see the module docstring for the contract.

    Subclasses call ``super().__init__(event_shape=..., context_dim=...)`` and implement
    :meth:`forward_and_log_det` and, where an inverse exists, :meth:`inverse_and_log_det`.

    Args:
        event_shape: the shape of one input (``(input_dim,)`` for vectors).
        context_dim: size of the context vector, or ``None`` for an unconditional flow.
        cache_size: 1 (default) keeps the last ``(x, y, log-det)``; 0 disables caching.
    """

    bijective = True
    #: The direction that costs one pass: "forward", "inverse" or "both".
    fast = "both"

    def __init__(self, *, event_shape: Sequence[int], context_dim: Optional[int] = None, cache_size: int = 1):
        if cache_size not in (0, 1):
            raise ValueError(f"cache_size must be 0 or 1, got {cache_size}")
        super().__init__(cache_size=cache_size)
        self.event_shape = torch.Size(event_shape)
        self._domain = constraints.independent(constraints.real, len(self.event_shape))
        if context_dim is not None and (not isinstance(context_dim, int) or context_dim < 1):
            raise ValueError(f"context_dim must be a positive int or None, got {context_dim!r}")
        self.context_dim = context_dim

    # --- what a subclass implements ---------------------------------------------------------------------
    def forward_and_log_det(self, x: Tensor, context: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Returns ``(y, log|det dy/dx|)``; the log-det has the batch shape of ``x``."""
        raise NotImplementedError

    def inverse_and_log_det(self, y: Tensor, context: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Returns ``(x, log|det dy/dx|)`` with ``x`` the preimage of ``y`` (the forward map's log-det)."""
        raise NotImplementedError(f"{type(self).__name__} has no inverse.")

    # --- torch/pyro plumbing derived from the two methods above -----------------------------------------
    @property
    def _flow(self) -> "Flow":
        return self

    @property
    def event_dim(self) -> int:
        return len(self.event_shape)

    @property
    def domain(self):
        return self._domain

    @property
    def codomain(self):
        return self._domain

    @property
    def inv(self) -> "Inverse":
        return _cached_inverse(self)

    def with_cache(self, cache_size: int = 1):
        """This flow with another cache size: a view sharing the parameters (torch's ``with_cache``)."""
        if cache_size == self._cache_size:
            return self
        if cache_size not in (0, 1):
            raise ValueError(f"cache_size must be 0 or 1, got {cache_size}")
        view = copy.copy(self)
        view._cache_size, view._entry = cache_size, None
        return view

    def _check_x(self, x: Tensor, what: str) -> None:
        check_input(x, self.event_shape, what=what, owner=type(self).__name__)

    def check_context(self, context: Optional[Tensor]) -> Optional[Tensor]:
        """Validates a context for this flow and returns it (``None`` for an unconditional flow)."""
        name = type(self).__name__
        if self.context_dim is None:
            if context is not None:
                raise ValueError(f"{name} is unconditional (context_dim=None) but was given a context")
            return None
        if context is None:
            raise ValueError(
                f"{name} is conditional (context_dim={self.context_dim}) and needs a context: "
                f"use flow.condition(context) with a tensor of shape (*batch, {self.context_dim})"
            )
        check_input(context, (self.context_dim,), what="context", owner=name)
        return context

    def _fwd(self, x):
        self._check_x(x, "input")
        return self.forward_and_log_det(x, self.check_context(None))

    def _bwd(self, y):
        self._check_x(y, "input to the inverse")
        return self.inverse_and_log_det(y, self.check_context(None))

    def condition(self, context: Tensor):
        """Binds a context: returns a parameter-free transform with this flow's maths and ``context``.

        An unconditional flow returns itself, so it mixes freely with conditional ones in a
        ``ConditionalTransformedDistribution``.
        """
        if self.context_dim is None:
            return self
        return _Conditioned(self, self.check_context(context))

    def __getstate__(self):
        state = super().__getstate__()
        state["_entry"] = None
        state.pop(_INVERSE, None)
        state.pop(_STATE, None)
        return state

    def _apply(self, fn, *args, **kwargs):
        self.__dict__.pop(_STATE, None)
        self._entry = None
        return super()._apply(fn, *args, **kwargs)

    def extra_repr(self) -> str:
        s = f"event_shape={tuple(self.event_shape)}"
        return s + (f", context_dim={self.context_dim}" if self.context_dim is not None else "")


class _Conditioned(_CachedCalls, torch.distributions.Transform):
    """A flow with its context bound: a plain (parameter-free) transform with its own cache."""

    bijective = True

    def __init__(self, flow: Flow, context: Tensor):
        super().__init__(cache_size=flow._cache_size)
        self._base = flow
        self.context = context

    @property
    def _flow(self) -> Flow:
        return self._base

    @property
    def domain(self):
        return self._base.domain

    @property
    def codomain(self):
        return self._base.codomain

    def _fwd(self, x):
        self._base._check_x(x, "input")
        return self._base.forward_and_log_det(x, self.context)

    def _bwd(self, y):
        self._base._check_x(y, "input to the inverse")
        return self._base.inverse_and_log_det(y, self.context)


class Inverse(TransformModule, ConditionalTransform):
    """The inverse of a transform, as a module that keeps the transform's parameters.

    ``Inverse(t)`` maps ``y -> t^{-1}(y)``; its log-det is minus ``t``'s. It shares ``t``'s cache, so
    inverting what ``t`` just produced is free. Its fast direction is ``t``'s slow one.

    Args:
        transform: a :class:`Flow` or :class:`Compose`.

    Example:
        >>> import torch, pyro_flows as pf
        >>> t = pf.Planar(2)
        >>> x = torch.randn(4, 2)
        >>> torch.allclose(pf.Inverse(t)(t(x)), x)
        True
    """

    bijective = True

    def __init__(self, transform):
        super().__init__(cache_size=transform._cache_size)
        self.transform = transform

    @property
    def fast(self) -> str:
        return {"forward": "inverse", "inverse": "forward"}.get(self.transform.fast, "both")

    @property
    def event_shape(self) -> torch.Size:
        return self.transform.event_shape

    @property
    def context_dim(self):
        return self.transform.context_dim

    @property
    def domain(self):
        return self.transform.codomain

    @property
    def codomain(self):
        return self.transform.domain

    @property
    def inv(self):
        return self.transform

    def __call__(self, y: Tensor) -> Tensor:
        return self.transform._inv_call(y)

    def _inv_call(self, x: Tensor) -> Tensor:
        return self.transform(x)

    def log_abs_det_jacobian(self, y: Tensor, x: Tensor) -> Tensor:
        return -self.transform.log_abs_det_jacobian(x, y)

    def _fwd(self, y: Tensor):
        x, ld = self.transform._bwd(y)
        return x, -ld

    def _bwd(self, x: Tensor):
        y, ld = self.transform._fwd(x)
        return y, -ld

    def forward_and_log_det(self, y: Tensor, context: Optional[Tensor] = None):
        """Returns ``(t^{-1}(y), log|det|)`` of this (inverse) map."""
        x, ld = self.transform.inverse_and_log_det(y, context)
        return x, -ld

    def inverse_and_log_det(self, x: Tensor, context: Optional[Tensor] = None):
        """Returns ``(t(x), log|det|)`` of this (inverse) map, evaluated at its preimage."""
        y, ld = self.transform.forward_and_log_det(x, context)
        return y, -ld

    def condition(self, context: Tensor):
        bound = self.transform.condition(context)
        return self if bound is self.transform else bound.inv


class Compose(ComposeTransformModule, ConditionalTransform):
    """A chain of transforms applied left to right: a Pyro ``ComposeTransformModule`` with the contract.

    ``forward_and_log_det`` runs the parts once and sums their log-dets; the inverse runs them backwards.
    ``condition(context)`` binds the context of every conditional part. Parts that are not pyro_flows
    transforms (Pyro's own, say) are used through torch's interface.

    Args:
        parts: the transforms, first applied first. All must share one event shape.

    Example:
        >>> import torch, pyro_flows as pf
        >>> flow = pf.Compose([pf.Planar(3), pf.Radial(3)])
        >>> y, ld = flow.forward_and_log_det(torch.randn(5, 3))
        >>> y.shape, ld.shape
        (torch.Size([5, 3]), torch.Size([5]))
    """

    def __init__(self, parts: Sequence):
        parts = list(parts)
        if not parts:
            raise ValueError("Compose needs at least one transform")
        shapes = {tuple(p.event_shape) for p in parts if hasattr(p, "event_shape")}
        if len(shapes) > 1:
            raise ValueError(f"Compose parts must share one event shape, got {sorted(shapes)}")
        super().__init__(parts)
        self.event_shape = torch.Size(shapes.pop()) if shapes else None
        dims = {getattr(p, "context_dim", None) for p in parts} - {None}
        if len(dims) > 1:
            raise ValueError(f"Compose parts must share one context_dim, got {sorted(dims)}")
        self.context_dim = dims.pop() if dims else None

    @property
    def fast(self) -> str:
        kinds = {getattr(p, "fast", "both") for p in self.parts} - {"both"}
        return kinds.pop() if len(kinds) == 1 else ("both" if not kinds else "neither")

    @property
    def inv(self) -> Inverse:
        return _cached_inverse(self)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop(_INVERSE, None)
        return state

    def _inverse(self, y: Tensor) -> Tensor:
        for part in reversed(self.parts):
            y = part.inv(y)
        return y

    def _parts(self, context):
        if context is None:
            if self.context_dim is not None:
                raise ValueError(
                    f"this flow is conditional (context_dim={self.context_dim}) and needs a context: "
                    "use flow.condition(context)"
                )
            return self.parts
        return [p.condition(context) if isinstance(p, ConditionalTransform) else p for p in self.parts]

    def _fwd(self, x: Tensor):
        return self.forward_and_log_det(x)

    def _bwd(self, y: Tensor):
        return self.inverse_and_log_det(y)

    def forward_and_log_det(self, x: Tensor, context: Optional[Tensor] = None):
        """Returns ``(y, log|det dy/dx|)`` for the whole chain, in one pass."""
        return _chain(self._parts(context), x, len(self.event_shape), forward=True)

    def inverse_and_log_det(self, y: Tensor, context: Optional[Tensor] = None):
        """Returns ``(x, log|det dy/dx|)`` for the whole chain, running the parts backwards."""
        return _chain(self._parts(context)[::-1], y, len(self.event_shape), forward=False)

    def condition(self, context: Tensor):
        if self.context_dim is None:
            return self
        return torch.distributions.ComposeTransform(self._parts(context))

    def with_cache(self, cache_size: int = 1):
        """Returns itself: a chain caches in its parts, each with its own (x, y, log-det) entry."""
        return self


def _chain(parts, value: Tensor, event_dim: int, *, forward: bool):
    """Runs ``parts`` forwards on ``value`` (or, with ``forward=False``, the inverses of a reversed list),
    summing the forward log-dets to the batch shape of ``value``'s ``event_dim``-dimensional events."""
    total = 0.0
    for part in parts:
        if hasattr(part, "_fwd"):  # pyro_flows transforms: one pass gives the value and its log-det
            out, ld = part._fwd(value) if forward else part._bwd(value)
        else:  # torch/Pyro transforms, through torch's interface
            out = part(value) if forward else part.inv(value)
            ld = part.log_abs_det_jacobian(*((value, out) if forward else (out, value)))
            ld = sum_rightmost(ld, ld.dim() - (value.dim() - event_dim))
        total = total + ld
        value = out
    return value, total


def flow_distribution(flow, *, context: Optional[Tensor] = None):
    """Wraps ``flow`` with a standard-normal base into a distribution over its event shape.

    Args:
        flow: a pyro_flows transform (or ``Compose``) with an ``event_shape``.
        context: for a conditional flow, the context to bind; without it, a conditional flow gives a
            ``ConditionalTransformedDistribution`` to ``.condition(context)`` later.

    Returns:
        ``pyro.distributions.TransformedDistribution`` (or its conditional counterpart).

    Example:
        >>> import torch, pyro_flows as pf
        >>> d = pf.flow_distribution(pf.realnvp(2, num_layers=2, hidden_dims=(8,)))
        >>> d.log_prob(torch.zeros(3, 2)).shape
        torch.Size([3])
    """
    shape = getattr(flow, "event_shape", None)
    if shape is None:
        raise ValueError("flow_distribution needs a flow with an event_shape")
    ref = next(iter(flow.parameters()), None) if isinstance(flow, torch.nn.Module) else None
    kw = dict(dtype=ref.dtype, device=ref.device) if ref is not None else {}
    base = dist.Normal(torch.zeros(shape, **kw), torch.ones(shape, **kw)).to_event(len(shape))
    if getattr(flow, "context_dim", None) is None:
        if context is not None:
            raise ValueError("flow_distribution: this flow is unconditional but was given a context")
        return dist.TransformedDistribution(base, flow)
    if context is None:
        return ConditionalTransformedDistribution(base, [flow])
    return dist.TransformedDistribution(base, flow.condition(context))

