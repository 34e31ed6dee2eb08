"""What the benchmark scripts in ``bench/`` share: one definition of each piece.

The scripts run as ``python bench/<name>.py``, so ``bench/`` is on ``sys.path`` and they ``from common import ...``.

* Machine facts: :func:`environment` (command, versions, threads, CPU model, load average, date, git commit and
  dirty flag, dtype, device and GPU name), :func:`git_label` and :func:`environment_line` for the reports.
* Models and data: :func:`count_params`, :func:`standard_normal`, :func:`correlated_gaussian`,
  :func:`moons_split` (``pf.data``'s two moons), :func:`plain_settings`.
* Timing: :class:`Timer`, the interleaved timer (below), with :func:`summary_by_callable` and
  :func:`summary_by_clock`; :func:`quantiles`, :func:`stats` and :func:`pair_ratio`; :func:`wall_timer` for
  plain repeated wall-clock timing.
* Timed operations: :func:`log_prob_op`, :func:`sample_op`, :func:`train_step_op` (one :func:`nll_step`).
* Training: :func:`fit_and_score` (``pf.fit`` with early stopping on validation, scored by ``pf.nll``),
  :func:`fit_config`, :func:`moons_nll` (with :func:`moons_table` for its markdown).
* Script plumbing: :func:`bench_parser`, :func:`run_sections`, :func:`write_results`.

Interleaved timer (:meth:`Timer.measure`): warm-up calls, round-robin over the callables; then one calibration
call each, which sets how many calls make one sample (enough for ``min_time_s``: each callable its own number,
or with ``same_number`` the one the fastest needs, for all); then the repeats, round ``r`` calling every
callable whose repeats are not used up, in the given order on even rounds and reversed on odd ones (A B, B A,
A B, ...) so drift spreads over all of them, with the garbage collector off. Each sample records the process
CPU time and the wall-clock time. On the CPU the process CPU time is the primary clock (the runs are
single-threaded on a machine that may be shared, so it measures the libraries' own cost); on a GPU the device
is synchronised inside every sample and the wall clock is the primary one.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.metadata
import itertools
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyro
import pyro.distributions as dist
import torch

import pyro_flows as pf

HERE = Path(__file__).resolve().parent
LIBS = ("pyro", "pyro_flows")

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
#: The clock the ratios and targets use on the CPU. The runs are single-threaded on a machine that may be
#: shared, so the process's CPU time measures the libraries' own cost; wall-clock medians are reported next to it.
PRIMARY_CLOCK = "cpu"


# ----------------------------------------------------------------------------------------------- environment
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_state() -> dict:
    """``{"commit": full hash, "dirty": bool}`` of the checkout holding ``bench/`` (``None``s without git)."""

    def git(*args):
        return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def git_label(git: dict) -> str:
    """``"0123456789 (dirty)"``: the short commit of :func:`git_state`, for the reports."""
    return f"{str(git['commit'])[:10]}{' (dirty)' if git['dirty'] else ''}"


def environment(*, quick: bool | None = None, device="cpu") -> dict:
    """What a result depends on besides the code: the command, versions, threads, machine, date, git state,
    dtype and device (``"gpu"``: the GPU's name, on CUDA). ``quick`` adds ``"mode"`` (quick or full)."""
    device = torch.device(device)
    env = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "cwd": os.getcwd(),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "pyro_flows": pf.__version__,
        "numpy": np.__version__,
        "sklearn": importlib.metadata.version("scikit-learn"),
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "platform": platform.platform(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(),
    }
    if quick is not None:
        env["mode"] = "quick" if quick else "full"
    env["dtype"] = str(torch.get_default_dtype())
    env["device"] = str(device)
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def record_end(env: dict) -> None:
    """Records the load average at the end of a run in ``env`` (what :func:`environment_line` reports)."""
    env["load_average_at_end"] = list(os.getloadavg())


def environment_line(env: dict, wall_time_s: float, *, with_git: bool = False) -> str:
    """The report line under a title: command, date, versions, threads, CPU, mode, wall time, load average
    (:func:`record_end` must have run), and with ``with_git`` the git state."""
    git = f", git {git_label(env['git'])}" if with_git else ""
    return (
        f"`{env['command']}` — {env['date_utc']}, torch {env['torch']}, pyro {env['pyro']}, "
        f"{env['torch_num_threads']} thread(s), {env['cpu_model']} ({env['cpu_count']} cores), mode {env['mode']}, "
        f"wall {wall_time_s:.0f} s, load average {env['load_average_at_start'][0]:.1f} at start / "
        f"{env['load_average_at_end'][0]:.1f} at end{git}."
    )


# ---------------------------------------------------------------------------------------------- models, data
def count_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def standard_normal(dim: int, device=None):
    return dist.Normal(torch.zeros(dim, device=device), torch.ones(dim, device=device)).to_event(1)


def plain_settings(kwargs: dict) -> dict:
    """A factory's keyword arguments with tuples as lists (as JSON writes them, and as the reports show them)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}


def correlated_gaussian(dim: int, batch: int, seed: int, *, num_batches: int = 8, device=None):
    """``num_batches * batch`` points of a correlated Gaussian (a random linear mix plus an offset), each
    coordinate standardized, after ``torch.manual_seed(seed)``: ``(data, list of batches)``."""
    torch.manual_seed(seed)
    mix = torch.randn(dim, dim) / math.sqrt(dim)
    data = torch.randn(num_batches * batch, dim) @ mix + torch.randn(dim)
    data = ((data - data.mean(0)) / data.std(0)).to(device)
    return data, list(data.split(batch))


#: The two moons of every benchmark (:func:`moons_split`), as the results record them.
MOONS_DATA = (
    "pf.data.load('moons'): make_moons(noise=0.1), standardized by pf.data's fixed map (x - (0.5, 0.25)) / 0.712"
)


def moons_split(cfg: dict, seed: int):
    """Two moons from ``pf.data.load("moons", ...)`` with ``cfg``'s ``n_train``, ``n_valid`` and ``n_test``: the
    library's one standardization, ``(x - (0.5, 0.25)) / 0.712`` for every seed and split (so NLLs are on the
    scale of ``pf fit``/``make run``). CPU tensors; :func:`pf.fit` and :func:`pf.nll` move batches to the model."""
    return pf.data.load("moons", n_train=cfg["n_train"], n_valid=cfg["n_valid"], n_test=cfg["n_test"], seed=seed)


# ------------------------------------------------------------------------------------------------------- timer
def quantiles(xs):
    """``(q1, median, q3)`` as floats."""
    q1, med, q3 = np.percentile(xs, [25, 50, 75])
    return float(q1), float(med), float(q3)


def stats(xs) -> dict:
    """Median, quartiles and IQR of ``xs`` (seconds) in milliseconds, and the number of samples."""
    q1, med, q3 = quantiles(xs)
    return {"median_ms": med * 1e3, "q1_ms": q1 * 1e3, "q3_ms": q3 * 1e3, "iqr_ms": (q3 - q1) * 1e3, "n": len(xs)}


def pair_ratio(samples: dict, a: str = "pyro", b: str = "pyro_flows") -> dict:
    """For one clock's samples (name -> seconds): ``ratio`` = a's median / b's median, and the quartiles of the
    per-repeat ratios a / b (``paired_ratio_*``), which show how much of the difference is noise."""
    pq1, pmed, pq3 = quantiles([x / y for x, y in zip(samples[a], samples[b])])
    return {
        "ratio": float(np.median(samples[a]) / np.median(samples[b])),
        "paired_ratio_median": pmed,
        "paired_ratio_q1": pq1,
        "paired_ratio_q3": pq3,
    }


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """The interleaved timer (see the module's docstring); ``primary`` is its clock, "cpu" or, on CUDA, "wall"."""

    def __init__(self, device="cpu"):
        self.device = torch.device(device)
        self.primary = "wall" if self.device.type == "cuda" else PRIMARY_CLOCK

    def measure(self, fns: dict, *, warmup, repeats, min_time_s: float, same_number: bool = False) -> dict:
        """Times the callables of ``fns`` (name -> fn). ``warmup`` and ``repeats``: a number for all, or a dict
        (name -> number). A callable timed 3 times or fewer gets no calibration call (one call a sample).

        Returns ``{"samples": {clock: {name: [seconds per call]}}, "number": calls per sample (an int with
        ``same_number``, else name -> int), "warmup": {name: int}, "repeats": {name: int}}``.
        """
        names = list(fns)
        warmup = warmup if isinstance(warmup, dict) else {n: warmup for n in names}
        repeats = repeats if isinstance(repeats, dict) else {n: repeats for n in names}
        sync = self.device.type == "cuda"
        for r in range(max(warmup.values(), default=0)):
            for n in names:
                if r < warmup.get(n, 0):
                    fns[n]()
        synchronize(self.device)
        single = {}
        for n in names:
            if repeats[n] <= 3:  # a slow callable timed only a few times: no calibration call
                continue
            t0 = time.perf_counter()
            fns[n]()
            synchronize(self.device)
            single[n] = max(time.perf_counter() - t0, 1e-9)
        if same_number:
            shared = max(1, math.ceil(min_time_s / min(single.values()))) if single else 1
            number = {n: shared for n in names}
        else:
            number = {n: max(1, math.ceil(min_time_s / single[n])) if n in single else 1 for n in names}
        samples = {c: {n: [] for n in names} for c in CLOCKS}
        cpu, wall = CLOCKS["cpu"], CLOCKS["wall"]
        gc.collect()
        gc_was = gc.isenabled()
        gc.disable()
        try:
            for r in range(max(repeats.values())):
                for n in names if r % 2 == 0 else names[::-1]:
                    if r >= repeats[n]:
                        continue
                    fn, k = fns[n], number[n]
                    c0, w0 = cpu(), wall()
                    for _ in range(k):
                        fn()
                    if sync:
                        torch.cuda.synchronize(self.device)
                    w1, c1 = wall(), cpu()
                    samples["wall"][n].append((w1 - w0) / k)
                    samples["cpu"][n].append((c1 - c0) / k)
        finally:
            if gc_was:
                gc.enable()
        return {"samples": samples, "number": shared if same_number else number, "warmup": warmup, "repeats": repeats}

    def run(self, fns: dict, *, pair: tuple | None = None, **kwargs) -> dict:
        """:meth:`measure`, then :func:`summary_by_callable`; with ``pair=(a, b)`` also a / b's ratios."""
        return summary_by_callable(self.measure(fns, **kwargs), self.primary, pair=pair)

    def compare(self, fns: dict, a: str = "pyro", b: str = "pyro_flows", **kwargs) -> dict:
        """:meth:`measure`, then :func:`summary_by_clock` of ``a`` against ``b``."""
        return summary_by_clock(self.measure(fns, **kwargs), self.primary, a, b)


def summary_by_callable(timing: dict, primary: str, *, pair: tuple | None = None) -> dict:
    """Per callable: :func:`stats` on the ``primary`` clock plus both clocks' medians; the primary clock's samples
    in ms (``samples_ms``); with ``pair=(a, b)``: :func:`pair_ratio` on the primary clock and ``wall_ratio``."""
    samples = timing["samples"]
    out = {"clock": primary, "calls_per_sample": timing["number"], "warmup": timing["warmup"]}
    for n, xs in samples[primary].items():
        out[n] = {
            **stats(xs),
            "wall_median_ms": stats(samples["wall"][n])["median_ms"],
            "cpu_median_ms": stats(samples["cpu"][n])["median_ms"],
        }
    out["samples_ms"] = {n: [x * 1e3 for x in xs] for n, xs in samples[primary].items()}
    if pair:
        out.update(pair_ratio(samples[primary], *pair))
        out["wall_ratio"] = pair_ratio(samples["wall"], *pair)["ratio"]
    return out


def summary_by_clock(timing: dict, primary: str, a: str = "pyro", b: str = "pyro_flows") -> dict:
    """Per clock: :func:`stats` of each callable and :func:`pair_ratio` of ``a`` against ``b``; the primary
    clock's numbers also at the top level, with ``wall_ratio``."""
    samples = timing["samples"]
    out = {"calls_per_sample": timing["number"], "repeats": len(samples[primary][a]), "clock": primary}
    for clock, per in samples.items():
        out[clock] = {**{n: stats(xs) for n, xs in per.items()}, **pair_ratio(per, a, b)}
    p = out[primary]
    out[a], out[b] = p[a], p[b]
    for key in ("ratio", "paired_ratio_median", "paired_ratio_q1", "paired_ratio_q3"):
        out[key] = p[key]
    out["wall_ratio"] = out["wall"]["ratio"]
    return out


def wall_timer(device, repeats: int, *, warmup: int = 2, reduce=statistics.median):
    """``run(fn)``: ``warmup`` calls, then ``reduce`` (median, or ``min`` for the best) of ``repeats`` wall-clock
    times in seconds, the device synchronised after every call."""

    def run(fn):
        for _ in range(warmup):
            fn()
        synchronize(device)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            synchronize(device)
            times.append(time.perf_counter() - t0)
        return reduce(times)

    return run


# ------------------------------------------------------------------------------------------ timed operations
# Every log_prob gets a fresh tensor (a clone): the libraries cache the last (x, y) by tensor identity, and a
# repeated tensor would be answered from the cache instead of being computed.
def log_prob_op(d, x, *, grad: bool = False):
    """``d.log_prob`` of a fresh copy of ``x``: under ``no_grad``, or with ``grad`` summed with the graph built
    (not back-propagated)."""
    if grad:
        return lambda: d.log_prob(x.clone()).sum()

    def fn():
        with torch.no_grad():
            return d.log_prob(x.clone())

    return fn


def sample_op(d, n: int):
    """``d.sample((n,))`` under ``no_grad``."""

    def fn():
        with torch.no_grad():
            return d.sample(torch.Size([n]))

    return fn


def nll_step(d, opt, x):
    """One optimizer step on the mean negative log-likelihood of ``x``; returns the loss."""
    opt.zero_grad(set_to_none=True)
    loss = -d.log_prob(x).mean()
    loss.backward()
    opt.step()
    return loss


def train_step_op(d, opt, batches):
    """:func:`nll_step` on a fresh copy of the next of ``batches`` (cycled)."""
    it = itertools.cycle(batches)
    return lambda: nll_step(d, opt, next(it).clone())


# -------------------------------------------------------------------------------------------------- training
def fit_and_score(d, split, cfg: dict, seed: int) -> dict:
    """Trains ``d`` with :func:`pf.fit` on ``split.train``, early stopping on ``split.valid`` (``cfg``: ``steps``,
    ``batch``, ``lr``, ``eval_every``, ``patience``; minibatch order from ``seed``, so two distributions fitted
    with the same ``seed`` and data see the same minibatches), and scores the kept (best-validation) parameters
    with :func:`pf.nll`. Returns the best-validation step and NLL, test and train NLL there, the validation NLL
    at the last evaluation (how far it drifted: overfitting), steps run, wall time and the learning curve."""
    r = pf.fit(
        d,
        split.train,
        split.valid,
        steps=cfg["steps"],
        batch_size=cfg["batch"],
        lr=cfg["lr"],
        eval_every=cfg["eval_every"],
        patience=cfg["patience"],
        seed=seed,
        progress=False,
    )
    return {
        "best_valid_step": r.best_step,
        "best_valid_nll": r.best_valid,
        "test_nll_at_best_valid": pf.nll(d, split.test),
        "train_nll_at_best_valid": pf.nll(d, split.train),
        "last_valid_nll": r.history.valid_nll[-1],
        "steps_run": r.steps_run,
        "stopped_early": r.stopped_early,
        "fit_wall_s": r.wall_time,
        "curve": r.history.as_dict(),
    }


def fit_config(cfg: dict) -> dict:
    """The :func:`fit_and_score` settings of ``cfg``, as the results record them."""
    return {
        "steps": cfg["steps"],
        "batch": cfg["batch"],
        "optimizer": f"Adam(lr={cfg['lr']})",
        "eval_every": cfg["eval_every"],
        "patience": cfg["patience"],
        "training": "pf.fit (early stopping on validation, best-validation parameters kept), scored by pf.nll",
    }


def moons_nll(cfg: dict, make, hidden_dims) -> dict:
    """Held-out NLL on :func:`moons_split` of both libraries, per seed of ``cfg["seeds"]``: ``make(seed)`` gives
    ``(models, dists)`` (each name -> one of :data:`LIBS`), each trained by :func:`fit_and_score` with the same
    seed (same minibatches). Returns the config, parameter counts, per-seed results, mean and std of the test NLL
    (at the best validation step) and the target."""
    per_seed, counts = [], None
    for seed in cfg["seeds"]:
        split = moons_split(cfg, seed)
        models, dists = make(seed)
        counts = {n: count_params(m) for n, m in models.items()}
        per_seed.append({"seed": seed, **{n: fit_and_score(d, split, cfg, seed) for n, d in dists.items()}})
    tests = {n: [r[n]["test_nll_at_best_valid"] for r in per_seed] for n in LIBS}
    mean = {n: float(np.mean(v)) for n, v in tests.items()}
    std = {n: float(np.std(v)) for n, v in tests.items()}
    return {
        "config": {
            "data": MOONS_DATA,
            "n_train": cfg["n_train"],
            "n_valid": cfg["n_valid"],
            "n_test": cfg["n_test"],
            "num_layers": cfg["num_layers"],
            "hidden_dims": list(hidden_dims),
            **fit_config(cfg),
            "seeds": list(cfg["seeds"]),
            "same_minibatches": True,
        },
        "param_counts": counts,
        "param_counts_equal": counts["pyro"] == counts["pyro_flows"],
        "per_seed": per_seed,
        "test_nll_mean": mean,
        "test_nll_std": std,
        "target": "pyro_flows mean test NLL <= Pyro's",
        "met": bool(mean["pyro_flows"] <= mean["pyro"]),
    }


def moons_table(mo: dict) -> list:
    """Markdown lines of a :func:`moons_nll` result: test NLL per seed and mean ± std, both libraries."""
    lines = ["| seed | Pyro test NLL | pyro_flows test NLL |", "|---|---|---|"]
    for r in mo["per_seed"]:
        lines.append(
            f"| {r['seed']} | {r['pyro']['test_nll_at_best_valid']:.4f} | "
            f"{r['pyro_flows']['test_nll_at_best_valid']:.4f} |"
        )
    m, s = mo["test_nll_mean"], mo["test_nll_std"]
    lines.append(f"| mean ± std | {m['pyro']:.4f} ± {s['pyro']:.4f} | {m['pyro_flows']:.4f} ± {s['pyro_flows']:.4f} |")
    return lines


# ------------------------------------------------------------------------------------------- script plumbing
def bench_parser(description: str, *, quick_help: str, name_help: str) -> argparse.ArgumentParser:
    """The options of the Pyro comparisons: ``--quick``, ``--out``, ``--threads`` (default 1), ``--name``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON and markdown results")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads (default 1: on a small shared machine a second intra-op thread "
        "that has to wait for a busy core makes every op milliseconds slower; see "
        "bench/README.md, 'Threads')",
    )
    p.add_argument("--name", default=None, help=name_help)
    return p


def run_sections(res: dict, sections) -> None:
    """Runs ``(key, fn)`` in turn, printing progress: ``res[key] = fn()``, its wall time in
    ``res["section_wall_s"][key]``."""
    walls = res.setdefault("section_wall_s", {})
    for i, (key, run) in enumerate(sections, 1):
        print(f"[{i}/{len(sections)}] {key} ...", flush=True)
        t = time.perf_counter()
        res[key] = run()
        walls[key] = time.perf_counter() - t
        print(f"    {walls[key]:.1f} s", flush=True)


def write_results(out: Path, stem: str, res: dict, md: str | None = None) -> Path:
    """Writes ``out/stem.json`` (and ``out/stem.md`` when ``md`` is given, printing it); returns the JSON's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.json"
    path.write_text(json.dumps(res, indent=2) + "\n")
    if md is not None:
        (out / f"{stem}.md").write_text(md)
        print(md)
    return path
