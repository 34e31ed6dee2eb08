"""Maximum-likelihood training of a flow distribution: :func:`fit` and :func:`nll`.

:func:`fit` minimizes the mean negative log-likelihood of minibatches with
``torch.optim.Adam``, evaluates on validation data every few steps, stops early
when validation stops improving, and always leaves the best parameters in place.

Example:
    >>> import torch
    >>> from pyro_flows import data, flow_distribution, realnvp
    >>> from pyro_flows.train import fit, nll
    >>> _ = torch.manual_seed(0)
    >>> split = data.load("moons", n_train=256, n_valid=128, n_test=128)
    >>> d = flow_distribution(realnvp(2, num_layers=2, hidden_dims=(16,)))
    >>> before = nll(d, split.test)
    >>> result = fit(d, split.train, split.valid, steps=50, batch_size=64, lr=1e-2,
    ...              eval_every=25, progress=False, seed=0)
    >>> result.steps_run, nll(d, split.test) < before
    (50, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from pyro.distributions.conditional import ConditionalTransformedDistribution
from torch.distributions import TransformedDistribution

from .distributions import bind, bound_contexts, modules_of
from .loop import FitResult, History, LoopOptions, TrainingDiverged, eval_mode, minibatches, run_loop
from .validation import is_finite_number, nonnegative_int
from .validation import positive_int as _check_positive_int

__all__ = ["History", "FitResult", "TrainingDiverged", "fit", "nll", "training_modules", "distinct_parameters"]


# --------------------------------------------------------------------------- helpers


def training_modules(distribution: object) -> list[torch.nn.Module]:
    """The distinct modules of a flow distribution (:func:`pyro_flows.distributions.modules_of`), after checking
    that it is one that :func:`fit` and :func:`nll` take."""
    if not isinstance(distribution, (TransformedDistribution, ConditionalTransformedDistribution)):
        raise TypeError(
            "distribution must be a pyro.distributions.TransformedDistribution or a "
            "ConditionalTransformedDistribution (e.g. from pyro_flows.flow_distribution(flow)), got "
            f"{type(distribution).__name__}"
        )
    return modules_of(distribution)


def distinct_parameters(modules: list[torch.nn.Module]) -> list[torch.nn.Parameter]:
    """The distinct parameters of ``modules``, each once."""
    params: dict[int, torch.nn.Parameter] = {}
    for module in modules:
        for param in module.parameters():
            params.setdefault(id(param), param)
    return list(params.values())


def _event_shape(distribution) -> tuple:
    if isinstance(distribution, TransformedDistribution):
        return tuple(distribution.event_shape)
    shapes = [t.event_shape for t in distribution.transforms if getattr(t, "event_shape", None) is not None]
    return tuple(shapes[-1]) if shapes else tuple(distribution.base_dist.condition(None).event_shape)


def _check_data(name: str, data: object, distribution: TransformedDistribution) -> torch.Tensor:
    """Checks that ``data`` is a finite floating tensor of shape ``(N, *event_shape)``."""
    event_shape = _event_shape(distribution)
    expected = "(N, " + ", ".join(str(s) for s in event_shape) + ")"
    if not isinstance(data, torch.Tensor):
        raise ValueError(f"{name} must be a tensor of shape {expected}, got {type(data).__name__}")
    if not data.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {data.dtype}")
    if data.dim() != 1 + len(event_shape) or tuple(data.shape[1:]) != event_shape:
        raise ValueError(
            f"{name} must have shape {expected} to match the distribution's event shape "
            f"{event_shape}, got {tuple(data.shape)}"
        )
    if len(data) == 0:
        raise ValueError(f"{name} is empty")
    _check_finite(name, data)
    return data


def _check_finite(name: str, data: torch.Tensor) -> None:
    bad = ~torch.isfinite(data.reshape(len(data), -1)).all(-1)
    if bool(bad.any()):
        rows = bad.nonzero().flatten().tolist()
        raise ValueError(
            f"{name} must be finite, but rows {rows[:10]}{' ...' if len(rows) > 10 else ''} ({len(rows)} in all) "
            "contain NaN or infinite values: clean or drop them before training"
        )


class _Rows:
    """How to score rows of data: the distribution itself, or one bound to each batch's rows of a context.

    A conditional flow's distribution is trained with one context row per data row: either a
    ``ConditionalTransformedDistribution`` and ``context``, or a distribution whose flow was bound to the
    whole (N, C) context (``flow_distribution(flow, context=c)``); minibatches take the matching rows. A
    context without a row dimension of N is shared by every row."""

    def __init__(self, distribution, context, n: int, name: str):
        self.distribution, self.context = distribution, None
        bound = bound_contexts(distribution)
        if len(bound) > 1:
            raise ValueError("fit/nll support one context per distribution; its transforms are bound to several")
        if name == "train" and context is not None and bound and context is not bound[0]:
            raise ValueError(
                f"the distribution is bound to a context already and was given another for {name}: give the "
                "context once (bind it with flow_distribution(flow, context=c), or pass context= to a "
                "ConditionalTransformedDistribution)"
            )
        if context is None and bound:
            context = bound[0]
        bound_all = bind(
            distribution, context, what=f"{name}'s context" if context is None else f"a context for {name}"
        )
        if context is None:
            return
        if not isinstance(context, torch.Tensor) or not context.is_floating_point():
            raise TypeError(f"{name}'s context must be a floating tensor, got {type(context).__name__}")
        per_row = context.dim() >= 2 and context.shape[0] == n
        if context.dim() >= 2 and not per_row:
            raise ValueError(
                f"{name}'s context must have one row per data row, shape ({n}, context_dim), or be shared "
                f"(shape (context_dim,)); got {tuple(context.shape)}"
            )
        _check_finite(f"{name}'s context", context.reshape(n, -1) if per_row else context[None])
        if per_row:
            self.context = context
        else:
            self.distribution = bound_all

    def bind(self, index=None, device=None):
        """The distribution for the rows ``index`` (all rows: ``None``)."""
        if self.context is None:
            return self.distribution
        rows = self.context if index is None else self.context[index]
        return bind(self.distribution, rows.to(device) if device is not None else rows)


def _check_dtype(name: str, data: torch.Tensor, params: list[torch.nn.Parameter]) -> None:
    if params and data.dtype != params[0].dtype:
        raise ValueError(
            f"{name} has dtype {data.dtype} but the flow's parameters have dtype "
            f"{params[0].dtype}; convert one of them (e.g. data.to({params[0].dtype}))"
        )


def _batch_nll(distribution: TransformedDistribution, batch: torch.Tensor) -> torch.Tensor:
    return -distribution.log_prob(batch).mean()


def _device(params: list[torch.nn.Parameter], data: torch.Tensor) -> torch.device:
    return params[0].device if params else data.device


# --------------------------------------------------------------------------- public


def nll(
    distribution: TransformedDistribution,
    data: torch.Tensor,
    *,
    context: torch.Tensor | None = None,
    batch_size: int = 1024,
) -> float:
    """Mean negative log-likelihood of ``data`` in nats: ``-mean_i log p(x_i)``.

    Evaluated without gradients in minibatches of ``batch_size`` rows (to bound
    memory), with every module of the flow in eval mode (batch norm uses its running
    statistics); their previous modes are restored afterwards. Batches are moved to
    the device of the flow's parameters.

    Args:
        distribution: A ``TransformedDistribution`` whose transforms are the flow.
        data: Tensor of shape ``(N, *distribution.event_shape)``.
        context: For a ``ConditionalTransformedDistribution``, the context: one row per
            data row ``(N, context_dim)`` or one shared ``(context_dim,)``. A distribution
            bound to an ``(N, context_dim)`` context (``flow_distribution(flow,
            context=c)``) is scored row by row with it.
        batch_size: Rows per evaluation batch, a positive int.

    Returns:
        The mean NLL over all ``N`` rows, in nats (a Python float).

    Raises:
        TypeError: If ``distribution`` is not a ``TransformedDistribution``.
        ValueError: If ``data`` has the wrong shape, dtype or non-finite values, or
            ``batch_size`` is not a positive int.

    Example:
        >>> import torch, pyro.distributions as dist
        >>> from pyro.distributions.transforms import AffineTransform
        >>> base = dist.Normal(torch.zeros(1), torch.ones(1)).to_event(1)
        >>> d = dist.TransformedDistribution(base, [AffineTransform(0.0, 1.0)])
        >>> round(nll(d, torch.zeros(10, 1)), 4)  # 0.5 log(2 pi)
        0.9189
    """
    modules = training_modules(distribution)
    params = distinct_parameters(modules)
    data = _check_data("data", data, distribution)
    _check_dtype("data", data, params)
    rows = _Rows(distribution, context, len(data), "data")
    return _nll(rows, modules, data, _check_positive_int("batch_size", batch_size), _device(params, data))


def _nll(rows: _Rows, modules, data: torch.Tensor, batch_size: int, device) -> float:
    total = torch.zeros((), dtype=torch.float64, device=device)
    with torch.no_grad(), eval_mode(modules):
        for index in torch.arange(len(data)).split(batch_size):
            d = rows.bind(index, device)
            total += -d.log_prob(data[index].to(device)).sum().to(torch.float64)
    return total.item() / len(data)


def fit(
    distribution: TransformedDistribution,
    train: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    context: torch.Tensor | None = None,
    valid_context: torch.Tensor | None = None,
    steps: int | None = 2000,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    patience: int | None = 10,
    eval_every: int = 100,
    eval_batch_size: int = 1024,
    clip_grad: float | None = None,
    seed: int | None = None,
    progress: bool = True,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    max_seconds: float | None = None,
) -> FitResult:
    """Fits a flow by maximum likelihood: minimizes ``-mean log p(x)`` with Adam.

    Each step draws a minibatch of ``batch_size`` rows of ``train`` (shuffled
    epochs without replacement), with the flow's modules in train mode. Every
    ``eval_every`` steps and after the last one, the validation NLL is computed with
    :func:`nll` (eval mode, no gradients). The parameters with the lowest validation
    NLL are kept: training stops after ``patience`` evaluations without improvement,
    and the best parameters (``state_dict`` of every module, buffers included) are
    restored at the end, and also when training is interrupted (``KeyboardInterrupt``
    propagates after that). Without ``valid`` there is no early stopping and the
    final parameters are kept. The modules are left in eval mode.

    The parameters are those of every ``torch.nn.Module`` among
    ``distribution.transforms`` (looking through compositions and inverses), each
    counted once; the base distribution is not trained.

    Args:
        distribution: A ``pyro.distributions.TransformedDistribution`` whose
            transforms are the flow, e.g. from ``pyro_flows.flow_distribution``.
        train: Training data of shape ``(N, *distribution.event_shape)``, of the
            parameters' dtype; batches are moved to the parameters' device.
        valid: Optional validation data of the same trailing shape.
        context: For a conditional flow given as a ``ConditionalTransformedDistribution``,
            the training context: one row per training row ``(N, context_dim)`` (minibatched
            with the data) or one shared ``(context_dim,)``. A distribution already bound to
            an ``(N, context_dim)`` context (``flow_distribution(flow, context=c)``) needs none.
        valid_context: The validation rows' context, likewise (needed with per-row contexts).
        steps: Maximum number of optimizer steps, a positive int; ``None`` for no
            limit but ``max_seconds`` (which must then be given).
        batch_size: Rows per training minibatch (capped at ``N``), a positive int.
        lr: Adam learning rate.
        weight_decay: Adam's L2 penalty.
        patience: Evaluations without improvement before stopping; ``None`` never
            stops early.
        eval_every: Steps between evaluations, a positive int.
        eval_batch_size: Rows per batch when evaluating, a positive int.
        clip_grad: If given, the maximum total gradient norm (clipped before each step).
        seed: Seed of the minibatch order (a private generator; the global torch
            RNG is not touched). ``None`` draws it from the global RNG.
        progress: Whether to show a tqdm progress bar with the train/valid NLL.
        preprocess: Applied to every training minibatch (on the parameters' device)
            before the loss, e.g. :func:`pyro_flows.data.dequantize` to draw fresh
            dequantization noise each step; ``train`` may then hold raw pixels.
            ``valid`` is used as given (dequantize it once, with a fixed seed). With
            ``seed``, each call draws its random numbers from a private stream derived
            from ``(seed, step)``, so runs repeat exactly whatever the global RNG did.
        max_seconds: A wall-clock budget: training stops (with a final evaluation)
            after the first step that ends past it.

    Returns:
        A :class:`FitResult` with the history, best validation NLL and step, steps
        run, wall time and whether training stopped early.

    Raises:
        TypeError: If ``distribution`` is not a ``TransformedDistribution``.
        ValueError: If the data have the wrong shape or dtype, the distribution has
            no trainable parameters, or an option is out of range.
        TrainingDiverged: A ``FloatingPointError``, if a training or validation loss
            becomes NaN or infinite, or computing it raises ``ValueError`` after the
            first step (e.g. a validating base distribution rejecting NaN); the best
            parameters so far are restored first.

    Example:
        >>> import torch, pyro.distributions as dist
        >>> from pyro.distributions.transforms import spline
        >>> _ = torch.manual_seed(0)
        >>> base = dist.Normal(torch.zeros(2), torch.ones(2)).to_event(1)
        >>> d = dist.TransformedDistribution(base, [spline(2, count_bins=4)])
        >>> result = fit(d, torch.randn(100, 2), steps=20, eval_every=10, progress=False)
        >>> result.history.step, result.best_valid, result.steps_run
        ([10, 20], None, 20)
    """
    options = LoopOptions(
        steps=steps, eval_every=eval_every, patience=patience, max_seconds=max_seconds, progress=progress
    )
    modules = training_modules(distribution)
    params = distinct_parameters(modules)
    if not params:
        raise ValueError("the distribution's transforms have no trainable parameters")
    train, valid = _checked_fit_data(distribution, train, valid, params, preprocess, seed)
    batch_size = min(_check_positive_int("batch_size", batch_size), len(train))
    eval_batch_size = _check_positive_int("eval_batch_size", eval_batch_size)
    _check_options(lr=lr, weight_decay=weight_decay, clip_grad=clip_grad, seed=seed)
    train_rows = _Rows(distribution, context, len(train), "train")
    valid_rows = _valid_rows(distribution, valid, context, valid_context, train_rows)

    device = _device(params, train)
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    batches = minibatches(len(train), batch_size, seed=seed)

    def step(k: int) -> float:
        index = next(batches)
        batch = train[index.to(train.device)].to(device)
        if preprocess is not None:
            batch = _preprocessed(preprocess, batch, seed, k)
        optimizer.zero_grad(set_to_none=True)
        loss = _batch_nll(train_rows.bind(index, device), batch)
        value = loss.item()
        if math.isfinite(value):  # never step on a non-finite loss: the loop restores and raises
            loss.backward()
            if clip_grad is not None:
                torch.nn.utils.clip_grad_norm_(params, clip_grad)
            optimizer.step()
        return value

    def evaluate() -> float:
        return _nll(valid_rows, modules, valid, eval_batch_size, device)

    hint = f"try a lower learning rate (lr={lr:g}) or set clip_grad"
    return run_loop(
        step, evaluate if valid is not None else None, modules, options, hint=hint, valid_label="validation NLL"
    )


def _checked_fit_data(distribution, train, valid, params, preprocess, seed):
    """``train`` and ``valid`` checked (shape, dtype, finite rows); with ``preprocess``, its output on two rows."""
    if preprocess is None:
        train = _check_data("train", train, distribution)
        _check_dtype("train", train, params)
    else:
        if not callable(preprocess):
            raise ValueError(f"preprocess must be a callable or None, got {preprocess!r}")
        if not isinstance(train, torch.Tensor) or len(train) == 0:
            raise ValueError("train must be a non-empty tensor")
        if train.is_floating_point():
            _check_finite("train", train)
        sample = _check_data("preprocess(train)", _preprocessed(preprocess, train[:2], seed, 0), distribution)
        _check_dtype("preprocess(train)", sample, params)
    if valid is not None:
        valid = _check_data("valid", valid, distribution)
        _check_dtype("valid", valid, params)
    return train, valid


def _valid_rows(distribution, valid, context, valid_context, train_rows: _Rows):
    if valid is None:
        if valid_context is not None:
            raise ValueError("valid_context was given without valid data")
        return None
    if train_rows.context is not None and valid_context is None and context is None:
        raise ValueError("valid needs valid_context: the distribution's context has one row per training row")
    shared = context if train_rows.context is None else None
    return _Rows(distribution, valid_context if valid_context is not None else shared, len(valid), "valid")


def _check_options(*, lr: float, weight_decay: float, clip_grad: float | None, seed: int | None) -> None:
    real = is_finite_number
    if not real(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if not real(weight_decay) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    if clip_grad is not None and (not real(clip_grad) or clip_grad <= 0):
        raise ValueError(f"clip_grad must be a positive finite number or None, got {clip_grad!r}")
    if seed is not None:
        nonnegative_int("seed", seed)


def _preprocessed(preprocess, batch: torch.Tensor, seed: int | None, step: int) -> torch.Tensor:
    """``preprocess(batch)``; with a seed, under a private RNG stream seeded from ``(seed, step)``."""
    if seed is None:
        return preprocess(batch)
    devices = [batch.device] if batch.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(hash((seed, step)) % 2**63)
        return preprocess(batch)
