"""The transforms: each a :class:`pyro_flows.base.Flow`."""

from .coupling import AdditiveCoupling, AffineCoupling, Coupling
from .elementwise import Rescale
from .normalization import BatchNorm
from .permute import Permute, Reverse
from .planar import Planar
from .radial import Radial

__all__ = [
    "AdditiveCoupling", "AffineCoupling", "BatchNorm", "Coupling", "Permute", "Planar", "Radial", "Rescale",
    "Reverse",
]
