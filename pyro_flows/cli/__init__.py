"""The command line, ``python -m pyro_flows COMMAND``: ``fit`` (:mod:`pyro_flows.cli.fit`, a flow by maximum
likelihood on a built-in data set) and ``vae`` (:mod:`pyro_flows.cli.vae`, a VAE with a flow posterior on
binarized MNIST). Both write their outputs into ``--out``; :mod:`pyro_flows.cli.common` holds what they share.

Library errors (``ValueError``, ``FloatingPointError``, ...) are printed as one line and give exit code 1; bad
arguments give argparse's usage error (exit code 2).

**The outputs of a run.** ``model.pt``, the PNG plots and ``metrics.json`` are each written to a temporary file
in ``--out`` and renamed over their name (:func:`~pyro_flows.cli.common.atomic_write`): a file under its own name
is always complete, whatever stops the process. When a run writes, it first moves the outputs of an earlier run
in the folder into ``DIR/.previous/`` (``metrics.json`` first; the ``.previous`` of the run before is dropped),
then writes ``model.pt``, then the plots, and ``metrics.json`` LAST, with the size and SHA-256 of each file it
wrote beside it (``"outputs"``). So a ``metrics.json`` in ``--out`` always describes the ``model.pt`` and plots
beside it, and its presence means that the run's outputs are complete; without it, the files there are the
unfinished outputs of a run that was stopped while writing them. A run that fails before writing (bad options,
divergence) leaves the folder as it was.

**Interruption.** Ctrl-C (SIGINT) or SIGTERM during training stops the run: the training loop restores the
parameters of the best validation loss so far, and the command writes them into ``model.pt`` and a
``metrics.json`` with ``"interrupted": true`` and ``"evaluated": false`` (the test evaluation and the plots are
skipped: their metrics are ``null``), then exits with code 130 (SIGINT) or 143 (SIGTERM). An interruption
during the test evaluation does the same; one while the plots are drawn skips the remaining plots and still
writes ``metrics.json`` (``"interrupted": true``). A second signal while the files are written stops the
writing; the rule above still holds (no truncated file, no ``metrics.json`` unless all its neighbours are in).

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
import sys
import time
from collections.abc import Sequence

import torch

from . import common, fit, vae
from .fit import FLOWS, build_flow, run_fit

__all__ = ["FLOWS", "build_flow", "main", "make_parser", "run_fit"]

COMMANDS = {"fit": fit, "vae": vae}
"""The subcommands: name -> module with ``add_parser(commands)``, ``run(args)`` and ``report(metrics)``."""


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m pyro_flows``."""
    parser = argparse.ArgumentParser(
        prog="python -m pyro_flows",
        description="Normalizing flows for Pyro: train a flow on a built-in data set.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pyro_flows``; returns the exit code.

    Args:
        argv: The arguments after the program name; ``None`` reads ``sys.argv``.

    Returns:
        0 on success, 1 when the library reports an error (printed as one line), 130 after SIGINT (Ctrl-C) and
        143 after SIGTERM (the outputs saved as the module docstring says). Bad arguments make argparse exit with
        code 2.
    """
    args = make_parser().parse_args(argv)
    command = COMMANDS[args.command]
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        with common.signals_as_interrupts():
            metrics = command.run(args)
    except common.Interrupted as stop:
        print(command.report(stop.metrics), file=sys.stderr)
        return stop.code
    except KeyboardInterrupt as interruption:  # before training, or a second signal while writing
        print(f"interrupted; no {common.METRICS} was written (outputs incomplete)", file=sys.stderr)
        return common.exit_code(interruption)
    except (ValueError, FloatingPointError, FileNotFoundError, TypeError) as error:
        print("error: " + " ".join(str(error).splitlines()), file=sys.stderr)
        return 1
    finally:
        torch.set_num_threads(threads)
    if not args.quiet:
        print(command.report(metrics) + f" [{time.perf_counter() - start:.1f} s in all]")
    return 0
