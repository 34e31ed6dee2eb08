"""The transforms: each a :class:`~pyro_flows.Flow`. ``__all__`` here is the one list of them: ``pyro_flows``
exports every name in it."""

from .autoregressive import IAF, MAF, AffineAutoregressive, set_inversion
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
    "set_inversion",
]
