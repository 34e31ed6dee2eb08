"""The transform contract, written once.

Every pyro_flows transform is a :class:`FlowLike`: a Pyro ``TransformModule`` (so a ``torch.nn.Module`` and
a ``torch.distributions.Transform``) that plugs into ``pyro.distributions.TransformedDistribution``.
:class:`~pyro_flows.Flow` (every layer, in ``pyro_flows/flow.py``), :class:`Inverse`, :class:`~pyro_flows.Compose`
(``pyro_flows/compose.py``) and the bound view that ``condition`` returns are its four kinds.

The contract
------------
* A :class:`~pyro_flows.Flow` subclass computes ``(y, log|det dy/dx|)`` in ``_forward_and_log_det(x, context)`` and,
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
  (a ``ComposeTransformModule`` for a :class:`~pyro_flows.Compose`), usable in
  ``pyro.distributions.ConditionalTransformedDistribution``. An unconditional flow's ``condition`` returns
  the flow itself.
* Inputs are checked once, at the entry of a pass: the layers and conditioners that a pass runs trust that
  check (:func:`pyro_flows.validation.inputs_checked`); called directly, they check.
* Caching: each flow, chain and bound view keeps an entry ``(x, y, log-det)`` for every output it computed
  that is still alive, looked up by tensor identity and version: a sample's log-density comes from the pass
  that drew it, however many samples were drawn since, ``t.inv(y.clone())`` always recomputes, and an
  in-place edit of either tensor makes its entry stale. ``pyro_flows/cache.py`` holds the rule.
* One walk: :meth:`~pyro_flows.FlowLike.layers` lists a transform's layers in sampling order, each with
  whether it runs inverted and its bound context (:class:`~pyro_flows.Layer`); :func:`~pyro_flows.layers` does the same for torch's
  and Pyro's own compositions and inverses. Nothing else looks inside a flow.
* ``Inverse(t)`` (also ``t.inv``) is itself a module holding ``t``, so ``pyro.module`` sees its parameters;
  ``Inverse(t).inv is t`` and ``t.inv`` is the latest ``Inverse(t)``.
* New tensors take dtype and device from their inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from pyro.distributions.conditional import ConditionalTransform
from pyro.distributions.torch_transform import TransformModule
from torch.distributions import ComposeTransform
from torch.distributions.transforms import _InverseTransform

from . import cache, state
from .validation import CHECKED, check_context, check_tensor, inputs_checked
from .validation import event_shape as _event_shape

__all__ = [
    "FlowLike",
    "Inverse",
    "Layer",
    "layers",
    "bind",
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


# --- the walk ---------------------------------------------------------------------------------------------
class Layer(NamedTuple):
    """One layer of a flow, as met when the flow samples (runs its forward map).

    Attributes:
        layer: the layer (a :class:`~pyro_flows.Flow`, or a torch/Pyro transform that is no composition).
        inverted: whether the flow's forward map runs this layer's inverse.
        context: the context bound to the layer (``None`` when none is).
        path: where it sits, e.g. ``"parts[1].inv"``.
    """

    layer: Any
    inverted: bool
    context: Tensor | None
    path: str

    def within(self, prefix: str, *, invert: bool = False, context: Tensor | None = None) -> Layer:
        """This layer seen from an enclosing transform: ``prefix`` before its path, inverted once more if
        ``invert``, and ``context`` bound unless it has its own."""
        path = prefix + ("." if prefix and self.path and not self.path.startswith(".") else "") + self.path
        return Layer(self.layer, self.inverted != invert, self.context if self.context is not None else context, path)


def layers(transform: Any) -> list[Layer]:
    """The layers of any transform in sampling order: a pyro_flows transform's :meth:`FlowLike.layers`;
    torch's and Pyro's compositions and inverses looked through; any other transform is one layer.

    Example:
        >>> import pyro_flows as pf
        >>> flow = pf.Compose([pf.Planar(2), pf.MAF(2, (8,)).inv])
        >>> [(type(step.layer).__name__, step.inverted, step.path) for step in layers(flow)]
        [('Planar', False, 'parts[0]'), ('MAF', True, 'parts[1].inv')]
    """
    if isinstance(transform, FlowLike):
        return transform.layers()
    if isinstance(transform, ComposeTransform):
        return [step.within(f"parts[{i}]") for i, part in enumerate(transform.parts) for step in layers(part)]
    if isinstance(transform, _InverseTransform):
        return [step.within(".inv", invert=True) for step in reversed(layers(transform.inv))]
    return [Layer(transform, False, None, "")]


def bind(transforms: Sequence, context: Tensor) -> list:
    """``transforms`` with ``context`` bound to every conditional one (a bound one is bound anew); the rest as
    they are. The one place contexts are bound to a list of transforms."""
    return [
        t.condition(context)
        if isinstance(t, ConditionalTransform) or (isinstance(t, FlowLike) and t.bound_context is not None)
        else t
        for t in transforms
    ]


# --- the contract -----------------------------------------------------------------------------------------
class FlowLike:
    """What every pyro_flows transform is: :class:`~pyro_flows.Flow`, :class:`Inverse`,
    :class:`~pyro_flows.Compose` and the bound view of a conditional flow. See the module docstring.

    Attributes:
        event_shape: the shape of one input.
        context_dim: the context's size, or ``None`` for an unconditional (or bound) transform.
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

    def _run(self, value: Tensor, forward: bool) -> Tensor:
        """The output for ``value`` in one direction, from the cache or one pass (see :mod:`pyro_flows.cache`)."""
        raise NotImplementedError

    def condition(self, context: Tensor) -> FlowLike:
        """Binds ``context``: a transform (module) with this one's maths and parameters and the context bound;
        an unconditional transform returns itself, and a bound view binds anew."""
        raise NotImplementedError

    def layers(self) -> list[Layer]:
        """The layers in sampling order, each with whether it runs inverted and its bound context."""
        return [Layer(self, False, None, "")]

    def __getstate__(self):
        """Pickles and copies drop the cache, the remembered ``Inverse`` and the state bookkeeping."""
        state_ = super().__getstate__()  # a mixin: the module's own __getstate__
        for name in cache.TRANSIENT:
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
        return next((t.dtype for t in state.module_tensors(self) if t.is_floating_point()), None)  # type: ignore[arg-type]

    def check_context(self, context: Tensor | None, *, batch_shape=None, what: str = "input") -> None:
        """Validates a context (:func:`pyro_flows.validation.check_context`): given exactly when the transform is
        conditional, of its width and dtype, with a batch shape that broadcasts with ``batch_shape``."""
        check_context(
            context, self.context_dim, owner=type(self).__name__, dtype=self.dtype, batch_shape=batch_shape, what=what
        )

    def check_args(self, value: Tensor, context: Tensor | None, *, what: str = "input") -> None:
        """Raises ``TypeError``/``ValueError`` naming what was expected unless ``value`` (and ``context``) can
        be given to this transform; see the module docstring."""
        check_tensor(value, self.event_shape, what=what, owner=type(self).__name__, dtype=self.dtype)
        self.check_context(context, batch_shape=value.shape[: value.dim() - len(self.event_shape)], what=what)

    def forward_and_log_det(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Returns ``(y, log|det dy/dx|)``; the log-det has the batch shape of ``x`` (and the context)."""
        if inputs_checked():
            return self._forward_and_log_det(x, context)
        self.check_args(x, context)
        token = CHECKED.set(True)  # the layers and conditioners of this pass trust the check
        try:
            return self._forward_and_log_det(x, context)
        finally:
            CHECKED.reset(token)

    def inverse_and_log_det(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Returns ``(x, log|det dy/dx|)``, ``x`` the preimage of ``y`` (the log-det of the FORWARD map)."""
        if inputs_checked():
            return self._inverse_and_log_det(y, context)
        self.check_args(y, context, what="input to the inverse")
        token = CHECKED.set(True)
        try:
            return self._inverse_and_log_det(y, context)
        finally:
            CHECKED.reset(token)

    def __call__(self, x: Tensor) -> Tensor:
        return self._run(x, True)

    def _call(self, x: Tensor) -> Tensor:
        return self.forward_and_log_det(x)[0]

    def _inverse(self, y: Tensor) -> Tensor:
        return self.inverse_and_log_det(y)[0]

    @property
    def event_dim(self) -> int:
        return len(self.event_shape)

    @property
    def inv(self) -> Inverse:
        inverse = self.__dict__.get("_inverse_module")
        return inverse if inverse is not None else Inverse(self)


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

    @property
    def bound_context(self):
        return self.transform.bound_context

    def check_args(self, value, context, *, what="input"):
        self.transform.check_args(value, context, what=what)

    def check_context(self, context, *, batch_shape=None, what="input"):
        self.transform.check_context(context, batch_shape=batch_shape, what=what)

    def layers(self) -> list[Layer]:
        return [step.within(".inv", invert=True) for step in reversed(self.transform.layers())]

    def _run(self, value: Tensor, forward: bool) -> Tensor:
        return self.transform._run(value, not forward)

    def __call__(self, y: Tensor) -> Tensor:
        return self.transform._run(y, False)

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
