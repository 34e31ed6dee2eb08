"""The transforms: each a :class:`pyro_flows.base.Flow`."""

from .autoregressive import IAF, MAF, AffineAutoregressive
from .coupling import AdditiveCoupling, AffineCoupling, Coupling
from .elementwise import Rescale
from .normalization import BatchNorm
from .permute import Permute, Reverse
from .planar import Planar
from .preprocess import Logit
from .radial import Radial

__all__ = [
    "Logit",
    "AdditiveCoupling", "AffineAutoregressive", "AffineCoupling", "IAF", "MAF", "BatchNorm", "Coupling", "Permute", "Planar", "Radial", "Rescale",
    "Reverse",
]
