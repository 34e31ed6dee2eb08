"""Elementwise layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..flow import Flow
from ..nn import Hypernet
from ..ops import Affine

__all__ = ["Rescale"]


class Rescale(Flow):
    r"""NICE's diagonal scaling ``y = x * exp(s)`` (with ``s`` through :func:`~pyro_flows.ops.log_scale`).

    In NICE it follows the volume-preserving couplings so the flow can change volume.
    Fast direction: both.

    Args:
        input_dim: dimension D.
        context_dim: size of a context; ``s`` then gets an offset from a hypernetwork.
        hidden_dims: hidden widths of that hypernetwork.
        scale: the scale parametrization (see :func:`~pyro_flows.ops.log_scale`).

    Example:
        >>> import torch
        >>> Rescale(3)(torch.ones(3)).tolist()
        [1.0, 1.0, 1.0]

    References:
        Dinh, Krueger & Bengio, NICE, arXiv:1410.8516 (section 3.3).
    """

    fast = "both"

    def __init__(
        self,
        input_dim: int,
        *,
        context_dim: int | None = None,
        hidden_dims: Sequence[int] = (64,),
        scale: str = "softclamp",
    ):
        super().__init__(event_shape=(input_dim,), context_dim=context_dim)
        self.op = Affine(scale)
        self.params = Hypernet({"s": torch.zeros(input_dim)}, context_dim=context_dim, hidden_dims=hidden_dims)

    def _params(self, context):
        (s,) = self.params(context)
        return torch.zeros_like(s), s

    def _forward_and_log_det(self, x, context=None):
        y, ld = self.op.forward(x, self._params(context))
        return y, ld.sum(-1).expand(y.shape[:-1])

    def _inverse_and_log_det(self, y, context=None):
        x, ld = self.op.inverse(y, self._params(context))
        return x, ld.sum(-1).expand(x.shape[:-1])
