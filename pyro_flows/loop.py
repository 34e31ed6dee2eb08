"""The training loop that maximum likelihood (:func:`pyro_flows.fit`) and SVI training share.

:func:`run_loop` calls a step function and, every ``eval_every`` steps, an evaluation; it keeps the learning
curve, the parameters of the best evaluation (restored at the end, on divergence and on interruption), stops
early after ``patience`` evaluations without improvement or past a time budget, shows a progress bar, and
turns a NaN or infinite loss into :class:`TrainingDiverged`. What a step does (a minibatch NLL and an Adam
step, an SVI step) is the caller's. Its options are one :class:`LoopOptions`, validated in one place.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

import torch

from .validation import is_finite_number, positive_int

__all__ = ["History", "FitResult", "TrainingDiverged", "LoopOptions", "run_loop", "eval_mode", "minibatches"]


@dataclass
class History:
    """Learning curve: one entry per evaluation.

    Attributes:
        step: Steps done at the evaluation.
        train_nll: Mean training loss over the steps since the previous evaluation, in training mode (the
            minibatch NLL in nats for :func:`~pyro_flows.fit`; the negative ELBO for SVI).
        valid_nll: Validation loss in evaluation mode, or ``None`` without validation data.
    """

    step: list[int] = field(default_factory=list)
    train_nll: list[float] = field(default_factory=list)
    valid_nll: list[float | None] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The three lists in a JSON-serializable dict."""
        return asdict(self)


@dataclass
class FitResult:
    """What :func:`~pyro_flows.loop.run_loop` (and :func:`~pyro_flows.fit`) return.

    Attributes:
        history: The learning curve.
        best_valid: Lowest validation loss, or ``None`` without validation data.
        best_step: Step whose parameters were kept: the best validation step, or the last step without
            validation data.
        steps_run: Steps done.
        wall_time: Seconds spent.
        stopped_early: Whether early stopping or ``max_seconds`` ended training before ``steps``.
    """

    history: History
    best_valid: float | None
    best_step: int
    steps_run: int
    wall_time: float
    stopped_early: bool

    def as_dict(self) -> dict:
        """All fields in a JSON-serializable dict."""
        return asdict(self)


class TrainingDiverged(FloatingPointError):
    """Raised when a loss becomes NaN or infinite; the best parameters found before are restored first.

    Attributes:
        step: Step at which the non-finite loss appeared.
        last_finite_loss: The last finite training loss, or ``None`` if there was none.
        history: The learning curve up to the failure.
    """

    def __init__(self, message: str, *, step: int, last_finite_loss: float | None, history: History) -> None:
        super().__init__(message)
        self.step = step
        self.last_finite_loss = last_finite_loss
        self.history = history


@dataclass(frozen=True)
class LoopOptions:
    """How long to train, how often to evaluate, when to stop. Validated when made.

    Attributes:
        steps: Maximum number of steps, a positive int; ``None`` for no limit but ``max_seconds``.
        eval_every: Steps between evaluations, a positive int.
        patience: Evaluations without improvement before stopping; ``None`` never stops early.
        max_seconds: A wall-clock budget: training stops (after a final evaluation) after the first step
            that ends past it.
        progress: Whether to show a tqdm progress bar.
    """

    steps: int | None = 2000
    eval_every: int = 100
    patience: int | None = 10
    max_seconds: float | None = None
    progress: bool = True

    def __post_init__(self):
        if self.steps is None:
            if self.max_seconds is None:
                raise ValueError("steps=None (train until the time budget) needs max_seconds")
        else:
            positive_int("steps", self.steps)
        positive_int("eval_every", self.eval_every)
        if self.patience is not None:
            positive_int("patience", self.patience)
        if self.max_seconds is not None and (not is_finite_number(self.max_seconds) or not self.max_seconds > 0):
            raise ValueError(f"max_seconds must be a positive number or None, got {self.max_seconds!r}")


@contextlib.contextmanager
def eval_mode(modules: Sequence[torch.nn.Module]) -> Iterator[None]:
    """Puts ``modules`` in eval mode and restores their previous modes afterwards."""
    modes = [(m, m.training) for module in modules for m in module.modules()]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _snapshot(modules) -> list:
    return [{key: value.detach().clone() for key, value in m.state_dict().items()} for m in modules]


def _restore(modules, states) -> None:
    with torch.no_grad():
        for module, state in zip(modules, states):
            module.load_state_dict(state)


def run_loop(
    step: Callable[[int], float],
    evaluate: Callable[[], float] | None,
    modules: Sequence[torch.nn.Module],
    options: LoopOptions,
    *,
    hint: str = "",
    desc: str = "fit",
    valid_label: str = "validation loss",
) -> FitResult:
    """Trains by calling ``step(k)`` for k = 1, 2, ... with ``modules`` in train mode.

    Args:
        step: Does one step and returns its loss as a float. It must not apply an update computed from a
            non-finite loss (return the loss instead: the loop raises). A ``ValueError`` it raises at step 1
            is an input error and propagates; later, it counts as divergence.
        evaluate: Returns the validation loss (called in eval mode, without gradients), or ``None`` for no
            validation: then there is no early stopping and the last parameters are kept.
        modules: Whose ``state_dict`` is snapshotted at the best evaluation and restored at the end.
        options: A :class:`LoopOptions`.
        hint: Appended to the divergence message (e.g. "try a lower learning rate").
        desc: The progress bar's label.
        valid_label: What the validation loss is called in messages (e.g. "validation NLL").

    Returns:
        A :class:`FitResult`. The modules are left in eval mode with the best parameters.

    Raises:
        TrainingDiverged: A loss became NaN or infinite (or a step raised ``ValueError`` after the first).
    """
    from tqdm import tqdm  # the text bar: tqdm.auto needs ipywidgets in notebooks

    start = time.perf_counter()
    state = _State(modules, validate=evaluate is not None, hint=hint, valid_label=valid_label)
    steps = math.inf if options.steps is None else options.steps
    stopped_early = False
    with tqdm(
        total=None if steps == math.inf else steps, disable=not options.progress, desc=desc, dynamic_ncols=True
    ) as bar:
        try:
            for k in itertools.count(1):
                if k > steps:
                    break
                state.train_step(k, step)
                bar.update()
                out_of_time = options.max_seconds is not None and time.perf_counter() - start > options.max_seconds
                if k % options.eval_every == 0 or k == steps or out_of_time:
                    bar.set_postfix_str(state.evaluate(k, evaluate))
                    if out_of_time or (options.patience is not None and state.since_best >= options.patience):
                        stopped_early = k < steps
                        break
        except KeyboardInterrupt:
            state.finish()
            raise
    state.finish()
    return FitResult(
        history=state.history,
        best_valid=state.best_valid if evaluate is not None else None,
        best_step=state.best_step,
        steps_run=state.step,
        wall_time=time.perf_counter() - start,
        stopped_early=stopped_early,
    )


class _State:
    """What :func:`run_loop` keeps between steps: history, best parameters, divergence bookkeeping."""

    def __init__(self, modules, *, validate: bool, hint: str, valid_label: str) -> None:
        self.modules, self.validate, self.hint, self.valid_label = list(modules), validate, hint, valid_label
        self.history = History()
        self.step = 0
        self.window: list[float] = []
        self.last_finite_loss: float | None = None
        self.best_valid = math.inf
        self.best_step = 0
        self.best_state = _snapshot(self.modules)
        self.since_best = 0

    def train_step(self, k: int, step: Callable[[int], float]) -> None:
        for module in self.modules:
            module.train()
        try:
            value = float(step(k))
        except ValueError as error:
            if k == 1:  # the same computation has never worked: a real input error
                raise
            self.diverge(k, "training loss", error)
        if not math.isfinite(value):
            self.diverge(k, "training loss", value)
        self.step, self.last_finite_loss = k, value
        self.window.append(value)

    def evaluate(self, k: int, evaluate: Callable[[], float] | None) -> str:
        train = sum(self.window) / len(self.window)
        self.window = []
        valid = None
        if evaluate is not None:
            try:
                with eval_mode(self.modules), torch.no_grad():
                    value = float(evaluate())
            except ValueError as error:  # the data were checked: the parameters broke it
                self.diverge(k, self.valid_label, error)
            if not math.isfinite(value):
                self.diverge(k, self.valid_label, value)
            valid = value
        self.history.step.append(k)
        self.history.train_nll.append(train)
        self.history.valid_nll.append(valid)
        if valid is None or valid < self.best_valid:
            self.best_valid = math.inf if valid is None else valid
            self.best_step = k
            self.best_state = _snapshot(self.modules)
            self.since_best = 0
        else:
            self.since_best += 1
        text = f"train {train:.4g}"
        return text if valid is None else text + f" valid {valid:.4g} best {self.best_valid:.4g}"

    def finish(self) -> None:
        """Restores the best parameters (with validation) or keeps the last ones; eval mode."""
        if self.validate:
            _restore(self.modules, self.best_state)
        else:
            self.best_step = self.step
        for module in self.modules:
            module.eval()

    def diverge(self, k: int, what: str, value) -> None:
        """Restores the best parameters and raises :class:`TrainingDiverged`; ``value`` is the non-finite loss,
        or the ``ValueError`` computing it raised once the parameters went non-finite (chained as the cause)."""
        _restore(self.modules, self.best_state)
        for module in self.modules:
            module.eval()
        if isinstance(value, ValueError):
            cause = " ".join(str(value).split())
            cause = cause if len(cause) <= 120 else cause[:117] + "..."
            state = f"could not be computed (ValueError: {cause})"
        else:
            state = f"is {value}"
        where = "the initial parameters" if self.best_step == 0 else f"step {self.best_step}"
        last = "none" if self.last_finite_loss is None else f"{self.last_finite_loss:.6g}"
        raise TrainingDiverged(
            f"training diverged at step {k}: the {what} {state}; last finite training loss: {last}; the best "
            f"parameters so far (from {where}) were restored" + (f"; {self.hint}" if self.hint else ""),
            step=k,
            last_finite_loss=self.last_finite_loss,
            history=self.history,
        ) from (value if isinstance(value, ValueError) else None)


def minibatches(n: int, batch_size: int, *, seed: int | None) -> Iterator[torch.Tensor]:
    """Endless minibatch row indices: shuffled epochs, the last incomplete batch of each dropped.

    Every batch indexed with them is a new tensor (indexing copies), which matters:
    transforms cache ``(x, y)`` by identity, and a tensor seen again would return the
    previous step's values.
    """
    if seed is None:
        seed = int(torch.randint(2**62, (1,)).item())
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator)
        for begin in range(0, n - batch_size + 1, batch_size):
            yield order[begin : begin + batch_size]
