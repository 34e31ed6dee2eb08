"""The transforms: each a :class:`pyro_flows.base.Flow`."""

from .autoregressive import IAF, MAF, AffineAutoregressive
from .coupling import AdditiveCoupling, AffineCoupling, Coupling
from .elementwise import Rescale
from .image import FactorOut, InvertibleConv1x1, Squeeze, depth_to_space, space_to_depth
from .normalization import ActNorm, BatchNorm
from .permute import Permute, Reverse
from .planar import Planar
from .preprocess import Logit, MuLaw
from .radial import Radial

__all__ = [
    "ActNorm",
    "FactorOut",
    "InvertibleConv1x1",
    "Squeeze",
    "depth_to_space",
    "space_to_depth",
    "Logit",
    "MuLaw",
    "AdditiveCoupling",
    "AffineAutoregressive",
    "AffineCoupling",
    "IAF",
    "MAF",
    "BatchNorm",
    "Coupling",
    "Permute",
    "Planar",
    "Radial",
    "Rescale",
    "Reverse",
]
