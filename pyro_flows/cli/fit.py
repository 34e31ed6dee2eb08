"""The command-line main job: ``python -m pyro_flows fit``.

``fit`` trains a flow on a data set that needs no download and writes into
``--out``:

- ``metrics.json``: flow and data names, train/valid/test NLL in nats and in nats
  per dimension (for digits also bits/dim in pixel space), wall time, parameter
  count, steps run, best step, the arguments and the library versions;
- ``history.png``: the learning curve; ``density.png`` for 2-D data (data, learned
  density, samples) or ``samples.png`` for digits (a grid of samples);
- ``model.pt``: the flow's ``state_dict``.

With no options it trains a RealNVP on two moons in well under a minute on two CPU
cores. Library errors (``ValueError``, ``FloatingPointError``) are printed as one
line and give exit code 1; bad arguments give argparse's usage error (exit code 2).

Example:
    >>> import tempfile, json, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> main(["fit", "--steps", "2", "--layers", "2", "--hidden", "8", "--n-train", "64",
    ...       "--out", str(out), "--no-progress", "--quiet"])
    0
    >>> sorted(p.name for p in out.iterdir())
    ['density.png', 'history.png', 'metrics.json', 'model.pt']
    >>> json.loads((out / "metrics.json").read_text())["flow"]
    'realnvp'
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from .. import data as datasets

__all__ = ["FLOWS", "build_flow", "main", "make_parser", "run_fit"]

FLOWS = ("planar", "radial", "nice", "realnvp", "maf", "iaf")
"""Flow names accepted by ``--flow``: factories of :mod:`pyro_flows.flows` of the same name.

``iaf`` is trained in its slow direction (the likelihood needs its inverse, one
network pass per dimension); prefer ``maf`` for density estimation."""

_HIDDEN_FLOWS = frozenset({"nice", "realnvp", "maf", "iaf"})  # the factories that take hidden_dims
_MAIN_JOB_HIDDEN = 128  # the main job's width for them (the factories size theirs to the input: 32 for 2-D)
_DIGITS_SAMPLES = 64


# --------------------------------------------------------------------------- flows


def _factories() -> dict[str, Callable]:
    """``--flow`` name -> factory; imported here so this module loads without the flows."""
    from .. import flows

    return {
        "planar": flows.planar,
        "radial": flows.radial,
        "nice": flows.nice,
        "realnvp": flows.realnvp,
        "maf": flows.maf,
        "iaf": flows.iaf,
    }


def build_flow(name: str, input_dim: int, *, layers: int | None = None, hidden: int | None = None):
    """Builds a flow by name with the factory's defaults for the options left ``None``.

    Args:
        name: One of :data:`FLOWS`.
        input_dim: Dimension of the data.
        layers: ``num_layers`` of the factory, or ``None`` for its default.
        hidden: Width of both hidden layers (``hidden_dims=(hidden, hidden)``), for
            ``nice``, ``realnvp``, ``maf`` and ``iaf`` only; ``None`` for the factory's default.

    Returns:
        The flow (a transform module).

    Raises:
        ValueError: If ``name`` is unknown or ``hidden`` is given for a flow
            without hidden layers.

    Example:
        >>> flow = build_flow("nice", 4, layers=2, hidden=8)
        >>> tuple(flow.event_shape)
        (4,)
    """
    factories = _factories()
    if name not in factories:
        raise ValueError(f"unknown flow {name!r}; valid names are: {', '.join(FLOWS)}")
    options: dict[str, object] = {}
    if layers is not None:
        options["num_layers"] = layers
    if hidden is not None:
        if name not in _HIDDEN_FLOWS:
            raise ValueError(f"--hidden does not apply to {name!r}, which has no hidden layers")
        options["hidden_dims"] = (hidden, hidden)
    return factories[name](input_dim, **options)


# --------------------------------------------------------------------------- arguments


def _number(cast, *, minimum, strict: bool = False, what: str):
    """An argparse ``type``: parses with ``cast`` and requires a finite value >= ``minimum`` (> if ``strict``)."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (math.isfinite(value) and (value > minimum if strict else value >= minimum)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, minimum=1, what="a positive integer")
_non_negative_int = _number(int, minimum=0, what="an integer >= 0")
_positive_float = _number(float, minimum=0, strict=True, what="a positive number")


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m pyro_flows``."""
    parser = argparse.ArgumentParser(
        prog="python -m pyro_flows",
        description="Normalizing flows for Pyro: train a flow on a built-in data set.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fit = commands.add_parser(
        "fit",
        help="train a flow by maximum likelihood and write metrics, plots and weights",
        description="Train a flow by maximum likelihood and write metrics.json, PNG plots and model.pt into --out.",
    )
    add = fit.add_argument
    add("--flow", choices=FLOWS, default="realnvp", help="flow family (default: %(default)s)")
    add("--data", choices=datasets.DATASETS, default="moons", help="data set (default: %(default)s)")
    add("--out", type=Path, default=None, metavar="DIR", help="output folder (default: runs/FLOW-DATA)")
    add("--steps", type=_positive_int, default=800, metavar="N", help="maximum optimizer steps (default: %(default)s)")
    add("--batch-size", type=_positive_int, default=256, metavar="B", help="minibatch size (default: %(default)s)")
    add("--lr", type=_positive_float, default=1e-3, help="Adam learning rate (default: %(default)s)")
    add("--layers", type=_positive_int, default=None, metavar="K", help="number of layers (default: the factory's)")
    add(
        "--hidden",
        type=_positive_int,
        default=None,
        metavar="H",
        help="width of the two hidden layers, nice/realnvp/maf/iaf only (default: 128, wider than the factories' "
        "input-sized default, for a better density in the main job's 800 steps)",
    )
    add(
        "--eval-every",
        type=_positive_int,
        default=100,
        metavar="N",
        help="steps between validation evaluations (default: %(default)s)",
    )
    add(
        "--patience",
        type=_positive_int,
        default=10,
        metavar="N",
        help="evaluations without improvement before stopping (default: %(default)s)",
    )
    add(
        "--n-train",
        type=_positive_int,
        default=None,
        metavar="N",
        help="training points for toy data (default: 10000); valid and test get N/5 each",
    )
    add(
        "--clip-grad",
        type=_positive_float,
        default=None,
        metavar="NORM",
        help="clip the total gradient norm to NORM (default: no clipping)",
    )
    add("--seed", type=_non_negative_int, default=0, help="random seed (default: %(default)s)")
    add("--device", choices=("cpu", "cuda"), default="cpu", help="torch device (default: %(default)s)")
    add(
        "--threads",
        type=_positive_int,
        default=1,
        metavar="N",
        help="CPU threads for torch during the run (default: %(default)s; one thread avoids "
        "the large slowdowns of multi-threaded small matrix products on a busy machine)",
    )
    add("--no-progress", action="store_true", help="hide the progress bar")
    add("--quiet", action="store_true", help="print nothing on success")
    from . import vae as vae_cli

    vae_cli.add_parser(commands)
    return parser


# --------------------------------------------------------------------------- the job


def _versions() -> dict[str, str]:
    import pyro

    from .. import __version__

    return {
        "pyro_flows": __version__,
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "python": platform.python_version(),
    }


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but torch.cuda.is_available() is False")
    return torch.device(name)


def _load(args: argparse.Namespace) -> datasets.Split:
    if args.data == "digits" or args.n_train is None:
        sizes = {} if args.n_train is None else {"n_train": args.n_train}
        return datasets.load(args.data, seed=args.seed, **sizes)
    n_eval = max(1, args.n_train // 5)
    return datasets.load(args.data, n_train=args.n_train, n_valid=n_eval, n_test=n_eval, seed=args.seed)


def _nll_metrics(distribution, split: datasets.Split, name: str) -> dict[str, dict[str, float]]:
    from ..train import nll

    dims = split.train[0].numel()
    nats = {part: nll(distribution, getattr(split, part)) for part in split._fields}
    metrics = {"nll": nats, "nll_per_dim": {k: v / dims for k, v in nats.items()}}
    if name == "digits":
        metrics["bits_per_dim"] = {k: datasets.digits_bits_per_dim(v) for k, v in nats.items()}
    return metrics


def _plots(distribution, split: datasets.Split, result, args, out: Path) -> list[Path]:
    from .. import plots

    label = f"{args.flow} on {args.data}"
    paths = [plots.plot_history(result.history, out / "history.png", title=label)]
    if args.data == "digits":
        with torch.no_grad():
            samples = distribution.sample((_DIGITS_SAMPLES,))
        paths.append(plots.plot_digits(samples, out / "samples.png", title=f"{label}: samples"))
    else:
        paths.append(plots.plot_density_2d(distribution, split.train, out / "density.png", title=label))
    return paths


def run_fit(args: argparse.Namespace) -> dict:
    """Runs the ``fit`` command for parsed arguments and returns the metrics written.

    Raises:
        ValueError: For invalid combinations of options or data (from the library).
        FloatingPointError: If training diverges.
    """
    from ..distributions import flow_distribution
    from ..train import fit

    device = _device(args.device)
    out = args.out if args.out is not None else Path("runs") / f"{args.flow}-{args.data}"
    _check_out(out)  # before training: a bad --out must not cost a training run
    split = _load(args)
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # seeded, leaving the caller's RNG alone
        torch.manual_seed(args.seed)
        flow = build_flow(
            args.flow,
            split.train.shape[1],
            layers=args.layers,
            hidden=_MAIN_JOB_HIDDEN if args.hidden is None and args.flow in _HIDDEN_FLOWS else args.hidden,
        ).to(device)
        distribution = flow_distribution(flow)
        result = fit(
            distribution,
            split.train,
            split.valid,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            clip_grad=args.clip_grad,
            patience=args.patience,
            eval_every=args.eval_every,
            seed=args.seed,
            progress=not args.no_progress,
        )
        metrics = _metrics(args, split, distribution, flow, result)
        out.mkdir(parents=True, exist_ok=True)
        torch.save(flow.state_dict(), out / "model.pt")
        _plots(distribution, split, result, args, out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    metrics["out"] = str(out)
    return metrics


def _check_out(out: Path) -> None:
    """Raises ``ValueError`` unless ``out`` is a writable folder or can be made one (nothing is created)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder, but {out} is an existing file")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out} cannot be written: {existing} is not a writable folder")


def _metrics(args, split, distribution, flow, result) -> dict:
    return {
        "flow": args.flow,
        "data": args.data,
        "dims": split.train.shape[1],
        "sizes": {part: len(getattr(split, part)) for part in split._fields},
        **_nll_metrics(distribution, split, args.data),
        "wall_time_s": result.wall_time,
        "num_parameters": sum(p.numel() for p in flow.parameters()),
        "steps_run": result.steps_run,
        "best_step": result.best_step,
        "stopped_early": result.stopped_early,
        "history": result.history.as_dict(),
        "args": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "versions": _versions(),
    }


def _report(metrics: dict) -> str:
    nll = metrics["nll"]
    line = (
        f"{metrics['flow']} on {metrics['data']}: test NLL {nll['test']:.4f} nats "
        f"({metrics['nll_per_dim']['test']:.4f} per dim)"
    )
    if "bits_per_dim" in metrics:
        line += f", {metrics['bits_per_dim']['test']:.4f} bits/dim"
    line += f"; {metrics['steps_run']} steps (best {metrics['best_step']}) in {metrics['wall_time_s']:.1f} s"
    return line + f"\nwrote {metrics['out']}/ (metrics.json, model.pt, *.png)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pyro_flows``; returns the exit code.

    Args:
        argv: The arguments after the program name; ``None`` reads ``sys.argv``.

    Returns:
        0 on success, 1 when the library reports an error (printed as one line).
        Bad arguments make argparse exit with code 2.
    """
    args = make_parser().parse_args(argv)
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        if args.command == "vae":
            from . import vae as vae_cli

            metrics = vae_cli.run_vae(args)
            line = vae_cli.report(metrics)
        else:
            metrics = run_fit(args)
            line = _report(metrics)
    except (ValueError, FloatingPointError, FileNotFoundError, TypeError) as error:
        print("error: " + " ".join(str(error).splitlines()), file=sys.stderr)
        return 1
    finally:
        torch.set_num_threads(threads)
    if not args.quiet:
        print(line + f" [{time.perf_counter() - start:.1f} s in all]")
    return 0
