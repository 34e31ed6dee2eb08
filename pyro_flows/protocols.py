"""The three things users plug in, written as ``typing.Protocol`` s.

* :class:`ElementwiseOp`: the invertible elementwise map of a coupling or autoregressive layer
  (:class:`~pyro_flows.ops.Affine`, :class:`~pyro_flows.ops.Additive`; later splines): raw parameters in,
  ``(y, elementwise log|dy/dx|)`` out, both directions.
* :class:`Conditioner`: the network that computes those parameters, ``conditioner(x, context) -> params``
  (:class:`~pyro_flows.nn.MaskedDense`, :class:`~pyro_flows.nn.ConvResNet`, :class:`~pyro_flows.nn.MADE`);
  an :class:`AutoregressiveConditioner` also has an order (``degrees``) and, optionally, its own fast
  sequential inversion.
* :class:`FlowTransform`: what every pyro_flows transform is (:class:`~pyro_flows.Flow`,
  :class:`~pyro_flows.Inverse`, :class:`~pyro_flows.Compose`, the view ``condition`` returns; all subclass
  :class:`~pyro_flows.FlowLike`): what :class:`~pyro_flows.Compose`, :class:`~pyro_flows.Squeeze` and
  :class:`~pyro_flows.FactorOut` accept.

They are ``runtime_checkable``, so ``isinstance(obj, ElementwiseOp)`` checks that the members exist (not
their signatures).

Example:
    >>> import pyro_flows as pf
    >>> isinstance(pf.ops.Affine(), ElementwiseOp), isinstance(pf.nn.MADE(3, (8,)), AutoregressiveConditioner)
    (True, True)
    >>> isinstance(pf.Planar(2), FlowTransform)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import torch

__all__ = ["ElementwiseOp", "Conditioner", "AutoregressiveConditioner", "FlowTransform"]

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
    """A conditioner whose output ``d`` depends only on inputs of lower degree, with an optional fast
    sequential inversion (``can_invert`` and ``invert``); without it, a layer inverts by the D-pass
    recursion, which needs only ``degrees``."""

    #: The generation order; input ``i`` is generated ``degrees[i]``-th (1-based).
    degrees: Tensor

    @property
    def can_invert(self) -> bool: ...

    def invert(
        self,
        solve: Callable[[int, tuple[Tensor, ...]], tuple[Tensor, Tensor]],
        batch_shape: Sequence[int],
        context: Tensor | None = None,
        *,
        like: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Runs the generation order, calling ``solve(dim, params) -> (value, log_det)`` for each dimension;
        returns the values and the summed log-dets (see :func:`pyro_flows.nn.sequential_inverse`)."""
        ...


@runtime_checkable
class FlowTransform(Protocol):
    """The contract of ``pyro_flows.base`` (see :class:`~pyro_flows.FlowLike`), as a protocol."""

    event_shape: torch.Size
    context_dim: int | None
    #: One of :data:`pyro_flows.FAST`.
    fast: str

    def forward_and_log_det(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]: ...

    def inverse_and_log_det(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]: ...

    def condition(self, context: Tensor) -> FlowTransform: ...
