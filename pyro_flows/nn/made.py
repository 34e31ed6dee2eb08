"""MADE: a masked autoencoder whose outputs depend only on earlier inputs (Germain et al. 2015)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F

from .. import masks as M
from .. import state
from ..validation import check_conditioner_call, optional_positive_int, positive_int, positive_ints

__all__ = ["MaskedLinear", "MADE", "sequential_inverse"]


class MaskedLinear(nn.Linear):
    """``y = x (W * mask)^T + b`` with a bool ``mask`` buffer shaped like ``W``.

    The mask is multiplied in the weight's dtype (a copy kept until the mask changes: multiplying by the bool
    buffer would convert it on every pass). Without gradients (sampling, evaluation) the masked weight itself
    is computed once and reused until the weight or the mask changes (:mod:`pyro_flows.state`'s rule).
    """

    mask: torch.Tensor

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor, *, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self.register_buffer("mask", mask.clone())
        self._factor: tuple | None = None  # (key, mask in the weight's dtype and device)
        self._masked: tuple | None = None  # (key, masked weight without a graph)

    def _mask_factor(self) -> torch.Tensor:
        w, m = self.weight, self.mask
        key = (state.key((m,)), w.dtype, w.device)
        if self._factor is None or self._factor[0] != key:
            self._factor = (key, m.to(dtype=w.dtype, device=w.device))
        return self._factor[1]

    def masked_weight(self) -> torch.Tensor:
        if torch.is_grad_enabled() and self.weight.requires_grad:
            return self.weight * self._mask_factor()
        key = state.key((self.weight, self.mask))
        if self._masked is None or self._masked[0] != key:
            with torch.no_grad():
                self._masked = (key, self.weight * self._mask_factor())
        return self._masked[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.masked_weight(), self.bias)

    def __getstate__(self):
        st = super().__getstate__()
        st["_masked"] = st["_factor"] = None
        return st


class MADE(nn.Module):
    """Masked autoencoder for distribution estimation: output ``d`` depends only on inputs generated before it.

    ``forward(x, context=None)`` returns ``num_params`` tensors shaped like ``x`` (e.g. shift and raw log-scale
    for an affine autoregressive flow). The last layer starts at zero.

    Args:
        input_dim: D.
        hidden_dims: widths of the hidden layers (all equal when ``residual``).
        num_params: parameters per input dimension.
        context_dim: size of a context vector fed to every first-layer unit. A conditional MADE has hidden
            units of degree 0 (they see the context and no input), so every output, the first variable's
            too, depends on the context.
        ordering: ``"natural"``, ``"reversed"``, ``"random"`` or a permutation (see
            ``pyro_flows.masks.input_degrees``).
        hidden_degrees: ``"spread"`` or ``"random"`` (see ``pyro_flows.masks.hidden_degrees``).
        residual: residual blocks ``h + W2 act(W1 act(h))`` between equal-width hidden layers.
        activation: the nonlinearity's class.
        seed: seeds the random orderings/degrees (and later :meth:`resample` calls).

    Example:
        >>> made = MADE(3, (8, 8))
        >>> shift, raw = made(torch.randn(5, 3))
        >>> shift.shape
        torch.Size([5, 3])

    References:
        Germain, Gregor, Murray & Larochelle, MADE: Masked Autoencoder for Distribution Estimation,
        arXiv:1502.03509.
    """

    degrees: torch.Tensor
    output: MaskedLinear
    _plan: tuple | None

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = (256, 256),
        *,
        num_params: int = 2,
        context_dim: int | None = None,
        ordering="natural",
        hidden_degrees: str = "spread",
        residual: bool = False,
        activation=nn.ReLU,
        seed: int | None = None,
    ):
        super().__init__()
        input_dim = positive_int("input_dim", input_dim)
        hidden_dims = positive_ints("hidden_dims", hidden_dims)
        num_params = positive_int("num_params", num_params)
        context_dim = optional_positive_int("context_dim", context_dim)
        if residual and len(set(hidden_dims)) != 1:
            raise ValueError(f"a residual MADE needs equal hidden widths, got {hidden_dims}")
        self.input_dim, self.hidden_dims, self.num_params = input_dim, hidden_dims, num_params
        self.event_shape = torch.Size((input_dim,))
        self.context_dim = context_dim
        self.ordering, self.hidden_mode, self.residual = ordering, hidden_degrees, residual
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        deg_in, deg_hidden = self._degrees(ordering)
        masks = M.made_masks(deg_in, deg_hidden, num_params=num_params)
        self.register_buffer("degrees", deg_in)
        widths = (input_dim,) + hidden_dims
        self.layers = nn.ModuleList(MaskedLinear(widths[i], widths[i + 1], masks[i]) for i in range(len(hidden_dims)))
        self.output = MaskedLinear(hidden_dims[-1], input_dim * num_params, masks[-1])
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        # the context's weights into the first hidden layer (saved as context_layer.weight)
        self.context_layer = nn.Linear(context_dim, hidden_dims[0], bias=False) if context_dim else None
        self.activation = activation()
        self._plan = None  # (key, _Plan) of sequential_inverse, rebuilt when weights or masks change

    def __getstate__(self):
        st = super().__getstate__()
        st["_plan"] = None
        return st

    def _degrees(self, ordering):
        deg_in = M.input_degrees(self.input_dim, ordering, generator=self.generator)
        width = self.hidden_dims if not self.residual else self.hidden_dims[:1]
        hidden = M.hidden_degrees(
            self.input_dim, width, mode=self.hidden_mode, generator=self.generator, context=self.context_dim is not None
        )
        if self.residual:
            hidden = hidden * len(self.hidden_dims)
        return deg_in, hidden

    def resample(self, *, ordering: bool = True, hidden: bool = True) -> None:
        """Draws a new random input ordering and/or new hidden degrees, in place (order-agnostic and
        connectivity-agnostic training). Parameters are kept; only the masks change."""
        if ordering:
            deg_in = M.input_degrees(self.input_dim, "random", generator=self.generator)
        else:
            deg_in = self.degrees
        mode = "random" if hidden else self.hidden_mode
        width = self.hidden_dims if not self.residual else self.hidden_dims[:1]
        deg_hidden = (
            M.hidden_degrees(
                self.input_dim, width, mode=mode, generator=self.generator, context=self.context_dim is not None
            )
            if hidden
            else self.unit_degrees()[: len(width)]
        )
        if self.residual:
            deg_hidden = deg_hidden * len(self.hidden_dims)
        masks = M.made_masks(deg_in, deg_hidden, num_params=self.num_params)
        self.degrees.copy_(deg_in)
        for layer, mask in zip(self.masked_layers() + [self.output], masks):
            layer.mask.copy_(mask)

    def unit_degrees(self) -> list:
        """The degree of every hidden unit, layer by layer: the largest input degree it (indirectly) sees,
        0 for a unit that sees no input. A unit can be computed once the inputs up to its degree are known."""
        out, below = [], self.degrees
        for layer in self.masked_layers():
            below = (layer.mask * below[None, :]).amax(dim=1)
            out.append(below)
        return out

    def masked_layers(self) -> list[MaskedLinear]:
        """The hidden layers, input side first (the output layer is ``self.output``)."""
        return cast(list[MaskedLinear], list(self.layers))

    @property
    def can_invert(self) -> bool:
        """Whether :meth:`invert` works (not for residual MADEs)."""
        return not self.residual

    def invert(self, solve, batch_shape, context=None, *, like: torch.Tensor):
        """This MADE's fast sequential inversion: :func:`sequential_inverse` (see there)."""
        return sequential_inverse(self, solve, batch_shape, context, like=like)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints of 0.2 name the context weights "context.weight"
        old = prefix + "context.weight"
        if old in state_dict:
            state_dict[prefix + "context_layer.weight"] = state_dict.pop(old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None):
        check_conditioner_call(self, x, context, self.event_shape)
        h = self.layers[0](x)
        if self.context_layer is not None:
            h = h + self.context_layer(context)
        h = self.activation(h)
        for layer in self.layers[1:]:
            h = h + layer(self.activation(h)) if self.residual else self.activation(layer(h))
        out = self.output(h)
        return tuple(out.reshape(*out.shape[:-1], self.num_params, self.input_dim).unbind(-2))


class _Plan:
    """A MADE's weights cut into the blocks the one-unit-at-a-time sequential pass needs.

    Units are sorted by degree in every layer, so the units that become computable at generation step k form a
    contiguous block of rows, reading a prefix of the (sorted) layer below. Step k's blocks are stored
    contiguous, with their bias as a column, so a step costs one ``addmm`` per layer and no slicing.
    """

    def __init__(self, made: MADE):
        D = made.input_dim
        steps = torch.arange(D + 1)
        with torch.no_grad():
            order = torch.argsort(made.degrees, stable=True)  # inputs in generation order
            self.order, self.dims = order, order.tolist()
            below_order, below_deg = order, made.degrees
            self.first_rows = None
            self.widths = []
            self.blocks: list[list] = [
                [] for _ in range(D)
            ]  # blocks[k]: per layer (row start, row stop, below prefix, w, b)
            for layer, deg in zip(made.masked_layers(), made.unit_degrees()):
                rows = torch.argsort(deg, stable=True)
                if self.first_rows is None:
                    self.first_rows = rows
                w = layer.masked_weight()[rows][:, below_order]
                b = layer.bias[rows]
                ends = torch.searchsorted(deg[rows].contiguous(), steps, right=True).tolist()
                below_ends = torch.searchsorted(below_deg[below_order].contiguous(), steps, right=True).tolist()
                for k in range(D):
                    start, stop, n = (ends[k - 1] if k else 0), ends[k], below_ends[k]
                    self.blocks[k].append(
                        (start, stop, n, w[start:stop, :n].contiguous(), b[start:stop, None].contiguous())
                        if stop > start
                        else None
                    )
                self.widths.append(len(rows))
                below_order, below_deg, last_ends = rows, deg, ends
            # output rows of the dim generated at step k, one per parameter, reading the sorted last layer
            w_out = made.output.masked_weight()[:, below_order]
            rows = torch.arange(made.num_params)[None, :] * D + order[:, None]  # (D, P)
            self.outputs = [
                (last_ends[k], w_out[rows[k], : last_ends[k]].contiguous(), made.output.bias[rows[k], None].clone())
                for k in range(D)
            ]


def _plan_key(made: MADE):
    tensors = [made.degrees] + [t for m in made.masked_layers() + [made.output] for t in (m.weight, m.bias, m.mask)]
    return state.key(tensors)


def sequential_inverse(made: MADE, solve, batch_shape, context=None, *, like: torch.Tensor):
    """Runs the generation order of ``made``: at step k the units whose degree just became reachable are
    computed (each hidden unit exactly once), then the parameters of the dim of degree k, and
    ``solve(step, params)`` returns that dim's value and its elementwise log-det.

    Costs about one network pass of arithmetic plus D small sequential steps (instead of D full passes).
    Runs without gradients; residual MADEs are not supported (use the D-pass recursion).

    Args:
        made: a (non-residual) :class:`MADE`.
        solve: ``solve((dim,), params) -> (value, log_det)`` with ``params`` a tuple of ``num_params`` tensors
            of shape (B,) for input dimension ``dim``, returning tensors of shape (B,).
        batch_shape: the batch shape to produce.
        context: the context, broadcastable to ``batch_shape + (context_dim,)``.
        like: a tensor whose dtype and device the results take.

    Returns:
        ``(values, log_det)``: values of shape ``batch_shape + (D,)`` in the original dim order, and the log-dets
        summed over dims, of shape ``batch_shape``.
    """
    if made.residual:
        raise NotImplementedError("sequential_inverse does not support residual MADEs")
    key = _plan_key(made)
    if made._plan is None or made._plan[0] != key:
        made._plan = (key, _Plan(made))
    plan = made._plan[1]
    D = made.input_dim
    B = int(torch.Size(batch_shape).numel())
    kw: dict[str, Any] = dict(dtype=like.dtype, device=like.device)
    values = torch.empty(D, B, **kw)
    log_det = torch.zeros(B, **kw)
    hidden = [torch.empty(width, B, **kw) for width in plan.widths]
    ctx = None
    if made.context_layer is not None and context is not None:
        c = made.context_layer(context.expand(*batch_shape, context.shape[-1]).reshape(B, context.shape[-1]))  # (B, H1)
        ctx = c.T[plan.first_rows]  # sorted like the first layer's rows
    act = made.activation
    relu = isinstance(act, nn.ReLU)
    for k in range(D):
        below = values
        for i, block in enumerate(plan.blocks[k]):
            if block is not None:
                start, stop, n, w, b = block
                out = hidden[i][start:stop]
                torch.addmm(b, w, below[:n], out=out)
                if i == 0 and ctx is not None:
                    out += ctx[start:stop]
                if relu:
                    out.relu_()
                else:
                    out.copy_(act(out))
            below = hidden[i]
        n, w, b = plan.outputs[k]
        params = torch.addmm(b, w, below[:n])
        value, ld = solve((plan.dims[k],), params.unbind(0))
        values[k] = value
        log_det += ld
    out = torch.empty_like(values)
    out[plan.order] = values
    return out.T.reshape(*batch_shape, D), log_det.reshape(batch_shape)
