"""Deprecated since 0.2: :mod:`pyro_flows.models.distill` (and ``pyro_flows.models``) holds distillation now.

``pyro_flows.distill.X`` keeps working, with a ``DeprecationWarning`` naming the new place, until 0.4.
"""

from __future__ import annotations

import warnings

from . import models
from .models import distill, monitor, power, steps

__all__ = [*distill.__all__, *monitor.__all__, *power.__all__, *steps.__all__]


def __getattr__(name: str):
    if name in __all__:
        warnings.warn(
            f"pyro_flows.distill.{name} is deprecated since 0.2 and will be removed in 0.4; use "
            f"pyro_flows.models.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(models, name)
    raise AttributeError(f"module 'pyro_flows.distill' has no attribute {name!r}")
