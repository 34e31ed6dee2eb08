"""A dense (MLP) conditioner."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..validation import optional_positive_int, positive_int, positive_ints

__all__ = ["DenseConditioner", "MaskedDense", "Hypernet", "broadcast_context", "default_hidden_dims"]


def default_hidden_dims(input_dim: int) -> tuple:
    """The default hidden widths of a vector flow's conditioners: two layers of ``10 * D`` units, kept within
    32 and 512.

    Sized to the input, as Pyro sizes its coupling networks (``10 * D``): a 1-D or 2-D flow gets a network
    that trains in seconds and stays stable at learning rates such as 5e-3, where a fixed 2 x 256 network per
    layer was 14x slower and could climb to a loss far above its start; wide inputs (MNIST's 784) get 512.

    Example:
        >>> default_hidden_dims(2), default_hidden_dims(20), default_hidden_dims(784)
        ((32, 32), (200, 200), (512, 512))
    """
    width = min(max(10 * positive_int("input_dim", input_dim), 32), 512)
    return (width, width)


def broadcast_context(x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
    """Concatenates ``context`` to ``x`` along the last dim, broadcasting their batch shapes.

    Example:
        >>> broadcast_context(torch.zeros(3, 2), torch.ones(1)).shape
        torch.Size([3, 3])
    """
    if context is None:
        return x
    batch = torch.broadcast_shapes(x.shape[:-1], context.shape[:-1])
    return torch.cat([x.expand(*batch, x.shape[-1]), context.expand(*batch, context.shape[-1])], dim=-1)


class DenseConditioner(nn.Module):
    """MLP from ``input_dim`` features (plus an optional context) to parameters of sizes ``param_dims``.

    The last layer starts at zero, so every parameter starts at 0.

    Args:
        input_dim: size of the conditioning input.
        param_dims: sizes of the returned parameter tensors, e.g. ``(n, n)`` for shift and log-scale.
        hidden_dims: widths of the hidden layers.
        context_dim: size of an extra context input, or ``None``.
        activation: the nonlinearity's class.

    Example:
        >>> net = DenseConditioner(2, (3, 3), hidden_dims=(8,))
        >>> [p.shape for p in net(torch.randn(5, 2))]
        [torch.Size([5, 3]), torch.Size([5, 3])]
    """

    def __init__(
        self,
        input_dim: int,
        param_dims: Sequence[int],
        *,
        hidden_dims: Sequence[int] = (256, 256),
        context_dim: int | None = None,
        activation=nn.ReLU,
    ):
        super().__init__()
        self.param_dims = positive_ints("param_dims", param_dims)
        hidden_dims = positive_ints("hidden_dims", hidden_dims, allow_empty=True)
        context_dim = optional_positive_int("context_dim", context_dim)
        layers, width = [], positive_int("input_dim", input_dim) + (context_dim or 0)
        for h in hidden_dims:
            layers += [nn.Linear(width, h), activation()]
            width = h
        last = nn.Linear(width, sum(self.param_dims))
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None):
        out = self.net(broadcast_context(x, context))
        if len(self.param_dims) == 1:
            return (out,)
        return tuple(out.split(self.param_dims, dim=-1))


class MaskedDense(nn.Module):
    """A coupling conditioner for vectors that knows its mask: an MLP from the kept entries (``mask`` True) to
    parameters for the transformed ones, returned full-size (zeros where the mask is True).

    It gathers the kept entries (a slice when they form one block, as :func:`~pyro_flows.masks.halves` makes)
    so the network is sized to them, not to the whole vector. The last layer starts at zero.

    Args:
        mask: 1-D bool tensor, True for the entries that condition the others.
        num_params: parameters per transformed entry (2 for an affine map, 1 for an additive one).
        hidden_dims: hidden widths of the MLP.
        context_dim: size of a context vector appended to the network's input.

    Example:
        >>> net = MaskedDense(torch.tensor([True, False, False]), 2, hidden_dims=(8,))
        >>> [p.shape for p in net(torch.randn(5, 3))]
        [torch.Size([5, 3]), torch.Size([5, 3])]
    """

    keep: torch.Tensor
    change: torch.Tensor
    merge: torch.Tensor
    #: It reads only the kept entries and returns zeros at them (a coupling need not mask for it).
    respects_mask = True

    def __init__(
        self, mask: torch.Tensor, num_params: int, *, hidden_dims: Sequence[int], context_dim: int | None = None
    ):
        super().__init__()
        mask = torch.as_tensor(mask)
        if mask.dtype != torch.bool or mask.dim() != 1:
            raise ValueError(f"MaskedDense expected a 1-D bool mask, got {tuple(mask.shape)} of dtype {mask.dtype}")
        keep, change = mask.nonzero().flatten(), (~mask).nonzero().flatten()
        self.register_buffer("keep", keep)
        self.register_buffer("change", change)
        self.register_buffer("merge", torch.argsort(torch.cat([keep, change])))
        n = len(keep)
        # block layouts (a leading or trailing run of kept entries) slice and concatenate instead of gathering
        self._block = "first" if bool(mask[:n].all()) else "last" if bool(mask[len(mask) - n :].all()) else None
        self.num_params = positive_int("num_params", num_params)
        self.net = DenseConditioner(n, (len(change),) * num_params, hidden_dims=hidden_dims, context_dim=context_dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None):
        n = len(self.keep)
        if self._block == "first":
            kept = x[..., :n]
        elif self._block == "last":
            kept = x[..., x.shape[-1] - n :]
        else:
            kept = x.index_select(-1, self.keep)
        return tuple(self._full(p) for p in self.net(kept, context))

    def _full(self, p: torch.Tensor) -> torch.Tensor:
        zeros = p.new_zeros(*p.shape[:-1], len(self.keep))
        if self._block == "first":
            return torch.cat([zeros, p], dim=-1)
        if self._block == "last":
            return torch.cat([p, zeros], dim=-1)
        return torch.cat([zeros, p], dim=-1).index_select(-1, self.merge)


class Hypernet(nn.Module):
    """Parameters that a context may shift: ``base`` alone, or ``base + net(context)`` for a conditional flow.

    The network's last layer starts at zero, so a conditional flow starts equal to its unconditional twin.

    Args:
        init: named initial values of the unconditional parameters.
        context_dim: size of the context, or ``None`` for no network.
        hidden_dims: hidden widths of the network.

    Example:
        >>> h = Hypernet({"a": torch.zeros(2), "b": torch.ones(1)}, context_dim=3, hidden_dims=(4,))
        >>> [p.shape for p in h(torch.randn(5, 3))]
        [torch.Size([5, 2]), torch.Size([5, 1])]
    """

    def __init__(self, init: dict, *, context_dim: int | None = None, hidden_dims: Sequence[int] = (64,)):
        super().__init__()
        self.names = tuple(init)
        hidden_dims = positive_ints("hidden_dims", hidden_dims, allow_empty=True)  # checked with or without a net
        for name, value in init.items():
            self.register_parameter(name, nn.Parameter(torch.as_tensor(value, dtype=torch.get_default_dtype())))
        sizes = [getattr(self, n).numel() for n in self.names]
        self.net = None if context_dim is None else DenseConditioner(context_dim, sizes, hidden_dims=hidden_dims)

    def forward(self, context: torch.Tensor | None = None):
        params = tuple(getattr(self, n) for n in self.names)
        if self.net is None or context is None:
            return params
        offsets = self.net(context)
        return tuple(p + o.reshape(*o.shape[:-1], *p.shape) for p, o in zip(params, offsets))
