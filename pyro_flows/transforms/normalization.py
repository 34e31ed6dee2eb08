"""Batch normalization as a bijector."""

from __future__ import annotations

import torch
from torch import nn

from ..base import Flow
from ..ops import log_scale

__all__ = ["BatchNorm"]


class BatchNorm(Flow):
    r"""Batch normalization as an exact bijector (RealNVP, MAF).

    Density direction (inverse, data ``y`` to base ``x``): ``x = (y - mean) / sqrt(var + eps) * gamma + beta``;
    sampling direction (forward) is its exact inverse. ``gamma = exp(log_scale(.))`` through the library's
    one scale parametrization.

    * eval mode: ``mean, var`` are the running statistics.
    * train mode: the inverse uses the statistics of the batch it is given (over every batch dim, with
      gradients, as in RealNVP), updates the running statistics with ``momentum``, and remembers the batch
      statistics (detached) so the forward map is its exact inverse until the next batch. Before any batch,
      the forward map uses the running statistics. The log-det treats the statistics as constants.

    Fast direction: both.

    Args:
        input_dim: dimension D.
        momentum: weight of a new batch in the running statistics.
        eps: added to the variance.
        scale: the scale parametrization of ``gamma``.

    Example:
        >>> import torch
        >>> bn = BatchNorm(2)
        >>> y = torch.randn(100, 2) * 3 + 1
        >>> x = bn.inv(y)
        >>> bool(x.mean(0).abs().max() < 1e-4), torch.allclose(bn(x.clone()), y, atol=1e-5)
        (True, True)

    References:
        Dinh, Sohl-Dickstein & Bengio, Density estimation using Real NVP, arXiv:1605.08803 (section 3.7).
    """

    fast = "both"

    def __init__(self, input_dim: int, *, momentum: float = 0.1, eps: float = 1e-5, scale: str = "softclamp"):
        super().__init__(event_shape=(input_dim,))
        if not 0 < momentum <= 1:
            raise ValueError(f"momentum must be in (0, 1], got {momentum}")
        self.momentum, self.eps, self.scale = momentum, eps, scale
        self.log_gamma = nn.Parameter(torch.zeros(input_dim))
        self.beta = nn.Parameter(torch.zeros(input_dim))
        self.register_buffer("running_mean", torch.zeros(input_dim))
        self.register_buffer("running_var", torch.ones(input_dim))
        self._batch_stats = None

    def train(self, mode: bool = True):
        self._batch_stats = None
        self.clear_cache()
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):  # .to(...)/.double(): drop statistics of the old dtype/device
        self._batch_stats = None
        return super()._apply(fn, *args, **kwargs)

    def _stats(self):
        if self.training and self._batch_stats is not None:
            return self._batch_stats
        return self.running_mean, self.running_var

    def _log_det(self, var, shape):
        lg = log_scale(self.log_gamma, self.scale)
        return (0.5 * torch.log(var + self.eps) - lg).sum(-1).expand(shape[:-1]), lg

    def forward_and_log_det(self, x, context=None):
        mean, var = self._stats()
        ld, lg = self._log_det(var, x.shape)
        return (x - self.beta) * torch.exp(-lg) * torch.sqrt(var + self.eps) + mean, ld

    def inverse_and_log_det(self, y, context=None):
        if self.training:
            flat = y.reshape(-1, y.shape[-1])
            if flat.shape[0] < 2:
                raise ValueError(
                    "BatchNorm in training mode needs a batch of at least 2 inputs to estimate its statistics; "
                    "call .eval() to use the running statistics"
                )
            mean, var = flat.mean(0), flat.var(0, unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach(), self.momentum)
            self._batch_stats = (mean.detach(), var.detach())
        else:
            mean, var = self.running_mean, self.running_var
        ld, lg = self._log_det(var, y.shape)
        return (y - mean) / torch.sqrt(var + self.eps) * torch.exp(lg) + self.beta, ld

    def __getstate__(self):
        state = super().__getstate__()
        state["_batch_stats"] = None
        return state
