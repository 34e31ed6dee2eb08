"""Normalization layers as exact bijectors: batch normalization (RealNVP, MAF) and Glow's ActNorm.

Both work per feature of a vector event ``(D,)`` or per channel of a channel-first event ``(C, H, W)``
(any ``(C, *spatial)``): one statistic or parameter per channel, shared by its pixels, so the log-det of an
image is ``H * W`` times the per-channel sum.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from .. import state
from ..base import as_event_shape
from ..flow import Flow
from ..ops import Affine, log_scale
from ..validation import is_finite_number

__all__ = ["BatchNorm", "ActNorm"]


class _PerChannel(Flow):
    """Helpers for layers with one statistic/parameter per channel (the first event dim)."""

    def __init__(self, input_dim):
        shape = as_event_shape(input_dim)
        super().__init__(event_shape=shape)
        self.num_channels = shape[0]
        self._pixels = math.prod(shape[1:])  # entries per channel of one input (1 for vectors)

    def _per_channel(self, v):
        """A (C,) tensor shaped to broadcast against the event: (C, 1, 1) for images."""
        return v.reshape(v.shape[0], *([1] * (self.event_dim - 1)))

    def _batch_shape(self, value):
        return value.shape[: value.dim() - self.event_dim]

    def _channel_stats(self, value, *, what: str):
        """Mean and (biased) variance per channel over every batch and spatial dim, and their count.

        Raises ``ValueError`` when they are not finite (a NaN or inf in the batch): no statistic is ever
        updated from such a batch."""
        flat = value.movedim(-self.event_dim, -1).reshape(-1, self.num_channels)
        mean, var = flat.mean(0), flat.var(0, unbiased=False)
        if flat.shape[0] and not bool(torch.isfinite(torch.stack([mean, var])).all()):
            raise ValueError(
                f"{type(self).__name__} {what} expected a finite batch, got NaN or inf values; the layer's "
                "statistics were left unchanged"
            )
        return mean, var, flat.shape[0]


class BatchNorm(_PerChannel):
    r"""Batch normalization as an exact bijector (RealNVP, MAF), for vectors or per channel of images.

    Density direction (inverse, data ``y`` to base ``x``): ``x = (y - mean) / sqrt(var + eps) * gamma + beta``;
    sampling direction (forward) is its exact inverse. ``gamma = exp(log_scale(.))`` through the library's
    one scale parametrization. For an image event (C, H, W) the statistics and ``gamma, beta`` are per
    channel, taken over the batch and the pixels (RealNVP's spatial batch norm).

    * eval mode: ``mean, var`` are the running statistics.
    * train mode: the inverse uses the statistics of the batch it is given (over every batch dim, with
      gradients, as in RealNVP), updates the running statistics with ``momentum``, and remembers the batch
      statistics (detached) so the forward map is its exact inverse until the next batch. Before any batch,
      the forward map uses the running statistics. The log-det treats the statistics as constants.

    Fast direction: both.

    Args:
        input_dim: dimension D of a vector, or a channel-first shape such as (C, H, W).
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
        >>> images = BatchNorm((3, 4, 4))
        >>> images.inv(torch.randn(10, 3, 4, 4) * 2 + 5).mean((0, 2, 3)).abs().max() < 1e-4
        tensor(True)

    References:
        Dinh, Sohl-Dickstein & Bengio, Density estimation using Real NVP, arXiv:1605.08803 (section 3.7).
    """

    fast = "both"

    def __init__(self, input_dim, *, momentum: float = 0.1, eps: float = 1e-5, scale: str = "softclamp"):
        super().__init__(input_dim)
        c = self.num_channels
        if not is_finite_number(momentum) or not 0 < momentum <= 1:
            raise ValueError(f"momentum must be in (0, 1], got {momentum}")
        self.momentum, self.eps, self.scale = momentum, eps, scale
        self.log_gamma = nn.Parameter(torch.zeros(c))
        self.beta = nn.Parameter(torch.zeros(c))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))
        self._batch_stats = None

    def train(self, mode: bool = True):
        self._batch_stats = None
        self.clear_cache()
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):  # .to(...)/.double(): drop statistics of the old dtype/device
        self._batch_stats = None
        return super()._apply(fn, *args, **kwargs)

    def _stats_key(self):
        return state.key((self.running_mean, self.running_var))

    def _stats(self):
        # the last batch's statistics, while the running statistics they updated are untouched
        if self.training and self._batch_stats is not None and self._batch_stats[2] == self._stats_key():
            return self._batch_stats[:2]
        return self.running_mean, self.running_var

    def _log_det(self, var, batch_shape):
        lg = log_scale(self.log_gamma, self.scale)
        return ((0.5 * torch.log(var + self.eps) - lg).sum(-1) * self._pixels).expand(batch_shape), lg

    def _forward_and_log_det(self, x, context=None):
        mean, var = self._stats()
        ld, lg = self._log_det(var, self._batch_shape(x))
        c = self._per_channel
        return (x - c(self.beta)) * c(torch.exp(-lg)) * c(torch.sqrt(var + self.eps)) + c(mean), ld

    def _inverse_and_log_det(self, y, context=None):
        if self.training:
            mean, var, count = self._channel_stats(y, what="in training mode")
            if count < 2:
                raise ValueError(
                    "BatchNorm in training mode needs at least 2 values per channel (a batch of at least 2 "
                    "inputs) to estimate its statistics; call .eval() to use the running statistics"
                )
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach(), self.momentum)
            self._batch_stats = (mean.detach(), var.detach(), self._stats_key())
        else:
            mean, var = self.running_mean, self.running_var
        ld, lg = self._log_det(var, self._batch_shape(y))
        c = self._per_channel
        return (y - c(mean)) / c(torch.sqrt(var + self.eps)) * c(torch.exp(lg)) + c(self.beta), ld

    def __getstate__(self):
        st = super().__getstate__()
        st["_batch_stats"] = None
        return st


class ActNorm(_PerChannel):
    r"""Glow's activation normalization: ``y = x * exp(log_scale) + loc`` per channel, data-initialized.

    The first call, in either direction, on an input with a batch dim initializes ``loc`` and ``log_scale``
    (under ``no_grad``) so that this call's OUTPUT has zero mean and unit variance per channel over the
    batch and pixels: in density estimation the first data batch, fed through the inverse, comes out
    standardized; a first sampling call standardizes the samples it produces. The fact is recorded in the
    bool buffer ``initialized``, so it survives ``state_dict``/``load_state_dict``, ``torch.save`` and
    ``deepcopy``, and never happens again (nor after loading a trained state, nor in later SVI steps).
    Unbatched inputs do not initialize. Nor does an ActNorm whose ``loc`` or ``log_scale`` were changed or
    replaced since construction (by ``load_state_dict``, Pyro's param store through
    ``pyro.module(..., update_module_params=True)``, an optimizer): it takes them as trained and marks itself
    initialized, so reloading parameters never re-initializes them. A channel whose standard deviation in the
    initializing batch is below ``MIN_STD`` (a constant pixel, say) is centered but not scaled, with a
    warning naming it: scaling by ``1 / std`` there would blow up the first gradient steps. A batch with
    NaN or inf values raises ``ValueError`` and leaves the layer uninitialized. The affine map is :class:`~pyro_flows.ops.Affine`
    with the ``"exp"`` parametrization; log-det ``= H * W * sum(log_scale)``.

    Fast direction: both.

    Args:
        input_dim: dimension D of a vector, or a channel-first shape such as (C, H, W).

    Example:
        >>> import torch
        >>> an = ActNorm((3, 4, 4))
        >>> x = an.inv(torch.randn(16, 3, 4, 4) * 5 + 2)  # first batch: comes out standardized
        >>> bool(an.initialized), bool(x.mean((0, 2, 3)).abs().max() < 1e-4)
        (True, True)

    References:
        Kingma & Dhariwal, Glow: Generative Flow with Invertible 1x1 Convolutions, arXiv:1807.03039
        (section 3.1).
    """

    fast = "both"
    #: Below this standard deviation a channel of the initializing batch counts as constant.
    MIN_STD = 1e-3

    def __init__(self, input_dim):
        super().__init__(input_dim)
        c = self.num_channels
        self.op = Affine("exp")
        self.loc = nn.Parameter(torch.zeros(c))
        self.log_scale = nn.Parameter(torch.zeros(c))
        self.register_buffer("initialized", torch.tensor(False))
        self._initialized = False  # mirrors the buffer, so a call needs no device sync to read it
        self._pristine = self._param_key()  # the parameters as constructed (see the class docstring)

    def _param_key(self):
        return state.key((self.loc, self.log_scale))

    def _apply(self, fn, *args, **kwargs):
        pristine = self._pristine == self._param_key()
        out = super()._apply(fn, *args, **kwargs)
        self._pristine = self._param_key() if pristine else None
        return out

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._initialized = bool(self.initialized)

    @torch.no_grad()
    def _initialize(self, value, *, forward: bool):
        """Sets the parameters so that this call's output is standardized per channel."""
        if self._pristine != self._param_key():  # trained or loaded parameters: keep them
            self._mark_initialized()
            return
        if value.dim() == self.event_dim:  # no batch to take statistics over
            return
        mean, var, count = self._channel_stats(value.detach(), what="data-dependent initialization")
        if count < 2:
            return
        std = var.sqrt()
        constant = std < self.MIN_STD
        if bool(constant.any()):
            warnings.warn(
                f"ActNorm: channels {constant.nonzero().flatten().tolist()} are constant in the initializing batch "
                f"(standard deviation < {self.MIN_STD:g}); they are centered but not scaled",
                stacklevel=4,
            )
            std = torch.where(constant, torch.ones_like(std), std)
        if forward:  # y = x * exp(s) + loc standardized: s = -log std, loc = -mean / std
            self.log_scale.copy_(-std.log())
            self.loc.copy_(-mean / std)
        else:  # x = (y - loc) * exp(-s) standardized: s = log std, loc = mean
            self.log_scale.copy_(std.log())
            self.loc.copy_(mean)
        self._mark_initialized()

    def __getstate__(self):  # the key holds identities: keep only whether it still matched
        st = super().__getstate__()
        st["_pristine"] = self._pristine is not None and self._pristine == self._param_key()
        return st

    def __setstate__(self, st):
        pristine = st.pop("_pristine", False)
        super().__setstate__(st)
        self._pristine = self._param_key() if pristine is True else None

    def _mark_initialized(self):
        self.initialized.fill_(True)
        self._initialized = True
        self._pristine = None

    def _params(self):
        c = self._per_channel
        return c(self.loc), c(self.log_scale)

    def _log_det(self, s, value):
        return (s.sum() * self._pixels).expand(self._batch_shape(value))

    def _forward_and_log_det(self, x, context=None):
        if not self._initialized:
            self._initialize(x, forward=True)
        y, s = self.op.forward(x, self._params())
        return y, self._log_det(s, x)

    def _inverse_and_log_det(self, y, context=None):
        if not self._initialized:
            self._initialize(y, forward=False)
        x, s = self.op.inverse(y, self._params())
        return x, self._log_det(s, y)

    def extra_repr(self):
        return super().extra_repr() + f", initialized={self._initialized}"
