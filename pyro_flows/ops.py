"""Elementwise invertible maps, and the ONE place where scales are parametrized.

Coupling and autoregressive layers are structure (which dimensions condition which) plus one of these
elementwise maps. Each map takes the raw parameters a conditioner produced and works in both directions,
returning the elementwise log|dy/dx| (not summed: the caller sums over its event dims).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .validation import is_finite_number

__all__ = ["SCALES", "log_scale", "Affine", "Additive", "GatedAffine"]

Tensor = torch.Tensor

#: Names accepted by :func:`log_scale`.
SCALES = ("softclamp", "exp", "sigmoid")


def log_scale(raw: Tensor, kind: str = "softclamp", *, bound: float = 3.0) -> Tensor:
    """Maps a conditioner's raw output to the log of a positive scale.

    * ``"softclamp"`` (default): ``bound * tanh(raw / bound)``. Scales stay within ``[e^-bound, e^bound]``
      (about 0.05 to 20 for the default bound 3), so one layer cannot blow up or collapse a dimension, and
      ``raw = 0`` gives scale 1 (a zero-initialized conditioner makes the identity).
    * ``"exp"``: ``raw`` itself (unbounded; the original RealNVP/MAF choice).
    * ``"sigmoid"``: ``-log sigmoid(raw + 2)`` (Glow). Glow multiplies by ``sigmoid(h + 2)``, in (0, 1), in
      its density direction (data to latent), which pyro_flows runs as the INVERSE; so the forward
      (sampling) scale is ``1 / sigmoid(raw + 2)``, in (1, inf), about 1.13 at ``raw = 0``, and the density
      direction can only contract, never blow up.

    Args:
        raw: unconstrained tensor.
        kind: one of :data:`SCALES`.
        bound: the bound of ``"softclamp"``.

    Returns:
        The log-scale, same shape as ``raw``.

    Example:
        >>> import torch
        >>> log_scale(torch.tensor([0.0, 100.0])).tolist()
        [0.0, 3.0]
    """
    if kind == "softclamp":
        return bound * torch.tanh(raw / bound)
    if kind == "exp":
        return raw
    if kind == "sigmoid":
        return F.softplus(-(raw + 2.0))  # = -log sigmoid(raw + 2)
    raise ValueError(f"unknown scale parametrization {kind!r}; expected one of {SCALES}")


class Affine:
    """``y = x * exp(s) + t`` with ``s = log_scale(raw_s)``: two parameters per dimension (shift first).

    Args:
        scale: the scale parametrization, see :func:`log_scale`.
        bound: its bound, for ``"softclamp"``.
    """

    num_params = 2

    def __init__(self, scale: str = "softclamp", *, bound: float = 3.0):
        if scale not in SCALES:
            raise ValueError(f"unknown scale parametrization {scale!r}; expected one of {SCALES}")
        self.scale, self.bound = scale, bound
        #: Whether all-zero parameters give exactly the identity (log-det 0); not for Glow's sigmoid scale.
        self.zero_is_identity = scale != "sigmoid"

    def _shift_logscale(self, params):
        shift, raw = params
        return shift, log_scale(raw, self.scale, bound=self.bound)

    def forward(self, x: Tensor, params) -> tuple[Tensor, Tensor]:
        """Returns ``(y, log|dy/dx|)`` elementwise."""
        shift, s = self._shift_logscale(params)
        return x * torch.exp(s) + shift, s

    def inverse(self, y: Tensor, params) -> tuple[Tensor, Tensor]:
        """Returns ``(x, log|dy/dx|)`` elementwise."""
        shift, s = self._shift_logscale(params)
        return (y - shift) * torch.exp(-s), s

    def coefficients(self, params) -> tuple[Tensor, Tensor]:
        """Returns ``(log_scale, shift)`` with ``forward(x) = x * exp(log_scale) + shift`` (elementwise).

        Example:
            >>> import torch
            >>> op, x = Affine(), torch.randn(3)
            >>> params = (torch.randn(3), torch.randn(3))
            >>> log_a, b = op.coefficients(params)
            >>> torch.allclose(op.forward(x, params)[0], x * log_a.exp() + b)
            True
        """
        shift, s = self._shift_logscale(params)
        return s, shift

    def __repr__(self):
        return f"Affine(scale={self.scale!r})"


class GatedAffine:
    """IAF's numerically stable update ``y = a * x + (1 - a) * m``, a gate ``a`` from ``sigmoid(s + bias)``.

    Two parameters per dimension, ``(m, s)``; ``log|dy/dx| = log a``. Two gates:

    * ``normalized=True`` (default): ``a = sigmoid(s + bias) / sigmoid(bias)``, so zero parameters give
      ``a = 1`` and ``y = x``: a new layer is exactly the identity with log-det 0, as every other op here.
      ``a`` lies in ``(0, 1 / sigmoid(bias))`` (below 1.37 for ``bias = 1``): one step stays bounded.
    * ``normalized=False``: the published gate ``a = sigmoid(s + bias)`` (Kingma et al. 2016, Algorithm 1, with
      ``bias = 1`` as there and in Berg et al. 2018; Pyro's ``AffineAutoregressive(stable=True)`` uses ``bias =
      2``). ``a`` lies in ``(0, 1)``: a step only contracts towards ``m``, and with zero parameters a new layer is
      the fixed contraction ``y = sigmoid(bias) x`` (0.73 x for ``bias = 1``; four steps shrink a VAE's
      posterior sample to 0.29 of its base draw at initialization, which training must first undo).

    Args:
        bias: added to ``s`` before the sigmoid (1 by default, as in the IAF paper).
        normalized: divide the gate by ``sigmoid(bias)`` (identity at zero parameters).

    Example:
        >>> import torch
        >>> op, zeros = GatedAffine(), (torch.zeros(3), torch.zeros(3))
        >>> y, ld = op.forward(torch.ones(3), zeros)
        >>> y.tolist(), ld.tolist()
        ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
        >>> torch.allclose(GatedAffine(normalized=False).forward(torch.ones(3), zeros)[0], torch.sigmoid(torch.ones(3)))
        True

    References:
        Kingma et al., Improving Variational Inference with Inverse Autoregressive Flow, arXiv:1606.04934.
    """

    num_params = 2

    def __init__(self, bias: float = 1.0, *, normalized: bool = True):
        if not is_finite_number(bias):
            raise ValueError(f"bias must be a finite number, got {bias!r}")
        if not isinstance(normalized, bool):
            raise TypeError(f"normalized must be True or False, got {normalized!r}")
        self.bias = float(bias)
        self.normalized = normalized
        #: Whether all-zero parameters give exactly the identity with log-det 0.
        self.zero_is_identity = normalized
        self._log_norm = float(F.logsigmoid(torch.tensor(self.bias, dtype=torch.float64))) if normalized else 0.0

    def _terms(self, params):
        m, s = params
        log_a = F.logsigmoid(s + self.bias) - self._log_norm
        return m, log_a, torch.exp(log_a) if self.normalized else torch.sigmoid(s + self.bias)

    def forward(self, x: Tensor, params) -> tuple[Tensor, Tensor]:
        """Returns ``(y, log a)`` elementwise."""
        m, log_sigma, sigma = self._terms(params)
        return sigma * x + (1 - sigma) * m, log_sigma

    def inverse(self, y: Tensor, params) -> tuple[Tensor, Tensor]:
        """Returns ``(x, log a)`` elementwise (the forward map's log-derivative)."""
        m, log_sigma, sigma = self._terms(params)
        return (y - (1 - sigma) * m) / sigma, log_sigma

    def coefficients(self, params) -> tuple[Tensor, Tensor]:
        """Returns ``(log_scale, shift) = (log a, (1 - a) * m)``: ``forward(x) = x * exp(log_scale) + shift``."""
        m, log_sigma, sigma = self._terms(params)
        return log_sigma, (1 - sigma) * m

    def __repr__(self):
        return f"GatedAffine(bias={self.bias:g}" + ("" if self.normalized else ", normalized=False") + ")"


class Additive:
    """``y = x + t`` (volume preserving, NICE): one parameter per dimension."""

    num_params = 1
    #: Zero parameters give exactly the identity.
    zero_is_identity = True

    def forward(self, x: Tensor, params) -> tuple[Tensor, Tensor]:
        """Returns ``(y, 0)``."""
        (shift,) = params
        return x + shift, torch.zeros_like(x)

    def inverse(self, y: Tensor, params) -> tuple[Tensor, Tensor]:
        """Returns ``(x, 0)``."""
        (shift,) = params
        return y - shift, torch.zeros_like(y)

    def coefficients(self, params) -> tuple[Tensor, Tensor]:
        """Returns ``(0, shift)``: ``forward(x) = x * exp(0) + shift``."""
        (shift,) = params
        return torch.zeros_like(shift), shift

    def __repr__(self):
        return "Additive()"
