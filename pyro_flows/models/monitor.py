"""Watching a distillation for student collapse: :class:`DistillationMonitor` and
:class:`StudentCollapseWarning` (see :mod:`pyro_flows.models.distill`)."""

from __future__ import annotations

import math
import warnings

import torch

from ..validation import is_finite_number, positive_int
from .distill import DistillationLoss

Tensor = torch.Tensor

__all__ = ["DistillationMonitor", "StudentCollapseWarning"]


class StudentCollapseWarning(UserWarning):
    """The student's entropy keeps falling while the KL stalls: it is collapsing onto the teacher's modes."""


class DistillationMonitor:
    """Records the KL, the student's entropy and the cross-entropy per step and flags student collapse.

    The rule: with ``W = window``, once ``2 W`` steps are recorded, compare the means of the last ``W`` steps
    with the means of the ``W`` steps before them. The student is *collapsing* when its entropy fell by more
    than ``entropy_drop`` nats per sample while the KL fell by less than ``kl_improvement`` nats per sample
    (or rose): the cross-entropy it gains by concentrating on the teacher's modes is all spent on lost entropy.
    A :class:`StudentCollapseWarning` is issued when the rule starts to hold (not again while it keeps holding).
    Window means smooth out single-batch noise; the thresholds are in the units recorded (nats per sample,
    summed over the event), so scale them with the event size.

    Args:
        window: ``W``, steps per window.
        entropy_drop: the entropy fall (nats per sample) that counts as collapse...
        kl_improvement: ...while the KL falls by less than this.
        warn: issue warnings (else only :attr:`~pyro_flows.models.monitor.DistillationMonitor.collapsing` and
            :attr:`~pyro_flows.models.monitor.DistillationMonitor.collapse_steps` report it).

    Example:
        >>> import warnings
        >>> monitor = DistillationMonitor(window=2, entropy_drop=1.0, kl_improvement=0.1)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     flags = [monitor.record(kl=1.0, entropy=h) for h in [5.0, 5.0, 3.0, 3.0]]
        >>> flags, monitor.collapse_steps, [w.category.__name__ for w in caught]
        ([False, False, False, True], [3], ['StudentCollapseWarning'])
    """

    def __init__(self, window: int = 50, *, entropy_drop: float = 1.0, kl_improvement: float = 0.1, warn: bool = True):
        self.window = positive_int("window", window)
        for label, value in (("entropy_drop", entropy_drop), ("kl_improvement", kl_improvement)):
            if not is_finite_number(value):
                raise ValueError(f"{label} must be a finite number, got {value!r}")
        self.entropy_drop, self.kl_improvement, self.warn = float(entropy_drop), float(kl_improvement), warn
        #: The recorded values by name (``"kl"``, ``"entropy"``, ``"cross_entropy"``), one entry per step.
        self.history: dict[str, list[float]] = {"kl": [], "entropy": [], "cross_entropy": []}
        #: The steps (0-based record indices) at which collapse was flagged.
        self.collapse_steps: list[int] = []
        #: Whether the rule held at the latest step.
        self.collapsing = False

    def record(
        self,
        result: DistillationLoss | None = None,
        *,
        kl: float | Tensor | None = None,
        entropy: float | Tensor | None = None,
    ) -> bool:
        """Records one step, a :class:`DistillationLoss` or its ``kl`` and ``entropy``; returns whether the
        student is collapsing now (see the class docstring)."""
        if result is not None:
            if kl is not None or entropy is not None:
                raise ValueError("give a DistillationLoss or kl= and entropy=, not both")
            kl, entropy = result.kl, result.entropy
        if kl is None or entropy is None:
            raise ValueError("record needs a DistillationLoss, or both kl= and entropy=")
        k, h = (float(v.detach()) if isinstance(v, Tensor) else float(v) for v in (kl, entropy))
        self.history["kl"].append(k)
        self.history["entropy"].append(h)
        self.history["cross_entropy"].append(k + h)
        collapsing = self._rule()
        if collapsing and not self.collapsing:
            step = len(self.history["kl"]) - 1
            self.collapse_steps.append(step)
            if self.warn:
                drop, gain = self.changes()
                warnings.warn(
                    f"student collapse at step {step}: over the last {self.window} steps the entropy fell by "
                    f"{drop:.3g} nats/sample (> {self.entropy_drop:g}) while the KL improved by {gain:.3g} "
                    f"(< {self.kl_improvement:g})",
                    StudentCollapseWarning,
                    stacklevel=2,
                )
        self.collapsing = collapsing
        return collapsing

    def changes(self) -> tuple[float, float]:
        """``(entropy fall, KL improvement)`` between the last two windows (NaN before ``2 W`` steps)."""
        w, kls, hs = self.window, self.history["kl"], self.history["entropy"]
        if len(kls) < 2 * w:
            return math.nan, math.nan

        def mean(values: list[float]) -> float:
            return sum(values) / len(values)

        return mean(hs[-2 * w : -w]) - mean(hs[-w:]), mean(kls[-2 * w : -w]) - mean(kls[-w:])

    def _rule(self) -> bool:
        drop, gain = self.changes()
        return not math.isnan(drop) and drop > self.entropy_drop and gain < self.kl_improvement


# --- power loss -------------------------------------------------------------------------------------------
