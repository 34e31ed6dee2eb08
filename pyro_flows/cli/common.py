"""What the ``fit`` and ``vae`` commands share: argument parsers, the checks of ``--out`` and ``--device``,
the library versions, signals, and the writing of a run's outputs.

Outputs are written by :func:`write_outputs` under the rule stated in :mod:`pyro_flows.cli`: every file through
a temporary file in the same folder and :func:`os.replace` (:func:`atomic_write`), an earlier run's outputs moved
into ``DIR/.previous/`` first (:func:`retire_earlier_run`, ``metrics.json`` first), ``metrics.json`` last.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import secrets
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import torch

__all__ = [
    "METRICS",
    "OUTPUTS",
    "PREVIOUS",
    "Interrupted",
    "Terminated",
    "atomic_write",
    "check_out",
    "device",
    "exit_code",
    "number",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "retire_earlier_run",
    "signals_as_interrupts",
    "versions",
    "write_outputs",
]

METRICS = "metrics.json"
"""The name of the file written last, whose presence means that the run's other outputs beside it are complete."""

OUTPUTS = ("metrics.json", "model.pt", "history.png", "density.png", "samples.png", "reconstructions.png")
"""Every file a command may write into ``--out``: those of an earlier run are moved aside before a run writes."""

PREVIOUS = ".previous"
"""The subfolder of ``--out`` that receives the earlier run's outputs (one earlier run is kept)."""

_PARTIAL = ".partial"  # the infix of temporary files: ".model.pt.<random>.partial.pt"


# --------------------------------------------------------------------------- arguments


def number(cast: Callable, *, minimum: float, strict: bool = False, what: str | None = None) -> Callable[[str], object]:
    """An argparse ``type``: parses with ``cast`` and requires a finite value >= ``minimum`` (> if ``strict``).

    Args:
        cast: ``int`` or ``float``.
        minimum: The smallest value allowed (excluded with ``strict``).
        strict: Require a value strictly above ``minimum``.
        what: How the error message names the expected value (default: ``"a float >= 0"`` and the like).

    Example:
        >>> number(int, minimum=1)("3")
        3
    """
    what = what or f"a {cast.__name__} {'>' if strict else '>='} {minimum}"

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (math.isfinite(value) and (value > minimum if strict else value >= minimum)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


positive_int = number(int, minimum=1, what="a positive integer")
non_negative_int = number(int, minimum=0, what="an integer >= 0")
positive_float = number(float, minimum=0, strict=True, what="a positive number")


# --------------------------------------------------------------------------- checks and records


def check_out(out: Path) -> None:
    """Raises ``ValueError`` unless ``out`` is a writable folder or can be made one (nothing is created)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder, but {out} is an existing file")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out} cannot be written: {existing} is not a writable folder")


def device(name: str) -> torch.device:
    """The ``--device``; ``ValueError`` for ``cuda`` on a machine without CUDA."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but torch.cuda.is_available() is False")
    return torch.device(name)


def versions() -> dict[str, str]:
    """The versions of pyro_flows, torch, Pyro and Python, for ``metrics.json``."""
    import pyro

    from .. import __version__

    return {
        "pyro_flows": __version__,
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "python": platform.python_version(),
    }


# --------------------------------------------------------------------------- signals


class Terminated(KeyboardInterrupt):
    """Raised by SIGTERM inside :func:`signals_as_interrupts`: a ``KeyboardInterrupt``, so that the training loop
    restores the best parameters and the command saves them exactly as after Ctrl-C."""


class Interrupted(Exception):
    """Raised by a command after it saved the outputs of an interrupted run.

    Attributes:
        metrics: What was written into ``metrics.json`` (``"interrupted": true``), with ``"out"`` added.
        code: The exit code, :func:`exit_code` of the interruption.
    """

    def __init__(self, metrics: dict, interruption: KeyboardInterrupt):
        super().__init__(f"interrupted; wrote {metrics.get('out')}")
        self.metrics = metrics
        self.code = exit_code(interruption)


def exit_code(interruption: BaseException) -> int:
    """128 + the signal number, the shells' convention: 143 for SIGTERM (:class:`Terminated`), 130 for SIGINT."""
    return 128 + (signal.SIGTERM if isinstance(interruption, Terminated) else signal.SIGINT)


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread, as SIGINT raises
    ``KeyboardInterrupt``; and an interruption that Python had to drop is delivered again. The previous handler
    and ``sys.unraisablehook`` are restored at the end. Outside the main thread (where Python cannot set signal
    handlers) it changes nothing.

    Python runs a signal's handler between any two bytecodes, also inside a weakref callback or a ``__del__``
    (the flows' cache has such callbacks), where an exception cannot propagate: it is printed as "Exception
    ignored in ..." and training would go on. Such a dropped interruption reaches ``sys.unraisablehook``; the
    hook installed here sends the same signal again 50 ms later, once the callback has returned.
    """

    def terminate(signum, frame):
        raise Terminated(f"signal {signum} (SIGTERM)")

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread
        yield
        return
    previous_hook = sys.unraisablehook
    timers: list[threading.Timer] = []

    def redeliver(unraisable) -> None:
        kind = unraisable.exc_type
        if isinstance(kind, type) and issubclass(kind, KeyboardInterrupt):
            signum = signal.SIGTERM if issubclass(kind, Terminated) else signal.SIGINT
            timer = threading.Timer(0.05, os.kill, (os.getpid(), signum))
            timer.daemon = True
            timers.append(timer)
            timer.start()
        else:
            previous_hook(unraisable)

    sys.unraisablehook = redeliver
    try:
        yield
    finally:
        for timer in timers:
            timer.cancel()
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------- outputs


def atomic_write(path: Path, writer: Callable[[Path], object]) -> Path:
    """Writes ``path`` whole or not at all: ``writer(temporary)`` writes a temporary file in the same folder
    (named ``.NAME.<random>.partial.SUFFIX``, so that writers that go by the suffix, like matplotlib, still
    work), which is flushed to disk and then renamed over ``path`` with :func:`os.replace`. An exception or a
    signal on the way leaves ``path`` as it was; the temporary file is removed.

    Returns:
        ``path``.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> atomic_write(folder / "a.txt", lambda tmp: tmp.write_text("whole")).read_text()
        'whole'
        >>> sorted(p.name for p in folder.iterdir())
        ['a.txt']
    """
    path = Path(path)
    tmp = _new_file(path.parent, f".{path.name}.", f"{_PARTIAL}{path.suffix}")
    try:
        writer(tmp)
        with open(tmp, "rb") as file:
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def _new_file(folder: Path, prefix: str, suffix: str) -> Path:
    """Creates an empty file of a new random name, with the permissions of ``open`` (the umask's; ``mkstemp``
    would make it private)."""
    while True:
        path = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return path


def _fsync_folder(folder: Path) -> None:
    """Makes a rename in ``folder`` durable where the platform allows it (POSIX)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def retire_earlier_run(out: Path) -> list[str]:
    """Moves the outputs (:data:`OUTPUTS`) of an earlier run in ``out`` into ``out/.previous/``, ``metrics.json``
    first, so that ``out`` never shows an earlier ``metrics.json`` beside newer files. The ``.previous`` of the
    run before is dropped; temporary files that an interrupted write left are removed.

    The files are gathered in ``out/.previous.partial/`` and that folder is renamed to ``.previous`` when all are
    in: a ``.previous`` folder always holds one run's files as that run left them.

    Returns:
        The names moved.
    """
    for name in OUTPUTS:
        for leftover in out.glob(f".{name}.*{_PARTIAL}*"):
            leftover.unlink(missing_ok=True)
    present = [name for name in OUTPUTS if (out / name).exists()]  # OUTPUTS starts with metrics.json
    if not present:
        return []
    staging = out / (PREVIOUS + _PARTIAL)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name in present:
        os.replace(out / name, staging / name)
    previous = out / PREVIOUS
    if previous.exists():
        with contextlib.suppress(FileNotFoundError):
            (previous / METRICS).unlink()  # first: a half-removed .previous never looks complete
        shutil.rmtree(previous)
    os.replace(staging, previous)
    _fsync_folder(out)
    return present


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_outputs(
    out: Path,
    files: Mapping[str, Callable[[Path], object]],
    metrics: dict,
    *,
    extras: Mapping[str, Callable[[Path], object]] | None = None,
) -> tuple[dict, KeyboardInterrupt | None]:
    """Writes one run's outputs into ``out``: retires the earlier run's (:func:`retire_earlier_run`), writes each
    of ``files`` then of ``extras`` (name -> ``writer(path)``, e.g. the plots) with :func:`atomic_write`, in
    order, and ``metrics.json`` LAST, with ``"outputs"``: the size and SHA-256 of each file written beside it.

    An interruption (``KeyboardInterrupt``, :class:`Terminated`) while the ``extras`` are written skips the rest
    of them: ``metrics.json`` is still written, with ``"interrupted": true``. One at any other moment propagates
    and leaves no ``metrics.json``.

    Returns:
        ``metrics`` as written, and the interruption that stopped the extras or ``None``.
    """
    out.mkdir(parents=True, exist_ok=True)
    retire_earlier_run(out)
    written: dict[str, dict] = {}

    def write(name: str, writer: Callable[[Path], object]) -> None:
        path = atomic_write(out / name, writer)
        written[name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}

    for name, writer in files.items():
        write(name, writer)
    interruption = None
    try:
        for name, writer in (extras or {}).items():
            write(name, writer)
    except KeyboardInterrupt as error:
        interruption = error
        metrics = {**metrics, "interrupted": True}
    metrics = {**metrics, "outputs": written}
    text = json.dumps(metrics, indent=2) + "\n"
    atomic_write(out / METRICS, lambda tmp: tmp.write_text(text))
    return metrics, interruption


def save_run(
    out: Path,
    module: torch.nn.Module,
    metrics: dict,
    interruption: KeyboardInterrupt | None,
    plots: Callable[[], Mapping[str, Callable[[Path], object]]],
) -> dict:
    """The end of a command: ``metrics`` with the arguments' record, ``model.pt`` (``module``'s state) and, when
    not interrupted, the plots that ``plots()`` lists, written by :func:`write_outputs`. Returns the metrics
    written (with ``"out"``); raises :class:`Interrupted` with them when training or the writing was
    interrupted."""
    state = module.state_dict()
    metrics, late = write_outputs(
        out,
        {"model.pt": lambda path: torch.save(state, path)},
        metrics,
        extras={} if interruption is not None else plots(),
    )
    metrics["out"] = str(out)
    interruption = interruption or late
    if interruption is not None:
        raise Interrupted(metrics, interruption)
    return metrics


def args_record(args) -> dict:
    """The parsed arguments (paths as strings) and the library versions, for ``metrics.json``."""
    return {
        "args": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "versions": versions(),
    }


def training_options(args) -> dict:
    """The options both commands give their trainer (:func:`pyro_flows.fit`, :func:`pyro_flows.models.fit_vae`)."""
    return {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "eval_every": args.eval_every,
        "seed": args.seed,
        "progress": not args.no_progress,
    }
