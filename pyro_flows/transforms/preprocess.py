"""Preprocessing of bounded data as a bijection, its Jacobian kept inside the likelihood."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.distributions import constraints

from ..base import Flow, as_event_shape

__all__ = ["Logit"]


class Logit(Flow):
    r"""The logit transform of data in ``[0, 1]``: ``y = logit(lam + (1 - 2 lam) x)``.

    Flow models of images work in logit space: pixels dequantized to ``[0, 1)`` (see
    :func:`pyro_flows.data.dequantize`) are squashed away from the edges by ``lam`` and mapped to the real
    line. End a flow with ``Logit(shape).inv`` (its inverse, a scaled sigmoid) so that the
    ``TransformedDistribution`` lives on pixel space: its ``log_prob`` then includes this map's exact log-det
    and :func:`pyro_flows.data.bits_per_dim` converts it to pixel space.

    The map is defined, and declares its domain, on ``(-m, 1 + m)`` with ``m = lam / (1 - 2 lam)``: the whole
    preimage of the real line. So the distribution's support is that interval, a little wider than
    ``[0, 1]``: data in ``[0, 1]`` are scored exactly, and a sample may lie up to ``m`` outside ``[0, 1]``
    (about 0.05 for ``lam = 0.05``; clip samples to show them as images). A distribution always scores its
    own samples.

    ``log|dy/dx| = sum log(1 - 2 lam) - log p - log(1 - p)`` with ``p = lam + (1 - 2 lam) x``.

    Fast direction: both.

    Args:
        event_shape: shape of one example, e.g. ``(784,)`` or ``(1, 28, 28)`` (an int means ``(n,)``).
        lam: the margin ``lam`` in ``[0, 0.5)``: ``1e-6`` in the MAF paper, ``0.05`` in RealNVP.

    Raises:
        ValueError: when the forward map is given values outside its domain ``[-m, 1 + m]`` (NaN, say).

    Example:
        >>> import torch
        >>> t = Logit(2, lam=0.05)
        >>> x = torch.tensor([0.5, 0.9])
        >>> torch.allclose(t.inv(t(x)), x)
        True

    References:
        Dinh, Sohl-Dickstein & Bengio, Density estimation using Real NVP, arXiv:1605.08803 (section 4.1);
        Papamakarios, Pavlakou & Murray, Masked Autoregressive Flow for Density Estimation, arXiv:1705.07057.
    """

    fast = "both"

    def __init__(self, event_shape: int | Sequence[int], *, lam: float = 1e-6):
        shape = as_event_shape(event_shape, name="event_shape")
        if not isinstance(lam, (int, float)) or isinstance(lam, bool) or not 0 <= lam < 0.5:
            raise ValueError(f"lam must be a number in [0, 0.5), got {lam!r}")
        super().__init__(event_shape=shape)
        self.lam = float(lam)

    @property
    def margin(self) -> float:
        """``m = lam / (1 - 2 lam)``: how far outside ``[0, 1]`` the domain reaches."""
        return self.lam / (1 - 2 * self.lam)

    @property
    def domain(self):
        m = self.margin
        return constraints.independent(constraints.interval(-m, 1 + m), len(self.event_shape))

    def _log_det(self, y):
        """``sum log(1 - 2 lam) - log p - log(1 - p)`` from ``y = logit(p)`` (stable for large ``|y|``)."""
        log_p_1mp = -F.softplus(-y) - F.softplus(y)
        n = math.prod(self.event_shape)
        return n * math.log1p(-2 * self.lam) - log_p_1mp.sum(tuple(range(-len(self.event_shape), 0)))

    def _forward_and_log_det(self, x, context=None):
        low, high = (float(v) for v in torch.aminmax(x.detach())) if x.numel() else (0.0, 1.0)
        m = self.margin
        if not (-m <= low and high <= 1 + m):  # NaN compares False: rejected too
            raise ValueError(
                f"Logit expected data in [0, 1] (e.g. pixels dequantized and divided by the number of levels; "
                f"its domain reaches {m:.4g} beyond), got values in [{low:.4g}, {high:.4g}]"
            )
        y = torch.logit(self.lam + (1 - 2 * self.lam) * x)
        return y, self._log_det(y)

    def _inverse_and_log_det(self, y, context=None):
        x = (torch.sigmoid(y) - self.lam) / (1 - 2 * self.lam)
        return x, self._log_det(y)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", lam={self.lam:g}"
