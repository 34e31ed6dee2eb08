"""Argument and tensor checks, written once: every constructor, factory and call validates through here.

Each check raises ``ValueError`` (a value out of range, a wrong shape) or ``TypeError`` (a wrong type or
dtype) whose message names the argument, what was expected and what was given. ``bool`` is never accepted
where an int is expected (``True`` is not a size).
"""

from __future__ import annotations

import contextvars
import math
import warnings
from collections.abc import Sequence

import torch

__all__ = [
    "is_finite_number",
    "positive_int",
    "nonnegative_int",
    "optional_positive_int",
    "positive_ints",
    "event_shape",
    "check_tensor",
    "check_context",
    "check_conditioner_call",
    "inputs_checked",
    "trusting",
    "renamed_argument",
]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite_number(value) -> bool:
    """Whether ``value`` is a finite int or float (not a bool, not NaN or infinity).

    Example:
        >>> is_finite_number(0.5), is_finite_number(True), is_finite_number(float("nan"))
        (True, False, False)
    """
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def positive_int(name: str, value) -> int:
    """``value`` if it is an int >= 1, else ``ValueError``.

    Example:
        >>> positive_int("num_layers", 3)
        3
    """
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def nonnegative_int(name: str, value) -> int:
    """``value`` if it is an int >= 0, else ``ValueError``."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def optional_positive_int(name: str, value) -> int | None:
    """``None`` or a positive int (e.g. ``context_dim``)."""
    return None if value is None else positive_int(name, value)


def positive_ints(name: str, values, *, allow_empty: bool = False) -> tuple:
    """A tuple of positive ints from a list or tuple (e.g. ``hidden_dims``), else ``ValueError``.

    Example:
        >>> positive_ints("hidden_dims", [8, 8])
        (8, 8)
    """
    if isinstance(values, torch.Tensor) or not isinstance(values, (list, tuple)):
        raise ValueError(f"{name} must be a tuple of positive ints such as (64, 64), got {values!r}")
    if not values and not allow_empty:
        raise ValueError(f"{name} needs at least one entry, got {values!r}")
    if not all(_is_int(v) and v >= 1 for v in values):
        raise ValueError(f"{name} must be a tuple of positive ints such as (64, 64), got {values!r}")
    return tuple(values)


def event_shape(value, *, name: str = "input_dim") -> tuple:
    """``(D,)`` for an int D, the tuple itself for a shape such as ``(C, H, W)``; raises ``ValueError`` unless
    every size is a positive int.

    Example:
        >>> event_shape(3), event_shape((1, 28, 28))
        ((3,), (1, 28, 28))
    """
    if isinstance(value, (list, tuple, torch.Size)):
        shape = tuple(value)
    else:
        shape = (value,)
    if not shape or not all(_is_int(n) and n >= 1 for n in shape):
        raise ValueError(
            f"{name} must be a positive int (vectors) or a shape of positive ints such as (C, H, W), got {value!r}"
        )
    return shape


def check_tensor(value, shape: Sequence[int], *, what: str, owner: str, dtype: torch.dtype | None = None) -> None:
    """Raises a clear error unless ``value`` is a floating tensor whose trailing shape is ``shape`` (and whose
    dtype is ``dtype``, when given).

    Raises:
        TypeError: not a floating-point tensor, or not of ``dtype``.
        ValueError: the trailing shape differs.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{owner} expected its {what} to be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{owner} expected a floating-point {what}, got dtype {value.dtype}")
    n = len(shape)
    if value.dim() < n or tuple(value.shape[value.dim() - n :]) != tuple(shape):
        raise ValueError(
            f"{owner} expected its {what} to have shape (*batch, {', '.join(map(str, shape))}), "
            f"got {tuple(value.shape)}"
        )
    if dtype is not None and value.dtype != dtype:
        raise TypeError(
            f"{owner} expected its {what} in its parameters' dtype {dtype}, got {value.dtype}: convert the "
            f"tensor (e.g. .to({dtype})) or the flow (e.g. flow.to({value.dtype}))"
        )


def check_context(
    context, context_dim: int | None, *, owner: str, dtype: torch.dtype | None = None, batch_shape=None, what="input"
) -> None:
    """THE context rule: a context exactly when ``context_dim`` is set, a floating tensor of shape
    ``(*batch, context_dim)`` (of ``dtype`` when given) whose batch shape broadcasts with ``batch_shape`` (the
    ``what``'s, when given). Every flow, conditioner and distribution checks its context here.

    Raises:
        TypeError: not a floating tensor, or not of ``dtype``.
        ValueError: a context given to an unconditional owner, none given to a conditional one, a wrong width,
            or a batch shape that does not broadcast.
    """
    if context_dim is None:
        if context is not None:
            raise ValueError(f"{owner} is unconditional (context_dim=None) but was given a context")
        return
    if context is None:
        raise ValueError(
            f"{owner} is conditional (context_dim={context_dim}) and needs a context: use "
            f"flow.condition(context) with a tensor of shape (*batch, {context_dim})"
        )
    check_tensor(context, (context_dim,), what="context", owner=owner, dtype=dtype)
    if batch_shape is not None:
        try:
            torch.broadcast_shapes(tuple(batch_shape), context.shape[:-1])
        except RuntimeError:
            raise ValueError(
                f"{owner} expected a context whose batch shape broadcasts with the {what}'s {tuple(batch_shape)}, "
                f"got a context of shape {tuple(context.shape)}"
            ) from None


# Inputs checked at the entry of a flow pass are not checked again by the layers and conditioners it runs.
#: True inside a checked pass (set by :meth:`pyro_flows.FlowLike.forward_and_log_det` and its inverse).
CHECKED = contextvars.ContextVar("pyro_flows_inputs_checked", default=False)


def inputs_checked() -> bool:
    """Whether the current call runs inside a flow pass whose inputs were checked at its entry (a layer's
    conditioner then skips its own checks; called directly, it checks)."""
    return CHECKED.get()


def trusting(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with :func:`inputs_checked` true (the caller has checked its inputs)."""
    token = CHECKED.set(True)
    try:
        return fn(*args, **kwargs)
    finally:
        CHECKED.reset(token)


def check_conditioner_call(conditioner, x, context, event_shape: Sequence[int]) -> None:
    """What a conditioner checks when it is called directly (inside a flow pass the layer checked already, see
    :func:`inputs_checked`): ``x`` a floating tensor in the parameters' dtype (its shape the conditioner
    checks itself), and the
    context by :func:`check_context` (``conditioner.context_dim``)."""
    if inputs_checked():
        return
    owner = type(conditioner).__name__
    dtype = next((p.dtype for p in conditioner.parameters() if p.is_floating_point()), None)
    check_tensor(x, (), what="input", owner=owner, dtype=dtype)  # its shape: the conditioner's own checks
    batch = x.shape[: max(0, x.dim() - len(event_shape))]
    check_context(context, conditioner.context_dim, owner=owner, dtype=dtype, batch_shape=batch)


def renamed_argument(kwargs: dict, old: str, new: str, value, *, owner: str):
    """The value of argument ``new``, taking it from the deprecated name ``old`` in ``kwargs`` (removed from
    it) with a ``DeprecationWarning``; ``TypeError`` if both are given. Returns ``value`` when ``old`` is absent."""
    if old not in kwargs:
        return value
    if value is not None:
        raise TypeError(f"{owner} got both {new}= and its deprecated name {old}=; give {new}= only")
    warnings.warn(
        f"{owner}: {old}= is deprecated since 0.2 and will be removed in 0.4; use {new}=",
        DeprecationWarning,
        stacklevel=4,
    )
    return kwargs.pop(old)
