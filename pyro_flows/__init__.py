"""pyro_flows: normalizing flows for Pyro.

Every flow is a Pyro ``TransformModule``; put it in ``pyro.distributions.TransformedDistribution`` (or use
:func:`flow_distribution`) for density estimation by maximum likelihood or as a variational guide in SVI.
"""

__version__ = "0.2.0"

from . import data, loop, masks, models, nn, ops, orderings, protocols, state, transforms, validation
from . import distill as distill  # deprecated: pyro_flows.models
from .base import FAST, FlowLike, Inverse, Layer, layers
from .compose import Compose
from .distributions import ConditionalFlowDistribution, FlowDistribution, bind, flow_distribution, modules_of
from .flow import Flow
from .flows import glow, iaf, maf, nice, planar, radial, realnvp, realnvp_image
from .train import FitResult, History, TrainingDiverged, fit, nll
from .transforms import *  # noqa: F403  (the layers: their one list is pyro_flows.transforms.__all__)

__all__ = [
    "__version__",
    # contract
    "FlowLike",
    "Flow",
    "Inverse",
    "Compose",
    "FAST",
    "Layer",
    "layers",
    "flow_distribution",
    "FlowDistribution",
    "ConditionalFlowDistribution",
    "bind",
    "modules_of",
    # transforms
    *transforms.__all__,
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
