"""Factories for the flows of the literature: each returns a :class:`~pyro_flows.base.Compose`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import masks
from .compose import Compose
from .transforms import (
    IAF,
    MAF,
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    BatchNorm,
    FactorOut,
    InvertibleConv1x1,
    Planar,
    Radial,
    Rescale,
    Squeeze,
)
from .validation import event_shape, positive_int, renamed_argument

__all__ = ["planar", "radial", "nice", "realnvp", "maf", "iaf", "realnvp_image", "glow"]


def _layers(num_layers: int) -> int:
    return positive_int("num_layers", num_layers)


def planar(input_dim: int, *, num_layers: int = 8, context_dim: int | None = None) -> Compose:
    """A stack of :class:`~pyro_flows.transforms.Planar` layers. Fast: forward; exact inverse by Newton.

    Example:
        >>> len(planar(2, num_layers=3).parts)
        3
    """
    return Compose([Planar(input_dim, context_dim=context_dim) for _ in range(_layers(num_layers))])


def radial(input_dim: int, *, num_layers: int = 8, context_dim: int | None = None) -> Compose:
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
    input_dim: int,
    *,
    num_layers: int = 4,
    hidden_dims: Sequence[int] | None = None,
    context_dim: int | None = None,
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
    input_dim: int,
    *,
    num_layers: int = 8,
    hidden_dims: Sequence[int] | None = None,
    batch_norm: bool = False,
    context_dim: int | None = None,
    scale: str = "softclamp",
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
    parts: list = []
    for i, m in enumerate(_alternating_masks(input_dim, _layers(num_layers))):
        if batch_norm and i:
            parts.append(BatchNorm(input_dim))
        parts.append(AffineCoupling(input_dim, m, hidden_dims=hidden_dims, context_dim=context_dim, scale=scale))
    return Compose(parts)


def _autoregressive(
    layer, owner, event_shape, num_layers, hidden_dims, ordering, context_dim, batch_norm, seed, kwargs
):
    event_shape = renamed_argument(kwargs, "input_dim", "event_shape", event_shape, owner=owner)
    if event_shape is None:
        raise TypeError(f"{owner}() needs event_shape (an int D, or e.g. (C, T) with conditioner=)")
    conditioner = kwargs.pop("conditioner", None)
    if conditioner is not None:
        made_options = {"hidden_dims": hidden_dims, "ordering": ordering, "batch_norm": batch_norm, "seed": seed}
        return _with_conditioners(layer, event_shape, num_layers, conditioner, context_dim, made_options, kwargs)
    if ordering not in ("reversed", "random"):
        raise ValueError(f"ordering between layers must be 'reversed' or 'random', got {ordering!r}")
    parts = []
    for i in range(_layers(num_layers)):
        if batch_norm and i:
            parts.append(BatchNorm(event_shape))
        order = ("natural", "reversed")[i % 2] if ordering == "reversed" else "random"
        parts.append(
            layer(
                event_shape,
                hidden_dims,
                context_dim=context_dim,
                ordering=order,
                seed=None if seed is None else seed + i,
                **kwargs,
            )
        )
    return Compose(parts)


#: The MADE options of maf/iaf and their defaults: with conditioner= they would be ignored, so they are refused.
_MADE_DEFAULTS = {"hidden_dims": None, "ordering": "reversed", "batch_norm": False, "seed": None}


def _with_conditioners(layer, event_shape, num_layers, conditioner, context_dim, made_options, kwargs):
    """A stack whose layer ``i`` gets its own conditioner ``conditioner(i)``; the MADE options are refused."""
    if isinstance(conditioner, torch.nn.Module) or not callable(conditioner):
        raise TypeError(
            "conditioner= of a factory must be a function of the layer index that builds a fresh conditioner "
            "(e.g. conditioner=lambda i: pf.nn.WaveNet(1, 2048)), so that no two layers share one; "
            f"got {type(conditioner).__name__}"
        )
    ignored = [name for name, default in _MADE_DEFAULTS.items() if made_options[name] != default]
    if ignored:
        raise ValueError(f"{', '.join(ignored)} would be ignored with conditioner=: configure the conditioners instead")
    parts = [
        layer(event_shape, conditioner=conditioner(i), context_dim=context_dim, **kwargs)
        for i in range(_layers(num_layers))
    ]
    return Compose(parts)


def _stack_factory(layer, name: str, doc: str):
    """The factory ``name`` of ``layer`` stacks: maf and iaf are this one signature with another layer."""

    def factory(
        event_shape: int | Sequence[int] | None = None,
        *,
        num_layers: int = 5,
        hidden_dims: Sequence[int] | None = None,
        ordering: str = "reversed",
        context_dim: int | None = None,
        batch_norm: bool = False,
        seed: int | None = None,
        **kwargs,
    ) -> Compose:
        return _autoregressive(
            layer, name, event_shape, num_layers, hidden_dims, ordering, context_dim, batch_norm, seed, kwargs
        )

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = doc
    return factory


maf = _stack_factory(
    MAF,
    "maf",
    """MAF: ``num_layers`` :class:`~pyro_flows.transforms.MAF` layers whose MADE orderings alternate
    (``"reversed"``) or are drawn at random (``"random"``, seeded by ``seed``). Fast: inverse (density).
    ``hidden_dims`` defaults to :func:`~pyro_flows.nn.default_hidden_dims` (two layers of ``10 * D`` units
    within 32..512), as in every vector factory.

    Other conditioners: ``conditioner=lambda i: net`` builds layer ``i``'s own conditioner (a
    :class:`~pyro_flows.nn.WaveNet` for ``event_shape = (C, T)``, a :class:`~pyro_flows.nn.PixelCNN` for
    ``(C, H, W)``, ...); the MADE options (``hidden_dims``, ``ordering``, ``seed``, ``batch_norm``) are then
    refused, as the conditioners would ignore them. Other keyword options go to every layer.

    Example:
        >>> flow = maf(3, num_layers=2, hidden_dims=(8,))
        >>> [p.conditioner.degrees.tolist() for p in flow.parts]
        [[1, 2, 3], [3, 2, 1]]

    References:
        Papamakarios, Pavlakou & Murray, Masked Autoregressive Flow for Density Estimation, arXiv:1705.07057.
    """,
)

iaf = _stack_factory(
    IAF,
    "iaf",
    """IAF: ``num_layers`` :class:`~pyro_flows.transforms.IAF` layers with alternating or random orderings, the
    options of :func:`maf`. Fast: forward (sampling, and the log-density of its own samples).

    Example:
        >>> len(iaf(3, num_layers=2, hidden_dims=(8,)).parts)
        2

    References:
        Kingma et al., Improving Variational Inference with Inverse Autoregressive Flow, arXiv:1606.04934.
    """,
)


# --- images ------------------------------------------------------------------------------------------------
def _image_shape(shape, levels, divisor, name):
    shape = event_shape(shape, name=f"{name}'s shape")
    if len(shape) != 3:
        raise ValueError(f"{name} needs an image shape (C, H, W) of positive ints, got {shape!r}")
    positive_int("levels", levels)
    if shape[1] % divisor or shape[2] % divisor:
        raise ValueError(
            f"{name} with levels={levels} squeezes {divisor.bit_length() - 1} times: H and W must be divisible "
            f"by {divisor}, got shape {shape}"
        )
    return shape


def _squeezed(shape):
    c, h, w = shape
    return (4 * c, h // 2, w // 2)


def _sampling_order(density_order) -> Compose:
    """A Compose whose inverse (the density direction, data to latent) runs ``density_order`` first to last."""
    return Compose(list(reversed(density_order)))


def realnvp_image(
    shape,
    *,
    levels: int = 2,
    hidden_channels: int = 64,
    num_blocks: int = 2,
    batch_norm: bool = False,
    scale: str = "softclamp",
    context_dim: int | None = None,
) -> Compose:
    """RealNVP's multi-scale architecture for (C, H, W) images, as one flow over (C, H, W).

    In the density direction (data to latent), each level but the last runs 3 affine couplings with
    alternating checkerboard masks, squeezes (:class:`~pyro_flows.transforms.Squeeze`), runs 3 couplings
    with alternating channel masks, and factors out half of the channels
    (:class:`~pyro_flows.transforms.FactorOut`), which go straight to the base distribution; the last
    level runs 4 checkerboard couplings. With ``batch_norm``, a per-channel
    :class:`~pyro_flows.transforms.BatchNorm` follows every coupling but the last of each group. The
    conditioners are :class:`~pyro_flows.nn.ConvResNet` s. Fast: both.

    Args:
        shape: the image shape (C, H, W); H and W divisible by ``2 ** (levels - 1)``.
        levels: number of scales.
        hidden_channels: width of the conditioners.
        num_blocks: residual blocks per conditioner.
        batch_norm: insert batch normalization between couplings.
        scale: the couplings' scale parametrization (see :func:`~pyro_flows.ops.log_scale`).
        context_dim: size of a context vector given to every conditioner.

    Example:
        >>> import torch, pyro_flows as pf
        >>> flow = realnvp_image((1, 4, 4), levels=2, hidden_channels=4, num_blocks=1)
        >>> pf.flow_distribution(flow).log_prob(torch.randn(3, 1, 4, 4)).shape
        torch.Size([3])

    References:
        Dinh, Sohl-Dickstein & Bengio, Density estimation using Real NVP, arXiv:1605.08803 (section 3.6).
    """
    shape = _image_shape(shape, levels, 2 ** (levels - 1), "realnvp_image")
    kw = dict(hidden_channels=hidden_channels, num_blocks=num_blocks, scale=scale, context_dim=context_dim)

    def group(s, make_mask, n):
        parts = []
        for i in range(n):
            if batch_norm and i:
                parts.append(BatchNorm(s))
            parts.append(AffineCoupling(s, make_mask(s, flip=bool(i % 2)), **kw))
        return parts

    def level(s, remaining):
        if remaining == 1:
            return group(s, masks.checkerboard, 4)
        sq = _squeezed(s)
        half = sq[0] // 2
        inner = group(sq, masks.channels, 3) + [FactorOut(_sampling_order(level((half, *sq[1:]), remaining - 1)), half)]
        return group(s, masks.checkerboard, 3) + [Squeeze(_sampling_order(inner))]

    return _sampling_order(level(shape, levels))


def glow(
    shape,
    *,
    levels: int = 3,
    depth: int = 8,
    hidden_channels: int = 128,
    num_blocks: int = 1,
    lu: bool = True,
    additive: bool = False,
    scale: str = "softclamp",
    context_dim: int | None = None,
) -> Compose:
    """Glow's multi-scale architecture for (C, H, W) images, as one flow over (C, H, W).

    In the density direction (data to latent), each of the ``levels`` levels squeezes, runs ``depth`` steps
    of :class:`~pyro_flows.transforms.ActNorm` -> :class:`~pyro_flows.transforms.InvertibleConv1x1` ->
    affine coupling (channel mask; ``scale="sigmoid"`` for Glow's ``sigmoid(h + 2)``; additive with
    ``additive=True``), and, except at the last level, factors out half of the channels. ActNorm's
    data-dependent initialization happens on the first batch the flow sees (call ``log_prob`` on a data
    batch first). The paper used ``levels=3, depth=32, hidden_channels=512``. Fast: both.

    Args:
        shape: the image shape (C, H, W); H and W divisible by ``2 ** levels``.
        levels: L, the number of scales.
        depth: K, the steps per level.
        hidden_channels: width of the coupling conditioners (:class:`~pyro_flows.nn.ConvResNet`).
        num_blocks: residual blocks per conditioner.
        lu: LU-parametrized 1x1 convolutions.
        additive: additive (volume-preserving) couplings instead of affine.
        scale: the affine couplings' scale parametrization.
        context_dim: size of a context vector given to every conditioner.

    Example:
        >>> import torch, pyro_flows as pf
        >>> flow = glow((1, 4, 4), levels=2, depth=1, hidden_channels=4)
        >>> pf.flow_distribution(flow).sample((2,)).shape
        torch.Size([2, 1, 4, 4])

    References:
        Kingma & Dhariwal, Glow: Generative Flow with Invertible 1x1 Convolutions, arXiv:1807.03039.
    """
    shape = _image_shape(shape, levels, 2**levels, "glow")
    positive_int("depth", depth)
    kw = dict(hidden_channels=hidden_channels, num_blocks=num_blocks, context_dim=context_dim)
    coupling = (
        (lambda s: AdditiveCoupling(s, masks.channels(s), **kw))
        if additive
        else (lambda s: AffineCoupling(s, masks.channels(s), scale=scale, **kw))
    )

    def level(s, remaining):
        sq = _squeezed(s)
        steps = []
        for _ in range(depth):
            steps += [ActNorm(sq), InvertibleConv1x1(sq, lu=lu), coupling(sq)]
        if remaining > 1:
            half = sq[0] // 2
            steps.append(FactorOut(level((half, *sq[1:]), remaining - 1), half))
        return Squeeze(_sampling_order(steps))

    return Compose([level(shape, levels)])
