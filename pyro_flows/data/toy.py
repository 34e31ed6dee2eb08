"""Toy 2-D densities, generated on the fly, and :func:`load`, which gives any in-memory set as a :class:`Split`.

The sets of :data:`TOY2D` follow the definitions popularized by FFJORD (Grathwohl et al. 2018,
arXiv:1810.01367); each is standardized by one fixed affine map (see :func:`toy2d`), the same for every seed,
size and split. ``moons`` and ``circles`` need scikit-learn, an optional dependency
(``pip install 'pyro_flows[datasets]'``); without it they raise an ``ImportError`` saying so, and the other sets
work. :func:`load` also loads the 8x8 digits by name (:data:`DATASETS`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from ..validation import is_finite_number
from .common import Split, check_int, check_name, sklearn_datasets
from .images import digits

__all__ = ["TOY2D", "DATASETS", "toy2d", "load"]

TOY2D = ("moons", "circles", "eight_gaussians", "checkerboard", "pinwheel", "spirals")
"""Names accepted by :func:`toy2d` and :func:`load`."""

DATASETS = TOY2D + ("digits",)
"""Every name accepted by :func:`load`."""


def _moons(rng: np.random.Generator, n: int, noise: float) -> np.ndarray:
    state = np.random.RandomState(rng.integers(2**31))
    return sklearn_datasets().make_moons(n_samples=n, noise=noise, random_state=state)[0]


def _circles(rng: np.random.Generator, n: int, noise: float) -> np.ndarray:
    state = np.random.RandomState(rng.integers(2**31))
    return sklearn_datasets().make_circles(n_samples=n, noise=noise, factor=0.5, random_state=state)[0]


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

    Standardization: each set is mapped by one fixed affine map per set, ``(x - center) / scale``, with
    ``center`` the set's population mean and ``scale`` its population root mean per-coordinate standard
    deviation, both computed once at the default noise level (analytically where possible, otherwise from 4e6
    samples). The map is the same for every seed, size and split, so train, valid and test share it and results
    are comparable across runs; with the default noise the data have mean about 0 and a root-mean-square
    per-coordinate standard deviation of about 1 (within 1%). The map is isotropic (one scale for both
    coordinates), so the shapes are not distorted, and ``noise`` changes the shape but not the map.

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
    check_name(name, TOY2D)
    n = check_int("n", n, minimum=1)
    seed = check_int("seed", seed, minimum=0)
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
    check_name(name, DATASETS)
    seed = check_int("seed", seed, minimum=0)
    sizes = {"n_train": n_train, "n_valid": n_valid, "n_test": n_test}
    if name == "digits":
        given = [key for key, value in sizes.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} cannot be set for 'digits': its split is fixed at 70/15/15")
        return digits(seed=seed)
    defaults = {"n_train": 10_000, "n_valid": 2_000, "n_test": 2_000}
    counts = [check_int(key, defaults[key] if value is None else value, minimum=1) for key, value in sizes.items()]
    return Split(*(toy2d(name, count, seed=_child_seed(seed, i)) for i, count in enumerate(counts)))
