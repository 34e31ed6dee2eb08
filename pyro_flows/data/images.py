"""Image data sets: scikit-learn's 8x8 digits (in memory) and MNIST, as pixels or statically binarized (files).

:func:`digits` returns the 1797 bundled digits dequantized to ``[0, 1)``, flattened to 64 values and split
70/15/15 (it needs scikit-learn); :func:`digits_bits_per_dim` converts its likelihoods to pixel space.
:func:`mnist` returns MNIST as uint8 pixels of shape ``(N, 1, 28, 28)`` (dequantize or binarize minibatches with
the functions of ``pyro_flows.data.pixels``), :func:`binarized_mnist` the fixed binarization of Larochelle &
Murray; both read an ``.npz`` file of the offline data folder (:func:`data_dir`) and download nothing.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from .common import Split, check_int, sklearn_datasets
from .files import read_npz
from .pixels import bits_per_dim

__all__ = [
    "DIGITS_SHAPE",
    "DIGITS_LEVELS",
    "DIGITS_NLL_OFFSET",
    "digits",
    "digits_bits_per_dim",
    "MNIST_SHAPE",
    "mnist",
    "binarized_mnist",
    "evaluation_subset",
    "MNIST_TEST_CLASS_COUNTS",
]

DIGITS_SHAPE = (8, 8)
"""Height and width of one digit image; :func:`digits` returns them flattened to 64."""

DIGITS_LEVELS = 17
"""Number of pixel values in the digits (0..16)."""

DIGITS_NLL_OFFSET = 64 * math.log(DIGITS_LEVELS)
"""``64 * log(17)`` nats: add it to a per-image NLL of :func:`digits` data to get pixel space."""

_DIGITS_FRACTIONS = (0.70, 0.15, 0.15)

MNIST_TEST_CLASS_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
"""Images per class 0..9 of MNIST's test set; the static binarized test split is sorted in this order."""

MNIST_SHAPE = (1, 28, 28)
"""Shape of one MNIST image as :func:`mnist` returns it: (channels, height, width)."""


def digits(*, seed: int = 0) -> Split:
    """scikit-learn's 8x8 digits, dequantized to ``[0, 1)`` and split 70/15/15.

    The 1797 images (pixel values ``k`` in 0..16) are shuffled with ``seed`` and
    split into 1257 train, 270 validation and 270 test images, flattened to 64
    values. Each pixel is uniformly dequantized once, with noise drawn from the same
    seed: ``x = (k + u) / 17`` with ``u ~ U(0, 1)``, so ``x`` lies in ``[0, 1)``.

    Converting likelihoods: ``y = 17 x = k + u`` is the dequantized image in pixel
    space, and ``log p_y(y) = log p_x(x) - 64 log 17``. So a mean NLL in nats per
    image measured on this data (``[0, 1)``-space) becomes pixel space by adding
    :data:`DIGITS_NLL_OFFSET` ``= 64 log 17 ≈ 181.33`` nats, and bits per dimension
    are ``(nll + 64 log 17) / (64 log 2)``; :func:`digits_bits_per_dim` does this. By
    Jensen's inequality that number upper-bounds the discrete model's bits/dim on the
    integer pixels (Theis et al. 2016, arXiv:1511.01844). A uniform density on
    ``[0, 1)^64`` scores ``log2(17) ≈ 4.09`` bits/dim.

    Args:
        seed: Seed of the shuffle and the dequantization noise, a non-negative int.

    Returns:
        A :class:`Split` of ``float32`` tensors of shapes ``(1257, 64)``,
        ``(270, 64)`` and ``(270, 64)``.

    Raises:
        ValueError: If ``seed`` is not a non-negative int.

    Example:
        >>> split = digits(seed=0)
        >>> [tuple(t.shape) for t in split]
        [(1257, 64), (270, 64), (270, 64)]
        >>> bool(split.train.min() >= 0), bool(split.train.max() < 1)
        (True, True)
    """
    seed = check_int("seed", seed, minimum=0)
    pixels = sklearn_datasets().load_digits().data  # (1797, 64), float64, values 0..16
    rng = np.random.default_rng(seed)
    pixels = pixels[rng.permutation(len(pixels))]
    x = (pixels + rng.uniform(size=pixels.shape)) / DIGITS_LEVELS
    n = len(x)
    n_valid = round(_DIGITS_FRACTIONS[1] * n)
    n_test = round(_DIGITS_FRACTIONS[2] * n)
    n_train = n - n_valid - n_test
    x = torch.as_tensor(x, dtype=torch.float32)
    return Split(*torch.split(x, [n_train, n_valid, n_test]))


def digits_bits_per_dim(nll: float) -> float:
    """Converts a mean NLL on :func:`digits` data to bits per dimension in pixel space.

    ``bits/dim = (nll + 64 log 17) / (64 log 2)``, with ``nll`` in nats per image,
    measured on the ``[0, 1)``-scaled data that :func:`digits` returns (see there);
    :func:`bits_per_dim` with 64 dimensions and 17 levels.

    Args:
        nll: Mean negative log-likelihood in nats per image.

    Returns:
        Bits per dimension of the dequantized images in pixel space (0..17).

    Raises:
        ValueError: If ``nll`` is not a real number.

    Example:
        >>> round(digits_bits_per_dim(0.0), 4)  # a uniform density on [0, 1)^64
        4.0875
    """
    return bits_per_dim(nll, DIGITS_SHAPE[0] * DIGITS_SHAPE[1], levels=DIGITS_LEVELS)


def mnist(path: str | os.PathLike | None = None) -> Split:
    """MNIST as uint8 pixel tensors of shape ``(N, 1, 28, 28)``, split 50k/10k/10k (the classic split).

    Reads ``mnist.npz`` (keys ``x_train``, ``x_valid``, ``x_test``; nothing is downloaded). Dequantize
    minibatches with :func:`dequantize` and report likelihoods with :func:`bits_per_dim`.

    Args:
        path: The ``.npz`` file or the folder holding ``mnist.npz``; default :func:`data_dir`.

    Returns:
        A :class:`Split` of uint8 tensors.

    Raises:
        FileNotFoundError: If the file is absent (the message names the path and the setting).
        TypeError: If ``path`` is not a str, an ``os.PathLike`` or None.
        ValueError: If the file is empty, corrupt, not a ``.npz`` archive or lacks one of the keys (the message
            names the file and the keys).
    """
    arrays = read_npz(path, "mnist.npz", "MNIST", ("x_train", "x_valid", "x_test"))
    return Split(*(torch.from_numpy(x).reshape(-1, *MNIST_SHAPE) for x in arrays.values()))


def binarized_mnist(path: str | os.PathLike | None = None) -> Split:
    """The statically binarized MNIST of Larochelle & Murray (the VAE tables' data set), split 50k/10k/10k.

    Reads ``binarized_mnist.npz`` (bit-packed rows; nothing is downloaded) and returns float32 tensors of 0s
    and 1s of shape ``(N, 1, 28, 28)``.

    Args:
        path: The ``.npz`` file or the folder holding ``binarized_mnist.npz``; default :func:`data_dir`.

    Returns:
        A :class:`Split` of float32 0/1 tensors.

    Raises:
        FileNotFoundError: If the file is absent (the message names the path and the setting).
        TypeError: If ``path`` is not a str, an ``os.PathLike`` or None.
        ValueError: If the file is empty, corrupt, not a ``.npz`` archive or lacks one of the keys ``train``,
            ``valid``, ``test`` (the message names the file and the keys).
    """
    arrays = read_npz(path, "binarized_mnist.npz", "binarized MNIST", ("train", "valid", "test"))
    return Split(
        *(
            torch.from_numpy(np.unpackbits(rows, axis=1)[:, :784].astype(np.float32)).reshape(-1, *MNIST_SHAPE)
            for rows in arrays.values()
        )
    )


def evaluation_subset(x: torch.Tensor, n: int | None) -> tuple[torch.Tensor, str]:
    """``n`` rows of ``x`` spread evenly over it (every ``len(x) // n``-th row), and a line saying so.

    Evaluation sets may be sorted (the static binarized MNIST test split is sorted by class: ``x[:n]`` holds
    zeros only), so a subset is strided, never a prefix; ``n=None`` or ``n >= len(x)`` is the whole set.

    Example:
        >>> import torch
        >>> subset, how = evaluation_subset(torch.arange(10.0)[:, None], 3)
        >>> subset.flatten().tolist(), how
        ([0.0, 3.0, 6.0], 'every 3rd of 10 rows (3)')
    """
    total = len(x)
    if n is not None:
        n = check_int("n", n, minimum=1)
    if n is None or n >= total:
        return x, f"all {total} rows"
    stride = total // n
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(stride % 10 if stride % 100 not in (11, 12, 13) else 0, "th")
    return x[::stride][:n], f"every {stride}{suffix} of {total} rows ({n})"
