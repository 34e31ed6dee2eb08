"""A convolutional ResNet conditioner for image flows (coupling layers over (C, H, W) events)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..validation import nonnegative_int, optional_positive_int, positive_int, positive_ints

__all__ = ["ConvResNet"]


class _Block(nn.Module):
    """``h + conv(act(conv(act(h))))``: a pre-activation residual block of two 3x3 convolutions."""

    def __init__(self, channels: int, activation):
        super().__init__()
        self.net = nn.Sequential(
            activation(),
            nn.Conv2d(channels, channels, 3, padding=1),
            activation(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, h):
        return h + self.net(h)


class ConvResNet(nn.Module):
    """Small ResNet from an image (plus an optional context vector) to per-pixel parameter maps.

    ``conv3x3 -> num_blocks residual blocks -> act -> conv3x3``; the last convolution starts at zero, so
    every returned parameter starts at 0 and a new coupling layer is the identity. A context vector is
    broadcast over the pixels and appended as extra input channels. Any batch shape is accepted.

    Args:
        in_channels: channels C of the input image (a coupling layer passes its masked input).
        param_channels: channels of each returned parameter map, e.g. ``(C, C)`` for shift and log-scale.
        hidden_channels: width of the hidden feature maps.
        num_blocks: number of residual blocks (0 gives conv3x3 -> act -> conv3x3).
        context_dim: size of a context vector, or ``None``.
        activation: the nonlinearity's class.

    Example:
        >>> net = ConvResNet(2, (2, 2), hidden_channels=8, num_blocks=1)
        >>> [p.shape for p in net(torch.randn(5, 2, 4, 4))]
        [torch.Size([5, 2, 4, 4]), torch.Size([5, 2, 4, 4])]
    """

    def __init__(
        self,
        in_channels: int,
        param_channels: Sequence[int],
        *,
        hidden_channels: int = 64,
        num_blocks: int = 2,
        context_dim: int | None = None,
        activation=nn.ReLU,
    ):
        super().__init__()
        positive_int("in_channels", in_channels)
        positive_int("hidden_channels", hidden_channels)
        nonnegative_int("num_blocks", num_blocks)
        self.in_channels, self.context_dim = in_channels, optional_positive_int("context_dim", context_dim)
        self.param_channels = positive_ints("param_channels", param_channels)
        last = nn.Conv2d(hidden_channels, sum(self.param_channels), 3, padding=1)
        nn.init.zeros_(last.weight)
        assert last.bias is not None
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels + (context_dim or 0), hidden_channels, 3, padding=1),
            *[_Block(hidden_channels, activation) for _ in range(num_blocks)],
            activation(),
            last,
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None):
        """Returns a tuple of parameter maps of shapes ``(*batch, c, H, W)``, ``c`` in ``param_channels``."""
        batch, (h, w) = x.shape[:-3], x.shape[-2:]
        if context is not None:
            batch = torch.broadcast_shapes(batch, context.shape[:-1])
            ctx = context[..., None, None].expand(*batch, context.shape[-1], h, w)
            x = torch.cat([x.expand(*batch, *x.shape[-3:]), ctx], dim=-3)
        out = self.net(x.reshape(-1, *x.shape[-3:]))
        out = out.reshape(*batch, *out.shape[-3:])
        if len(self.param_channels) == 1:
            return (out,)
        return tuple(out.split(self.param_channels, dim=-3))
