"""Preprocessing of bounded data as a bijection, its Jacobian kept inside the likelihood."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.distributions import constraints

from ..base import as_event_shape, sum_rightmost
from ..flow import Flow
from ..validation import is_finite_number

__all__ = ["Logit", "MuLaw"]


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


class MuLaw(Flow):
    r"""Mu-law companding of audio in ``[-1, 1]``: ``y = sign(x) log(1 + mu |x|) / log(1 + mu)``, exact log-det.

    The G.711 / WaveNet compander as a bijection, so a flow can model speech in companded space and still
    score the waveform itself: ``pf.Compose([flow, pf.MuLaw(T).inv])`` is a density over waveforms whose
    ``log_prob`` includes this map's log-det. Small amplitudes, where speech spends most of its time, are
    spread out (the slope at 0 is ``mu / log(1 + mu)``, about 46 for ``mu = 255``) and loud ones squeezed.
    ``MuLaw(T)(x)`` alone is the usual preprocessing of waveforms, e.g. those of
    :func:`pyro_flows.data.spoken_digits`.

    Inverse: ``x = sign(y) ((1 + mu)^|y| - 1) / mu``. Log-det:
    ``log|dy/dx| = sum log(mu) - log(log(1 + mu)) - log(1 + mu |x|)`` over the event dims.

    Domain: the formulas are an odd, strictly increasing bijection of the whole real line that maps
    ``[-1, 1]`` onto itself (``0 -> 0``, ``1 -> 1``), so the map is defined, and declares its domain and
    codomain, on the real line: a model in companded space may put some mass beyond ``[-1, 1]``, and its
    distribution still scores every sample it draws. Data in ``[-1, 1)`` (16-bit audio divided by 32768)
    stay in ``[-1, 1)``. The inverse overflows to infinity for ``|y| > 88 / log(1 + mu)`` in float32 (about
    16 for ``mu = 255``), far outside the audio range.

    Parameter-free. Fast direction: both.

    Args:
        event_shape: shape of one example, e.g. ``(T,)`` for a window of ``T`` samples (an int means ``(n,)``).
        mu: the compression parameter, a positive finite number: 255 for 8-bit mu-law (G.711, WaveNet).

    Raises:
        TypeError: if ``mu`` is not a number.
        ValueError: if ``mu`` is not positive and finite.

    Example:
        >>> import torch
        >>> t = MuLaw(3, mu=255)
        >>> y = t(torch.tensor([-1.0, 0.0, 1.0]))
        >>> y.tolist()
        [-1.0, 0.0, 1.0]
        >>> x = torch.tensor([0.01, -0.5, 0.9])
        >>> torch.allclose(t.inv(t(x)), x)
        True

    References:
        ITU-T Recommendation G.711 (1988); van den Oord et al., WaveNet: A Generative Model for Raw Audio,
        arXiv:1609.03499 (section 2.2).
    """

    fast = "both"

    def __init__(self, event_shape: int | Sequence[int], *, mu: float = 255.0):
        shape = as_event_shape(event_shape, name="event_shape")
        if isinstance(mu, bool) or not isinstance(mu, (int, float)):
            raise TypeError(f"mu must be a positive finite number (255 for 8-bit mu-law), got {mu!r}")
        if not is_finite_number(mu) or mu <= 0:
            raise ValueError(f"mu must be a positive finite number (255 for 8-bit mu-law), got {mu!r}")
        super().__init__(event_shape=shape)
        self.mu = float(mu)
        self._scale = math.log1p(self.mu)  # log(1 + mu): y = sign(x) log(1 + mu |x|) / scale
        self._log_slope = math.log(self.mu) - math.log(self._scale)  # log|dy/dx| at x = 0

    def _log_det(self, log1p_mu_abs_x):
        """``sum log(mu) - log(log(1 + mu)) - log(1 + mu |x|)`` from ``log(1 + mu |x|)``."""
        n = math.prod(self.event_shape)
        return n * self._log_slope - sum_rightmost(log1p_mu_abs_x, len(self.event_shape))

    def _forward_and_log_det(self, x, context=None):
        log1p_mu_abs_x = torch.log1p(self.mu * x.abs())
        y = torch.sign(x) * log1p_mu_abs_x / self._scale
        return y, self._log_det(log1p_mu_abs_x)

    def _inverse_and_log_det(self, y, context=None):
        log1p_mu_abs_x = self._scale * y.abs()  # log(1 + mu |x|) = |y| log(1 + mu), exactly
        x = torch.sign(y) * torch.expm1(log1p_mu_abs_x) / self.mu
        return x, self._log_det(log1p_mu_abs_x)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mu={self.mu:g}"
