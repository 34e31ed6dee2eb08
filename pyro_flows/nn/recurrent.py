"""A recurrent conditioner: an LSTM over the sequence shifted by one step (PixelRNN's idea, simplest form)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..validation import positive_int
from .sequence import SequenceConditioner, zero_

__all__ = ["RecurrentConditioner"]


class RecurrentConditioner(SequenceConditioner):
    """An LSTM conditioner over ``(channels, length)``: the output at time ``t`` is a linear map of the LSTM
    state after reading ``x_0 .. x_{t-1}`` (and the context, fed at every step), so it depends on every
    earlier step and on no later one. Generation carries the LSTM state: one LSTM step per time step.

    Args:
        channels: C.
        length: T (the order, ``degrees``, is the time step + 1).
        hidden_size: LSTM width.
        num_layers: stacked LSTM layers.
        num_params: parameter tensors returned (2 for an affine op).
        context_dim: size of a context vector, concatenated to the input of every step.

    Example:
        >>> net = RecurrentConditioner(1, 16, hidden_size=8)
        >>> [p.shape for p in net(torch.randn(2, 1, 16))]
        [torch.Size([2, 1, 16]), torch.Size([2, 1, 16])]

    References:
        van den Oord, Kalchbrenner & Kavukcuoglu, Pixel Recurrent Neural Networks, arXiv:1601.06759.
    """

    def __init__(
        self,
        channels: int,
        length: int,
        *,
        hidden_size: int = 64,
        num_layers: int = 1,
        num_params: int = 2,
        context_dim: int | None = None,
    ):
        super().__init__(channels, length, num_params=num_params, context_dim=context_dim)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.num_layers = positive_int("num_layers", num_layers)
        self.lstm = nn.LSTM(
            self.channels + (self.context_dim or 0), self.hidden_size, self.num_layers, batch_first=True
        )
        self.output = nn.Linear(self.hidden_size, self.channels * self.num_params)
        zero_(self.output)

    @property
    def receptive_field(self) -> int:
        """The length, as output ``t`` depends on every earlier input ``0 .. t - 1``."""
        return self.length

    def extra_repr(self) -> str:
        return f"channels={self.channels}, length={self.length}, context_dim={self.context_dim}, receptive_field=all earlier steps"

    def _inputs(self, x_steps: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """``(B, steps, C)`` inputs with the context appended to every step."""
        if context is None:
            return x_steps
        return torch.cat([x_steps, context[:, None, :].expand(-1, x_steps.shape[1], -1)], dim=-1)

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        return self.output(h)

    def _net(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        T = x.shape[-1]
        shifted = F.pad(x, (1, 0))[..., :T].transpose(1, 2)  # (B, T, C): step t reads x_{t-1}
        h, _ = self.lstm(self._inputs(shifted, context))
        return self._head(h).transpose(1, 2)  # (B, C * P, T), parameter-major like the reshape expects

    @torch.no_grad()
    def invert(self, solve, batch_shape, context=None, *, like: torch.Tensor):
        """Generation with the LSTM state as the cache: one LSTM step per time step."""
        B, C, T = self._batch(batch_shape), self.channels, self.length
        kw: dict[str, Any] = dict(dtype=like.dtype, device=like.device)
        context = self._flat_context(context, batch_shape, B)
        values = torch.empty(T, B, C, **kw)
        log_det = torch.zeros(B, **kw)
        previous = torch.zeros(B, 1, C, **kw)
        state = None
        for t in range(T):
            h, state = self.lstm(self._inputs(previous, context), state)
            out = self._head(h[:, 0])
            value, ld = solve((slice(None), t), out.reshape(B, self.num_params, C).unbind(1))
            values[t] = value
            log_det += ld
            previous = value[:, None, :]
        return self._unflatten(values, log_det, batch_shape)
