"""Factories for the flows of the literature: each returns a :class:`~pyro_flows.base.Compose`."""

from __future__ import annotations

from typing import Optional, Sequence

from . import masks
from .base import Compose
from .transforms import IAF, MAF, AdditiveCoupling, AffineCoupling, BatchNorm, Planar, Radial, Rescale

__all__ = ["planar", "radial", "nice", "realnvp", "maf", "iaf"]


def _layers(num_layers: int) -> int:
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
    return num_layers


def planar(input_dim: int, *, num_layers: int = 8, context_dim: Optional[int] = None) -> Compose:
    """A stack of :class:`~pyro_flows.transforms.Planar` layers. Fast: forward; exact inverse by Newton.

    Example:
        >>> len(planar(2, num_layers=3).parts)
        3
    """
    return Compose([Planar(input_dim, context_dim=context_dim) for _ in range(_layers(num_layers))])


def radial(input_dim: int, *, num_layers: int = 8, context_dim: Optional[int] = None) -> Compose:
    """A stack of :class:`~pyro_flows.transforms.Radial` layers. Fast: both (closed-form inverse).

    Example:
        >>> len(radial(2, num_layers=3).parts)
        3
    """
    return Compose([Radial(input_dim, context_dim=context_dim) for _ in range(_layers(num_layers))])


def _alternating_masks(input_dim, num_layers):
    # Halves for D >= 2 alternate which half is kept; consecutive layers transform complementary halves.
    return [masks.halves(input_dim, flip=bool(i % 2)) for i in range(num_layers)]


def nice(
    input_dim: int, *, num_layers: int = 4, hidden_dims: Sequence[int] = (256, 256),
    context_dim: Optional[int] = None,
) -> Compose:
    """NICE: additive couplings on alternating halves, then a diagonal :class:`Rescale`. Fast: both.

    Example:
        >>> [type(p).__name__ for p in nice(4, num_layers=2, hidden_dims=(8,)).parts]
        ['AdditiveCoupling', 'AdditiveCoupling', 'Rescale']

    References:
        Dinh, Krueger & Bengio, NICE, arXiv:1410.8516.
    """
    if input_dim < 2:
        raise ValueError(f"nice needs input_dim >= 2 to split the dimensions, got {input_dim}")
    parts = [
        AdditiveCoupling(input_dim, m, hidden_dims=hidden_dims, context_dim=context_dim)
        for m in _alternating_masks(input_dim, _layers(num_layers))
    ]
    return Compose(parts + [Rescale(input_dim, context_dim=context_dim)])


def realnvp(
    input_dim: int, *, num_layers: int = 8, hidden_dims: Sequence[int] = (256, 256), batch_norm: bool = False,
    context_dim: Optional[int] = None, scale: str = "softclamp",
) -> Compose:
    """RealNVP for vectors: affine couplings on alternating halves, optionally with batch norm between them.

    Fast: both.

    Example:
        >>> [type(p).__name__ for p in realnvp(4, num_layers=2, hidden_dims=(8,), batch_norm=True).parts]
        ['AffineCoupling', 'BatchNorm', 'AffineCoupling']

    References:
        Dinh, Sohl-Dickstein & Bengio, Density estimation using Real NVP, arXiv:1605.08803.
    """
    if input_dim < 2:
        raise ValueError(f"realnvp needs input_dim >= 2 to split the dimensions, got {input_dim}")
    parts = []
    for i, m in enumerate(_alternating_masks(input_dim, _layers(num_layers))):
        if batch_norm and i:
            parts.append(BatchNorm(input_dim))
        parts.append(AffineCoupling(input_dim, m, hidden_dims=hidden_dims, context_dim=context_dim, scale=scale))
    return Compose(parts)


def _autoregressive(layer, input_dim, num_layers, hidden_dims, ordering, context_dim, batch_norm, seed, kwargs):
    if ordering not in ("reversed", "random"):
        raise ValueError(f"ordering between layers must be 'reversed' or 'random', got {ordering!r}")
    parts = []
    for i in range(_layers(num_layers)):
        if batch_norm and i:
            parts.append(BatchNorm(input_dim))
        order = ("natural", "reversed")[i % 2] if ordering == "reversed" else "random"
        parts.append(layer(input_dim, hidden_dims, context_dim=context_dim, ordering=order,
                           seed=None if seed is None else seed + i, **kwargs))
    return Compose(parts)


def maf(
    input_dim: int, *, num_layers: int = 5, hidden_dims: Sequence[int] = (256, 256), ordering: str = "reversed",
    context_dim: Optional[int] = None, batch_norm: bool = False, seed: Optional[int] = None, **kwargs,
) -> Compose:
    """MAF: ``num_layers`` :class:`~pyro_flows.transforms.MAF` layers whose MADE orderings alternate
    (``"reversed"``) or are drawn at random (``"random"``, seeded by ``seed``). Fast: inverse (density).

    Example:
        >>> flow = maf(3, num_layers=2, hidden_dims=(8,))
        >>> [p.conditioner.degrees.tolist() for p in flow.parts]
        [[1, 2, 3], [3, 2, 1]]

    References:
        Papamakarios, Pavlakou & Murray, Masked Autoregressive Flow for Density Estimation, arXiv:1705.07057.
    """
    return _autoregressive(MAF, input_dim, num_layers, hidden_dims, ordering, context_dim, batch_norm, seed, kwargs)


def iaf(
    input_dim: int, *, num_layers: int = 5, hidden_dims: Sequence[int] = (256, 256), ordering: str = "reversed",
    context_dim: Optional[int] = None, batch_norm: bool = False, seed: Optional[int] = None, **kwargs,
) -> Compose:
    """IAF: ``num_layers`` :class:`~pyro_flows.transforms.IAF` layers with alternating or random orderings.
    Fast: forward (sampling, and the log-density of its own samples).

    Example:
        >>> len(iaf(3, num_layers=2, hidden_dims=(8,)).parts)
        2

    References:
        Kingma et al., Improving Variational Inference with Inverse Autoregressive Flow, arXiv:1606.04934.
    """
    return _autoregressive(IAF, input_dim, num_layers, hidden_dims, ordering, context_dim, batch_norm, seed, kwargs)
