"""Gated PixelCNN without the blind spot: an autoregressive conditioner over images ``(C, H, W)``."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..validation import check_conditioner_call, optional_positive_int, positive_int
from .sequence import zero_

__all__ = ["PixelCNN", "raster_degrees"]


def raster_degrees(channels: int, height: int, width: int) -> torch.Tensor:
    """The raster order of ``(C, H, W)`` with the channels inside a pixel: entry ``(c, i, j)`` has degree
    ``(i * W + j) * C + c + 1``."""
    pixel = torch.arange(height * width).reshape(1, height, width)
    return (pixel * channels + torch.arange(channels).reshape(channels, 1, 1) + 1).contiguous()


def _groups(features: int, channels: int, blocks: int = 1) -> torch.Tensor:
    """The channel group of each of ``features`` features made of ``blocks`` consecutive blocks (the two
    halves of a gate, the parameters of the output), each split into ``channels`` equal groups in order."""
    block = features // blocks
    if block * blocks != features or block % channels:
        raise ValueError(f"{features} features cannot be split into {blocks} blocks of {channels} channel groups")
    return torch.arange(features) % block * channels // block


def _group_mask(out_groups: torch.Tensor, in_groups: torch.Tensor, *, strict: bool) -> torch.Tensor:
    """Channel mask inside a pixel: an output of group ``g`` reads an input of group ``h`` iff ``h < g``
    (``strict``, mask A: the first layer must not see channel c itself) or ``h <= g`` (mask B)."""
    return in_groups[None, :] < out_groups[:, None] if strict else in_groups[None, :] <= out_groups[:, None]


class _MaskedTap(nn.Conv2d):
    """A convolution whose LAST tap (the current pixel) is masked by a channel mask."""

    tap_mask: torch.Tensor

    def __init__(self, in_ch: int, out_ch: int, kernel: tuple[int, int], mask: torch.Tensor):
        super().__init__(in_ch, out_ch, kernel)
        full = torch.ones_like(self.weight, dtype=torch.bool)
        full[:, :, -1, -1] = mask
        self.register_buffer("tap_mask", full)

    def forward(self, x):
        return self._conv_forward(x, self.weight * self.tap_mask, self.bias)


class PixelCNN(nn.Module):
    """A gated PixelCNN conditioner (van den Oord et al. 2016) without the blind spot: a vertical stack sees
    the rows above, a horizontal stack the pixels to the left in the current row; ``forward(x, context)``
    returns ``num_params`` tensors shaped like ``x`` = ``(..., C, H, W)``.

    The order is the raster order with the channels inside a pixel (:func:`raster_degrees`): channel ``c`` of
    pixel ``(i, j)`` depends on every channel of the earlier pixels in its receptive field and on the
    channels ``< c`` of its own pixel. With ``num_layers = L`` and ``kernel_size = 2r + 1`` the receptive
    field is the ``L * r`` pixels to the left in the current row and, in the ``L * r + 1`` rows above, the
    columns within ``L * r`` of ``j`` (:attr:`receptive_field` is ``L * r``).

    Each layer: the vertical stack's ``(r + 1) x k`` convolution, gated (``tanh * sigmoid``); its
    pre-activation, shifted down one row, enters the horizontal stack through a 1x1 convolution; the
    horizontal stack's ``1 x (r + 1)`` convolution (mask A on the current pixel in the first layer, B after),
    gated, a 1x1 convolution and a residual connection (from the second layer). A context vector is added
    to every gate. The output 1x1 convolution is zero-initialized.

    Args:
        channels, height, width: the image shape.
        hidden_channels: features of both stacks, a multiple of ``channels``.
        num_layers: L.
        kernel_size: an odd k.
        num_params: parameter tensors returned.
        context_dim: size of a context vector (e.g. a class).

    Example:
        >>> net = PixelCNN(1, 6, 6, hidden_channels=8, num_layers=2)
        >>> net.receptive_field
        2
        >>> [p.shape for p in net(torch.randn(2, 1, 6, 6))]
        [torch.Size([2, 1, 6, 6]), torch.Size([2, 1, 6, 6])]

    References:
        van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu, Conditional Image Generation with
        PixelCNN Decoders, arXiv:1606.05328.
    """

    degrees: torch.Tensor

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        *,
        hidden_channels: int = 32,
        num_layers: int = 5,
        kernel_size: int = 3,
        num_params: int = 2,
        context_dim: int | None = None,
    ):
        super().__init__()
        C, H, W = (positive_int(n, v) for n, v in (("channels", channels), ("height", height), ("width", width)))
        Fh = positive_int("hidden_channels", hidden_channels)
        L = positive_int("num_layers", num_layers)
        k = positive_int("kernel_size", kernel_size)
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {k}")
        if Fh % C:
            raise ValueError(f"hidden_channels must be a multiple of channels={C}, got {Fh}")
        self.channels, self.height, self.width = C, H, W
        self.hidden_channels, self.num_layers, self.kernel_size = Fh, L, k
        self.num_params = positive_int("num_params", num_params)
        self.context_dim = optional_positive_int("context_dim", context_dim)
        self.event_shape = torch.Size((C, H, W))
        self.register_buffer("degrees", raster_degrees(C, H, W), persistent=False)
        r = k // 2
        self.vertical = nn.ModuleList(nn.Conv2d(C if i == 0 else Fh, 2 * Fh, (r + 1, k)) for i in range(L))
        self.v_to_h = nn.ModuleList(nn.Conv2d(2 * Fh, 2 * Fh, 1) for _ in range(L))
        self.horizontal = nn.ModuleList(
            _MaskedTap(
                C if i == 0 else Fh,
                2 * Fh,
                (1, r + 1),
                _group_mask(_groups(2 * Fh, C, 2), _groups(C if i == 0 else Fh, C), strict=i == 0),
            )
            for i in range(L)
        )
        self.h_out = nn.ModuleList(
            _MaskedTap(Fh, Fh, (1, 1), _group_mask(_groups(Fh, C), _groups(Fh, C), strict=False)) for _ in range(L)
        )
        self.cond = nn.Linear(self.context_dim, 4 * Fh * L, bias=False) if self.context_dim else None
        self.output = _MaskedTap(
            Fh,
            C * self.num_params,
            (1, 1),
            _group_mask(_groups(C * self.num_params, C, self.num_params), _groups(Fh, C), strict=False),
        )
        zero_(self.output)

    @property
    def can_invert(self) -> bool:
        return True

    @torch.no_grad()
    def invert(self, solve, batch_shape, context=None, *, like: torch.Tensor):
        """Generation in raster order, each step a pass over the receptive field only: entry ``(c, i, j)``
        depends on rows ``i - 1 - R .. i`` and columns ``j - R .. j + R`` (``R`` = :attr:`receptive_field`),
        and every feature on a path to it is computed from that crop alone, so the crop's pass gives the
        exact parameters at a cost of ``(R + 2) x (2R + 1)`` pixels instead of the whole image (the protocol
        is :class:`~pyro_flows.protocols.AutoregressiveConditioner`'s)."""
        C, H, W, R = self.channels, self.height, self.width, self.receptive_field
        B = int(torch.Size(batch_shape).numel())
        ctx = None if context is None else context.expand(*batch_shape, context.shape[-1]).reshape(B, context.shape[-1])
        u = torch.zeros(B, C, H, W, dtype=like.dtype, device=like.device)
        log_det = torch.zeros(B, dtype=like.dtype, device=like.device)
        for i in range(H):
            top = max(0, i - 1 - R)
            for j in range(W):
                left, right = max(0, j - R), min(W, j + R + 1)
                crop = u[:, :, top : i + 1, left:right]
                for c in range(C):
                    params = self(crop, ctx)
                    value, ld = solve((c, i, j), tuple(p[:, c, i - top, j - left] for p in params))
                    u[:, c, i, j] = value
                    log_det += ld
        return u.reshape(*batch_shape, C, H, W), log_det.reshape(batch_shape)

    @property
    def receptive_field(self) -> int:
        """``L * r``: pixels to the left in the current row; rows above (plus one) and columns each side."""
        return self.num_layers * (self.kernel_size // 2)

    def extra_repr(self) -> str:
        R = self.receptive_field
        return (
            f"event_shape={tuple(self.event_shape)}, hidden_channels={self.hidden_channels}, "
            f"num_layers={self.num_layers}, kernel_size={self.kernel_size}, context_dim={self.context_dim}, "
            f"receptive_field={R} (row: {R} pixels to the left; {R + 1} rows above, {R} columns each side)"
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        if x.dim() < 3 or x.shape[-3] != self.channels:
            raise ValueError(f"PixelCNN expected input of shape (..., {self.channels}, H, W), got {tuple(x.shape)}")
        check_conditioner_call(self, x, context, self.event_shape)
        batch = x.shape[:-3]
        if context is not None:
            batch = torch.broadcast_shapes(batch, context.shape[:-1])
        B = int(torch.Size(batch).numel())
        h_in = x.expand(*batch, *x.shape[-3:]).reshape(B, *x.shape[-3:])
        Fh, r, L = self.hidden_channels, self.kernel_size // 2, self.num_layers
        cond = None
        if self.cond is not None and context is not None:
            cond = self.cond(context.expand(*batch, context.shape[-1]).reshape(B, context.shape[-1])).reshape(
                B, L, 2, 2 * Fh, 1, 1
            )
        v = h = h_in
        for i in range(L):
            v_pre = self.vertical[i](F.pad(v, (r, r, r, 0)))  # row i reads rows i - r .. i
            h_pre = self.horizontal[i](F.pad(h, (r, 0, 0, 0)))  # column j reads j - r .. j (j masked)
            h_pre = h_pre + self.v_to_h[i](F.pad(v_pre, (0, 0, 1, 0))[..., :-1, :])  # rows above only
            if cond is not None:
                v_pre, h_pre = v_pre + cond[:, i, 0], h_pre + cond[:, i, 1]
            v = torch.tanh(v_pre[:, :Fh]) * torch.sigmoid(v_pre[:, Fh:])
            gated = self.h_out[i](torch.tanh(h_pre[:, :Fh]) * torch.sigmoid(h_pre[:, Fh:]))
            h = gated if i == 0 else h + gated
        out = self.output(h)
        out = out.reshape(*batch, self.num_params, *x.shape[-3:])
        return tuple(out.unbind(-4))
