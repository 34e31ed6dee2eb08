"""Coupling layers: a mask, a conditioner, and an elementwise map (NICE's additive, RealNVP's affine)."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from .. import masks
from ..base import Flow
from ..nn import DenseConditioner
from ..ops import Additive, Affine

__all__ = ["Coupling", "AffineCoupling", "AdditiveCoupling"]


class Coupling(Flow):
    r"""``y_A = x_A``, ``y_B = op(x_B; conditioner(x_A, context))``: one implementation for every coupling layer.

    The dimensions where ``mask`` is True (``A``) pass through and condition the others (``B``), so both
    directions cost one conditioner pass and the log-det is the sum of the elementwise map's.

    Fast direction: both.

    Args:
        input_dim: dimension D of the input.
        mask: bool tensor of shape (D,), True for the dimensions kept; default: the first half.
        op: the elementwise map, :class:`~pyro_flows.ops.Affine` or :class:`~pyro_flows.ops.Additive`.
        conditioner: a module ``(x_A, context) -> tuple of op.num_params tensors of shape (..., |B|)``;
            default: a :class:`~pyro_flows.nn.DenseConditioner` with ``hidden_dims``.
        hidden_dims: hidden widths of the default conditioner.
        context_dim: size of a context vector given to the conditioner.

    Example:
        >>> import torch
        >>> from pyro_flows.ops import Affine
        >>> layer = Coupling(4, op=Affine(), hidden_dims=(8,))
        >>> layer(torch.ones(2, 4)).shape
        torch.Size([2, 4])
    """

    fast = "both"

    def __init__(
        self,
        input_dim: int,
        mask: Optional[torch.Tensor] = None,
        *,
        op,
        conditioner: Optional[nn.Module] = None,
        hidden_dims: Sequence[int] = (256, 256),
        context_dim: Optional[int] = None,
    ):
        super().__init__(event_shape=(input_dim,), context_dim=context_dim)
        mask = masks.halves(input_dim) if mask is None else masks.check_coupling_mask(mask)
        if tuple(mask.shape) != (input_dim,):
            raise ValueError(f"mask must have shape ({input_dim},), got {tuple(mask.shape)}")
        self.register_buffer("mask", mask.clone())
        keep, change = mask.nonzero().squeeze(-1), (~mask).nonzero().squeeze(-1)
        self.register_buffer("keep", keep)
        self.register_buffer("change", change)
        self.register_buffer("merge", torch.argsort(torch.cat([keep, change])))
        # Masks that keep a leading or trailing block (masks.halves) split and merge without gathers.
        n_keep = len(keep)
        self._block = (
            "first" if bool(mask[:n_keep].all()) else "last" if bool(mask[input_dim - n_keep:].all()) else None
        )
        self.op = op
        n = len(change)
        self.conditioner = conditioner if conditioner is not None else DenseConditioner(
            len(keep), (n,) * op.num_params, hidden_dims=hidden_dims, context_dim=context_dim
        )

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

    def forward_and_log_det(self, x, context=None):
        xa, xb = self._split(x)
        params = self.conditioner(xa, context)
        yb, ld = self.op.forward(xb, params)
        return self._merge(xa, yb), ld.sum(-1)

    def inverse_and_log_det(self, y, context=None):
        ya, yb = self._split(y)
        params = self.conditioner(ya, context)
        xb, ld = self.op.inverse(yb, params)
        return self._merge(ya, xb), ld.sum(-1)

    def extra_repr(self):
        return super().extra_repr() + f", op={self.op!r}, kept={len(self.keep)}"


class AffineCoupling(Coupling):
    r"""RealNVP's affine coupling: ``y_B = x_B * exp(s(x_A)) + t(x_A)`` (Dinh et al. 2017).

    The scale goes through :func:`pyro_flows.ops.log_scale` (bounded ``"softclamp"`` by default).
    Fast direction: both. See :class:`Coupling` for the arguments; ``scale`` picks the parametrization.

    Example:
        >>> import torch, pyro_flows as pf
        >>> layer = AffineCoupling(4, pf.masks.alternating(4), hidden_dims=(8,))
        >>> y, ld = layer.forward_and_log_det(torch.randn(3, 4))
        >>> ld.shape
        torch.Size([3])

    References:
        Dinh, Sohl-Dickstein & Bengio, Density estimation using Real NVP, arXiv:1605.08803.
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
