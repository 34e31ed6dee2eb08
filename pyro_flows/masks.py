"""Masks as data: pure functions returning bool tensors (True = passed through unchanged, conditions the rest).

A coupling layer keeps the dimensions where its mask is True and transforms the others as a function of them.
"""

from __future__ import annotations

import torch

__all__ = ["halves", "alternating", "checkerboard", "channels", "check_coupling_mask"]


def _positive(n, name):
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")


def halves(dim: int, *, flip: bool = False) -> torch.Tensor:
    """The first ``dim // 2`` dimensions (the last ``dim - dim // 2`` when ``flip``).

    Example:
        >>> halves(5).tolist()
        [True, True, False, False, False]
        >>> halves(5, flip=True).tolist()
        [False, False, True, True, True]
    """
    _positive(dim, "dim")
    mask = torch.arange(dim) < dim // 2
    return ~mask if flip else mask


def alternating(dim: int, *, flip: bool = False) -> torch.Tensor:
    """Even dimensions (odd ones when ``flip``).

    Example:
        >>> alternating(4).tolist()
        [True, False, True, False]
    """
    _positive(dim, "dim")
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
        _positive(n, name)
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
