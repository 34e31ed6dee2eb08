"""``python -m pyro_flows fit``: train a flow by maximum likelihood on a data set that needs no download.

Writes into ``--out`` (the rules of :mod:`pyro_flows.cli` apply):

- ``model.pt``: the flow's ``state_dict`` (the parameters of the best validation NLL);
- ``history.png``: the learning curve; ``density.png`` for 2-D data (data, learned density, samples) or
  ``samples.png`` for digits (a grid of samples);
- ``metrics.json``, last: flow and data names, train/valid/test NLL in nats and in nats per dimension (for
  digits also bits/dim in pixel space), wall time, parameter count, steps run, best step, the arguments, the
  library versions, ``"interrupted"`` and the files written beside it (``"outputs"``).

With no options it trains a RealNVP on two moons in well under a minute on two CPU cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from .. import data as datasets
from .. import flows, plots
from ..distributions import flow_distribution
from ..train import fit, nll
from . import common

__all__ = ["FLOWS", "add_parser", "build_flow", "report", "run", "run_fit"]

FLOWS = ("planar", "radial", "nice", "realnvp", "maf", "iaf")
"""Flow names accepted by ``--flow``: the factories of the same name (:func:`pyro_flows.realnvp` and the others).

``iaf`` is trained in its slow direction (the likelihood needs its inverse, one
network pass per dimension); prefer ``maf`` for density estimation."""

HIDDEN_FLOWS = frozenset({"nice", "realnvp", "maf", "iaf"})
"""The flows of :data:`FLOWS` whose factories take ``hidden_dims`` (``--hidden``)."""

MAIN_JOB_HIDDEN = 128
"""The default ``--hidden`` of :data:`HIDDEN_FLOWS` (the factories size theirs to the input: 32 for 2-D)."""

_DIGITS_SAMPLES = 64


# --------------------------------------------------------------------------- flows


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
    if name not in FLOWS:
        raise ValueError(f"unknown flow {name!r}; valid names are: {', '.join(FLOWS)}")
    options: dict[str, object] = {}
    if layers is not None:
        options["num_layers"] = layers
    if hidden is not None:
        if name not in HIDDEN_FLOWS:
            raise ValueError(f"--hidden does not apply to {name!r}, which has no hidden layers")
        options["hidden_dims"] = (hidden, hidden)
    return getattr(flows, name)(input_dim, **options)  # looked up at call time: the factory of that name


# --------------------------------------------------------------------------- arguments


def add_parser(commands) -> argparse.ArgumentParser:
    """Adds the ``fit`` subcommand to ``commands`` (argparse subparsers) and returns its parser."""
    p = commands.add_parser(
        "fit",
        help="train a flow by maximum likelihood and write metrics, plots and weights",
        description="Train a flow by maximum likelihood and write model.pt, PNG plots and metrics.json into --out.",
    )
    add = p.add_argument
    positive_int, positive_float = common.positive_int, common.positive_float
    add("--flow", choices=FLOWS, default="realnvp", help="flow family (default: %(default)s)")
    add("--data", choices=datasets.DATASETS, default="moons", help="data set (default: %(default)s)")
    add("--out", type=Path, default=None, metavar="DIR", help="output folder (default: runs/FLOW-DATA)")
    add("--steps", type=positive_int, default=800, metavar="N", help="maximum optimizer steps (default: %(default)s)")
    add("--batch-size", type=positive_int, default=256, metavar="B", help="minibatch size (default: %(default)s)")
    add("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default: %(default)s)")
    add("--layers", type=positive_int, default=None, metavar="K", help="number of layers (default: the factory's)")
    add(
        "--hidden",
        type=positive_int,
        default=None,
        metavar="H",
        help=f"width of the two hidden layers, nice/realnvp/maf/iaf only (default: {MAIN_JOB_HIDDEN}, wider than "
        "the factories' input-sized default, for a better density in the main job's 800 steps)",
    )
    add(
        "--eval-every",
        type=positive_int,
        default=100,
        metavar="N",
        help="steps between validation evaluations (default: %(default)s)",
    )
    add(
        "--patience",
        type=positive_int,
        default=10,
        metavar="N",
        help="evaluations without improvement before stopping (default: %(default)s)",
    )
    add(
        "--n-train",
        type=positive_int,
        default=None,
        metavar="N",
        help="training points for toy data (default: 10000); valid and test get N/5 each",
    )
    add(
        "--clip-grad",
        type=positive_float,
        default=None,
        metavar="NORM",
        help="clip the total gradient norm to NORM (default: no clipping)",
    )
    add("--seed", type=common.non_negative_int, default=0, help="random seed (default: %(default)s)")
    add("--device", choices=("cpu", "cuda"), default="cpu", help="torch device (default: %(default)s)")
    add(
        "--threads",
        type=positive_int,
        default=1,
        metavar="N",
        help="CPU threads for torch during the run (default: %(default)s; one thread avoids "
        "the large slowdowns of multi-threaded small matrix products on a busy machine)",
    )
    add("--no-progress", action="store_true", help="hide the progress bar")
    add("--quiet", action="store_true", help="print nothing on success")
    return p


# --------------------------------------------------------------------------- the job


def _load(args: argparse.Namespace) -> datasets.Split:
    if args.data == "digits" or args.n_train is None:
        sizes = {} if args.n_train is None else {"n_train": args.n_train}
        return datasets.load(args.data, seed=args.seed, **sizes)
    n_eval = max(1, args.n_train // 5)
    return datasets.load(args.data, n_train=args.n_train, n_valid=n_eval, n_test=n_eval, seed=args.seed)


def _nll_metrics(distribution, split: datasets.Split, name: str) -> dict:
    dims = split.train[0].numel()
    nats = {part: nll(distribution, getattr(split, part)) for part in split._fields}
    metrics: dict = {"nll": nats, "nll_per_dim": {k: v / dims for k, v in nats.items()}}
    if name == "digits":
        metrics["bits_per_dim"] = {k: datasets.digits_bits_per_dim(v) for k, v in nats.items()}
    return metrics


def _not_evaluated(name: str) -> dict:
    metrics: dict = {"nll": None, "nll_per_dim": None}
    if name == "digits":
        metrics["bits_per_dim"] = None
    return metrics


def _plot_writers(distribution, split: datasets.Split, result, args) -> dict:
    """``metrics.json``'s neighbours that are drawn: name -> writer(path)."""
    label = f"{args.flow} on {args.data}"

    def samples(path):
        with torch.no_grad():
            x = distribution.sample((_DIGITS_SAMPLES,))
        plots.plot_digits(x, path, title=f"{label}: samples")

    writers = {"history.png": lambda path: plots.plot_history(result.history, path, title=label)}
    if args.data == "digits":
        writers["samples.png"] = samples
    else:
        writers["density.png"] = lambda path: plots.plot_density_2d(distribution, split.train, path, title=label)
    return writers


def run(args: argparse.Namespace) -> dict:
    """Runs the ``fit`` command for parsed arguments and returns the metrics written (with ``"out"``).

    Raises:
        ValueError: For invalid combinations of options or data (from the library).
        FloatingPointError: If training diverges.
        Interrupted: After an interruption (SIGINT, or SIGTERM in :func:`pyro_flows.cli.main`) during training,
            evaluation or plotting, once the best parameters and ``metrics.json`` (``"interrupted": true``)
            are written.
    """
    device = common.device(args.device)
    out = args.out if args.out is not None else Path("runs") / f"{args.flow}-{args.data}"
    common.check_out(out)  # before training: a bad --out must not cost a training run
    split = _load(args)
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # seeded, leaving the caller's RNG alone
        torch.manual_seed(args.seed)
        flow = build_flow(
            args.flow,
            split.train.shape[1],
            layers=args.layers,
            hidden=MAIN_JOB_HIDDEN if args.hidden is None and args.flow in HIDDEN_FLOWS else args.hidden,
        ).to(device)
        distribution = flow_distribution(flow)
        start = time.perf_counter()
        result, interruption = None, None
        try:
            result = fit(
                distribution,
                split.train,
                split.valid,
                clip_grad=args.clip_grad,
                patience=args.patience,
                **common.training_options(args),
            )
            evaluation = _nll_metrics(distribution, split, args.data)
        except KeyboardInterrupt as error:  # fit restored the best parameters; the test evaluation is skipped
            interruption, evaluation = error, _not_evaluated(args.data)
        metrics = {
            "flow": args.flow,
            "data": args.data,
            "dims": split.train.shape[1],
            "sizes": {part: len(getattr(split, part)) for part in split._fields},
            "interrupted": interruption is not None,
            "evaluated": interruption is None,
            **evaluation,
            "wall_time_s": result.wall_time if result is not None else time.perf_counter() - start,
            "num_parameters": sum(p.numel() for p in flow.parameters()),
            "steps_run": result.steps_run if result is not None else None,
            "best_step": result.best_step if result is not None else None,
            "stopped_early": result.stopped_early if result is not None else None,
            "history": result.history.as_dict() if result is not None else None,
            **common.args_record(args),
        }
        metrics = common.save_run(
            out, flow, metrics, interruption, lambda: _plot_writers(distribution, split, result, args)
        )
    return metrics


run_fit = run
"""The name of :func:`run` that ``pyro_flows.cli`` exported before it was a package."""


def report(metrics: dict) -> str:
    """The lines printed after a run (or, with ``"interrupted"``, after an interrupted one)."""
    where = f"wrote {metrics['out']}/ ({', '.join([*metrics['outputs'], common.METRICS])})"
    if metrics["interrupted"]:
        done = "" if metrics["steps_run"] is None else f" after {metrics['steps_run']} steps"
        evaluated = "" if metrics["evaluated"] else ", not evaluated"
        return f"{metrics['flow']} on {metrics['data']}: interrupted{done}{evaluated}\n{where} [interrupted: true]"
    nll_ = metrics["nll"]
    line = (
        f"{metrics['flow']} on {metrics['data']}: test NLL {nll_['test']:.4f} nats "
        f"({metrics['nll_per_dim']['test']:.4f} per dim)"
    )
    if "bits_per_dim" in metrics:
        line += f", {metrics['bits_per_dim']['test']:.4f} bits/dim"
    line += f"; {metrics['steps_run']} steps (best {metrics['best_step']}) in {metrics['wall_time_s']:.1f} s"
    return line + "\n" + where
