"""Image transforms: Glow's invertible 1x1 convolution, and the squeeze and factor-out of multi-scale flows.

Every pyro_flows flow keeps its event shape, so one ``TransformedDistribution`` over (C, H, W) holds a whole
multi-scale model with a standard-normal base over (C, H, W). The shape-changing steps of RealNVP and Glow
are wrappers that run an inner flow on a reshaped or smaller view and map back:

* :class:`Squeeze` ``(inner)``: space-to-depth (2x2 pixels to 4 channels), the inner flow on
  (4C, H/2, W/2), depth-to-space back.
* :class:`FactorOut` ``(inner, factored)``: the inner flow on the first channels; the last ``factored``
  channels pass through unchanged, i.e. in the density direction they leave the flow at this level and go
  straight to the base distribution.

Nesting them per level gives the multi-scale architecture (see :func:`pyro_flows.glow` and
:func:`pyro_flows.realnvp_image`); the latent is a fixed permutation of the usual multi-scale latent, which
for a standard-normal base gives the same density.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..base import FlowLike, as_event_shape
from ..flow import Flow
from ..validation import positive_int

__all__ = ["InvertibleConv1x1", "Squeeze", "FactorOut", "space_to_depth", "depth_to_space"]

Tensor = torch.Tensor


def space_to_depth(x: Tensor) -> Tensor:
    """Squeezes ``(..., C, H, W)`` to ``(..., 4C, H/2, W/2)``: each 2x2 block becomes 4 channels.

    Output channel ``4c + 2i + j`` at pixel ``(h, w)`` is input channel ``c`` at pixel ``(2h + i, 2w + j)``.

    Example:
        >>> x = torch.arange(16.0).reshape(1, 4, 4)
        >>> space_to_depth(x)[:, 0, 0].tolist()  # the top-left 2x2 block
        [0.0, 1.0, 4.0, 5.0]
    """
    *batch, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"space_to_depth needs an even height and width, got shape {tuple(x.shape)}")
    x = x.reshape(*batch, c, h // 2, 2, w // 2, 2)
    n = len(batch)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*batch, 4 * c, h // 2, w // 2)


def depth_to_space(x: Tensor) -> Tensor:
    """The inverse of :func:`space_to_depth`: ``(..., 4C, H, W)`` to ``(..., C, 2H, 2W)``.

    Example:
        >>> x = torch.randn(2, 3, 4, 6)
        >>> torch.equal(depth_to_space(space_to_depth(x)), x)
        True
    """
    *batch, c4, h, w = x.shape
    if c4 % 4:
        raise ValueError(f"depth_to_space needs a channel count divisible by 4, got shape {tuple(x.shape)}")
    x = x.reshape(*batch, c4 // 4, 2, 2, h, w)
    n = len(batch)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*batch, c4 // 4, 2 * h, 2 * w)


def _check_inner(flow, owner):
    if not isinstance(flow, FlowLike) or flow.event_shape is None:
        raise TypeError(f"{owner} wraps a pyro_flows flow (a Flow or Compose), got {type(flow).__name__}")
    return tuple(flow.event_shape)


class _Wrapper(Flow):
    """A flow that runs an inner flow on a view of its input; the log-det is the inner one's."""

    def __init__(self, flow, event_shape):
        super().__init__(event_shape=event_shape, context_dim=getattr(flow, "context_dim", None))
        self.flow = flow

    @property
    def fast(self) -> str:  # type: ignore[override]  # a wrapper's direction is its inner flow's
        return self.flow.fast

    @property
    def sign(self):  # a squeeze is a permutation applied and undone: the inner flow's sign
        return self.flow.sign


class Squeeze(_Wrapper):
    r"""``y = depth_to_space(flow(space_to_depth(x)))``: the inner flow at half resolution, 4x the channels.

    The squeeze of RealNVP and Glow as a flow on (C, H, W): each 2x2 block of pixels becomes 4 channels
    (layout in :func:`space_to_depth`), ``flow`` runs on (4C, H/2, W/2), and the result goes back to
    (C, H, W). Squeezing is a permutation, so the log-det is the inner flow's. Conditional if ``flow`` is;
    its context is passed on.

    Fast direction: the inner flow's.

    Args:
        flow: a pyro_flows flow (``Flow`` or ``Compose``) with event shape (4C, H', W'); this flow's event
            shape is then (C, 2H', 2W').

    Example:
        >>> import torch, pyro_flows as pf
        >>> inner = pf.AffineCoupling((8, 2, 2), pf.masks.channels((8, 2, 2)), hidden_channels=8)
        >>> layer = Squeeze(inner)
        >>> layer.event_shape
        torch.Size([2, 4, 4])
        >>> layer(torch.randn(3, 2, 4, 4)).shape
        torch.Size([3, 2, 4, 4])

    References:
        Dinh, Sohl-Dickstein & Bengio, Density estimation using Real NVP, arXiv:1605.08803 (section 3.6).
    """

    def __init__(self, flow):
        inner = _check_inner(flow, "Squeeze")
        if len(inner) != 3 or inner[0] % 4:
            raise ValueError(
                f"Squeeze needs an inner flow on (4C, H, W) images (channels divisible by 4), got event shape {inner}"
            )
        c, h, w = inner
        super().__init__(flow, (c // 4, 2 * h, 2 * w))

    def _forward_and_log_det(self, x, context=None):
        y, ld = self.flow.forward_and_log_det(space_to_depth(x), context)
        return depth_to_space(y), ld

    def _inverse_and_log_det(self, y, context=None):
        x, ld = self.flow.inverse_and_log_det(space_to_depth(y), context)
        return depth_to_space(x), ld


class FactorOut(_Wrapper):
    r"""``y = concat(flow(x_1), x_2)`` along channels: the last ``factored`` channels pass through unchanged.

    The multi-scale factor-out of RealNVP and Glow: in the density direction, the ``factored`` channels
    leave the flow at this level and go straight to the base distribution, while ``flow`` keeps
    transforming the others. The Jacobian is block diagonal, so the log-det is the inner flow's. Works on
    any channel-first event (C, ...) including vectors (D,). Conditional if ``flow`` is.

    Fast direction: the inner flow's.

    Args:
        flow: a pyro_flows flow with event shape (C_1, ...).
        factored: number of channels C_2 passed through; this flow's event shape is (C_1 + C_2, ...).

    Example:
        >>> import torch, pyro_flows as pf
        >>> layer = FactorOut(pf.ActNorm((2, 4, 4)), 2)
        >>> x = torch.randn(5, 4, 4, 4)
        >>> torch.equal(layer(x)[:, 2:], x[:, 2:])
        True

    References:
        Dinh, Sohl-Dickstein & Bengio, Density estimation using Real NVP, arXiv:1605.08803 (section 3.6).
    """

    def __init__(self, flow, factored: int):
        inner = _check_inner(flow, "FactorOut")
        positive_int("factored", factored)
        super().__init__(flow, (inner[0] + factored, *inner[1:]))
        self.factored = factored
        self._sizes = (inner[0], factored)

    def _apply_inner(self, value, context, method):
        dim = -self.event_dim
        kept, out = value.split(self._sizes, dim=dim)
        new, ld = method(kept, context)
        if new.shape[:dim] != out.shape[:dim]:  # a context with more batch dims than the input
            out = out.expand(*new.shape[:dim], *out.shape[dim:])
        return torch.cat([new, out], dim=dim), ld

    def _forward_and_log_det(self, x, context=None):
        return self._apply_inner(x, context, self.flow.forward_and_log_det)

    def _inverse_and_log_det(self, y, context=None):
        return self._apply_inner(y, context, self.flow.inverse_and_log_det)

    def extra_repr(self):
        return super().extra_repr() + f", factored={self.factored}"


class InvertibleConv1x1(Flow):
    r"""Glow's invertible 1x1 convolution: ``y[:, h, w] = W x[:, h, w]``, one C x C matrix for every pixel.

    Log-det ``= H * W * log|det W|``. Two parametrizations:

    * plain (``lu=False``): ``W`` itself is the parameter; the log-det is ``slogdet(W)`` and the inverse
      uses ``inv(W)`` (O(C^3) per call).
    * LU (``lu=True``, default): ``W = P L (U + diag(sign * exp(log_s)))`` with a fixed permutation ``P``,
      a lower-triangular ``L`` with unit diagonal, a strictly upper ``U``, learned ``log_s`` and a fixed
      ``sign``; the log-det is ``sum(log_s)`` (O(C)) and the inverse takes two triangular solves.

    Both start at a random rotation (or at ``weight``), so the two forms built from the same ``weight`` are
    the same function. Works on any channel-first event (C, ...), e.g. vectors (D,) as a learned linear map.

    Fast direction: both.

    Args:
        input_dim: a channel-first shape such as (C, H, W), or D for vectors.
        lu: use the LU parametrization.
        weight: the initial C x C invertible matrix; default: a random orthogonal one.

    Example:
        >>> import torch
        >>> conv = InvertibleConv1x1((3, 4, 4))
        >>> x = torch.randn(2, 3, 4, 4)
        >>> torch.allclose(conv.inv(conv(x).clone()), x, atol=1e-5)
        True

    References:
        Kingma & Dhariwal, Glow: Generative Flow with Invertible 1x1 Convolutions, arXiv:1807.03039
        (section 3.2).
    """

    fast = "both"
    permutation: Tensor
    sign_s: Tensor

    def __init__(self, input_dim, *, lu: bool = True, weight: Tensor | None = None):
        shape = as_event_shape(input_dim)
        super().__init__(event_shape=shape)
        c = shape[0]
        self._pixels = math.prod(shape[1:])
        if weight is None:
            weight = torch.linalg.qr(torch.randn(c, c, dtype=torch.float64))[0]
        weight = torch.as_tensor(weight).detach().to(torch.float64)
        if weight.shape != (c, c):
            raise ValueError(f"weight must be a {c} x {c} matrix, got shape {tuple(weight.shape)}")
        sign, logabsdet = torch.linalg.slogdet(weight)
        if sign == 0 or not torch.isfinite(logabsdet):
            raise ValueError("weight must be an invertible matrix")
        self.lu = lu

        def new(t):  # contiguous: Pyro's param store silently copies a non-contiguous parameter (QR's Q is one)
            return t.to(torch.get_default_dtype()).contiguous()

        if not lu:
            self.weight = nn.Parameter(new(weight))
            return
        p, lower, upper = torch.linalg.lu(weight)
        s = torch.diagonal(upper)
        self.register_buffer("permutation", new(p))
        self.register_buffer("sign_s", new(torch.sign(s)))
        self.lower = nn.Parameter(new(torch.tril(lower, -1)))
        self.upper = nn.Parameter(new(torch.triu(upper, 1)))
        self.log_s = nn.Parameter(new(s.abs().log()))

    def _lu_factors(self):
        eye = torch.eye(self.lower.shape[0], dtype=self.lower.dtype, device=self.lower.device)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign_s * torch.exp(self.log_s))
        return lower, upper

    @property
    def sign(self) -> int:  # type: ignore[override]  # computed from the parameters, not a class constant
        """The sign of the Jacobian determinant, ``sign(det W) ** (H * W)``."""
        with torch.no_grad():
            if self.lu:
                s = torch.linalg.det(self.permutation) * self.sign_s.prod()
            else:
                s = torch.linalg.slogdet(self.weight)[0]
        return 1 if self._pixels % 2 == 0 or float(s) > 0 else -1

    def matrix(self) -> Tensor:
        """The current matrix ``W``."""
        if not self.lu:
            return self.weight
        lower, upper = self._lu_factors()
        return self.permutation @ lower @ upper

    def _inverse_matrix(self) -> Tensor:
        if not self.lu:
            return torch.linalg.inv(self.weight)
        lower, upper = self._lu_factors()
        eye = torch.eye(lower.shape[0], dtype=lower.dtype, device=lower.device)
        lower_inv = torch.linalg.solve_triangular(lower, eye, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(upper, lower_inv @ self.permutation.T, upper=True)

    def _log_det(self, value):
        per_pixel = self.log_s.sum() if self.lu else torch.linalg.slogdet(self.weight)[1]
        return (per_pixel * self._pixels).expand(value.shape[: value.dim() - self.event_dim])

    def _mix(self, matrix, value):
        """``matrix`` applied to the channel vector of every pixel: one batched (C x C) @ (C x pixels)."""
        batch = value.shape[: value.dim() - self.event_dim]
        flat = value.reshape(*batch, self.event_shape[0], self._pixels)
        return (matrix @ flat).reshape(value.shape)

    def _forward_and_log_det(self, x, context=None):
        return self._mix(self.matrix(), x), self._log_det(x)

    def _inverse_and_log_det(self, y, context=None):
        return self._mix(self._inverse_matrix(), y), self._log_det(y)

    def extra_repr(self):
        return super().extra_repr() + f", lu={self.lu}"
