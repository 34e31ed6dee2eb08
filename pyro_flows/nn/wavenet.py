"""WaveNet: causal dilated convolutions as an autoregressive conditioner over sequences ``(C, T)``.

The output at time ``t`` depends on the inputs at times ``t - receptive_field .. t - 1`` (all channels) and on
the context, never on time ``t`` itself: the input is shifted right by one step, then every convolution is
causal (padded on the left only). Generation runs one step at a time with a queue per layer (Paine et al.
2016): each layer keeps the last ``(kernel_size - 1) * dilation + 1`` activations of its input, so a step
costs one small evaluation per layer instead of a pass over the whole sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..validation import optional_positive_int, positive_int, positive_ints
from .sequence import SequenceConditioner, bias, zero_

__all__ = ["WaveNet"]


class WaveNet(SequenceConditioner):
    """A WaveNet conditioner (van den Oord et al. 2016): ``forward(x, context) -> num_params`` tensors
    shaped like ``x`` = ``(..., channels, length)``, output ``t`` depending on inputs ``t - R .. t - 1``.

    Layers: a causal input convolution, then residual layers of a causal dilated convolution whose output
    passes the gate ``tanh(W_f * x) * sigmoid(W_g * x)``, a 1x1 convolution to a residual and a skip
    connection; the summed skips go through ReLU, 1x1, ReLU, 1x1 (zero-initialized: a new flow layer is the
    identity) to the parameters.

    Args:
        channels: C, channels of the sequence (1 for mono audio).
        length: T, its length (the order, ``degrees``, is the time step + 1; the convolutions work for any
            length, the flow layer is built for this one).
        residual_channels: width of the residual stream.
        skip_channels: width of the skip connections and the output head.
        kernel_size: taps of every causal convolution (2 in WaveNet).
        dilations: the dilation of each residual layer, e.g. ``(1, 2, 4, ..., 512) * 3``; default
            ``(1, 2, 4, 8, 16, 32, 64, 128)``.
        num_params: parameter tensors returned (2 for an affine op).
        context_dim: size of a global context vector (speaker, class), added to every gate.
        local_context: ``(channels, length)`` of a local context sequence, upsampled (nearest) to ``length``
            and added to every gate by a 1x1 convolution. The flow's context vector is then the global
            context followed by the flattened local sequence, ``context_dim + channels * length`` wide.

    Example:
        >>> net = WaveNet(1, 64, residual_channels=8, dilations=(1, 2, 4))
        >>> net.receptive_field  # (2 - 1) * (1 + 1 + 2 + 4) + 1
        9
        >>> [p.shape for p in net(torch.randn(3, 1, 64))]
        [torch.Size([3, 1, 64]), torch.Size([3, 1, 64])]

    References:
        van den Oord et al., WaveNet: A Generative Model for Raw Audio, arXiv:1609.03499. Paine et al., Fast
        Wavenet Generation Algorithm, arXiv:1611.09482.
    """

    def __init__(
        self,
        channels: int,
        length: int,
        *,
        residual_channels: int = 32,
        skip_channels: int = 32,
        kernel_size: int = 2,
        dilations: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128),
        num_params: int = 2,
        context_dim: int | None = None,
        local_context: Sequence[int] | None = None,
    ):
        global_dim = optional_positive_int("context_dim", context_dim)
        local = None if local_context is None else positive_ints("local_context", local_context)
        if local is not None and len(local) != 2:
            raise ValueError(f"local_context must be (channels, length), got {local_context!r}")
        width = (global_dim or 0) + (local[0] * local[1] if local else 0)
        super().__init__(channels, length, num_params=num_params, context_dim=width or None)
        R = positive_int("residual_channels", residual_channels)
        S = positive_int("skip_channels", skip_channels)
        k = positive_int("kernel_size", kernel_size)
        self.dilations = positive_ints("dilations", dilations)
        self.kernel_size, self.global_dim, self.local_context = k, global_dim, local
        self.residual_channels, self.skip_channels = R, S
        self.input = nn.Conv1d(self.channels, R, k)
        self.gates = nn.ModuleList(nn.Conv1d(R, 2 * R, k, dilation=d) for d in self.dilations)
        self.res_skip = nn.ModuleList(nn.Conv1d(R, R + S, 1) for _ in self.dilations)
        n = len(self.dilations)
        self.global_cond = nn.Linear(global_dim, 2 * R * n, bias=False) if global_dim else None
        self.local_cond = nn.Conv1d(local[0], 2 * R * n, 1, bias=False) if local else None
        self.head = nn.Conv1d(S, S, 1)
        self.output = nn.Conv1d(S, self.channels * num_params, 1)
        zero_(self.output)

    @property
    def receptive_field(self) -> int:
        """How many past steps an output sees (output ``t`` depends on inputs ``t - R .. t - 1``)."""
        return (self.kernel_size - 1) * (1 + sum(self.dilations)) + 1

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, length={self.length}, residual_channels={self.residual_channels}, "
            f"skip_channels={self.skip_channels}, kernel_size={self.kernel_size}, dilations={self.dilations}, "
            f"context_dim={self.context_dim}, receptive_field={self.receptive_field}"
        )

    def _conditioning(self, context: torch.Tensor | None, B: int, length: int) -> torch.Tensor | None:
        """Per-layer gate biases from the context: ``(B, layers, 2R, length or 1)``, or None."""
        if context is None:
            return None
        n, R2 = len(self.dilations), 2 * self.residual_channels
        total = 0
        glob = context[:, : self.global_dim] if self.global_dim else None
        if self.global_cond is not None:
            total = self.global_cond(glob).reshape(B, n, R2, 1)
        if self.local_cond is not None:
            assert self.local_context is not None
            loc = context[:, self.global_dim or 0 :].reshape(B, *self.local_context)
            loc = F.interpolate(loc, size=length, mode="nearest")
            total = total + self.local_cond(loc).reshape(B, n, R2, length)
        return total  # type: ignore[return-value]

    def _net(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        B, _, T = x.shape
        k = self.kernel_size
        shifted = F.pad(x, (1, 0))[..., :T]
        h = self.input(F.pad(shifted, (k - 1, 0)))
        cond = self._conditioning(context, B, T)
        skips = 0
        R = self.residual_channels
        for i, (gate, res_skip, d) in enumerate(zip(self.gates, self.res_skip, self.dilations)):
            a = gate(F.pad(h, ((k - 1) * d, 0)))
            if cond is not None:
                a = a + cond[:, i]
            g = torch.tanh(a[:, :R]) * torch.sigmoid(a[:, R:])
            rs = res_skip(g)
            h = h + rs[:, :R]
            skips = skips + rs[:, R:]
        return self.output(F.relu(self.head(F.relu(skips))))  # type: ignore[arg-type]

    # -- generation with a queue per layer ------------------------------------------------------------------
    @torch.no_grad()
    def invert(self, solve, batch_shape, context=None, *, like: torch.Tensor):
        """Fast generation: a circular queue per layer holding the last ``(k - 1) * dilation + 1`` inputs of
        that layer, so step ``t`` costs one small matrix product per layer (the protocol is
        :class:`~pyro_flows.protocols.AutoregressiveConditioner`'s)."""
        B, C, T, k = self._batch(batch_shape), self.channels, self.length, self.kernel_size
        R = self.residual_channels
        kw: dict[str, Any] = dict(dtype=like.dtype, device=like.device)
        cond = self._conditioning(self._flat_context(context, batch_shape, B), B, T)

        def taps(conv) -> torch.Tensor:  # (taps * in, out): the window of a step, oldest tap first, times this
            return conv.weight.permute(2, 1, 0).reshape(-1, conv.out_channels).contiguous()

        def one_by_one(conv) -> tuple[torch.Tensor, torch.Tensor]:
            return conv.weight[:, :, 0].T.contiguous(), bias(conv)

        w_in, b_in = taps(self.input), bias(self.input)
        gates = [
            (taps(g), bias(g) if cond is None or cond.shape[-1] != 1 else bias(g) + cond[:, i, :, 0])
            for i, g in enumerate(self.gates)
        ]
        local = cond if cond is not None and cond.shape[-1] != 1 else None
        res_skip = [one_by_one(rs) for rs in self.res_skip]
        (w_head, b_head), (w_out, b_out) = one_by_one(self.head), one_by_one(self.output)
        spans = [(k - 1) * d + 1 for d in self.dilations]
        shifted = torch.zeros(k, B, C, **kw)  # the last k inputs of the input convolution
        queues = [torch.zeros(span, B, R, **kw) for span in spans]  # the inputs of each residual layer
        values = torch.empty(T, B, C, **kw)
        log_det = torch.zeros(B, **kw)

        def window(queue: torch.Tensor, t: int, d: int, span: int) -> torch.Tensor:
            taps_t = [queue[(t - j * d) % span] for j in range(k - 1, -1, -1)]
            return torch.cat(taps_t, dim=1) if k > 1 else taps_t[0]

        for t in range(T):
            if t:
                shifted[t % k] = values[t - 1]
            h = torch.addmm(b_in, window(shifted, t, 1, k), w_in)
            skips = torch.zeros(B, self.skip_channels, **kw)
            for i, (queue, span, d) in enumerate(zip(queues, spans, self.dilations)):
                queue[t % span] = h
                w, b = gates[i]
                a = torch.addmm(b, window(queue, t, d, span), w)
                if local is not None:
                    a = a + local[:, i, :, t]
                rw, rb = res_skip[i]
                rs = torch.addmm(rb, torch.tanh(a[:, :R]) * torch.sigmoid(a[:, R:]), rw)
                h = h + rs[:, :R]
                skips = skips + rs[:, R:]
            out = torch.addmm(b_out, torch.relu(torch.addmm(b_head, torch.relu(skips), w_head)), w_out)
            value, ld = solve((slice(None), t), out.reshape(B, self.num_params, C).unbind(1))
            values[t] = value
            log_det += ld
        return self._unflatten(values, log_det, batch_shape)
