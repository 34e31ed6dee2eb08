"""What the data modules share: the :class:`Split` container, their argument checks and the scikit-learn import.

The checks raise the messages the data functions have always raised (``"n must be an int >= 1, got 0"``); they
are public inside the package, for its modules, and not part of ``pyro_flows.data.__all__``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

__all__ = ["Split"]


class Split(NamedTuple):
    """Train, validation and test tensors, e.g. of shape ``(N, D)`` or ``(N, 1, 28, 28)``."""

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor


def check_int(name: str, value: object, *, minimum: int) -> int:
    """``value`` as an int, or a ``ValueError`` unless it is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_name(name: object, valid: tuple[str, ...]) -> str:
    """``name``, or a ``ValueError`` listing the ``valid`` data set names."""
    if not isinstance(name, str) or name not in valid:
        raise ValueError(f"unknown data set {name!r}; valid names are: {', '.join(valid)}")
    return name


def check_flag(name: str, value: object, *, owner: str) -> bool:
    """``value``, or a ``TypeError`` unless it is a bool (``"no"`` is truthy, so strings are refused)."""
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r}")
    return value


def sklearn_datasets():
    """``sklearn.datasets``, imported on first use so that ``import pyro_flows`` does not need scikit-learn."""
    try:
        from sklearn import datasets
    except ImportError as err:
        raise ImportError(
            "pyro_flows.data needs scikit-learn for the moons, circles and digits sets: "
            "pip install 'pyro_flows[datasets]'"
        ) from err
    return datasets
