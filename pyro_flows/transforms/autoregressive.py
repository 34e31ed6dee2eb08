"""Affine autoregressive flows: MAF and IAF over one implementation."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from ..base import as_event_shape, layers, sum_rightmost
from ..flow import Flow
from ..nn import MADE, default_hidden_dims
from ..ops import Affine
from ..protocols import AutoregressiveConditioner, ElementwiseOp
from ..validation import renamed_argument

__all__ = ["AffineAutoregressive", "MAF", "IAF", "set_inversion"]


class AffineAutoregressive(Flow):
    r"""The autoregressive map ``v_i = op(u_i; params_i(u_{<i}))`` with ``params = conditioner(u, context)``.

    The elementwise ``op`` is affine by default (``v_i = u_i exp(s_i) + t_i``); "earlier" is the conditioner's
    order, its ``degrees`` (an integer per event entry, shaped like the event). The event can be a vector
    ``(D,)`` with a :class:`~pyro_flows.nn.MADE`, a sequence ``(C, T)`` with a :class:`~pyro_flows.nn.WaveNet`
    or :class:`~pyro_flows.nn.RecurrentConditioner`, an image ``(C, H, W)`` with a
    :class:`~pyro_flows.nn.PixelCNN`: any :class:`~pyro_flows.protocols.AutoregressiveConditioner`. The
    log-det sums over every event dim.

    The map from ``u`` to ``v`` costs one network pass (its *fast* side); its inverse is sequential: ``u_i``
    needs ``u_{<i}`` first. :class:`MAF` puts the fast side on the density direction (data ``u`` to base),
    :class:`IAF` on the sampling direction (base ``u`` to data). The slow side is exact: the conditioner's
    own sequential inversion (``invert``: MADE's one-unit-at-a-time pass, WaveNet's queues, the LSTM's state)
    where it has one, else one network pass per generation step.

    Args:
        event_shape: ``D`` (an int: a MADE is built) or the event shape; optional with ``conditioner``, whose
            ``event_shape`` it must match.
        hidden_dims: hidden widths of the MADE (default :func:`~pyro_flows.nn.default_hidden_dims`).
        fast: ``"forward"`` (IAF: the forward map is the fast one) or ``"inverse"`` (MAF).
        context_dim: size of a context vector given to the MADE (with ``conditioner``: the conditioner's own
            ``context_dim``, which it must match when given).
        ordering: the MADE's input ordering (see ``pyro_flows.masks.input_degrees``); default
            ``"random"``, drawn from torch's global generator (or ``seed``) for each layer as Pyro's
            ``AutoRegressiveNN`` does, so ``[IAF(D) for _ in range(n)]`` stacks layers of different orderings.
            The factories :func:`~pyro_flows.maf` and :func:`~pyro_flows.iaf` alternate natural and reversed.
        scale: the scale parametrization of the default op (see :func:`pyro_flows.ops.log_scale`).
        conditioner: any :class:`~pyro_flows.protocols.AutoregressiveConditioner` instead of a MADE (then
            ``hidden_dims``, ``ordering`` and MADE options are refused: it would ignore them).
        op: the elementwise map: :class:`~pyro_flows.ops.Affine` with ``scale`` by default, or e.g.
            :class:`~pyro_flows.ops.GatedAffine` (IAF's stable update); the conditioner must return
            ``op.num_params`` tensors.
        inversion: how the slow side is computed: ``"auto"``, ``"sequential"`` or ``"recursive"`` (see
            :attr:`inversion`); settable later.
        **made_kwargs: further MADE options (``hidden_degrees``, ``residual``, ``seed``).
    """

    def __init__(
        self,
        event_shape: int | Sequence[int] | None = None,
        hidden_dims: Sequence[int] | None = None,
        *,
        fast: str,
        context_dim: int | None = None,
        ordering=None,
        scale: str = "softclamp",
        conditioner: AutoregressiveConditioner | None = None,
        op: ElementwiseOp | None = None,
        inversion: str = "auto",
        **made_kwargs,
    ):
        event_shape = renamed_argument(made_kwargs, "input_dim", "event_shape", event_shape, owner=type(self).__name__)
        if fast not in ("forward", "inverse"):
            raise ValueError(f"fast must be 'forward' (IAF) or 'inverse' (MAF), got {fast!r}")
        if op is not None and scale != "softclamp":
            raise ValueError("give scale= (for the default Affine op) or op=, not both")
        op = Affine(scale) if op is None else op
        if not isinstance(op, ElementwiseOp):
            raise TypeError(f"op must be an elementwise op (see pyro_flows.protocols.ElementwiseOp), got {op!r}")
        if conditioner is None:
            if event_shape is None:
                raise ValueError("give the event shape (an int D for a MADE) or a conditioner")
            shape = as_event_shape(event_shape, name=f"{type(self).__name__}'s event_shape")
            if len(shape) != 1:
                raise ValueError(
                    f"a MADE conditions vectors; for the event shape {tuple(shape)} pass conditioner= "
                    "(pyro_flows.nn.WaveNet or RecurrentConditioner for (C, T), PixelCNN for (C, H, W))"
                )
            (input_dim,) = shape
            if input_dim == 1 and context_dim is None:
                warnings.warn(
                    "an unconditional 1-D autoregressive layer is a learned affine map (its first and only variable "
                    "has no earlier one to depend on); for a flexible 1-D density use a spline, e.g. "
                    "pyro.distributions.transforms.Spline(1)",
                    stacklevel=3,
                )
            conditioner = MADE(
                input_dim,
                default_hidden_dims(input_dim) if hidden_dims is None else hidden_dims,
                num_params=op.num_params,
                context_dim=context_dim,
                ordering="random" if ordering is None else ordering,
                **made_kwargs,
            )
        else:
            conditioner = self._check_conditioner(
                conditioner, event_shape, context_dim, hidden_dims, ordering, made_kwargs
            )
        super().__init__(event_shape=tuple(conditioner.event_shape), context_dim=conditioner.context_dim)
        self.fast = fast
        self.op = op
        self.conditioner = conditioner
        self.inversion = inversion

    @staticmethod
    def _check_conditioner(conditioner, event_shape, context_dim, hidden_dims, ordering, made_kwargs):
        if not isinstance(conditioner, AutoregressiveConditioner):
            raise TypeError(
                "conditioner must be an autoregressive conditioner (a module with degrees, event_shape and "
                f"context_dim; see pyro_flows.protocols.AutoregressiveConditioner), got {type(conditioner).__name__}"
            )
        ignored = [name for name, value in (("hidden_dims", hidden_dims), ("ordering", ordering)) if value is not None]
        ignored += sorted(made_kwargs)
        if ignored:
            raise ValueError(
                f"{', '.join(ignored)} configure the default MADE and would be ignored with conditioner=: "
                f"set them on the {type(conditioner).__name__} instead"
            )
        shape = tuple(conditioner.event_shape)
        if event_shape is not None:
            given = tuple(as_event_shape(event_shape, name="event_shape"))
            if given != shape:
                raise ValueError(f"event_shape {given} does not match the conditioner's event_shape {shape}")
        if context_dim is not None and context_dim != conditioner.context_dim:
            raise ValueError(f"context_dim={context_dim} does not match the conditioner's {conditioner.context_dim}")
        if tuple(conditioner.degrees.shape) != shape:
            raise ValueError(
                f"the conditioner's degrees {tuple(conditioner.degrees.shape)} must be shaped like {shape}"
            )
        return conditioner

    #: How the slow side is computed; see :attr:`inversion`.
    INVERSIONS = ("auto", "sequential", "recursive")

    @property
    def inversion(self) -> str:
        """The strategy of the slow (sequential) side, a public switch:

        * ``"recursive"``: one pass of the whole network per generation step (step k fixing the entries of
          degree k); keeps the autograd graph (exact gradients). Works with any conditioner, as it needs only
          ``degrees``.
        * ``"sequential"``: the conditioner's own one-step-at-a-time inversion (``conditioner.invert``: a MADE
          computes each hidden unit once, :func:`pyro_flows.nn.sequential_inverse`; a WaveNet keeps a queue per
          layer; an LSTM its state); no gradients, so it raises when they are needed.
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
    def params(self, u: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """The op's parameters at ``u`` (the conditioner's output: ``op.num_params`` tensors shaped like ``u``)."""
        params = self.conditioner(u, context)
        if len(params) != self.op.num_params:
            raise ValueError(
                f"the conditioner returned {len(params)} parameter tensors; the op {type(self.op).__name__} "
                f"needs {self.op.num_params}"
            )
        return params

    def _u_to_v(self, u, context):
        v, ld = self.op.forward(u, self.params(u, context))
        return v, sum_rightmost(ld, self.event_dim)

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
        event = self.event_shape
        batch = v.shape[: v.dim() - self.event_dim]
        if context is not None:
            batch = torch.broadcast_shapes(batch, context.shape[:-1])
        flat = v.expand(*batch, *event).reshape(-1, *event)

        def solve(index, params):
            value, ld = self.op.inverse(flat[(slice(None),) + tuple(index)], params)
            return value, ld.flatten(1).sum(-1) if ld.dim() > 1 else ld

        return self.conditioner.invert(solve, batch, context, like=v)

    def _can_invert(self) -> bool:
        return bool(getattr(self.conditioner, "can_invert", False))

    def _needs_grad(self, v, context) -> bool:
        if not torch.is_grad_enabled():
            return False
        tensors = [v] + ([context] if context is not None else []) + list(self.parameters())
        return any(t.requires_grad for t in tensors)

    def _v_to_u_recursive(self, v, context):
        """Sequential inversion: step k fixes the entries of degree k, whose parameters depend on degrees < k.

        At the last step every entry below the top degree is exact, so that pass gives all of ``u`` and the
        log-det, with the graph of the whole recursion (exact gradients)."""
        degrees = self.conditioner.degrees
        top = int(degrees.max())
        u = torch.zeros_like(v)
        for k in range(1, top + 1):
            candidate, ld = self.op.inverse(v, self.params(u, context))
            u = candidate if k == top else torch.where(degrees == k, candidate, u)
        return u, sum_rightmost(ld, self.event_dim)

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

    def __init__(
        self, event_shape: int | Sequence[int] | None = None, hidden_dims: Sequence[int] | None = None, **kwargs
    ):
        super().__init__(event_shape, hidden_dims, fast="inverse", **kwargs)


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

    def __init__(
        self, event_shape: int | Sequence[int] | None = None, hidden_dims: Sequence[int] | None = None, **kwargs
    ):
        super().__init__(event_shape, hidden_dims, fast="forward", **kwargs)


def set_inversion(flow, mode: str) -> int:
    """Sets :attr:`AffineAutoregressive.inversion` to ``mode`` on every autoregressive layer of ``flow`` (any
    transform or list of them; found by :func:`pyro_flows.layers`); returns how many were set.

    Raises:
        ValueError: ``mode`` is no inversion strategy, or ``flow`` has no autoregressive layer.

    Example:
        >>> import pyro_flows as pf
        >>> set_inversion(pf.maf(3, num_layers=2, hidden_dims=(8,)), "recursive")
        2
    """
    if mode not in AffineAutoregressive.INVERSIONS:
        raise ValueError(f"inversion must be one of {AffineAutoregressive.INVERSIONS}, got {mode!r}")
    found = {
        id(step.layer): step.layer
        for t in (flow if isinstance(flow, (list, tuple)) else [flow])
        for step in layers(t)
        if isinstance(step.layer, AffineAutoregressive)
    }
    if not found:
        raise ValueError(f"set_inversion found no autoregressive (MAF/IAF) layer in {type(flow).__name__}")
    for layer in found.values():
        layer.inversion = mode
    return len(found)
