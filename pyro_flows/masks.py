"""Masks as data: pure functions returning bool tensors (True = passed through unchanged, conditions the rest).

A coupling layer keeps the dimensions where its mask is True and transforms the others as a function of them.
"""

from __future__ import annotations

import torch

from .validation import positive_int, positive_ints

__all__ = ["halves", "alternating", "checkerboard", "channels", "check_coupling_mask"]


def halves(dim: int, *, flip: bool = False) -> torch.Tensor:
    """The first ``dim // 2`` dimensions (the last ``dim - dim // 2`` when ``flip``).

    Example:
        >>> halves(5).tolist()
        [True, True, False, False, False]
        >>> halves(5, flip=True).tolist()
        [False, False, True, True, True]
    """
    positive_int("dim", dim)
    mask = torch.arange(dim) < dim // 2
    return ~mask if flip else mask


def alternating(dim: int, *, flip: bool = False) -> torch.Tensor:
    """Even dimensions (odd ones when ``flip``).

    Example:
        >>> alternating(4).tolist()
        [True, False, True, False]
    """
    positive_int("dim", dim)
    mask = torch.arange(dim) % 2 == 0
    return ~mask if flip else mask


def checkerboard(shape, *, flip: bool = False) -> torch.Tensor:
    """Spatial checkerboard over the last two dims of ``shape`` = (C, H, W), same for every channel.

    Example:
        >>> checkerboard((1, 2, 2)).int().tolist()
        [[[1, 0], [0, 1]]]
    """
    c, h, w = shape
    for n, name in ((c, "C"), (h, "H"), (w, "W")):
        positive_int(name, n)
    grid = (torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2 == 0
    mask = grid.expand(c, h, w).clone()
    return ~mask if flip else mask


def channels(shape, *, flip: bool = False) -> torch.Tensor:
    """The first ``C // 2`` channels of ``shape`` = (C, H, W) (the others when ``flip``).

    Example:
        >>> channels((2, 1, 1)).flatten().tolist()
        [True, False]
    """
    c, h, w = shape
    mask = halves(c, flip=flip)[:, None, None].expand(c, h, w).clone()
    return mask


def check_coupling_mask(mask) -> torch.Tensor:
    """Returns ``mask`` as a bool tensor, or raises if it cannot serve a coupling layer.

    A coupling mask must keep at least one dimension (so the others have something to depend on) and
    transform at least one (else the layer is the identity).
    """
    mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"a coupling mask must be a bool tensor, got dtype {mask.dtype}")
    if mask.dim() == 0:
        raise ValueError("a coupling mask needs at least one dimension")
    if bool(mask.all()) or not bool(mask.any()):
        raise ValueError(
            "a coupling mask must keep at least one dimension (True) and transform at least one (False), "
            f"got {mask.int().tolist()}"
        )
    return mask


# --- MADE: degrees and masks ------------------------------------------------------------------------------
ORDERINGS = ("natural", "reversed", "random")
HIDDEN_DEGREES = ("spread", "random")


def input_degrees(input_dim: int, ordering="natural", *, generator=None) -> torch.Tensor:
    """Degrees 1..D of the inputs: input ``i`` gets degree ``k`` when it is the k-th to be generated.

    Args:
        input_dim: D.
        ordering: ``"natural"`` (0, 1, ..., D-1), ``"reversed"``, ``"random"``, or a permutation of
            ``range(D)`` listing the inputs in generation order.
        generator: a ``torch.Generator`` for ``"random"``.

    Example:
        >>> input_degrees(3, "reversed").tolist()
        [3, 2, 1]
        >>> input_degrees(3, [2, 0, 1]).tolist()
        [2, 3, 1]
    """
    positive_int("input_dim", input_dim)
    if isinstance(ordering, str):
        if ordering not in ORDERINGS:
            raise ValueError(f"ordering must be one of {ORDERINGS} or a permutation, got {ordering!r}")
        order = {
            "natural": lambda: torch.arange(input_dim),
            "reversed": lambda: torch.arange(input_dim - 1, -1, -1),
            "random": lambda: torch.randperm(input_dim, generator=generator),
        }[ordering]()
    else:
        order = torch.as_tensor(ordering)
        if order.shape != (input_dim,) or not torch.equal(order.sort().values, torch.arange(input_dim)):
            raise ValueError(f"ordering must be a permutation of range({input_dim}), got {ordering!r}")
    degrees = torch.empty(input_dim, dtype=torch.long)
    degrees[order.long()] = torch.arange(1, input_dim + 1)
    return degrees


def hidden_degrees(input_dim: int, hidden_dims, *, mode: str = "spread", generator=None, context: bool = False) -> list:
    """Degrees of the hidden units of a MADE, one long tensor per layer, every unit connected.

    A unit of degree ``m`` may see inputs of degree ``<= m`` and feed outputs of degree ``> m``. Degrees lie in
    ``1..D-1``; with ``context=True`` (a conditional MADE) in ``0..D-1``: units of degree 0 see no input, only
    the context, and they are what makes the FIRST variable of the ordering depend on the context (with
    degrees from 1 its outputs would see a bias alone). ``"spread"`` spreads them evenly (deterministic);
    ``"random"`` draws each from ``[min degree of the layer below, D-1]`` as in the MADE paper, and with
    ``context`` makes the first ``max(1, width // D)`` units of each layer degree 0. Then each layer is clamped to the largest degree of the
    layer above, so every unit keeps a path to an output.

    Example:
        >>> [d.tolist() for d in hidden_degrees(3, [4])]
        [[1, 1, 2, 2]]
        >>> [d.tolist() for d in hidden_degrees(3, [4], context=True)]
        [[0, 0, 1, 2]]
    """
    positive_int("input_dim", input_dim)
    top = max(input_dim - 1, 0)
    low = 0 if context else min(1, top)
    layers = []
    for width in positive_ints("hidden_dims", hidden_dims):
        if mode == "spread":
            d = low + (torch.arange(width) * (top - low + 1)) // width
        elif mode == "random":
            d = torch.randint(low, top + 1, (width,), generator=generator)
            if context:  # as many context-only units as a degree gets on average, at least one
                d[: max(1, width // (top + 1))] = 0
        else:
            raise ValueError(f"mode must be one of {HIDDEN_DEGREES}, got {mode!r}")
        layers.append(d)
        if mode == "random":
            low = int(d.min())
    ceiling = top
    for d in reversed(layers):
        d.clamp_(max=ceiling)
        ceiling = int(d.max())
    return layers


def made_masks(in_degrees: torch.Tensor, hidden: list, *, num_params: int = 1) -> list:
    """Masks of a MADE's linear layers, shaped like their weights (out, in), from the units' degrees.

    Hidden layers: ``degree(out) >= degree(in)``. Output layer (``num_params`` outputs per input dimension,
    parameter-major): ``degree(out) > degree(in)``, so output ``d`` depends only on inputs generated before it.

    Example:
        >>> [m.int().tolist() for m in made_masks(torch.tensor([1, 2]), [torch.tensor([1])])]
        [[[1, 0]], [[0], [1]]]
    """
    masks, below = [], in_degrees
    for d in hidden:
        masks.append(d[:, None] >= below[None, :])
        below = d
    out = in_degrees.repeat(num_params)
    masks.append(out[:, None] > below[None, :])
    return masks
