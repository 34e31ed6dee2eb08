"""The transform contract, written once.

Every pyro_flows transform is a :class:`FlowLike`: a Pyro ``TransformModule`` (so a ``torch.nn.Module`` and
a ``torch.distributions.Transform``) that plugs into ``pyro.distributions.TransformedDistribution``.
:class:`Flow` (every layer), :class:`Inverse`, :class:`Compose` and the bound view that ``condition``
returns are its four kinds.

The contract
------------
* A :class:`Flow` subclass computes ``(y, log|det dy/dx|)`` in ``_forward_and_log_det(x, context)`` and,
  where it has one, ``(x, log|det dy/dx|)`` in ``_inverse_and_log_det(y, context)``. The log-det is always
  the one of the FORWARD map, summed over the event dims, with the batch shape of the input. The public
  :meth:`~pyro_flows.FlowLike.forward_and_log_det` and :meth:`~pyro_flows.FlowLike.inverse_and_log_det` validate their
  arguments and call these; everything torch needs (``__call__``, ``_call``, ``_inverse``, ``log_abs_det_jacobian``,
  ``inv``, ``with_cache``, ``sign``) is derived here.
* Inputs are validated in one place (:meth:`~pyro_flows.FlowLike.check_args`): a floating tensor with the event shape
  in the trailing dims and the dtype of the flow's parameters (no silent promotion: ``TypeError`` naming
  both dtypes); a context exactly when the flow is conditional (a context given to an unconditional flow
  is refused, never ignored), of width ``context_dim``, the same dtype, and a batch shape that broadcasts
  with the input's.
* ``fast`` names the direction that costs one network pass: ``"forward"``, ``"inverse"``, ``"both"``, or
  ``"neither"`` (a chain mixing MAF and IAF layers: each direction runs a sequential pass somewhere). A
  log-det that is not in the cache is recomputed in the fast direction.
* ``sign`` is the sign of the Jacobian determinant (+1 for every layer but permutations and 1x1
  convolutions, which compute it).
* A transform without an inverse raises ``NotImplementedError`` with a sentence saying why.
* Conditioning without twin classes: a flow built with ``context_dim`` needs a context. Its
  :meth:`~pyro_flows.FlowLike.condition` returns a bound view, a ``TransformModule`` that shares the flow's parameters
  (a ``ComposeTransformModule`` for a :class:`Compose`), usable in
  ``pyro.distributions.ConditionalTransformedDistribution``. An unconditional flow's ``condition`` returns
  the flow itself.
* Caching: each flow (and each bound view) keeps an entry ``(x, y, log-det)`` for every output it computed
  that is still alive, looked up by tensor identity: a sample's log-density comes from the pass that drew
  it, however many samples were drawn since, and ``t.inv(y.clone())`` always recomputes. Entries are held
  weakly by the computed tensor (an entry dies with it; it keeps its input alive, nothing else). An entry
  made while gradients were off is not used while they are on (so ``log_prob(d.sample())`` has its graph).
  An entry made before the flow's parameters or buffers changed is stale: :mod:`pyro_flows.state` holds
  that rule for every cache of the library.
* ``Inverse(t)`` (also ``t.inv``) is itself a module holding ``t``, so ``pyro.module`` sees its parameters;
  ``Inverse(t).inv is t`` and ``t.inv`` is the latest ``Inverse(t)``.
* New tensors take dtype and device from their inputs.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Sequence
from typing import Any

import torch
from pyro.distributions.conditional import ConditionalTransform
from pyro.distributions.torch_transform import ComposeTransformModule, TransformModule
from torch.distributions import constraints

from . import state
from .validation import check_tensor, optional_positive_int
from .validation import event_shape as _event_shape

__all__ = [
    "FlowLike",
    "Flow",
    "Inverse",
    "Compose",
    "FAST",
    "as_event_shape",
    "check_input",
    "sum_rightmost",
]

Tensor = torch.Tensor

#: The values of ``fast``.
FAST = ("forward", "inverse", "both", "neither")

as_event_shape = _event_shape
check_input = check_tensor


def sum_rightmost(value: Tensor, dims: int) -> Tensor:
    """Sums the rightmost ``dims`` dimensions of ``value`` (none when ``dims`` is 0)."""
    return value.sum(tuple(range(-dims, 0))) if dims > 0 else value


def _dtype_of(module: Any) -> torch.dtype | None:
    """The dtype of a module's first floating parameter or buffer (None when it has none)."""
    for t in state.module_tensors(module):
        if t.is_floating_point():
            return t.dtype
    return None


# --- the cache ------------------------------------------------------------------------------------------
class _Entry:
    """One evaluation: ``given`` (held) was mapped to ``computed`` (held weakly) with this forward log-det."""

    __slots__ = ("given", "computed", "given_is_x", "log_det", "grad", "key", "__weakref__")

    def __init__(self, given, computed, given_is_x, log_det, key):
        self.given, self.computed, self.given_is_x = given, weakref.ref(computed), given_is_x
        self.log_det, self.key, self.grad = log_det, key, torch.is_grad_enabled()

    def side(self, x_side: bool):
        return self.given if self.given_is_x == x_side else self.computed()


class _Cache:
    """Entries keyed by tensor identity: ``computed -> entry`` (the entry lives as long as its output) and
    ``given -> weakref(entry)``. Dead keys drop themselves, so the cache never keeps a dropped tensor."""

    def __init__(self):
        self._by_computed, self._by_given = {}, {}

    @staticmethod
    def _put(table, tensor, value):
        k = id(tensor)

        def drop(ref, k=k, table=table):
            item = table.get(k)
            if item is not None and item[0] is ref:
                del table[k]

        table[k] = (weakref.ref(tensor, drop), value)

    @staticmethod
    def _get(table, tensor):
        item = table.get(id(tensor))
        return item[1] if item is not None and item[0]() is tensor else None

    def add(self, given, computed, given_is_x, log_det, key):
        entry = _Entry(given, computed, given_is_x, log_det, key)
        self._put(self._by_computed, computed, entry)
        self._put(self._by_given, given, weakref.ref(entry))

    def find(self, tensor, x_side: bool):
        """The entry in which ``tensor`` is the x (``x_side``) or y side."""
        entry = self._get(self._by_computed, tensor)
        if entry is None or entry.side(x_side) is not tensor:
            ref = self._get(self._by_given, tensor)
            entry = ref() if ref is not None else None
            if entry is None or entry.side(x_side) is not tensor:
                return None
        return entry

    def __len__(self):
        return len(self._by_computed)


class FlowLike:
    """What every pyro_flows transform is: :class:`Flow`, :class:`Inverse`, :class:`Compose` and the bound
    view of a conditional flow. See the module docstring for the contract.

    Attributes:
        event_shape: the shape of one input.
        context_dim: the context's size, or ``None`` for an unconditional transform.
        fast: one of :data:`FAST`.
    """

    bijective = True
    # what each kind has, as attributes or properties
    event_shape: Any
    context_dim: Any
    fast: Any
    sign: Any
    _cache_size: int

    # --- what each kind provides ------------------------------------------------------------------------
    def _forward_and_log_det(self, x: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _inverse_and_log_det(self, y: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError(f"{type(self).__name__} has no inverse.")

    def condition(self, context: Tensor) -> FlowLike:
        """Binds ``context``: a transform (module) with this one's maths and parameters and the context bound;
        an unconditional transform returns itself, and a bound view binds anew."""
        raise NotImplementedError

    def __getstate__(self):
        """Pickles and copies drop the cache, the remembered ``Inverse`` and the state bookkeeping."""
        state_ = super().__getstate__()  # a mixin: the module's own __getstate__
        for name in ("_entries", "_inverse_module"):
            state_.pop(name, None)
        return state.drop(state_)

    @property
    def bound_context(self) -> Tensor | None:
        """The context bound into this transform by ``condition`` (``None`` for other transforms)."""
        return None

    # --- validation, in one place -------------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype | None:
        """The dtype of the parameters and buffers (``None`` for a transform without floating state)."""
        return _dtype_of(self)

    def check_context(self, context: Tensor | None) -> Tensor | None:
        """Validates a context on its own (given exactly when the transform is conditional, its width and
        dtype) and returns it."""
        name = type(self).__name__
        if self.context_dim is None:
            if context is not None:
                raise ValueError(f"{name} is unconditional (context_dim=None) but was given a context")
            return None
        if context is None:
            raise ValueError(
                f"{name} is conditional (context_dim={self.context_dim}) and needs a context: use "
                f"flow.condition(context) with a tensor of shape (*batch, {self.context_dim})"
            )
        check_tensor(context, (self.context_dim,), what="context", owner=name, dtype=self.dtype)
        return context

    def check_args(self, value: Tensor, context: Tensor | None, *, what: str = "input") -> None:
        """Raises ``TypeError``/``ValueError`` naming what was expected unless ``value`` (and ``context``) can
        be given to this transform; see the module docstring."""
        name = type(self).__name__
        check_tensor(value, self.event_shape, what=what, owner=name, dtype=self.dtype)
        context = self.check_context(context)
        if context is None:
            return
        batch = value.shape[: value.dim() - len(self.event_shape)]
        try:
            torch.broadcast_shapes(batch, context.shape[:-1])
        except RuntimeError:
            raise ValueError(
                f"{name} expected a context whose batch shape broadcasts with the {what}'s {tuple(batch)}, got "
                f"a context of shape {tuple(context.shape)}"
            ) from None

    def forward_and_log_det(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Returns ``(y, log|det dy/dx|)``; the log-det has the batch shape of ``x`` (and the context)."""
        self.check_args(x, context)
        return self._forward_and_log_det(x, context)

    def inverse_and_log_det(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Returns ``(x, log|det dy/dx|)``, ``x`` the preimage of ``y`` (the log-det of the FORWARD map)."""
        self.check_args(y, context, what="input to the inverse")
        return self._inverse_and_log_det(y, context)

    # one validated pass without a context argument: what compositions and torch's interface run
    def _fwd(self, x: Tensor):
        return self.forward_and_log_det(x)

    def _bwd(self, y: Tensor):
        return self.inverse_and_log_det(y)

    def _call(self, x: Tensor) -> Tensor:
        return self._fwd(x)[0]

    def _inverse(self, y: Tensor) -> Tensor:
        return self._bwd(y)[0]

    @property
    def event_dim(self) -> int:
        return len(self.event_shape)

    @property
    def inv(self) -> Inverse:
        inverse = self.__dict__.get("_inverse_module")
        return inverse if inverse is not None else Inverse(self)


class _Cached(FlowLike):
    """torch's interface with the multi-entry cache, over ``_fwd``/``_bwd`` (Flow and the bound view)."""

    @property
    def _flow(self) -> Any:
        """The flow whose parameters the cached values depend on."""
        return self

    def _cache(self) -> _Cache:
        cache = self.__dict__.get("_entries")
        if cache is None:
            cache = self.__dict__["_entries"] = _Cache()
        return cache

    def _lookup(self, tensor, x_side: bool):
        if self._cache_size == 0:
            return None
        entry = self._cache().find(tensor, x_side)
        if entry is None or not (entry.grad or not torch.is_grad_enabled()):
            return None  # a graph-less entry must not stand in for a computation that wants gradients
        return entry if entry.key == state.module_key(self._flow) else None

    def _store(self, given, computed, given_is_x, log_det):
        if self._cache_size:
            self._cache().add(given, computed, given_is_x, log_det, state.module_key(self._flow))

    def __call__(self, x: Tensor) -> Tensor:
        e = self._lookup(x, True)
        if e is not None:
            return e.side(False)
        y, ld = self._fwd(x)
        self._store(x, y, True, ld)
        return y

    def _inv_call(self, y: Tensor) -> Tensor:
        e = self._lookup(y, False)
        if e is not None:
            return e.side(True)
        x, ld = self._bwd(y)
        self._store(y, x, False, ld)
        return x

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        e = self._lookup(y, False)
        if e is not None and e.side(True) is x:
            return e.log_det
        if self.fast == "inverse":
            x2, ld = self._bwd(y)
            self._store(y, x2, False, ld)
        else:
            y2, ld = self._fwd(x)
            self._store(x, y2, True, ld)
        return ld

    def clear_cache(self) -> None:
        """Drops every cached (x, y, log-det) entry."""
        self.__dict__.pop("_entries", None)

    def _view(self, cache_size: int):
        if cache_size not in (0, 1):
            raise ValueError(f"cache_size must be 0 or 1, got {cache_size!r}")
        view = copy.copy(self)
        view._cache_size = cache_size
        view.__dict__.pop("_entries", None)
        view.__dict__.pop("_inverse_module", None)
        return view


class Flow(_Cached, TransformModule, ConditionalTransform):
    """Base class of every pyro_flows layer; see the module docstring for the contract.

    Subclasses call ``super().__init__(event_shape=..., context_dim=...)`` and implement
    ``_forward_and_log_det(x, context)`` and, where an inverse exists, ``_inverse_and_log_det(y, context)``.

    Args:
        event_shape: the shape of one input (``(input_dim,)`` for vectors).
        context_dim: size of the context vector, or ``None`` for an unconditional flow.
        cache_size: 1 (default) keeps the (x, y, log-det) of every live output; 0 disables caching.
    """

    #: The direction that costs one pass, one of :data:`FAST`.
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
        bound = self.check_context(context)
        assert bound is not None  # a conditional flow's check_context refuses None
        return _Conditioned(self, bound)

    def _apply(self, fn, *args, **kwargs):
        self.clear_cache()
        return super()._apply(fn, *args, **kwargs)

    def extra_repr(self) -> str:
        s = f"event_shape={tuple(self.event_shape)}"
        return s + (f", context_dim={self.context_dim}" if self.context_dim is not None else "")


class _Conditioned(_Cached, TransformModule):
    """A flow with its context bound: a transform module sharing the flow's parameters, with its own cache."""

    context_dim = None

    def __init__(self, flow: Flow, context: Tensor):
        super().__init__(cache_size=flow._cache_size)
        self.flow = flow
        self.context = context

    @property
    def _flow(self) -> Flow:
        return self.flow

    @property
    def bound_context(self):
        return self.context

    def check_args(self, value, context, *, what="input"):
        if context is not None and context is not self.context:
            raise ValueError(f"this {type(self.flow).__name__} has its context bound already; got another one")
        self.flow.check_args(value, self.context, what=what)

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
        return self if cache_size == self._cache_size else _Conditioned(self.flow.with_cache(cache_size), self.context)

    def condition(self, context: Tensor):
        """Binds another context to the same flow."""
        return self.flow.condition(context)


class Inverse(FlowLike, TransformModule, ConditionalTransform):
    """The inverse of a transform, as a module that keeps the transform's parameters.

    ``Inverse(t)`` maps ``y -> t^{-1}(y)``; its log-det is minus ``t``'s. It shares ``t``'s cache, so
    inverting what ``t`` just produced is free. Its fast direction is ``t``'s slow one.

    Args:
        transform: a pyro_flows transform (:class:`FlowLike`).

    Example:
        >>> import torch, pyro_flows as pf
        >>> t = pf.Planar(2)
        >>> x = torch.randn(4, 2)
        >>> torch.allclose(pf.Inverse(t)(t(x)), x)
        True
    """

    def __init__(self, transform):
        if not isinstance(transform, FlowLike):
            raise TypeError(f"Inverse takes a pyro_flows transform, got {type(transform).__name__}")
        super().__init__(cache_size=transform._cache_size)
        self.transform = transform
        transform.__dict__["_inverse_module"] = self  # t.inv is the latest Inverse(t); kept out of modules()

    @property
    def fast(self) -> str:
        return {"forward": "inverse", "inverse": "forward"}.get(self.transform.fast, self.transform.fast)

    @property
    def sign(self):
        return self.transform.sign

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

    def check_args(self, value, context, *, what="input"):
        self.transform.check_args(value, context, what=what)

    @property
    def bound_context(self):
        return self.transform.bound_context

    def __call__(self, y: Tensor) -> Tensor:
        return self.transform._inv_call(y)

    def _inv_call(self, x: Tensor) -> Tensor:
        return self.transform(x)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        """This map's log-det at its input ``x`` (a ``y`` of the transform) and output ``y``."""
        return -self.transform.log_abs_det_jacobian(y, x)

    def _forward_and_log_det(self, y: Tensor, context):
        x, ld = self.transform._inverse_and_log_det(y, context)
        return x, -ld

    def _inverse_and_log_det(self, x: Tensor, context):
        y, ld = self.transform._forward_and_log_det(x, context)
        return y, -ld

    def with_cache(self, cache_size: int = 1):
        return self if cache_size == self._cache_size else Inverse(self.transform.with_cache(cache_size))

    def condition(self, context: Tensor):
        bound = self.transform.condition(context)
        return self if bound is self.transform else bound.inv

    def clear_cache(self) -> None:
        self.transform.clear_cache()


class Compose(FlowLike, ComposeTransformModule, ConditionalTransform):
    """A chain of transforms applied left to right: a Pyro ``ComposeTransformModule`` with the contract.

    ``forward_and_log_det`` runs the parts once and sums their log-dets; the inverse runs them backwards.
    ``condition(context)`` binds the context of every conditional part and returns a bound
    ``ComposeTransformModule``. Parts that are not pyro_flows transforms (Pyro's or torch's own) are used
    through torch's interface.

    Args:
        parts: the transforms, first applied first. All must share one event shape and one context size.

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
        if cache_size not in (0, 1):
            raise ValueError(f"cache_size must be 0 or 1, got {cache_size!r}")
        super().__init__(parts, cache_size=cache_size)
        self.parts = parts  # pyro_flows parts cache already; others keep what they were given
        if not shapes:
            raise ValueError("Compose needs at least one part with an event_shape (a pyro_flows transform)")
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

    def check_context(self, context):
        if self._context is not None:  # bound: its parts hold the context
            if context is not None and context is not self._context:
                raise ValueError("this Compose has its context bound already; got another one")
            return None
        if context is not None and self.context_dim is not None:  # each conditional part checks the rest
            if not isinstance(context, torch.Tensor):
                raise TypeError(f"Compose expected its context to be a torch.Tensor, got {type(context).__name__}")
            return context
        return super().check_context(context)

    def _parts(self, context):
        if context is None or self._context is not None:  # unconditional, or bound already
            return self.parts
        return [p.condition(context) if isinstance(p, ConditionalTransform) else p for p in self.parts]

    def _forward_and_log_det(self, x: Tensor, context):
        return _chain(self._parts(context), x, len(self.event_shape), forward=True)

    def _inverse_and_log_det(self, y: Tensor, context):
        return _chain(self._parts(context)[::-1], y, len(self.event_shape), forward=False)

    def __call__(self, x: Tensor) -> Tensor:
        for part in self.parts:
            x = part(x)
        return x

    def _inv_call(self, y: Tensor) -> Tensor:
        for part in reversed(self.parts):
            y = part.inv(y)
        return y

    def condition(self, context: Tensor):
        """Binds ``context`` to every conditional part: a ``ComposeTransformModule`` sharing the parameters.
        On a bound chain, binds the parts anew to ``context``."""
        if self.context_dim is None and self._context is None:
            return self
        if not isinstance(context, torch.Tensor):
            raise TypeError(f"Compose.condition expected a context tensor, got {type(context).__name__}")
        parts = [
            p.condition(context)
            if isinstance(p, ConditionalTransform) or (isinstance(p, FlowLike) and p.bound_context is not None)
            else p
            for p in self.parts
        ]
        return Compose(parts, _context=context)  # a bound chain binds anew

    def with_cache(self, cache_size: int = 1):
        """A chain whose parts have another cache size (views sharing the parameters)."""
        if cache_size == self._cache_size:
            return self
        return Compose([p.with_cache(cache_size) for p in self.parts], cache_size=cache_size, _context=self._context)

    def clear_cache(self) -> None:
        for part in self.parts:
            if hasattr(part, "clear_cache"):
                part.clear_cache()

    def __hash__(self):
        return object.__hash__(self)


def _chain(parts, value: Tensor, event_dim: int, *, forward: bool):
    """Runs ``parts`` forwards on ``value`` (or, with ``forward=False``, the inverses of a reversed list),
    summing the forward log-dets to the batch shape of ``value``'s ``event_dim``-dimensional events."""
    total = 0.0
    for part in parts:
        if isinstance(part, FlowLike):  # one pass gives the value and its log-det
            out, ld = part._fwd(value) if forward else part._bwd(value)
        else:  # torch/Pyro transforms, through torch's interface
            out = part(value) if forward else part.inv(value)
            ld = part.log_abs_det_jacobian(*((value, out) if forward else (out, value)))
            ld = sum_rightmost(ld, ld.dim() - (value.dim() - event_dim))
        total = total + ld
        value = out
    return value, total
