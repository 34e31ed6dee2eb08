"""The three things users plug in, written as ``typing.Protocol`` s.

* :class:`ElementwiseOp`: the invertible elementwise map of a coupling or autoregressive layer
  (:class:`~pyro_flows.ops.Affine`, :class:`~pyro_flows.ops.Additive`; later splines): raw parameters in,
  ``(y, elementwise log|dy/dx|)`` out, both directions.
* :class:`Conditioner`: the network that computes those parameters, ``conditioner(x, context) -> params``
  (:class:`~pyro_flows.nn.MaskedDense`, :class:`~pyro_flows.nn.ConvResNet`, :class:`~pyro_flows.nn.MADE`);
  an :class:`AutoregressiveConditioner` also has an order (``degrees``) and, optionally, its own fast
  sequential inversion.
* :class:`AffineOp`: an elementwise op that is affine in its input, ``y = x exp(log_scale) + shift``, and says
  so (:class:`~pyro_flows.ops.Affine`, :class:`~pyro_flows.ops.GatedAffine`, :class:`~pyro_flows.ops.Additive`):
  what Parallel WaveNet's per-step distillation estimators need.

What every pyro_flows transform is, is a class (:class:`~pyro_flows.FlowLike`), not a protocol.

They are ``runtime_checkable``, so ``isinstance(obj, ElementwiseOp)`` checks that the members exist (not
their signatures).

Example:
    >>> import pyro_flows as pf
    >>> isinstance(pf.ops.Affine(), ElementwiseOp), isinstance(pf.nn.MADE(3, (8,)), AutoregressiveConditioner)
    (True, True)
    >>> isinstance(pf.ops.GatedAffine(), AffineOp)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import torch

__all__ = ["ElementwiseOp", "AffineOp", "Conditioner", "AutoregressiveConditioner"]

Tensor = torch.Tensor


@runtime_checkable
class ElementwiseOp(Protocol):
    """An invertible elementwise map with ``num_params`` raw parameters per entry."""

    #: Parameters per entry, 2 for affine (shift and raw log-scale), 1 for additive.
    num_params: int
    #: Whether all-zero parameters give exactly the identity with log-det 0.
    zero_is_identity: bool

    def forward(self, x: Tensor, params: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """``(y, log|dy/dx|)`` elementwise (not summed)."""
        ...

    def inverse(self, y: Tensor, params: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """``(x, log|dy/dx|)`` elementwise, the FORWARD map's log-derivative."""
        ...


@runtime_checkable
class AffineOp(ElementwiseOp, Protocol):
    """An elementwise op that is affine in its input for fixed parameters."""

    def coefficients(self, params: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """``(log_scale, shift)`` with ``forward(x, params)[0] == x * exp(log_scale) + shift`` elementwise."""
        ...


@runtime_checkable
class Conditioner(Protocol):
    """A module computing an op's parameters: ``conditioner(x, context) -> tuple of tensors``.

    In a coupling layer it receives the input with the transformed entries zeroed and returns parameters
    shaped like the input; its last layer starts at zero so a new layer is the identity. A conditioner with
    ``respects_mask = True`` (:class:`~pyro_flows.nn.MaskedDense`) promises to read only the kept entries and
    to return zeros at them, and gets the input unmasked (two elementwise passes fewer).
    """

    def __call__(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, ...]: ...


@runtime_checkable
class AutoregressiveConditioner(Conditioner, Protocol):
    """A conditioner whose output at an event entry depends only on entries earlier in its order.

    It maps ``u`` of shape ``batch + event_shape`` (and the context) to ``num_params`` tensors of that shape.
    Its order is ``degrees``, an integer tensor shaped like the event: entry ``i`` is generated at step
    ``degrees[i]`` (1-based; entries of one degree are generated together, e.g. all channels of a time step
    of a :class:`~pyro_flows.nn.WaveNet`), and its parameters depend only on entries of lower degree.
    Without its own inversion a layer inverts by one network pass per step, which needs only ``degrees``;
    with ``can_invert`` true, the layer calls :meth:`invert`.

    Implementations: :class:`~pyro_flows.nn.MADE` (vectors, degrees = its ordering),
    :class:`~pyro_flows.nn.WaveNet` and :class:`~pyro_flows.nn.RecurrentConditioner` (``(C, T)``, degree = time
    step + 1), :class:`~pyro_flows.nn.PixelCNN` (``(C, H, W)``, raster order with channels inside a pixel).
    """

    #: The shape of one event, e.g. ``(D,)``, ``(C, T)``, ``(C, H, W)``.
    event_shape: torch.Size
    #: The width of the context vector, or None for an unconditional conditioner.
    context_dim: int | None
    #: The generation order, an integer tensor shaped like the event (steps 1..max without gaps).
    degrees: Tensor

    @property
    def can_invert(self) -> bool: ...

    def invert(
        self,
        solve: Callable[[tuple, tuple[Tensor, ...]], tuple[Tensor, Tensor]],
        batch_shape: Sequence[int],
        context: Tensor | None = None,
        *,
        like: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Runs the generation order. At each step it computes the parameters of the entries generated then
        and calls ``solve(index, params) -> (value, log_det)``: ``index`` is a tuple indexing the event dims
        (``(d,)`` for a MADE, ``(slice(None), t)`` for all channels at time t), ``params`` a tuple of tensors
        of shape ``(B,) + event[index]`` with ``B`` the flattened batch; ``value`` has that shape and
        ``log_det`` shape ``(B,)``. Returns the values, shaped ``batch_shape + event_shape``, and the summed
        log-dets, shaped ``batch_shape``. Runs without gradients (see
        :func:`pyro_flows.nn.sequential_inverse`)."""
        ...
