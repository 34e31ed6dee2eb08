"""pyro_flows: normalizing flows for Pyro.

Every flow is a Pyro ``TransformModule``; put it in ``pyro.distributions.TransformedDistribution`` (or use
:func:`flow_distribution`) for density estimation by maximum likelihood or as a variational guide in SVI.
"""

__version__ = "0.2.0"

from . import data, distill, loop, masks, models, nn, ops, orderings, protocols, state, validation
from .base import FAST, Compose, Flow, FlowLike, Inverse
from .distributions import ConditionalFlowDistribution, FlowDistribution, flow_distribution
from .flows import glow, iaf, maf, nice, planar, radial, realnvp, realnvp_image
from .train import FitResult, History, TrainingDiverged, fit, nll
from .transforms import (
    IAF,
    MAF,
    ActNorm,
    AdditiveCoupling,
    AffineAutoregressive,
    AffineCoupling,
    BatchNorm,
    Coupling,
    FactorOut,
    InvertibleConv1x1,
    Logit,
    MuLaw,
    Permute,
    Planar,
    Radial,
    Rescale,
    Reverse,
    Squeeze,
    depth_to_space,
    space_to_depth,
)

__all__ = [
    "__version__",
    # contract
    "FlowLike",
    "Flow",
    "Inverse",
    "Compose",
    "FAST",
    "flow_distribution",
    "FlowDistribution",
    "ConditionalFlowDistribution",
    # transforms
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
    "BatchNorm",
    "IAF",
    "MAF",
    "Coupling",
    "Permute",
    "Planar",
    "Radial",
    "Rescale",
    "Reverse",
    # factories
    "planar",
    "radial",
    "nice",
    "realnvp",
    "maf",
    "iaf",
    "realnvp_image",
    "glow",
    # training
    "fit",
    "nll",
    "FitResult",
    "History",
    "TrainingDiverged",
    # modules
    "data",
    "distill",
    "loop",
    "models",
    "masks",
    "nn",
    "ops",
    "orderings",
    "protocols",
    "state",
    "validation",
]
