"""Affine autoregressive flows: MAF and IAF over one implementation."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from ..base import Flow
from ..nn import MADE, default_hidden_dims
from ..ops import Affine
from ..protocols import AutoregressiveConditioner, ElementwiseOp

__all__ = ["AffineAutoregressive", "MAF", "IAF"]


class AffineAutoregressive(Flow):
    r"""The affine autoregressive map ``v_d = u_d exp(s_d(u_{<d})) + t_d(u_{<d})`` with ``(t, s) = MADE(u)``.

    The map from ``u`` to ``v`` costs one network pass (its *fast* side); its inverse is sequential: ``u_d``
    needs ``u_{<d}`` first. :class:`MAF` puts the fast side on the density direction (data ``u`` to base),
    :class:`IAF` on the sampling direction (base ``u`` to data). The slow side is exact: it runs the network
    once per generation step (D steps).

    Args:
        input_dim: D.
        hidden_dims: hidden widths of the MADE (default :func:`~pyro_flows.nn.default_hidden_dims`).
        fast: ``"forward"`` (IAF: the forward map is the fast one) or ``"inverse"`` (MAF).
        context_dim: size of a context vector given to the MADE.
        ordering: the MADE's input ordering (see ``pyro_flows.masks.input_degrees``); default
            ``"random"``, drawn from torch's global generator (or ``seed``) for each layer as Pyro's
            ``AutoRegressiveNN`` does, so ``[IAF(D) for _ in range(n)]`` stacks layers of different orderings.
            The factories :func:`~pyro_flows.maf` and :func:`~pyro_flows.iaf` alternate natural and reversed.
        scale: the scale parametrization (see :func:`pyro_flows.ops.log_scale`).
        conditioner: a MADE-like module to use instead (``forward(u, context) -> (t, s)``, with a
            ``degrees`` buffer; optionally ``invert(solve, batch_shape, context, like=...)`` and
            ``can_invert``, its own fast sequential inversion).
        op: the elementwise map, 2 parameters per dimension: :class:`~pyro_flows.ops.Affine` with ``scale``
            by default, or e.g. :class:`~pyro_flows.ops.GatedAffine` (IAF's stable update).
        inversion: how the slow side is computed: ``"auto"``, ``"sequential"`` or ``"recursive"`` (see
            :attr:`inversion`); settable later.
        **made_kwargs: further MADE options (``hidden_degrees``, ``residual``, ``seed``).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] | None = None,
        *,
        fast: str,
        context_dim: int | None = None,
        ordering="random",
        scale: str = "softclamp",
        conditioner: AutoregressiveConditioner | None = None,
        op: ElementwiseOp | None = None,
        inversion: str = "auto",
        **made_kwargs,
    ):
        super().__init__(event_shape=(input_dim,), context_dim=context_dim)
        if fast not in ("forward", "inverse"):
            raise ValueError(f"fast must be 'forward' (IAF) or 'inverse' (MAF), got {fast!r}")
        self.fast = fast
        if op is not None and scale != "softclamp":
            raise ValueError("give scale= (for the default Affine op) or op=, not both")
        self.op = Affine(scale) if op is None else op
        if not isinstance(self.op, ElementwiseOp) or self.op.num_params != 2:
            raise TypeError(f"op must be an elementwise op with 2 parameters per dimension, got {self.op!r}")
        self.inversion = inversion
        if input_dim == 1 and context_dim is None and conditioner is None:
            warnings.warn(
                "an unconditional 1-D autoregressive layer is a learned affine map (its first and only variable has "
                "no earlier one to depend on); for a flexible 1-D density use a spline, e.g. "
                "pyro.distributions.transforms.Spline(1)",
                stacklevel=3,
            )
        if hidden_dims is None:
            hidden_dims = default_hidden_dims(input_dim)
        self.conditioner = (
            conditioner
            if conditioner is not None
            else MADE(input_dim, hidden_dims, num_params=2, context_dim=context_dim, ordering=ordering, **made_kwargs)
        )

    #: How the slow side is computed; see :attr:`inversion`.
    INVERSIONS = ("auto", "sequential", "recursive")

    @property
    def inversion(self) -> str:
        """The strategy of the slow (sequential) side, a public switch:

        * ``"recursive"``: ``D`` passes of the whole network, step k fixing the inputs of degree k; keeps the
          autograd graph (exact gradients). Works with any conditioner that has ``degrees``.
        * ``"sequential"``: the conditioner's own one-step-at-a-time inversion (``conditioner.invert``; a MADE
          computes each hidden unit once, :func:`pyro_flows.nn.sequential_inverse`), about one network pass
          of arithmetic; no gradients, so it raises when they are needed.
        * ``"auto"`` (default): ``"sequential"`` when no gradient is needed and the conditioner can, else
          ``"recursive"``.
        """
        return self._inversion

    @inversion.setter
    def inversion(self, value: str) -> None:
        if value not in self.INVERSIONS:
            raise ValueError(f"inversion must be one of {self.INVERSIONS}, got {value!r}")
        self._inversion = value

    # The two sides of the map, in terms of u (the network's input) and v.
    def _u_to_v(self, u, context):
        v, ld = self.op.forward(u, self.conditioner(u, context))
        return v, ld.sum(-1)

    def _v_to_u(self, v, context):
        """The slow side, by :attr:`inversion`."""
        mode = self.inversion
        if mode == "auto":
            mode = "sequential" if self._can_invert() and not self._needs_grad(v, context) else "recursive"
        elif mode == "sequential":
            if not self._can_invert():
                raise ValueError(
                    f"inversion='sequential' needs a conditioner with invert() (and can_invert); "
                    f"{type(self.conditioner).__name__} has none here: use 'recursive'"
                )
            if self._needs_grad(v, context):
                raise ValueError(
                    "inversion='sequential' computes no gradients; use 'recursive' or 'auto' "
                    "(or torch.no_grad()) where gradients are needed"
                )
        if mode == "recursive":
            return self._v_to_u_recursive(v, context)
        batch = v.shape[:-1] if context is None else torch.broadcast_shapes(v.shape[:-1], context.shape[:-1])
        vt = v.expand(*batch, v.shape[-1]).reshape(-1, v.shape[-1]).T.contiguous()

        def solve(dim, params):
            return self.op.inverse(vt[dim], params)

        return self.conditioner.invert(solve, batch, context, like=v)

    def _can_invert(self) -> bool:
        return bool(getattr(self.conditioner, "can_invert", False))

    def _needs_grad(self, v, context) -> bool:
        if not torch.is_grad_enabled():
            return False
        tensors = [v] + ([context] if context is not None else []) + list(self.parameters())
        return any(t.requires_grad for t in tensors)

    def _v_to_u_recursive(self, v, context):
        """Sequential inversion: step k fixes the inputs of degree k, whose parameters depend on degrees < k.

        At the last step every input below the top degree is exact, so that pass gives all of ``u`` and the
        log-det, with the graph of the whole recursion (exact gradients)."""
        degrees = self.conditioner.degrees
        top = int(degrees.max())
        u = torch.zeros_like(v)
        for k in range(1, top + 1):
            candidate, ld = self.op.inverse(v, self.conditioner(u, context))
            u = candidate if k == top else torch.where(degrees == k, candidate, u)
        return u, ld.sum(-1)

    def _forward_and_log_det(self, x, context=None):
        if self.fast == "forward":
            return self._u_to_v(x, context)
        y, ld = self._v_to_u(x, context)
        return y, -ld

    def _inverse_and_log_det(self, y, context=None):
        if self.fast == "forward":
            return self._v_to_u(y, context)
        x, ld = self._u_to_v(y, context)
        return x, -ld


class MAF(AffineAutoregressive):
    r"""Masked autoregressive flow layer (Papamakarios et al. 2017): density evaluation in one pass.

    In a ``TransformedDistribution`` (base ``z`` to data ``x``): ``z_d = x_d exp(s_d(x_{<d})) + t_d(x_{<d})``,
    so ``log_prob`` is one MADE pass; sampling is sequential (exact).

    Fast direction: inverse (data to base).

    Example:
        >>> import torch, pyro_flows as pf
        >>> layer = MAF(3, (16,))
        >>> x = torch.randn(4, 3)
        >>> torch.allclose(layer(layer.inv(x).clone()), x, atol=1e-5)
        True

    References:
        Papamakarios, Pavlakou & Murray, Masked Autoregressive Flow for Density Estimation, arXiv:1705.07057.
    """

    def __init__(self, input_dim: int, hidden_dims: Sequence[int] | None = None, **kwargs):
        super().__init__(input_dim, hidden_dims, fast="inverse", **kwargs)


class IAF(AffineAutoregressive):
    r"""Inverse autoregressive flow layer (Kingma et al. 2016): sampling in one pass.

    In a ``TransformedDistribution``: ``x_d = z_d exp(s_d(z_{<d})) + t_d(z_{<d})``, so ``rsample`` and the
    ``log_prob`` of its own samples (cached) are one MADE pass; scoring external data is sequential (exact).

    Fast direction: forward (base to data).

    Example:
        >>> import torch, pyro_flows as pf
        >>> layer = IAF(3, (16,))
        >>> z = torch.randn(4, 3)
        >>> torch.allclose(layer.inv(layer(z).clone()), z, atol=1e-5)
        True

    References:
        Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling, Improving Variational Inference with Inverse
        Autoregressive Flow, arXiv:1606.04934.
    """

    def __init__(self, input_dim: int, hidden_dims: Sequence[int] | None = None, **kwargs):
        super().__init__(input_dim, hidden_dims, fast="forward", **kwargs)
