"""Radial flow with a closed-form inverse."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..flow import Flow
from ..nn import Hypernet

__all__ = ["Radial"]


class Radial(Flow):
    r"""Radial flow ``y = x + beta (x - x0) / (alpha + r)`` with ``r = |x - x0|`` (Rezende & Mohamed 2015).

    ``alpha = softplus(.) > 0`` and ``beta = -alpha + softplus(.) > -alpha`` make it invertible. The inverse
    is closed-form: ``rho = |y - x0| = r (1 + beta / (alpha + r))`` is a quadratic in ``r`` with one positive
    root, and then ``x - x0 = (y - x0) / (1 + beta / (alpha + r))``.

    Fast direction: both (the inverse is closed-form).

    Args:
        input_dim: the size D of each input vector.
        context_dim: with a context of this size, a hypernetwork of it offsets ``x0``, ``alpha`` and ``beta``.
        hidden_dims: the hypernetwork's hidden widths.

    Example:
        >>> import torch
        >>> y, log_det = Radial(3).inverse_and_log_det(torch.ones(2, 3))  # closed form, no iterations
        >>> y.shape, log_det.shape
        (torch.Size([2, 3]), torch.Size([2]))

    References:
        Rezende & Mohamed, Variational Inference with Normalizing Flows, arXiv:1505.05770.
    """

    fast = "both"

    def __init__(self, input_dim: int, *, context_dim: int | None = None, hidden_dims: Sequence[int] = (64,)):
        super().__init__(event_shape=(input_dim,), context_dim=context_dim)
        init = {"x0": torch.randn(input_dim) * 0.1, "alpha": torch.zeros(1), "beta": torch.zeros(1)}
        self.params = Hypernet(init, context_dim=context_dim, hidden_dims=hidden_dims)

    def _terms(self, context):
        x0, alpha, beta = self.params(context)
        alpha = F.softplus(alpha)
        return x0, alpha, -alpha + F.softplus(beta)

    def _log_det(self, r, alpha, beta):
        h = 1 / (alpha + r)
        dim = self.event_shape[0]
        # det = (1 + beta h)^(D-1) (1 + beta h + beta h'(r) r), h' = -h^2
        return ((dim - 1) * torch.log1p(beta * h) + torch.log1p(beta * h - beta * h * h * r)).squeeze(-1)

    def _forward_and_log_det(self, x, context=None):
        x0, alpha, beta = self._terms(context)
        diff = x - x0
        r = diff.norm(dim=-1, keepdim=True)
        return x + beta * diff / (alpha + r), self._log_det(r, alpha, beta)

    def _inverse_and_log_det(self, y, context=None):
        x0, alpha, beta = self._terms(context)
        diff = y - x0
        rho = diff.norm(dim=-1, keepdim=True)
        # r^2 + B r - rho alpha = 0 with B = alpha + beta - rho; the positive root, without cancellation.
        B = alpha + beta - rho
        disc = torch.sqrt(B * B + 4 * rho * alpha)
        safe = torch.where(B > 0, B + disc, torch.ones_like(B))  # keeps the unused branch finite for autograd
        r = torch.where(B > 0, 2 * rho * alpha / safe, (disc - B) / 2)
        return x0 + diff / (1 + beta / (alpha + r)), self._log_det(r, alpha, beta)
