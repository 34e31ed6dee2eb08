"""Planar flow with an exact inverse."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..flow import Flow
from ..nn import Hypernet

__all__ = ["Planar", "MARGIN"]

#: How far ``w^T u_hat`` stays above -1 (invertibility with room for float32 rounding).
MARGIN = 1e-4


def _solve_monotone(g, dg, target, lo, hi, *, max_iter: int = 100):
    """Solves ``g(a) = target`` elementwise for an increasing ``g`` bracketed by ``[lo, hi]``.

    Newton's method, falling back to bisection whenever a step leaves the bracket; runs without gradients
    until every element is within a few ulps.
    """
    with torch.no_grad():
        a = (lo + hi) / 2
        tol = 4 * torch.finfo(a.dtype).eps * (1 + target.abs())
        for _ in range(max_iter):
            r = g(a) - target
            done = r.abs() <= tol
            if not torch.jit.is_tracing() and bool(done.all()):  # a trace records every step: no data-dependent exit
                break
            hi = torch.where(r > 0, a, hi)
            lo = torch.where(r > 0, lo, a)
            step = a - r / dg(a)
            inside = (step > lo) & (step < hi)
            # converged elements stay put; the others take Newton's step, or bisect when it leaves the bracket
            a = torch.where(done, a, torch.where(inside, step, (lo + hi) / 2))
    return a


class Planar(Flow):
    r"""Planar flow ``y = x + u_hat * tanh(w^T x + b)`` (Rezende & Mohamed 2015), with an exact inverse.

    ``u_hat = u + (m(w^T u) - w^T u) w / |w|^2`` with ``m(a) = -1 + MARGIN + softplus(a)`` enforces
    ``w^T u_hat >= -1 + MARGIN`` (``MARGIN = 1e-4``), which makes the map invertible with a log-det of at
    least ``log(MARGIN)``; the margin survives float32 rounding (Pyro's ``-1 + softplus(a)`` rounds to exactly
    -1 once ``a <= -16``: log-det -inf, inverse NaN). The log-det and the inverse use ``w^T u_hat = m(w^T u)``
    as computed, not a dot product that rounding could push below the bound. The inverse solves the scalar monotone equation
    ``a + (w^T u_hat) tanh(a) = w^T y + b`` for ``a = w^T x + b`` (safeguarded Newton, to float tolerance,
    batched), then ``x = y - u_hat tanh(a)``; gradients flow through it by the implicit function theorem.
    Pyro's ``Planar`` cannot score data it did not sample; this one can.

    Fast direction: forward (one pass); the inverse costs a few Newton steps of O(D) each.

    Args:
        input_dim: dimension D of the input.
        context_dim: size of a context vector; ``u, w, b`` then get offsets from a hypernetwork.
        hidden_dims: hidden widths of that hypernetwork.

    Example:
        >>> import torch
        >>> flow = Planar(3)
        >>> x = torch.randn(10, 3)
        >>> torch.allclose(flow.inv(flow(x).clone()), x, atol=1e-5)
        True

    References:
        Rezende & Mohamed, Variational Inference with Normalizing Flows, arXiv:1505.05770.
    """

    fast = "forward"

    def __init__(self, input_dim: int, *, context_dim: int | None = None, hidden_dims: Sequence[int] = (64,)):
        super().__init__(event_shape=(input_dim,), context_dim=context_dim)
        bound = 1 / math.sqrt(input_dim)
        init = {n: torch.empty(k).uniform_(-bound, bound) for n, k in (("u", input_dim), ("w", input_dim), ("b", 1))}
        self.params = Hypernet(init, context_dim=context_dim, hidden_dims=hidden_dims)

    def _terms(self, context):
        u, w, b = self.params(context)
        wu = (w * u).sum(-1, keepdim=True)
        c = F.softplus(wu) - (1 - MARGIN)  # = w^T u_hat >= -1 + MARGIN
        u_hat = u + (c - wu) * w / (w * w).sum(-1, keepdim=True)
        return u_hat, w, b, c

    @staticmethod
    def _log_det(a, c):
        # det(I + u_hat psi^T) = 1 + tanh'(a) w^T u_hat
        return torch.log1p(c * (1 - torch.tanh(a) ** 2)).squeeze(-1)

    def _forward_and_log_det(self, x, context=None):
        u_hat, w, b, c = self._terms(context)
        a = (w * x).sum(-1, keepdim=True) + b
        return x + u_hat * torch.tanh(a), self._log_det(a, c)

    def _inverse_and_log_det(self, y, context=None):
        u_hat, w, b, c = self._terms(context)
        target = (w * y).sum(-1, keepdim=True) + b
        target, c_ = torch.broadcast_tensors(target, c)
        a = _solve_monotone(
            lambda a: a + c_ * torch.tanh(a),
            lambda a: 1 + c_ * (1 - torch.tanh(a) ** 2),
            target,
            target - c_.abs() - 1e-3,
            target + c_.abs() + 1e-3,
        )
        # One differentiable Newton step from the solution: same value, exact first-order gradients.
        a = a - (a + c * torch.tanh(a) - target) / (1 + c * (1 - torch.tanh(a) ** 2))
        return y - u_hat * torch.tanh(a), self._log_det(a, c)
