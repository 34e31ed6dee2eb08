"""Pixel utilities: uniform dequantization, dynamic binarization, and bits per dimension in pixel space.

They work on any integer pixels, e.g. the uint8 images of :func:`mnist`; the conventions are those of the flow
papers (Theis et al. 2016, arXiv:1511.01844): a density of the dequantized ``x = (k + u) / levels`` lower-bounds
the discrete likelihood of the pixels ``k``, and :func:`bits_per_dim` reports it in pixel space.
"""

from __future__ import annotations

import math

import torch

from .common import check_int

__all__ = ["bits_per_dim", "dequantize", "binarize"]


def bits_per_dim(nll: float, dims: int, *, levels: int = 256) -> float:
    """Converts a mean NLL of dequantized data scaled to ``[0, 1)`` into bits per dimension in pixel space.

    Data ``x = (k + u) / levels`` (pixels ``k`` in ``0..levels-1``, ``u ~ U(0, 1)``, as :func:`dequantize`
    makes) have ``log p(k + u) = log p(x) - dims log(levels)`` in pixel space, so
    ``bits/dim = (nll + dims log(levels)) / (dims log 2)``: the figure the flow papers report (RealNVP, Glow,
    MAF on MNIST), an upper bound on the discrete model's bits/dim (Theis et al. 2016, arXiv:1511.01844).
    An NLL measured after a logit transform must have that transform's log-det added back first (a flow that
    ends in ``pf.Logit(...).inv`` does it inside ``log_prob``).

    Args:
        nll: Mean negative log-likelihood in nats per example, in the ``[0, 1)``-space.
        dims: Number of dimensions of one example (784 for MNIST).
        levels: Number of pixel values (256 for 8-bit images).

    Returns:
        Bits per dimension in pixel space.

    Raises:
        ValueError: If ``nll`` is not a real number or ``dims``/``levels`` are not positive ints.

    Example:
        >>> bits_per_dim(0.0, 784)  # a uniform density on [0, 1)^784 scores 8 bits/dim
        8.0
    """
    if isinstance(nll, bool) or not isinstance(nll, (int, float)):
        if isinstance(nll, torch.Tensor) and nll.numel() == 1:
            nll = float(nll)
        else:
            raise ValueError(f"nll must be a real number, got {nll!r}")
    dims = check_int("dims", dims, minimum=1)
    levels = check_int("levels", levels, minimum=2)
    return (nll + dims * math.log(levels)) / (dims * math.log(2))


def dequantize(pixels: torch.Tensor, *, levels: int = 256, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform dequantization: ``x = (k + u) / levels`` with fresh ``u ~ U(0, 1)`` per pixel.

    Call it on every minibatch (new noise each time) so a flow cannot put mass on the grid of integer pixels;
    the likelihood of ``x`` lower-bounds the discrete likelihood of ``k`` (see :func:`bits_per_dim`).

    Args:
        pixels: Integer pixel values in ``0..levels-1`` (any integer dtype, or floats holding integers).
        levels: Number of pixel values.
        generator: Optional ``torch.Generator`` for the noise.

    Returns:
        A float32 tensor (float64 if ``pixels`` is float64) of the same shape, in ``[0, 1)``.

    Raises:
        ValueError: If a pixel lies outside ``0..levels-1``.

    Example:
        >>> x = dequantize(torch.tensor([0, 255], dtype=torch.uint8))
        >>> bool((x[0] < 1 / 256) and (x[1] >= 255 / 256))
        True
    """
    levels = check_int("levels", levels, minimum=2)
    if not isinstance(pixels, torch.Tensor):
        raise TypeError(f"dequantize expected a torch.Tensor of pixels, got {type(pixels).__name__}")
    if pixels.numel():
        low, high = (int(v) for v in torch.aminmax(pixels))
        if low < 0 or high > levels - 1:
            raise ValueError(f"dequantize expected pixels in 0..{levels - 1}, got values in {low}..{high}")
    dtype = torch.float64 if pixels.dtype == torch.float64 else torch.float32
    noise = torch.rand(pixels.shape, generator=generator, dtype=dtype, device=pixels.device)
    return (pixels.to(dtype) + noise) / levels


def binarize(pixels: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarization: a fresh Bernoulli draw of ``pixels / 255`` (float 0/1, same shape).

    Draw it per minibatch for training, and once with a seeded ``generator`` for validation and test.

    Example:
        >>> x = binarize(torch.tensor([[0, 255]], dtype=torch.uint8))
        >>> x.tolist()
        [[0.0, 1.0]]
    """
    if not isinstance(pixels, torch.Tensor) or pixels.dtype != torch.uint8:
        raise TypeError(f"binarize expected uint8 pixels in 0..255, got {getattr(pixels, 'dtype', type(pixels))}")
    probs = pixels.float() / 255
    return torch.bernoulli(probs, generator=generator)
