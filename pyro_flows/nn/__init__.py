"""Conditioners: networks mapping (input, context) to a tuple of parameter tensors.

Every conditioner follows one interface, ``forward(x, context=None) -> tuple[Tensor, ...]``, and zero-initializes
its last layer, so a freshly built flow is the identity map.
"""

from .conv import ConvResNet
from .dense import DenseConditioner, Hypernet, MaskedDense, broadcast_context, default_hidden_dims
from .made import MADE, MaskedLinear, sequential_inverse
from .pixelcnn import PixelCNN, raster_degrees
from .recurrent import RecurrentConditioner
from .sequence import SequenceConditioner, time_degrees
from .wavenet import WaveNet

__all__ = [
    "ConvResNet",
    "DenseConditioner",
    "Hypernet",
    "MADE",
    "MaskedDense",
    "MaskedLinear",
    "broadcast_context",
    "default_hidden_dims",
    "sequential_inverse",
    "SequenceConditioner",
    "time_degrees",
    "WaveNet",
    "PixelCNN",
    "raster_degrees",
    "RecurrentConditioner",
]
