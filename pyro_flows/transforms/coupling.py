"""Coupling layers: a mask, a conditioner, and an elementwise map (NICE's additive, RealNVP's affine)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .. import masks
from ..base import as_event_shape, sum_rightmost
from ..flow import Flow
from ..nn import ConvResNet, MaskedDense, default_hidden_dims
from ..ops import Additive, Affine
from ..protocols import Conditioner, ElementwiseOp

__all__ = ["Coupling", "AffineCoupling", "AdditiveCoupling", "coupling_conditioner"]


def coupling_conditioner(
    mask: torch.Tensor,
    num_params: int,
    *,
    hidden_dims: Sequence[int] | None = None,
    hidden_channels: int | None = None,
    num_blocks: int | None = None,
    context_dim: int | None = None,
) -> nn.Module:
    """The default conditioner of a coupling layer with this ``mask``.

    Vectors (a 1-D mask): a :class:`~pyro_flows.nn.MaskedDense` MLP on the kept entries, ``hidden_dims``
    (default :func:`~pyro_flows.nn.default_hidden_dims`). Images (a (C, H, W) mask): a
    :class:`~pyro_flows.nn.ConvResNet` of ``hidden_channels`` (default 64) and ``num_blocks`` (default 2).
    Raises ``ValueError`` for options of the other kind, or for masks of other shapes.
    """
    shape = tuple(mask.shape)
    if len(shape) == 1:
        if hidden_channels is not None or num_blocks is not None:
            raise ValueError("hidden_channels and num_blocks are for image inputs; vectors take hidden_dims")
        hidden = default_hidden_dims(shape[0]) if hidden_dims is None else hidden_dims
        return MaskedDense(mask, num_params, hidden_dims=hidden, context_dim=context_dim)
    if len(shape) == 3:
        if hidden_dims is not None:
            raise ValueError("hidden_dims is for vector inputs; image inputs take hidden_channels and num_blocks")
        return ConvResNet(
            shape[0],
            (shape[0],) * num_params,
            context_dim=context_dim,
            hidden_channels=64 if hidden_channels is None else hidden_channels,
            num_blocks=2 if num_blocks is None else num_blocks,
        )
    raise ValueError(f"no default conditioner for inputs of shape {shape}; give a conditioner")


class Coupling(Flow):
    r"""``y = mask * x + (1 - mask) * op(x; conditioner(mask * x, context))``: every coupling layer, one path.

    The entries where ``mask`` is True pass through and condition the others, so both directions cost one
    conditioner pass and the log-det is the sum of the elementwise map's over the transformed entries. The
    conditioner sees the input with the transformed entries zeroed and returns ``op.num_params`` tensors shaped
    like the input (only the transformed entries are used); a conditioner that knows the mask may read the
    kept entries alone (:class:`~pyro_flows.nn.MaskedDense` does, for vectors).

    Fast direction: both.

    Args:
        input_dim: dimension D of a vector input, or the shape (C, H, W) of an image input.
        mask: bool tensor of the input's shape, True for the entries kept. Default: the first half of a vector
            (:func:`~pyro_flows.masks.halves`), RealNVP's checkerboard for an image
            (:func:`~pyro_flows.masks.checkerboard`; :func:`~pyro_flows.masks.channels` gives the channel mask).
        op: the elementwise map, :class:`~pyro_flows.ops.Affine` or :class:`~pyro_flows.ops.Additive`.
        conditioner: a module ``(mask * x, context) -> tuple of op.num_params tensors shaped like x``; default
            :func:`~pyro_flows.transforms.coupling.coupling_conditioner`, sized by ``hidden_dims`` (vectors) or
            ``hidden_channels`` and ``num_blocks`` (images).
        context_dim: size of a context vector given to the conditioner.

    Example:
        >>> import torch
        >>> from pyro_flows.ops import Affine
        >>> layer = Coupling(4, op=Affine(), hidden_dims=(8,))
        >>> layer(torch.ones(2, 4)).shape
        torch.Size([2, 4])
        >>> image = Coupling((2, 4, 4), op=Affine(), hidden_channels=8, num_blocks=1)
        >>> image(torch.ones(3, 2, 4, 4)).shape
        torch.Size([3, 2, 4, 4])

    References:
        Dinh, Sohl-Dickstein & Bengio, Density estimation using Real NVP, arXiv:1605.08803 (section 3.4).
    """

    fast = "both"

    def __init__(
        self,
        input_dim,
        mask: torch.Tensor | None = None,
        *,
        op: ElementwiseOp,
        conditioner: Conditioner | None = None,
        context_dim: int | None = None,
        **conditioner_options,
    ):
        shape = as_event_shape(input_dim)
        super().__init__(event_shape=shape, context_dim=context_dim)
        if mask is None:
            if len(shape) not in (1, 3):
                raise ValueError(f"Coupling has no default mask for inputs of shape {shape}; give a mask")
            mask = masks.halves(shape[0]) if len(shape) == 1 else masks.checkerboard(shape)
        mask = masks.check_coupling_mask(mask)
        if tuple(mask.shape) != shape:
            raise ValueError(f"mask must have the input's shape {shape}, got {tuple(mask.shape)}")
        self.register_buffer("mask", mask.clone())
        # 0/1 factors in the parameters' dtype (buffers follow .to()): a multiply is cheaper than masked_fill
        self.register_buffer("_kept", mask.to(torch.get_default_dtype()), persistent=False)
        self.register_buffer("_changed", (~mask).to(torch.get_default_dtype()), persistent=False)
        self.op = op
        if not isinstance(op, ElementwiseOp):
            raise TypeError(f"op must be an elementwise op (pyro_flows.protocols.ElementwiseOp), got {op!r}")
        if conditioner is None:
            conditioner = coupling_conditioner(mask, op.num_params, context_dim=context_dim, **conditioner_options)
        elif any(v is not None for v in conditioner_options.values()):
            raise ValueError(
                f"{sorted(conditioner_options)} configure the default conditioner; they cannot be "
                "combined with conditioner="
            )
        self.conditioner = conditioner

    def _couple(self, value, context, elementwise):
        if getattr(self.conditioner, "respects_mask", False):  # it reads kept entries only, returns 0 at them
            params = self.conditioner(value, context)
        else:
            params = tuple(p * self._changed for p in self.conditioner(value * self._kept, context))
        out, ld = elementwise(value, params)
        if not self.op.zero_is_identity:  # the map with zero parameters moves the kept entries: put them back
            out, ld = torch.where(self.mask, value, out), ld * self._changed
        return out, sum_rightmost(ld, self.event_dim)

    def _forward_and_log_det(self, x, context=None):
        return self._couple(x, context, self.op.forward)

    def _inverse_and_log_det(self, y, context=None):
        return self._couple(y, context, self.op.inverse)

    def extra_repr(self):
        return super().extra_repr() + f", op={self.op!r}, kept={int(self.mask.sum())}"


class AffineCoupling(Coupling):
    r"""RealNVP's affine coupling: ``y_B = x_B * exp(s(x_A)) + t(x_A)`` (Dinh et al. 2017).

    The scale goes through :func:`pyro_flows.ops.log_scale` (bounded ``"softclamp"`` by default;
    ``scale="sigmoid"`` is Glow's ``sigmoid(h + 2)``). Works on vectors and on (C, H, W) images with
    checkerboard or channel masks. Fast direction: both. See :class:`Coupling` for the arguments.

    Example:
        >>> import torch, pyro_flows as pf
        >>> layer = AffineCoupling(4, pf.masks.alternating(4), hidden_dims=(8,))
        >>> y, ld = layer.forward_and_log_det(torch.randn(3, 4))
        >>> ld.shape
        torch.Size([3])
        >>> glow_like = AffineCoupling((4, 2, 2), pf.masks.channels((4, 2, 2)), scale="sigmoid", hidden_channels=8)
        >>> glow_like(torch.randn(3, 4, 2, 2)).shape
        torch.Size([3, 4, 2, 2])

    References:
        Dinh, Sohl-Dickstein & Bengio, Density estimation using Real NVP, arXiv:1605.08803.
        Kingma & Dhariwal, Glow: Generative Flow with Invertible 1x1 Convolutions, arXiv:1807.03039.
    """

    def __init__(self, input_dim, mask=None, *, scale: str = "softclamp", **kwargs):
        super().__init__(input_dim, mask, op=Affine(scale), **kwargs)


class AdditiveCoupling(Coupling):
    r"""NICE's additive coupling: ``y_B = x_B + t(x_A)``, volume preserving (Dinh et al. 2015).

    Fast direction: both. See :class:`Coupling` for the arguments.

    Example:
        >>> import torch
        >>> layer = AdditiveCoupling(4, hidden_dims=(8,))
        >>> layer.forward_and_log_det(torch.randn(3, 4))[1].tolist()
        [0.0, 0.0, 0.0]

    References:
        Dinh, Krueger & Bengio, NICE: Non-linear Independent Components Estimation, arXiv:1410.8516.
    """

    def __init__(self, input_dim, mask=None, **kwargs):
        super().__init__(input_dim, mask, op=Additive(), **kwargs)
