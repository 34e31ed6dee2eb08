"""Coupling layers: a mask, a conditioner, and an elementwise map (NICE's additive, RealNVP's affine).

One class serves vectors and images. For a vector event (D,) the kept dimensions are gathered and given to
a dense conditioner; for an image event (C, H, W) the conditioner (a convolutional ResNet) sees the whole
image with the transformed positions zeroed and returns full-size parameter maps, and the elementwise map is
applied where the mask is False. Either way the affine/additive maths is the one in :mod:`pyro_flows.ops`.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from .. import masks
from ..base import Flow, as_event_shape
from ..nn import ConvResNet, DenseConditioner, default_hidden_dims
from ..ops import Additive, Affine

__all__ = ["Coupling", "AffineCoupling", "AdditiveCoupling"]


class Coupling(Flow):
    r"""``y_A = x_A``, ``y_B = op(x_B; conditioner(x_A, context))``: one implementation for every coupling layer.

    The dimensions where ``mask`` is True (``A``) pass through and condition the others (``B``), so both
    directions cost one conditioner pass and the log-det is the sum of the elementwise map's.

    * Vectors, ``input_dim = D``: the conditioner gets ``x_A`` (shape ``(..., |A|)``) and returns tensors of
      shape ``(..., |B|)``. Default mask: the first half; default conditioner: a
      :class:`~pyro_flows.nn.DenseConditioner` with ``hidden_dims``.
    * Images, ``input_dim = (C, H, W)``: the conditioner gets the image with the ``B`` positions zeroed
      (``x * mask``) and returns maps of shape ``(..., C, H, W)``, of which the ``B`` positions are used.
      Default mask: :func:`~pyro_flows.masks.checkerboard` (RealNVP's spatial mask;
      :func:`~pyro_flows.masks.channels` gives the channel-wise one); default conditioner: a
      :class:`~pyro_flows.nn.ConvResNet` with ``hidden_channels`` and ``num_blocks``.

    Fast direction: both.

    Args:
        input_dim: dimension D of a vector input, or the shape (C, H, W) of an image input.
        mask: bool tensor of the input's shape, True for the entries kept.
        op: the elementwise map, :class:`~pyro_flows.ops.Affine` or :class:`~pyro_flows.ops.Additive`.
        conditioner: a module ``(x_A or x * mask, context) -> tuple of op.num_params tensors`` (see above).
        hidden_dims: hidden widths of the default dense conditioner (vectors; default
            :func:`~pyro_flows.nn.default_hidden_dims` of the input size).
        hidden_channels: width of the default convolutional conditioner (images; default 64).
        num_blocks: residual blocks of the default convolutional conditioner (images; default 2).
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
        mask: Optional[torch.Tensor] = None,
        *,
        op,
        conditioner: Optional[nn.Module] = None,
        hidden_dims: Optional[Sequence[int]] = None,
        hidden_channels: Optional[int] = None,
        num_blocks: Optional[int] = None,
        context_dim: Optional[int] = None,
    ):
        shape = as_event_shape(input_dim)
        super().__init__(event_shape=shape, context_dim=context_dim)
        self.op = op
        self._spatial = len(shape) > 1
        if mask is None:
            mask = masks.checkerboard(shape) if len(shape) == 3 else masks.halves(shape[0]) if len(shape) == 1 else None
            if mask is None:
                raise ValueError(f"Coupling has no default mask for inputs of shape {shape}; give a mask")
        mask = masks.check_coupling_mask(mask)
        if tuple(mask.shape) != shape:
            raise ValueError(f"mask must have the input's shape {shape}, got {tuple(mask.shape)}")
        self.register_buffer("mask", mask.clone())
        if self._spatial:
            self._init_spatial(shape, conditioner, hidden_dims, hidden_channels, num_blocks, context_dim)
        else:
            self._init_vector(shape[0], conditioner, hidden_dims, hidden_channels, num_blocks, context_dim)

    def _init_vector(self, input_dim, conditioner, hidden_dims, hidden_channels, num_blocks, context_dim):
        if hidden_channels is not None or num_blocks is not None:
            raise ValueError("hidden_channels and num_blocks are for image inputs; vectors take hidden_dims")
        mask = self.mask
        keep, change = mask.nonzero().squeeze(-1), (~mask).nonzero().squeeze(-1)
        self.register_buffer("keep", keep)
        self.register_buffer("change", change)
        self.register_buffer("merge", torch.argsort(torch.cat([keep, change])))
        # Masks that keep a leading or trailing block (masks.halves) split and merge without gathers.
        n_keep = len(keep)
        self._block = (
            "first" if bool(mask[:n_keep].all()) else "last" if bool(mask[input_dim - n_keep:].all()) else None
        )
        n = len(change)
        self.conditioner = conditioner if conditioner is not None else DenseConditioner(
            len(keep), (n,) * self.op.num_params,
            hidden_dims=default_hidden_dims(input_dim) if hidden_dims is None else hidden_dims,
            context_dim=context_dim,
        )

    def _init_spatial(self, shape, conditioner, hidden_dims, hidden_channels, num_blocks, context_dim):
        if hidden_dims is not None:
            raise ValueError("hidden_dims is for vector inputs; image inputs take hidden_channels and num_blocks")
        if conditioner is None:
            if len(shape) != 3:
                raise ValueError(f"the default conditioner needs (C, H, W) inputs, got {shape}; give a conditioner")
            conditioner = ConvResNet(
                shape[0], (shape[0],) * self.op.num_params, context_dim=context_dim,
                hidden_channels=64 if hidden_channels is None else hidden_channels,
                num_blocks=2 if num_blocks is None else num_blocks,
            )
        elif hidden_channels is not None or num_blocks is not None:
            raise ValueError(
                "hidden_channels and num_blocks configure the default conditioner; they cannot be combined "
                "with conditioner="
            )
        self.conditioner = conditioner

    def _split(self, x):
        sizes = (len(self.keep), len(self.change))
        if self._block == "first":
            return x.split(sizes, dim=-1)
        if self._block == "last":
            return x.split(sizes[::-1], dim=-1)[::-1]
        return x.index_select(-1, self.keep), x.index_select(-1, self.change)

    def _merge(self, a, b):
        if a.shape[:-1] != b.shape[:-1]:  # a context with more batch dims than the input
            batch = torch.broadcast_shapes(a.shape[:-1], b.shape[:-1])
            a, b = a.expand(*batch, -1), b.expand(*batch, -1)
        if self._block == "first":
            return torch.cat([a, b], dim=-1)
        if self._block == "last":
            return torch.cat([b, a], dim=-1)
        return torch.cat([a, b], dim=-1).index_select(-1, self.merge)

    # --- images: the conditioner sees x * mask; the map applies where the mask is False -------------------
    def _spatial_params(self, xa, context):
        params = self.conditioner(xa * self.mask, context)
        # Zero the parameters of the kept entries, so the (discarded) map there stays finite.
        return tuple(p.masked_fill(self.mask, 0.0) for p in params)

    def _spatial_merge(self, kept, changed, ld):
        out = torch.where(self.mask, kept, changed)
        ld = ld.masked_fill(self.mask, 0.0).flatten(-len(self.event_shape)).sum(-1)
        return out, ld

    def _forward_and_log_det(self, x, context=None):
        if self._spatial:
            yb, ld = self.op.forward(x, self._spatial_params(x, context))
            return self._spatial_merge(x, yb, ld)
        xa, xb = self._split(x)
        params = self.conditioner(xa, context)
        yb, ld = self.op.forward(xb, params)
        return self._merge(xa, yb), ld.sum(-1)

    def _inverse_and_log_det(self, y, context=None):
        if self._spatial:
            xb, ld = self.op.inverse(y, self._spatial_params(y, context))
            return self._spatial_merge(y, xb, ld)
        ya, yb = self._split(y)
        params = self.conditioner(ya, context)
        xb, ld = self.op.inverse(yb, params)
        return self._merge(ya, xb), ld.sum(-1)

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
