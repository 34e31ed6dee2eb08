"""Data sets that need no download: toy 2-D densities and scikit-learn's 8x8 digits.

Every function returns ``torch.float32`` tensors of shape ``(N, D)`` on the CPU and
is deterministic given its ``seed``.

Toy 2-D densities (:data:`TOY2D`) are generated on the fly with the definitions
popularized by FFJORD (Grathwohl et al. 2018, arXiv:1810.01367). Each set is
standardized by one fixed affine map per set, ``(x - center) / scale``, with
``center`` the set's population mean and ``scale`` its population root mean
per-coordinate standard deviation, both computed once at the default noise level
(analytically where possible, otherwise from 4e6 samples). The map is the same for
every seed, size and split, so train, valid and test share it and results are
comparable across runs; with the default noise the data have mean about 0 and a
root-mean-square per-coordinate standard deviation of about 1 (within 1%). The map
is isotropic (one scale for both coordinates), so the shapes are not distorted.

The digits (:func:`digits`) are scikit-learn's bundled copy of the UCI optical
digits (1797 images of 8x8 pixels with values 0..16), so nothing is downloaded.
``moons``, ``circles`` and the digits need scikit-learn, an optional dependency
(``pip install 'pyro_flows[datasets]'``); without it they raise an ``ImportError``
saying so, and the other sets work.

MNIST (:func:`mnist`, :func:`binarized_mnist`) and spoken digits (:func:`spoken_digits`, 8 kHz speech
waveforms with digit and speaker labels) are read from ``.npz`` files in the offline data folder
(:func:`data_dir`); nothing is downloaded.

Example:
    >>> from pyro_flows import data
    >>> x = data.toy2d("moons", 500, seed=1)
    >>> x.shape, x.dtype
    (torch.Size([500, 2]), torch.float32)
    >>> split = data.load("eight_gaussians", n_train=100, n_valid=20, n_test=20)
    >>> tuple(len(t) for t in split)
    (100, 20, 20)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..validation import is_finite_number

__all__ = [
    "binarized_mnist",
    "binarize",
    "TOY2D",
    "DATASETS",
    "DIGITS_SHAPE",
    "DIGITS_LEVELS",
    "DIGITS_NLL_OFFSET",
    "Split",
    "toy2d",
    "digits",
    "digits_bits_per_dim",
    "bits_per_dim",
    "dequantize",
    "data_dir",
    "mnist",
    "MNIST_SHAPE",
    "spoken_digits",
    "speech_windows",
    "Speech",
    "SPEECH_SPLITS",
    "load",
]

TOY2D = ("moons", "circles", "eight_gaussians", "checkerboard", "pinwheel", "spirals")
"""Names accepted by :func:`toy2d` and :func:`load`."""

DATASETS = TOY2D + ("digits",)
"""Every name accepted by :func:`load`."""

DIGITS_SHAPE = (8, 8)
"""Height and width of one digit image; :func:`digits` returns them flattened to 64."""

DIGITS_LEVELS = 17
"""Number of pixel values in the digits (0..16)."""

DIGITS_NLL_OFFSET = 64 * math.log(DIGITS_LEVELS)
"""``64 * log(17)`` nats: add it to a per-image NLL of :func:`digits` data to get pixel space."""

_DIGITS_FRACTIONS = (0.70, 0.15, 0.15)

MNIST_SHAPE = (1, 28, 28)
"""Shape of one MNIST image as :func:`mnist` returns it: (channels, height, width)."""


class Split(NamedTuple):
    """Train, validation and test tensors, each of shape ``(N, D)``."""

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor


# --------------------------------------------------------------------------- validation


def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_name(name: object, valid: tuple[str, ...]) -> str:
    if not isinstance(name, str) or name not in valid:
        raise ValueError(f"unknown data set {name!r}; valid names are: {', '.join(valid)}")
    return name


def _sklearn_datasets():
    """``sklearn.datasets``, imported on first use so that ``import pyro_flows`` does not need scikit-learn."""
    try:
        from sklearn import datasets
    except ImportError as err:
        raise ImportError(
            "pyro_flows.data needs scikit-learn for the moons, circles and digits sets: "
            "pip install 'pyro_flows[datasets]'"
        ) from err
    return datasets


# --------------------------------------------------------------------------- toy 2-D


def _moons(rng: np.random.Generator, n: int, noise: float) -> np.ndarray:
    state = np.random.RandomState(rng.integers(2**31))
    return _sklearn_datasets().make_moons(n_samples=n, noise=noise, random_state=state)[0]


def _circles(rng: np.random.Generator, n: int, noise: float) -> np.ndarray:
    state = np.random.RandomState(rng.integers(2**31))
    return _sklearn_datasets().make_circles(n_samples=n, noise=noise, factor=0.5, random_state=state)[0]


def _eight_gaussians(rng: np.random.Generator, n: int, noise: float) -> np.ndarray:
    angle = rng.integers(8, size=n) * (np.pi / 4)
    centers = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return centers + noise * rng.standard_normal((n, 2))


def _checkerboard(rng: np.random.Generator, n: int, noise: float) -> np.ndarray:
    x1 = rng.uniform(-2.0, 2.0, size=n)
    x2 = rng.uniform(0.0, 1.0, size=n) - 2.0 * rng.integers(0, 2, size=n) + np.floor(x1) % 2
    return np.stack([x1, x2], axis=1) + noise * rng.standard_normal((n, 2))


def _pinwheel(rng: np.random.Generator, n: int, noise: float) -> np.ndarray:
    arm = rng.integers(5, size=n)
    radial = 1.0 + 0.3 * rng.standard_normal(n)
    tangential = noise * rng.standard_normal(n)
    angle = arm * (2 * np.pi / 5) + 0.25 * np.exp(radial)
    cos, sin = np.cos(angle), np.sin(angle)
    return np.stack([radial * cos - tangential * sin, radial * sin + tangential * cos], axis=1)


def _spirals(rng: np.random.Generator, n: int, noise: float) -> np.ndarray:
    t = np.sqrt(rng.uniform(size=n)) * 3 * np.pi
    sign = np.where(rng.integers(2, size=n) == 0, 1.0, -1.0)[:, None]
    x = sign * np.stack([-np.cos(t) * t, np.sin(t) * t], axis=1)
    return x + noise * rng.standard_normal((n, 2))


class _Toy(NamedTuple):
    sample: Callable[[np.random.Generator, int, float], np.ndarray]
    noise: float  # default noise, in the generator's own units (see toy2d)
    center: tuple[float, float]
    scale: float


_TOYS = {
    "moons": _Toy(_moons, 0.1, (0.5, 0.25), 0.712),
    "circles": _Toy(_circles, 0.08, (0.0, 0.0), 0.565),
    "eight_gaussians": _Toy(_eight_gaussians, 0.125, (0.0, 0.0), 0.718),
    "checkerboard": _Toy(_checkerboard, 0.0, (0.0, 0.0), 1.155),
    "pinwheel": _Toy(_pinwheel, 0.1, (0.0, 0.0), 0.742),
    "spirals": _Toy(_spirals, 0.3, (0.0, 0.0), 4.722),
}


def toy2d(name: str, n: int, *, seed: int = 0, noise: float | None = None) -> torch.Tensor:
    """Draws ``n`` points from a standardized toy 2-D density.

    The sets, with what ``noise`` means for each and its default (in the set's own
    units, before standardization):

    - ``moons``: two interleaved half circles (``sklearn.datasets.make_moons``);
      standard deviation of the Gaussian noise, 0.1.
    - ``circles``: two concentric circles, radii 1 and 0.5
      (``sklearn.datasets.make_circles``); Gaussian noise, 0.08.
    - ``eight_gaussians``: a mixture of 8 Gaussians centred on the unit circle;
      their standard deviation, 0.125.
    - ``checkerboard``: uniform on the black squares of a 4x4 board; Gaussian
      jitter, 0.
    - ``pinwheel``: five curved arms; tangential standard deviation, 0.1.
    - ``spirals``: two interleaved spirals of 1.5 turns; Gaussian noise, 0.3.

    The result is standardized by the set's fixed affine map (see the module
    docstring), so ``noise`` changes the shape but not the map.

    Args:
        name: One of :data:`TOY2D`.
        n: Number of points, a positive int.
        seed: Seed of the numpy generator, a non-negative int.
        noise: Noise level as listed above; ``None`` for the set's default.

    Returns:
        A ``float32`` tensor of shape ``(n, 2)``.

    Raises:
        ValueError: If ``name`` is unknown, ``n`` is not a positive int, ``seed``
            is not a non-negative int or ``noise`` is negative or not finite.

    Example:
        >>> x = toy2d("checkerboard", 1000, seed=0)
        >>> x.shape
        torch.Size([1000, 2])
        >>> bool(x.mean(0).abs().max() < 0.1), bool((x.std(0) - 1).abs().max() < 0.1)
        (True, True)
        >>> torch.equal(x, toy2d("checkerboard", 1000, seed=0))
        True
    """
    _check_name(name, TOY2D)
    n = _check_int("n", n, minimum=1)
    seed = _check_int("seed", seed, minimum=0)
    toy = _TOYS[name]
    if noise is None:
        noise = toy.noise
    if not is_finite_number(noise):
        raise ValueError(f"noise must be a finite number >= 0 or None, got {noise!r}")
    if noise < 0:
        raise ValueError(f"noise must be a finite number >= 0 or None, got {noise!r}")
    rng = np.random.default_rng(seed)
    x = (toy.sample(rng, n, float(noise)) - np.asarray(toy.center)) / toy.scale
    return torch.as_tensor(x, dtype=torch.float32)


# --------------------------------------------------------------------------- digits


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
    seed = _check_int("seed", seed, minimum=0)
    pixels = _sklearn_datasets().load_digits().data  # (1797, 64), float64, values 0..16
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
    dims = _check_int("dims", dims, minimum=1)
    levels = _check_int("levels", levels, minimum=2)
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
    levels = _check_int("levels", levels, minimum=2)
    if not isinstance(pixels, torch.Tensor):
        raise TypeError(f"dequantize expected a torch.Tensor of pixels, got {type(pixels).__name__}")
    if pixels.numel():
        low, high = (int(v) for v in torch.aminmax(pixels))
        if low < 0 or high > levels - 1:
            raise ValueError(f"dequantize expected pixels in 0..{levels - 1}, got values in {low}..{high}")
    dtype = torch.float64 if pixels.dtype == torch.float64 else torch.float32
    noise = torch.rand(pixels.shape, generator=generator, dtype=dtype, device=pixels.device)
    return (pixels.to(dtype) + noise) / levels


def data_dir() -> Path:
    """Where :func:`mnist` looks for ``mnist.npz``.

    ``$PYRO_FLOWS_DATA`` if set. Otherwise ``../shared/data`` relative to the current working directory
    (the project's offline data folder, beside a checkout run from its root); from a subfolder of the
    checkout (``tutorials/``, ``bench/``) the nearest ``../shared/data`` of a parent folder is used. The
    default never depends on where the package is installed: for an installed package, set
    ``PYRO_FLOWS_DATA`` or pass a path to :func:`mnist`.

    Returns:
        An absolute path; when no candidate exists, ``../shared/data`` of the working directory (so an
        error message names it).
    """
    env = os.environ.get("PYRO_FLOWS_DATA")
    if env:
        return Path(env)
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        candidate = folder.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return cwd.parent / "shared" / "data"


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
    """
    path = _data_file(path, "mnist.npz", "MNIST")
    with np.load(path) as f:
        parts = [torch.from_numpy(f[k]).reshape(-1, *MNIST_SHAPE) for k in ("x_train", "x_valid", "x_test")]
    return Split(*parts)


def _data_file(path, name: str, what: str) -> Path:
    path = Path(path) if path is not None else data_dir()
    if path.is_dir() or path.suffix != ".npz":
        path = path / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} not found at {path}; set PYRO_FLOWS_DATA to the folder holding {name} "
            "(default: ../shared/data of the working directory or of a parent folder)"
        )
    return path


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
    """
    path = _data_file(path, "binarized_mnist.npz", "binarized MNIST")
    with np.load(path) as f:
        parts = [
            torch.from_numpy(np.unpackbits(f[k], axis=1)[:, :784].astype(np.float32)).reshape(-1, *MNIST_SHAPE)
            for k in ("train", "valid", "test")
        ]
    return Split(*parts)


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


# --------------------------------------------------------------------------- speech

SPEECH_SPLITS = ("train", "valid", "test")
"""Names of the splits of :func:`spoken_digits`."""

_INT16_STEP = 1.0 / 32768  # one 16-bit quantization step in [-1, 1) units


class Speech(NamedTuple):
    """Waveforms with their labels, as :func:`spoken_digits` and :func:`speech_windows` return them.

    Row ``i`` of ``x`` holds samples ``start[i] .. start[i] + x.shape[1] - 1`` of clip ``i``; the clip's own
    samples are ``0 .. length[i] - 1`` (a whole clip is zero-padded after ``length``).
    """

    x: torch.Tensor
    """``(N, T)`` float32 waveforms in ``[-1, 1)``: whole clips (``T = 8192``) or windows (``T = window``)."""
    digit: torch.Tensor
    """``(N,)`` int64 spoken digit, 0..9."""
    speaker: torch.Tensor
    """``(N,)`` int64 speaker id: an index into :attr:`speakers`."""
    speakers: tuple[str, ...]
    """The names of all voices of the data set, sorted; ids are the same in every split (no voice is in two)."""
    length: torch.Tensor
    """``(N,)`` int64 true length of each clip, in samples, before its zero padding."""
    start: torch.Tensor
    """``(N,)`` int64 offset of ``x[:, 0]`` in its clip (zeros for whole clips)."""
    sample_rate: int
    """Samples per second (8000)."""

    @property
    def speaker_names(self) -> tuple[str, ...]:
        """The speaker name of every row (``speakers[speaker[i]]``)."""
        return tuple(self.speakers[i] for i in self.speaker.tolist())


def _check_window(window: object, shortest: int) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)):
        raise TypeError(f"window must be a positive int (samples) or None for whole clips, got {window!r}")
    if not 1 <= window <= shortest:
        raise ValueError(
            f"window must be a positive int of at most {shortest} samples (the shortest clip, so that every "
            f"window lies inside its clip's true length), got {window!r}"
        )
    return int(window)


def _dequantize_speech(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``(k + u) / 32768`` with ``k = floor(32768 x)`` and fresh ``u ~ U[0, 1)``, kept below 1."""
    k = torch.floor(x * 32768)  # exact: x holds k / 32768 (or k / 32768 plus noise below one step)
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    # k = 32767 with u near 1 can round up to 1.0 in float32: keep the promise of [-1, 1)
    return ((k + u) * _INT16_STEP).clamp_(max=1.0 - 2.0**-24)


def speech_windows(
    clips: Speech,
    window: int,
    *,
    center: bool = False,
    dequantize: bool = False,
    generator: torch.Generator | None = None,
    drop_short: bool = False,
) -> Speech:
    """Crops one window of ``window`` samples from each whole clip, inside its true length.

    Each window starts at ``start`` in ``0 .. length - window``, so it holds none of the clip's zero
    padding: uniformly at random (drawn from ``generator``) by default, or centered,
    ``start = (length - window) // 2``, with ``center=True``. Call it once per epoch on the whole clips of
    :func:`spoken_digits` for fresh training crops.

    Args:
        clips: Whole clips, as ``spoken_digits(split)`` returns them (``window=None``).
        window: Samples per window, a positive int no longer than the shortest clip.
        center: Centered windows instead of random ones (deterministic).
        dequantize: Replace each sample ``k / 32768`` by ``(k + u) / 32768`` with fresh ``u ~ U[0, 1)``
            (one 16-bit quantization step of uniform noise; samples already dequantized get new noise).
        generator: Optional ``torch.Generator`` for the random starts and the noise.
        drop_short: Leave out the clips shorter than ``window`` (else they are an error).

    Returns:
        A :class:`Speech` whose ``x`` has shape ``(N, window)``, with the clips' labels and lengths and the
        windows' ``start``.

    Raises:
        TypeError: If ``clips`` is not a :class:`Speech` or ``window`` is not an int.
        ValueError: If ``clips`` are windows already, ``window`` is not positive, or some clip is shorter than
            ``window`` and ``drop_short`` is False.

    Example:
        >>> clips = Speech(torch.arange(8.0).reshape(2, 4) / 32768, torch.tensor([3, 7]), torch.tensor([0, 1]),
        ...                ("a", "b"), torch.tensor([4, 3]), torch.zeros(2, dtype=torch.long), 8000)
        >>> w = speech_windows(clips, 2, center=True)
        >>> (w.x * 32768).tolist(), w.start.tolist()
        ([[1.0, 2.0], [4.0, 5.0]], [1, 0])
    """
    if not isinstance(clips, Speech):
        raise TypeError(f"speech_windows expected the Speech of spoken_digits(split), got {type(clips).__name__}")
    if bool((clips.start != 0).any()) or clips.x.shape[-1] < int(clips.length.max()):
        raise ValueError(
            "speech_windows expected whole clips (spoken_digits(split) with window=None), got windows of "
            f"{clips.x.shape[-1]} samples"
        )
    window = _check_window(window, int(clips.length.max()))
    short = clips.length < window
    if bool(short.any()):
        if not drop_short:
            raise ValueError(
                f"{int(short.sum())} of {len(short)} clips are shorter than window={window} samples (the shortest "
                f"has {int(clips.length.min())}): pass drop_short=True to leave them out, or a shorter window"
            )
        keep = ~short
        clips = clips._replace(
            x=clips.x[keep],
            digit=clips.digit[keep],
            speaker=clips.speaker[keep],
            length=clips.length[keep],
            start=clips.start[keep],
        )
    room = clips.length - window  # the last valid start of each clip
    if center:
        start = room // 2
    else:
        u = torch.rand(room.shape, generator=generator, dtype=torch.float64)
        start = torch.minimum((u * (room + 1)).floor().long(), room)
    index = start[:, None] + torch.arange(window)
    x = clips.x.gather(1, index.to(clips.x.device))
    if dequantize:
        x = _dequantize_speech(x, generator)
    return clips._replace(x=x, start=start)


def spoken_digits(
    split: str = "train",
    *,
    window: int | None = None,
    dequantize: bool = False,
    seed: int = 0,
    path: str | os.PathLike | None = None,
    drop_short: bool = False,
) -> Speech:
    """Spoken digits "zero" .. "nine", 8 kHz 16-bit speech of 32 synthetic voices, split by speaker.

    Reads ``spoken_digits.npz`` (nothing is downloaded; see the data folder's README): 1440 train, 240
    validation and 240 test clips of 1920..5959 samples (0.24..0.74 s), each zero-padded to 8192 samples;
    24, 4 and 4 voices, no voice in two splits. Samples are ``k / 32768`` for the 16-bit integers ``k``, so
    they lie in ``[-1, 1)`` (compand them with :class:`pyro_flows.MuLaw`).

    Windows: with ``window``, each clip gives one window of that many samples lying inside its true length
    (no padding). Train windows start uniformly at random, drawn from ``seed``; valid and test windows are
    centered, ``start = (length - window) // 2``, the same on every call. For fresh train crops each epoch,
    load the whole clips once and call :func:`speech_windows` with a ``torch.Generator``.

    Dequantization (``dequantize=True``): ``x = (k + u) / 32768`` with ``u ~ U[0, 1)`` drawn from ``seed``,
    one quantization step of uniform noise, as for 8-bit images; then a density of ``x`` lower-bounds the
    discrete likelihood of ``k``, and ``nats + T log(32768)`` per window of ``T`` samples is its NLL in
    integer units. Whole clips get noise on their padding too: mask it out of a likelihood.

    Args:
        split: One of :data:`SPEECH_SPLITS`: ``"train"``, ``"valid"`` or ``"test"``.
        window: Samples per window, a positive int (at most 8192); ``None`` for the whole zero-padded
            clips. Longer than the shortest clip (1920), it needs ``drop_short``.
        dequantize: Add one quantization step of uniform noise (see above).
        seed: Seed of the train windows' starts and of the noise, a non-negative int.
        path: The ``.npz`` file or the folder holding ``spoken_digits.npz``; default :func:`data_dir`.
        drop_short: Leave out the clips shorter than ``window`` (3 train clips for ``window=2048``; every
            valid and test clip is at least 2102 samples long); without it they are an error.

    Returns:
        A :class:`Speech`: ``x`` float32 of shape ``(N, 8192)`` or ``(N, window)``, ``digit``, ``speaker``
        (ids into ``speakers``; ``speaker_names`` gives each row's name), ``length``, ``start`` and
        ``sample_rate``.

    Raises:
        ValueError: If ``split`` is unknown, ``window`` is not positive or (without ``drop_short``) longer than a clip, or
            ``seed`` is not a non-negative int.
        TypeError: If ``window`` is not an int or None.
        FileNotFoundError: If the file is absent (the message names the path and the setting).
    """
    if not isinstance(split, str) or split not in SPEECH_SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are: {', '.join(SPEECH_SPLITS)}")
    seed = _check_int("seed", seed, minimum=0)
    if window is not None:
        _check_window(window, 8192)  # the argument's type and sign, before reading the file
    path = _data_file(path, "spoken_digits.npz", "the spoken digits")
    with np.load(path) as f:
        names = np.unique(np.concatenate([f[f"{s}_speaker"] for s in SPEECH_SPLITS]))
        speaker = np.searchsorted(names, f[f"{split}_speaker"])
        clips = Speech(
            x=torch.from_numpy(f[f"{split}_x"]).float() * _INT16_STEP,
            digit=torch.from_numpy(f[f"{split}_digit"].astype(np.int64)),
            speaker=torch.from_numpy(speaker.astype(np.int64)),
            speakers=tuple(str(n) for n in names),
            length=torch.from_numpy(f[f"{split}_length"].astype(np.int64)),
            start=torch.zeros(len(speaker), dtype=torch.long),
            sample_rate=int(f["sample_rate"]),
        )
    generator = torch.Generator().manual_seed(seed)
    if window is not None:
        return speech_windows(
            clips, window, center=split != "train", dequantize=dequantize, generator=generator, drop_short=drop_short
        )
    if dequantize:
        clips = clips._replace(x=_dequantize_speech(clips.x, generator))
    return clips


# --------------------------------------------------------------------------- dispatch


def _child_seed(seed: int, index: int) -> int:
    """A deterministic seed for split ``index``, independent of the others."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def load(
    name: str,
    *,
    n_train: int | None = None,
    n_valid: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
) -> Split:
    """Loads a data set by name as a train/valid/test :class:`Split`.

    For a toy set (:data:`TOY2D`) the three splits are drawn independently with
    seeds derived from ``seed`` (``numpy.random.SeedSequence([seed, i])``); the
    sizes default to 10000, 2000 and 2000. For ``"digits"`` the split is the fixed
    70/15/15 one of :func:`digits` and the sizes cannot be chosen.

    Args:
        name: One of :data:`DATASETS`.
        n_train: Number of training points (toy sets only), a positive int.
        n_valid: Number of validation points (toy sets only), a positive int.
        n_test: Number of test points (toy sets only), a positive int.
        seed: Seed, a non-negative int.

    Returns:
        A :class:`Split` of ``float32`` tensors.

    Raises:
        ValueError: If ``name`` is unknown (the message lists the valid names), a
            size is not a positive int or is given for ``"digits"``, or ``seed`` is
            not a non-negative int.

    Example:
        >>> split = load("moons", n_train=200, n_valid=50, n_test=50, seed=3)
        >>> split.train.shape, split.valid.shape
        (torch.Size([200, 2]), torch.Size([50, 2]))
        >>> bool((split.train[:50] == split.valid).all())  # independent draws
        False
    """
    _check_name(name, DATASETS)
    seed = _check_int("seed", seed, minimum=0)
    sizes = {"n_train": n_train, "n_valid": n_valid, "n_test": n_test}
    if name == "digits":
        given = [key for key, value in sizes.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} cannot be set for 'digits': its split is fixed at 70/15/15")
        return digits(seed=seed)
    defaults = {"n_train": 10_000, "n_valid": 2_000, "n_test": 2_000}
    counts = [_check_int(key, defaults[key] if value is None else value, minimum=1) for key, value in sizes.items()]
    return Split(*(toy2d(name, count, seed=_child_seed(seed, i)) for i, count in enumerate(counts)))
