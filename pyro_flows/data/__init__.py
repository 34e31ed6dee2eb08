"""Data sets and data utilities for training and evaluating flows; nothing is ever downloaded.

Every name is importable from ``pyro_flows.data``; the code lives in one module per job:

- ``pyro_flows.data.toy``: the toy 2-D densities of :data:`TOY2D` (:func:`toy2d`, generated on the fly and
  standardized by one fixed map per set), and :func:`load`, which gives any set of :data:`DATASETS` (the toy
  sets and ``"digits"``) as a :class:`Split`.
- ``pyro_flows.data.images``: scikit-learn's bundled 8x8 digits (:func:`digits`, dequantized to ``[0, 1)`` and
  flattened to 64 values; :func:`digits_bits_per_dim`, :data:`DIGITS_SHAPE`, :data:`DIGITS_LEVELS`,
  :data:`DIGITS_NLL_OFFSET`) and MNIST: :func:`mnist` (uint8 pixels of shape ``(N, 1, 28, 28)``,
  :data:`MNIST_SHAPE`) and :func:`binarized_mnist` (the fixed 0/1 binarization, float32).
- ``pyro_flows.data.pixels``: :func:`dequantize` (uniform noise per minibatch), :func:`binarize` (dynamic
  binarization) and :func:`bits_per_dim` (likelihoods in pixel space).
- ``pyro_flows.data.speech``: the spoken digits, 8 kHz 16-bit waveforms with digit and speaker labels, as a
  :class:`Speech` of whole clips or windows (:func:`spoken_digits`, :data:`SPEECH_SPLITS`), and fresh windows
  cropped from whole clips (:func:`speech_windows`).
- ``pyro_flows.data.files``: :func:`data_dir`, the offline data folder, and the one reader of its ``.npz``
  files, which names the file in every error; ``pyro_flows.data.common``: :class:`Split` and the shared
  argument checks.

What the sets return differs: the toy sets ``float32`` tensors of shape ``(N, 2)``; :func:`digits` a
:class:`Split` of ``float32`` ``(N, 64)`` tensors; :func:`mnist` a :class:`Split` of ``uint8`` images,
:func:`binarized_mnist` of ``float32`` 0/1 images; :func:`spoken_digits` a :class:`Speech`. All are CPU tensors;
those of a function with a ``seed`` are deterministic given it, those read from a file given the file.

In memory: the toy sets and the digits; ``moons``, ``circles`` and the digits need scikit-learn, an optional
dependency (``pip install 'pyro_flows[datasets]'``), and without it raise an ``ImportError`` saying so. From
files: MNIST, binarized MNIST and the spoken digits are read from ``.npz`` files of the offline data folder
(:func:`data_dir`, or a loader's ``path=``).

Example:
    >>> from pyro_flows import data
    >>> x = data.toy2d("moons", 500, seed=1)
    >>> x.shape, x.dtype
    (torch.Size([500, 2]), torch.float32)
    >>> split = data.load("eight_gaussians", n_train=100, n_valid=20, n_test=20)
    >>> tuple(len(t) for t in split)
    (100, 20, 20)
    >>> import torch
    >>> pixels = torch.tensor([[0, 128, 255]], dtype=torch.uint8)  # e.g. from data.mnist()
    >>> x = data.dequantize(pixels)
    >>> x.shape, x.dtype, bool((x >= 0).all() and (x <= 1).all())
    (torch.Size([1, 3]), torch.float32, True)
    >>> round(data.bits_per_dim(0.0, 784), 6)  # a uniform density on [0, 1)^784
    8.0
"""

from .common import Split
from .files import data_dir
from .images import (
    DIGITS_LEVELS,
    DIGITS_NLL_OFFSET,
    DIGITS_SHAPE,
    MNIST_SHAPE,
    MNIST_TEST_CLASS_COUNTS,
    binarized_mnist,
    digits,
    digits_bits_per_dim,
    evaluation_subset,
    mnist,
)
from .pixels import binarize, bits_per_dim, dequantize
from .speech import SPEECH_SPLITS, Speech, speech_windows, spoken_digits
from .toy import DATASETS, TOY2D, load, toy2d

__all__ = [
    "binarized_mnist",
    "binarize",
    "TOY2D",
    "DATASETS",
    "DIGITS_SHAPE",
    "DIGITS_LEVELS",
    "DIGITS_NLL_OFFSET",
    "Split",
    "toy2d",
    "digits",
    "digits_bits_per_dim",
    "bits_per_dim",
    "dequantize",
    "data_dir",
    "mnist",
    "MNIST_SHAPE",
    "MNIST_TEST_CLASS_COUNTS",
    "evaluation_subset",
    "spoken_digits",
    "speech_windows",
    "Speech",
    "SPEECH_SPLITS",
    "load",
]
