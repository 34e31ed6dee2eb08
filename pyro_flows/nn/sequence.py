"""What the sequence conditioners (:class:`~pyro_flows.nn.WaveNet`, :class:`~pyro_flows.nn.RecurrentConditioner`)
share: the event ``(C, T)``, the time order, batch flattening and the context check."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..validation import check_conditioner_call, optional_positive_int, positive_int

__all__ = ["SequenceConditioner", "time_degrees"]


def zero_(layer: nn.Module) -> None:
    """Zeroes a layer's parameters (the last layer of a conditioner: a new flow layer is the identity)."""
    for p in layer.parameters():
        nn.init.zeros_(p)


def bias(layer: nn.Module) -> torch.Tensor:
    """A layer's bias, which it must have."""
    b = layer.bias
    if not isinstance(b, torch.Tensor):
        raise TypeError(f"{type(layer).__name__} has no bias")
    return b


def time_degrees(channels: int, length: int) -> torch.Tensor:
    """The order of a sequence ``(C, T)``: every channel of time step ``t`` has degree ``t + 1``."""
    return torch.arange(1, length + 1).expand(channels, length).clone()


class SequenceConditioner(nn.Module):
    """Base of the conditioners over ``(channels, length)`` events whose output at time ``t`` depends on
    times before ``t`` only. Subclasses implement ``_net(x, context) -> (B, channels * num_params, T)`` on a
    flattened batch and, for fast generation, ``invert`` (see
    :class:`~pyro_flows.protocols.AutoregressiveConditioner`)."""

    degrees: torch.Tensor

    def __init__(self, channels: int, length: int, *, num_params: int, context_dim: int | None):
        super().__init__()
        self.channels = positive_int("channels", channels)
        self.length = positive_int("length", length)
        self.num_params = positive_int("num_params", num_params)
        self.context_dim = optional_positive_int("context_dim", context_dim)
        self.event_shape = torch.Size((self.channels, self.length))
        self.register_buffer("degrees", time_degrees(self.channels, self.length), persistent=False)

    @property
    def can_invert(self) -> bool:
        return True

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        if x.dim() < 2 or x.shape[-2] != self.channels:
            raise ValueError(
                f"{type(self).__name__} expected input of shape (..., {self.channels}, T), got {tuple(x.shape)}"
            )
        check_conditioner_call(self, x, context, self.event_shape)
        batch = x.shape[:-2]
        if context is not None:
            batch = torch.broadcast_shapes(batch, context.shape[:-1])
        B = self._batch(batch)
        flat = x.expand(*batch, *x.shape[-2:]).reshape(B, self.channels, x.shape[-1])
        out = self._net(flat, self._flat_context(context, batch, B))
        out = out.reshape(*batch, self.num_params, self.channels, x.shape[-1])
        return tuple(out.unbind(-3))

    @staticmethod
    def _batch(batch_shape: Sequence[int]) -> int:
        return int(torch.Size(batch_shape).numel())

    def _flat_context(self, context, batch_shape, B):
        if context is None:
            return None
        return context.expand(*batch_shape, context.shape[-1]).reshape(B, context.shape[-1])

    @staticmethod
    def _unflatten(values: torch.Tensor, log_det: torch.Tensor, batch_shape):
        """``values`` (T, B, C) and ``log_det`` (B,) back to ``batch + (C, T)`` and ``batch``."""
        T, B, C = values.shape
        return values.permute(1, 2, 0).reshape(*batch_shape, C, T), log_det.reshape(batch_shape)

    def _net(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError
