"""Seeded bad-input fuzzing of pyro_flows: a probe generator and a classifier of what each probe did.

A *probe* is one call with a bad (or, as a control, a valid) input: a wrong event shape, a wrong dtype, NaN/inf
values, an empty batch, a missing/extra/mismatched context, a bad constructor argument, NaN data given to a
statistic update or to :func:`pyro_flows.fit`. Probes run on every case of ``tests/cases.py`` and on the
constructors and factories. Each outcome is put in one class:

* ``"clear error"``: a ``ValueError``/``TypeError`` raised by a ``raise`` statement in pyro_flows whose message
  says what was expected (it contains "expect", "must", "need", "require", "should", "takes" or "unconditional",
  and matches the patterns the probe asks for, e.g. both dtypes), of the type the policy asks for (``TypeError`` for dtypes);
* ``"correct"``: a result that is right (shapes and dtype as they should be, finite where finite is due);
* ``"other exception"``: any other exception, a ``ValueError``/``TypeError`` raised inside torch (the traceback's
  last frame is not a ``raise`` in pyro_flows), one of the wrong type or with a vague message, a valid call
  refused, or a probe running past its time limit;
* ``"silent"``: a bad argument accepted (an extra context ignored, a bad constructor argument taken), or a wrong
  result returned;
* ``"NaN"``: NaN/inf accepted where a clear error was due (``fit``, statistic updates; ``log_prob`` only when the
  README promises an error for NaN), or a non-finite result where a finite one was due. NaN propagating
  through a bare transform call is allowed (it counts as correct).

``python tests/fuzz.py [--seed N] [--list]`` prints the counts per class and per probe family (``--list``: every
probe that did not end as a clear error or a correct result). The cases are read from the ``tests/cases.py``
next to the imported ``pyro_flows`` package (so a checkout on ``PYTHONPATH`` is fuzzed with its own cases), or
else from this file's directory.
"""

from __future__ import annotations

import importlib.util
import linecache
import random
import re
import signal
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import pyro_flows as pf

SEED = 20240608
CLASSES = ("clear error", "correct", "other exception", "silent", "NaN")
OK = ("clear error", "correct")
FAMILIES = ("shape", "dtype", "nonfinite", "empty", "context", "constructor", "stats", "fit")
TIME_LIMIT_S = 5.0  # per probe: a loop that never ends is an "other exception"

PF_DIR = Path(pf.__file__).resolve().parent
CLEAR_WORDS = re.compile(r"expect|must|need|require|should|takes|unconditional", re.IGNORECASE)


def _load_cases():
    """``tests/cases.py`` of the imported pyro_flows checkout, else the one next to this file."""
    here = Path(__file__).resolve().parent
    for path in (PF_DIR.parent / "tests" / "cases.py", here / "cases.py"):
        if path.exists():
            break
    loaded = sys.modules.get("cases")
    if loaded is not None and Path(getattr(loaded, "__file__", "")).resolve() == path.resolve():
        return loaded
    name = "_pyro_flows_fuzz_cases"
    if name in sys.modules and Path(sys.modules[name].__file__).resolve() == path.resolve():
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


cases = _load_cases()
CASES = cases.CASES


# --- probes and outcomes ----------------------------------------------------------------------------------
@dataclass
class Probe:
    """One call and what it should do.

    ``expect``: ``"error"`` (a clear error is due), ``"result"`` (a valid call: ``check`` must pass) or
    ``"either"`` (a clear error or a result passing ``check``). ``check(result)`` returns ``None`` when the
    result is right, else ``(class, reason)``. ``accepted`` is the class of an ``"error"`` probe that returned
    instead of raising (``"silent"``, or ``"NaN"`` where NaN/inf data were accepted).
    """

    family: str
    name: str
    call: Callable[[], Any]
    expect: str = "error"
    check: Callable[[Any], tuple[str, str] | None] | None = None
    error_types: tuple = (ValueError, TypeError)
    words: tuple = ()  # regular expressions the message must match (case-insensitive)
    accepted: str = "silent"


@dataclass
class Outcome:
    probe: Probe
    cls: str
    detail: str

    def line(self) -> str:
        return f"[{self.cls}] {self.probe.family}/{self.probe.name}: {self.detail}"


class ProbeTimeout(Exception):
    pass


def _raised_in_pyro_flows(error: BaseException) -> tuple[bool, str]:
    """Whether ``error`` comes from a ``raise`` statement in pyro_flows (not from torch, nor from a builtin or a
    torch op called by pyro_flows code); also where it was raised, for the report."""
    tb = error.__traceback__
    if tb is None:
        return False, "?"
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = Path(tb.tb_frame.f_code.co_filename).resolve()
    where = f"{filename.name}:{tb.tb_lineno}"
    try:
        filename.relative_to(PF_DIR)
    except ValueError:
        return False, f"{filename.parent.name}/{where}"
    line = linecache.getline(str(filename), tb.tb_lineno).strip()
    return line.startswith("raise"), f"pyro_flows/{filename.relative_to(PF_DIR)}:{tb.tb_lineno}"


def _short(message: str, n: int = 160) -> str:
    message = " ".join(str(message).split())
    return message if len(message) <= n else message[: n - 3] + "..."


class _Guard:
    """Raises :class:`ProbeTimeout` in the main thread after ``seconds`` (no-op elsewhere)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.active = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")

    def _fire(self, *_):
        raise ProbeTimeout(f"ran past {self.seconds:g} s")

    def __enter__(self):
        if self.active:
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc):
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


def classify(probe: Probe) -> Outcome:
    """Runs ``probe`` and puts its outcome in one of :data:`CLASSES`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with _Guard(TIME_LIMIT_S):
                result = probe.call()
    except ProbeTimeout as error:
        return Outcome(probe, "other exception", f"timeout: {error}")
    except Exception as error:  # noqa: BLE001 - classifying every exception is the point
        kind = type(error).__name__
        message = _short(error)
        if not isinstance(error, (ValueError, TypeError)):
            return Outcome(probe, "other exception", f"{kind}: {message}")
        ours, where = _raised_in_pyro_flows(error)
        if not ours:
            return Outcome(probe, "other exception", f"{kind} from {where} (not a pyro_flows raise): {message}")
        if probe.expect == "result":
            return Outcome(probe, "other exception", f"a valid call was refused: {kind}: {message}")
        if not isinstance(error, probe.error_types):
            wanted = "/".join(t.__name__ for t in probe.error_types)
            return Outcome(probe, "other exception", f"wanted {wanted}, got {kind} ({where}): {message}")
        text = str(error)
        missing = [w for w in probe.words if not re.search(w, text, re.IGNORECASE)]
        if not CLEAR_WORDS.search(text) or missing:
            why = f"message lacks {missing}" if missing else "message does not say what was expected"
            return Outcome(probe, "other exception", f"{why}: {kind} ({where}): {message}")
        return Outcome(probe, "clear error", f"{kind}: {message}")
    if probe.expect == "error":
        verdict = probe.check(result) if probe.check is not None else None
        detail = verdict[1] if verdict else f"returned {_describe(result)}"
        return Outcome(probe, probe.accepted, f"accepted, no error: {detail}")
    verdict = probe.check(result) if probe.check is not None else None
    if verdict is None:
        return Outcome(probe, "correct", _describe(result))
    return Outcome(probe, verdict[0], verdict[1])


def _describe(result) -> str:
    if isinstance(result, torch.Tensor):
        finite = bool(torch.isfinite(result).all()) if result.is_floating_point() else True
        return f"tensor {tuple(result.shape)} {result.dtype}{'' if finite else ' with NaN/inf'}"
    if isinstance(result, tuple):
        return "(" + ", ".join(_describe(r) for r in result) + ")"
    return type(result).__name__


# --- checks of results ------------------------------------------------------------------------------------
def _expect_tensor(value, shape, dtype=None, *, finite=None) -> tuple[str, str] | None:
    """``None`` when ``value`` is a tensor of ``shape`` (and ``dtype``) finite where the bool mask ``finite``
    (broadcast over the leading dims) says so; else ``(class, reason)``."""
    if not isinstance(value, torch.Tensor):
        return "silent", f"returned {type(value).__name__}, wanted a tensor"
    if tuple(value.shape) != tuple(shape):
        return "silent", f"wrong shape {tuple(value.shape)}, wanted {tuple(shape)}"
    if dtype is not None and value.dtype != dtype:
        return "silent", f"wrong dtype {value.dtype}, wanted {dtype}"
    if finite is not None:
        v = value.detach()
        rows = finite.reshape(finite.shape + (1,) * (v.dim() - finite.dim())).expand_as(v)
        if not bool(torch.isfinite(v[rows]).all()):
            return "NaN", f"non-finite values where finite ones were due ({_describe(value)})"
    return None


def _first(*verdicts):
    return next((v for v in verdicts if v is not None), None)


def _nonfinite(value) -> bool:
    values = value if isinstance(value, (tuple, list)) else (value,)
    return any(
        isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all()) for v in values
    )


# --- helpers over cases -----------------------------------------------------------------------------------
def bind(t, context):
    return t if context is None else t.condition(context)


def _image(c) -> torch.Tensor:
    """A valid input of the inverse direction (and of ``log_prob``): the forward image of the case's ``x``, as a
    new tensor (so no cache entry stands in for the computation)."""
    with torch.no_grad():
        y = bind(c.transform, c.context)(c.x)
    return y.detach().clone()


def _float_params(t) -> bool:
    return any(p.is_floating_point() for p in t.parameters()) if isinstance(t, torch.nn.Module) else False


def _readme_promises_nan_error() -> bool:
    """True when the README of the imported checkout says NaN/inf data raise an error."""
    readme = PF_DIR.parent / "README.md"
    if not readme.exists():
        return False
    for line in readme.read_text().splitlines():
        if re.search(r"\bNaN\b|non-finite|infinite", line) and re.search(r"\braise", line):
            return True
    return False


@dataclass
class CaseInfo:
    name: str
    factory: Callable
    event_shape: tuple
    conditional: bool
    param_free: bool
    context_dim: int | None
    batch: int


def _info(name, factory) -> CaseInfo:
    c = factory()
    t = c.transform
    return CaseInfo(
        name,
        factory,
        tuple(c.event_shape),
        c.context is not None,
        not _float_params(t),
        c.context.shape[-1] if c.context is not None else None,
        c.x.shape[0],
    )


def _wrong_event_shapes(shape: tuple, rng: random.Random) -> list[tuple]:
    """Two distinct wrong event shapes, drawn with ``rng``."""
    options = [shape[:-1] + (shape[-1] + 1,), shape + (1,)]
    if shape[-1] > 1:
        options.append(shape[:-1] + (shape[-1] - 1,))
    if len(shape) > 1:
        options += [(shape[0] + 1,) + shape[1:], shape[1:], (shape[0],) + tuple(s * 2 for s in shape[1:])]
    else:
        options.append((shape[0] + 2,))
    return rng.sample(options, 2)


def _poison(x: torch.Tensor, value: float, rng: random.Random) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` with one entry of one row set to ``value``; also the bool mask of the untouched rows."""
    x = x.clone()
    row = rng.randrange(x.shape[0])
    index = tuple(rng.randrange(s) for s in x.shape[1:])
    x[(row,) + index] = value
    clean = torch.ones(x.shape[0], dtype=torch.bool)
    clean[row] = False
    return x, clean


# --- probe families ---------------------------------------------------------------------------------------
def _shape_probes(ci: CaseInfo, rng: random.Random) -> list[Probe]:
    probes = []
    for direction, bad in zip(("forward", "inverse"), _wrong_event_shapes(ci.event_shape, rng)):

        def call(bad=bad, direction=direction):
            c = ci.factory()
            t = bind(c.transform, c.context)
            v = torch.randn(c.x.shape[0], *bad)
            return t(v) if direction == "forward" else t.inv(v)

        probes.append(Probe("shape", f"{ci.name}:{direction}-event{bad}", call))

    bad = _wrong_event_shapes(ci.event_shape, rng)[0]

    def log_prob(bad=bad):
        c = ci.factory()
        return pf.flow_distribution(c.transform, context=c.context).log_prob(torch.randn(c.x.shape[0], *bad))

    probes.append(Probe("shape", f"{ci.name}:log_prob-event{bad}", log_prob))
    return probes


def _dtype_probes(ci: CaseInfo, rng: random.Random) -> list[Probe]:
    probes = []
    for dtype, direction in ((torch.float64, "forward"), (torch.float16, "forward"), (torch.float64, "inverse")):
        name = str(dtype).replace("torch.", "")

        def call(dtype=dtype, direction=direction):
            c = ci.factory()
            t = bind(c.transform, c.context)
            v = (c.x if direction == "forward" else _image(c)).to(dtype)
            return t(v) if direction == "forward" else t.inv(v)

        if ci.param_free:  # accepts any floating dtype
            probes.append(
                Probe(
                    "dtype",
                    f"{ci.name}:{direction}-{name}-input",
                    call,
                    expect="result",
                    check=lambda y, dtype=dtype: _expect_tensor(y, (ci.batch, *ci.event_shape), dtype),
                )
            )
        else:
            probes.append(
                Probe(
                    "dtype",
                    f"{ci.name}:{direction}-{name}-input",
                    call,
                    error_types=(TypeError,),
                    words=("float32", name),
                )
            )

    def integer():
        c = ci.factory()
        return bind(c.transform, c.context)(torch.zeros(c.x.shape, dtype=torch.long))

    probes.append(Probe("dtype", f"{ci.name}:int64-input", integer, error_types=(TypeError,)))

    def log_prob64():
        c = ci.factory()
        return pf.flow_distribution(c.transform, context=c.context).log_prob(_image(c).double())

    if ci.param_free:
        probes.append(
            Probe(
                "dtype",
                f"{ci.name}:log_prob-float64-data",
                log_prob64,
                expect="either",
                check=lambda lp: _expect_tensor(lp, (ci.batch,), finite=torch.ones(ci.batch, dtype=bool)),
            )
        )
    else:
        probes.append(
            Probe(
                "dtype",
                f"{ci.name}:log_prob-float64-data",
                log_prob64,
                error_types=(TypeError,),
                words=("float32", "float64"),
            )
        )

    def double_flow():  # the flow in float64, the input in float32
        c = ci.factory()
        t = c.transform.double()
        return bind(t, None if c.context is None else c.context.double())(c.x)

    if ci.param_free:
        probes.append(
            Probe(
                "dtype",
                f"{ci.name}:float64-flow-float32-input",
                double_flow,
                expect="result",
                check=lambda y: _expect_tensor(y, (ci.batch, *ci.event_shape), torch.float32),
            )
        )
    else:
        probes.append(
            Probe(
                "dtype",
                f"{ci.name}:float64-flow-float32-input",
                double_flow,
                error_types=(TypeError,),
                words=("float32", "float64"),
            )
        )

    if ci.conditional:

        def ctx64(via):
            c = ci.factory()
            if via == "call":
                return c.transform.condition(c.context.double())(c.x)
            return c.transform.forward_and_log_det(c.x, c.context.double())

        for via in ("call", "forward_and_log_det"):
            probes.append(
                Probe(
                    "dtype",
                    f"{ci.name}:float64-context-{via}",
                    lambda via=via: ctx64(via),
                    error_types=(TypeError,),
                    words=("float32", "float64"),
                )
            )

        def ctx_int():
            c = ci.factory()
            return c.transform.condition(torch.ones(c.context.shape, dtype=torch.long))(c.x)

        probes.append(Probe("dtype", f"{ci.name}:int64-context", ctx_int, error_types=(TypeError,)))
    return probes


def _nonfinite_probes(ci: CaseInfo, rng: random.Random, strict_log_prob: bool) -> list[Probe]:
    probes = []
    for label, value, direction in (
        ("nan", float("nan"), "forward"),
        ("inf", float("inf"), "forward"),
        ("nan", float("nan"), "inverse"),
    ):
        seed = rng.randrange(2**31)

        def call(value=value, direction=direction, seed=seed):
            c = ci.factory()
            t = bind(c.transform, c.context)
            v, clean = _poison(c.x if direction == "forward" else _image(c), value, random.Random(seed))
            return (t(v) if direction == "forward" else t.inv(v)), clean

        # a bare transform may pass NaN/inf on, in the poisoned row only
        probes.append(
            Probe(
                "nonfinite",
                f"{ci.name}:{direction}-{label}-input",
                call,
                expect="either",
                check=lambda r: _expect_tensor(r[0], (ci.batch, *ci.event_shape), finite=r[1]),
            )
        )

    for label, value in (("nan", float("nan")), ("inf", float("inf"))):
        seed = rng.randrange(2**31)

        def log_prob(value=value, seed=seed):
            c = ci.factory()
            v, clean = _poison(_image(c), value, random.Random(seed))
            return pf.flow_distribution(c.transform, context=c.context).log_prob(v), clean

        if strict_log_prob:
            probes.append(
                Probe(
                    "nonfinite",
                    f"{ci.name}:log_prob-{label}-data",
                    log_prob,
                    accepted="NaN",
                    check=lambda r: ("NaN", f"log_prob {_describe(r[0])}") if _nonfinite(r[0]) else None,
                )
            )
        else:
            probes.append(
                Probe(
                    "nonfinite",
                    f"{ci.name}:log_prob-{label}-data",
                    log_prob,
                    expect="either",
                    check=lambda r: _expect_tensor(r[0], (ci.batch,), finite=r[1]),
                )
            )
    return probes


def _empty_probes(ci: CaseInfo, rng: random.Random) -> list[Probe]:
    probes = []
    shape = (0, *ci.event_shape)

    def empty(c, direction="forward"):
        v = c.x if direction == "forward" else _image(c)
        return v[:0], (None if c.context is None else c.context[:0])

    for direction in ("forward", "inverse"):

        def call(direction=direction):
            c = ci.factory()
            v, ctx = empty(c, direction)
            t = bind(c.transform, ctx)
            return t(v) if direction == "forward" else t.inv(v)

        probes.append(
            Probe(
                "empty",
                f"{ci.name}:{direction}-batch0",
                call,
                expect="either",
                check=lambda y: _expect_tensor(y, shape, torch.float32),
            )
        )

    def fald():
        c = ci.factory()
        v, ctx = empty(c)
        return c.transform.forward_and_log_det(v, ctx)

    probes.append(
        Probe(
            "empty",
            f"{ci.name}:forward_and_log_det-batch0",
            fald,
            expect="either",
            check=lambda r: _first(
                _expect_tensor(r[0], shape, torch.float32), _expect_tensor(r[1], (0,), torch.float32)
            ),
        )
    )

    def log_prob():
        c = ci.factory()
        v, ctx = empty(c, "inverse")
        return pf.flow_distribution(c.transform, context=ctx).log_prob(v)

    probes.append(
        Probe(
            "empty",
            f"{ci.name}:log_prob-batch0",
            log_prob,
            expect="either",
            check=lambda lp: _expect_tensor(lp, (0,), torch.float32),
        )
    )
    return probes


def _context_probes(ci: CaseInfo, rng: random.Random) -> list[Probe]:
    probes = []
    if not ci.conditional:
        width = rng.choice((1, 3))

        def extra(method, width=width):
            c = ci.factory()
            return getattr(c.transform, method)(c.x, torch.randn(c.x.shape[0], width))

        for method in ("forward_and_log_det", "inverse_and_log_det"):
            probes.append(
                Probe(
                    "context",
                    f"{ci.name}:extra-context-{method}",
                    lambda m=method: extra(m),
                    error_types=(ValueError,),
                    words=("context",),
                )
            )

        def extra_dist(width=width):
            c = ci.factory()
            return pf.flow_distribution(c.transform, context=torch.randn(c.x.shape[0], width))

        probes.append(
            Probe(
                "context",
                f"{ci.name}:extra-context-flow_distribution",
                extra_dist,
                error_types=(ValueError,),
                words=("context",),
            )
        )
        return probes

    # conditional: missing, non-broadcasting, wrong width, not a tensor; and a broadcasting control
    for via in ("call", "inverse-call", "forward_and_log_det", "inverse_and_log_det"):

        def missing(via=via):
            c = ci.factory()
            t = c.transform
            return {
                "call": lambda: t(c.x),
                "inverse-call": lambda: t.inv(c.x),
                "forward_and_log_det": lambda: t.forward_and_log_det(c.x),
                "inverse_and_log_det": lambda: t.inverse_and_log_det(c.x),
            }[via]()

        probes.append(
            Probe("context", f"{ci.name}:missing-context-{via}", missing, error_types=(ValueError,), words=("context",))
        )

    sizes = [n for n in (2, 3, ci.batch + 1, 2 * ci.batch) if n not in (1, ci.batch)]
    for via in ("call", "forward_and_log_det"):
        n = rng.choice(sizes)

        def mismatch(via=via, n=n):
            c = ci.factory()
            ctx = torch.randn(n, c.context.shape[-1])
            if via == "call":
                return c.transform.condition(ctx)(c.x)
            return c.transform.forward_and_log_det(c.x, ctx)

        probes.append(
            Probe(
                "context",
                f"{ci.name}:context-batch{n}-vs-input-batch{ci.batch}-{via}",
                mismatch,
                error_types=(ValueError,),
            )
        )

    for via in ("call", "forward_and_log_det"):
        w = ci.context_dim + rng.choice((-1, 1))

        def wrong_width(via=via, w=w):
            c = ci.factory()
            ctx = torch.randn(c.x.shape[0], w)
            if via == "call":
                return c.transform.condition(ctx)(c.x)
            return c.transform.forward_and_log_det(c.x, ctx)

        probes.append(Probe("context", f"{ci.name}:context-width{w}-{via}", wrong_width, error_types=(ValueError,)))

    def listed():
        c = ci.factory()
        return c.transform.condition(c.context.tolist())(c.x)

    probes.append(Probe("context", f"{ci.name}:context-as-list", listed, error_types=(TypeError,)))

    def broadcast():
        c = ci.factory()
        y, ld = c.transform.forward_and_log_det(c.x, c.context[:1])
        return y, ld

    full = (ci.batch, *ci.event_shape)
    probes.append(
        Probe(
            "context",
            f"{ci.name}:context-batch1-broadcasts",
            broadcast,
            expect="result",
            check=lambda r: _first(
                _expect_tensor(r[0], full, finite=torch.ones(ci.batch, dtype=bool)),
                _expect_tensor(r[1], (ci.batch,), finite=torch.ones(ci.batch, dtype=bool)),
            ),
        )
    )
    return probes


def _constructor_probes(rng: random.Random) -> list[Probe]:
    D, C = 4, 3
    probes = []

    def bad(name, build, error_types=(ValueError, TypeError)):
        probes.append(Probe("constructor", name, build, error_types=error_types))

    def good(name, build):
        probes.append(
            Probe(
                "constructor",
                name,
                build,
                expect="result",
                check=lambda m: (
                    None
                    if isinstance(m, torch.nn.Module) and callable(m)
                    else ("silent", f"built {type(m).__name__}, not a transform")
                ),
            )
        )

    with_hidden = {
        "Planar": lambda hd, c=None: pf.Planar(D, hidden_dims=hd, context_dim=c),
        "Radial": lambda hd, c=None: pf.Radial(D, hidden_dims=hd, context_dim=c),
        "Rescale": lambda hd, c=None: pf.Rescale(D, hidden_dims=hd, context_dim=c),
        "AdditiveCoupling": lambda hd, c=None: pf.AdditiveCoupling(D, hidden_dims=hd, context_dim=c),
        "AffineCoupling": lambda hd, c=None: pf.AffineCoupling(D, hidden_dims=hd, context_dim=c),
        "Coupling": lambda hd, c=None: pf.Coupling(D, op=pf.ops.Affine(), hidden_dims=hd, context_dim=c),
        "MAF": lambda hd, c=None: pf.MAF(D, hd, context_dim=c),
        "IAF": lambda hd, c=None: pf.IAF(D, hd, context_dim=c),
        "AffineAutoregressive": lambda hd, c=None: pf.AffineAutoregressive(D, hd, fast="forward", context_dim=c),
        "nice": lambda hd, c=None: pf.nice(D, num_layers=2, hidden_dims=hd, context_dim=c),
        "realnvp": lambda hd, c=None: pf.realnvp(D, num_layers=2, hidden_dims=hd, context_dim=c),
        "maf": lambda hd, c=None: pf.maf(D, num_layers=2, hidden_dims=hd, context_dim=c),
        "iaf": lambda hd, c=None: pf.iaf(D, num_layers=2, hidden_dims=hd, context_dim=c),
        "nn.DenseConditioner": lambda hd, c=None: pf.nn.DenseConditioner(D, (2,), hidden_dims=hd, context_dim=c),
        "nn.MADE": lambda hd, c=None: pf.nn.MADE(D, hd, context_dim=c),
    }
    bad_hidden = [(-1,), (2.5,), ("a",), (0,), (True,), 8]
    for name, build in with_hidden.items():
        for hd in bad_hidden:
            bad(f"{name}(hidden_dims={hd!r})", lambda b=build, hd=hd: b(hd))
        if name in ("Planar", "Radial", "Rescale"):  # the hypernetwork exists only with a context
            for hd in bad_hidden:
                bad(f"{name}(hidden_dims={hd!r}, context_dim={C})", lambda b=build, hd=hd: b(hd, C))
        good(f"{name}(hidden_dims=[3, 2], context_dim={C})", lambda b=build: b([3, 2], C))

    for name, factory in (
        ("planar", pf.planar),
        ("radial", pf.radial),
        ("nice", pf.nice),
        ("realnvp", pf.realnvp),
        ("maf", pf.maf),
        ("iaf", pf.iaf),
    ):
        small = {} if name in ("planar", "radial") else {"hidden_dims": (4,)}
        for n in (True, 0, 2.0, -1):
            bad(f"{name}(num_layers={n!r})", lambda f=factory, n=n, s=small: f(D, num_layers=n, **s))

    ctx_builders = {
        "Planar": lambda c: pf.Planar(D, context_dim=c),
        "Radial": lambda c: pf.Radial(D, context_dim=c),
        "Rescale": lambda c: pf.Rescale(D, context_dim=c),
        "AffineCoupling": lambda c: pf.AffineCoupling(D, hidden_dims=(4,), context_dim=c),
        "MAF": lambda c: pf.MAF(D, (4,), context_dim=c),
        "IAF": lambda c: pf.IAF(D, (4,), context_dim=c),
        "planar": lambda c: pf.planar(D, num_layers=2, context_dim=c),
        "nice": lambda c: pf.nice(D, num_layers=2, hidden_dims=(4,), context_dim=c),
        "realnvp": lambda c: pf.realnvp(D, num_layers=2, hidden_dims=(4,), context_dim=c),
        "maf": lambda c: pf.maf(D, num_layers=2, hidden_dims=(4,), context_dim=c),
        "glow": lambda c: pf.glow((1, 4, 4), levels=1, depth=1, hidden_channels=2, context_dim=c),
        "realnvp_image": lambda c: pf.realnvp_image((1, 4, 4), levels=1, hidden_channels=2, context_dim=c),
    }
    for name, build in ctx_builders.items():
        for c in (True, 0, 2.0, -2):
            bad(f"{name}(context_dim={c!r})", lambda b=build, c=c: b(c))

    dim_builders = {
        "Planar": pf.Planar,
        "Radial": pf.Radial,
        "Rescale": pf.Rescale,
        "Reverse": pf.Reverse,
        "BatchNorm": pf.BatchNorm,
        "ActNorm": pf.ActNorm,
        "InvertibleConv1x1": pf.InvertibleConv1x1,
        "AffineCoupling": lambda d: pf.AffineCoupling(d, hidden_dims=(4,)),
        "AdditiveCoupling": lambda d: pf.AdditiveCoupling(d, hidden_dims=(4,)),
        "MAF": lambda d: pf.MAF(d, (4,)),
        "IAF": lambda d: pf.IAF(d, (4,)),
        "Logit": pf.Logit,
        "planar": lambda d: pf.planar(d, num_layers=2),
        "radial": lambda d: pf.radial(d, num_layers=2),
        "nice": lambda d: pf.nice(d, num_layers=2, hidden_dims=(4,)),
        "realnvp": lambda d: pf.realnvp(d, num_layers=2, hidden_dims=(4,)),
        "maf": lambda d: pf.maf(d, num_layers=2, hidden_dims=(4,)),
        "iaf": lambda d: pf.iaf(d, num_layers=2, hidden_dims=(4,)),
    }
    for name, build in dim_builders.items():
        for d in (0, -1, True, 2.5):
            bad(f"{name}(input_dim={d!r})", lambda b=build, d=d: b(d))

    for name, build in (
        ("glow", lambda **k: pf.glow(**{"shape": (1, 4, 4), "levels": 1, "depth": 1, "hidden_channels": 2, **k})),
        ("realnvp_image", lambda **k: pf.realnvp_image(**{"shape": (1, 4, 4), "levels": 1, "hidden_channels": 2, **k})),
    ):
        for key, value in (
            ("levels", True),
            ("levels", 0),
            ("hidden_channels", True),
            ("hidden_channels", 0),
            ("num_blocks", -1),
            ("shape", (True, 4, 4)),
            ("shape", (1, 4, 4.0)),
            ("shape", (4, 4)),
        ):
            bad(f"{name}({key}={value!r})", lambda b=build, k=key, v=value: b(**{k: v}))
        good(f"{name}(small)", build)
    bad("glow(depth=True)", lambda: pf.glow((1, 4, 4), levels=1, depth=True, hidden_channels=2))

    bad("Compose([Planar(2), 'x'])", lambda: pf.Compose([pf.Planar(2), "x"]), (TypeError,))
    bad("Compose([Planar(2), None])", lambda: pf.Compose([pf.Planar(2), None]), (TypeError,))
    bad("Compose([Planar(2), Linear(2, 2)])", lambda: pf.Compose([pf.Planar(2), torch.nn.Linear(2, 2)]), (TypeError,))
    bad("Compose('ab')", lambda: pf.Compose("ab"), (TypeError,))
    bad("Compose([])", lambda: pf.Compose([]), (ValueError,))
    bad("Compose([Planar(2), Planar(3)])", lambda: pf.Compose([pf.Planar(2), pf.Planar(3)]), (ValueError,))
    bad("Inverse('x')", lambda: pf.Inverse("x"), (TypeError,))
    bad("Permute([0, 0, 1])", lambda: pf.Permute([0, 0, 1]), (ValueError,))
    bad("Logit(2, lam=True)", lambda: pf.Logit(2, lam=True))
    bad("BatchNorm(2, momentum=True)", lambda: pf.BatchNorm(2, momentum=True))
    bad("AffineCoupling(4, scale='nope')", lambda: pf.AffineCoupling(4, scale="nope", hidden_dims=(4,)))
    good("Compose([Planar(2), Reverse(2)])", lambda: pf.Compose([pf.Planar(2), pf.Reverse(2)]))
    good(
        "Compose([Planar(2), pyro ExpTransform])",
        lambda: pf.Compose([pf.Planar(2), __import__("pyro").distributions.transforms.ExpTransform()]),
    )
    good("Reverse(1)", lambda: pf.Reverse(1))
    good("Planar(1)", lambda: pf.Planar(1))
    return probes


def _stats_probes(rng: random.Random) -> list[Probe]:
    """Statistic updates (BatchNorm in train mode, ActNorm's data-dependent init) must refuse NaN/inf."""
    D, IMG, B = 4, (2, 4, 4), 8
    probes = []

    def fresh(build, train=True):
        torch.manual_seed(0)
        m = build()
        return m.train(train)

    layers = {
        "BatchNorm(4)": (lambda: pf.BatchNorm(D), (D,)),
        "BatchNorm(image)": (lambda: pf.BatchNorm(IMG), IMG),
        "ActNorm(4)": (lambda: pf.ActNorm(D), (D,)),
        "ActNorm(image)": (lambda: pf.ActNorm(IMG), IMG),
    }
    for name, (build, shape) in layers.items():
        directions = ("inverse",) if name.startswith("BatchNorm") else ("forward", "inverse")
        for direction in directions:
            for label, value in (("nan", float("nan")), ("inf", float("inf")), ("-inf", float("-inf"))):
                seed = rng.randrange(2**31)

                def call(build=build, shape=shape, value=value, seed=seed, direction=direction):
                    m = fresh(build)
                    v, _ = _poison(torch.randn(B, *shape) * 2 + 1, value, random.Random(seed))
                    return m(v) if direction == "forward" else m.inv(v)

                probes.append(
                    Probe(
                        "stats",
                        f"{name}:train-{direction}-{label}-batch",
                        call,
                        error_types=(ValueError,),
                        accepted="NaN",
                    )
                )

            def clean(build=build, shape=shape, direction=direction):
                m = fresh(build)
                v = torch.randn(B, *shape) * 2 + 1
                return m(v) if direction == "forward" else m.inv(v)

            probes.append(
                Probe(
                    "stats",
                    f"{name}:train-{direction}-finite-batch",
                    clean,
                    expect="result",
                    check=lambda y, s=shape: _expect_tensor(y, (B, *s), finite=torch.ones(B, dtype=bool)),
                )
            )

    flows = {
        "realnvp(batch_norm)": (lambda: pf.realnvp(D, num_layers=3, hidden_dims=(4,), batch_norm=True), (D,)),
        "maf(batch_norm)": (lambda: pf.maf(D, num_layers=2, hidden_dims=(4,), batch_norm=True), (D,)),
        "realnvp_image(batch_norm)": (
            lambda: pf.realnvp_image(IMG, levels=2, hidden_channels=2, num_blocks=1, batch_norm=True),
            IMG,
        ),
        "glow(fresh ActNorm)": (lambda: pf.glow(IMG, levels=1, depth=2, hidden_channels=2), IMG),
    }
    for name, (build, shape) in flows.items():
        for label, value in (("nan", float("nan")), ("inf", float("inf"))):
            seed = rng.randrange(2**31)

            def call(build=build, shape=shape, value=value, seed=seed):
                v, _ = _poison(torch.randn(B, *shape), value, random.Random(seed))
                return pf.flow_distribution(fresh(build)).log_prob(v)

            probes.append(
                Probe("stats", f"{name}:train-log_prob-{label}-batch", call, error_types=(ValueError,), accepted="NaN")
            )

    def bn_empty():
        return fresh(layers["BatchNorm(4)"][0]).inv(torch.randn(0, D))

    probes.append(
        Probe(
            "stats",
            "BatchNorm(4):train-inverse-batch0",
            bn_empty,
            expect="either",
            check=lambda y: _expect_tensor(y, (0, D)),
        )
    )
    return probes


def _fit_probes(rng: random.Random) -> list[Probe]:
    D, N = 2, 24
    probes = []
    flows = {
        "realnvp": lambda: pf.realnvp(D, num_layers=2, hidden_dims=(4,)),
        "planar": lambda: pf.planar(D, num_layers=2),
        "maf": lambda: pf.maf(D, num_layers=2, hidden_dims=(4,)),
    }
    for name, build in flows.items():
        for which, label, value in (
            ("train", "nan", float("nan")),
            ("train", "inf", float("inf")),
            ("train", "-inf", float("-inf")),
            ("valid", "nan", float("nan")),
        ):
            row = rng.randrange(1, N)

            def call(build=build, which=which, value=value, row=row):
                torch.manual_seed(0)
                d = pf.flow_distribution(build())
                data = {"train": torch.randn(N, D), "valid": torch.randn(N, D)}
                data[which][row, row % D] = value
                return pf.fit(
                    d, data["train"], data["valid"], steps=2, batch_size=8, eval_every=1, progress=False, seed=0
                )

            probes.append(
                Probe(
                    "fit",
                    f"fit({name}):{which}-{label}-row{row}",
                    call,
                    error_types=(ValueError,),
                    words=(r"\brows?\b", rf"\b{row}\b"),
                    accepted="NaN",
                )
            )

        def clean(build=build):
            torch.manual_seed(0)
            d = pf.flow_distribution(build())
            return pf.fit(d, torch.randn(N, D), steps=2, batch_size=8, progress=False, seed=0), d

        probes.append(
            Probe(
                "fit",
                f"fit({name}):finite-data",
                clean,
                expect="result",
                check=lambda r: _expect_tensor(
                    r[1].log_prob(torch.zeros(3, D)), (3,), finite=torch.ones(3, dtype=bool)
                ),
            )
        )
    return probes


def generate(seed: int = SEED) -> list[Probe]:
    """Every probe, in a fixed order; ``seed`` draws the bad shapes, widths, NaN positions and rows."""
    rng = random.Random(seed)
    strict = _readme_promises_nan_error()
    probes: list[Probe] = []
    for name in sorted(CASES):
        ci = _info(name, CASES[name])
        probes += _shape_probes(ci, rng)
        probes += _dtype_probes(ci, rng)
        probes += _nonfinite_probes(ci, rng, strict)
        probes += _empty_probes(ci, rng)
        probes += _context_probes(ci, rng)
    probes += _constructor_probes(rng)
    probes += _stats_probes(rng)
    probes += _fit_probes(rng)
    return probes


def run_all(seed: int = SEED) -> list[Outcome]:
    """Generates and classifies every probe; the global torch RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        return [classify(p) for p in generate(seed)]


def table(outcomes: list[Outcome]) -> str:
    """Counts per class, overall and per probe family."""
    counts = Counter((o.probe.family, o.cls) for o in outcomes)
    families = [f for f in FAMILIES if any(o.probe.family == f for o in outcomes)]
    width = max(len(f) for f in families + ["family", "total"])
    head = f"{'family':<{width}}  " + "  ".join(f"{c:>15}" for c in CLASSES) + f"  {'probes':>6}"
    lines = [head, "-" * len(head)]
    for f in families + ["total"]:
        row = [sum(n for (fam, c), n in counts.items() if c == cls and (f == "total" or fam == f)) for cls in CLASSES]
        lines.append(f"{f:<{width}}  " + "  ".join(f"{n:>15}" for n in row) + f"  {sum(row):>6}")
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--list", action="store_true", help="list every probe that is not OK")
    parser.add_argument("--all", action="store_true", help="list every probe with its class")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    outcomes = run_all(args.seed)
    print(
        f"pyro_flows from {PF_DIR}; cases from {cases.__file__}; seed {args.seed}; "
        f"{len(outcomes)} probes in {time.perf_counter() - start:.1f} s"
    )
    print(table(outcomes))
    if args.list or args.all:
        print()
        for o in outcomes:
            if args.all or o.cls not in OK:
                print(o.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
