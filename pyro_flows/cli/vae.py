"""``python -m pyro_flows vae``: train a VAE with a diagonal, planar or IAF posterior on binarized MNIST.

Trains with :func:`~pyro_flows.models.fit_vae`, evaluates the test negative ELBO and the importance-sampled
NLL (:func:`~pyro_flows.models.log_likelihood`, K and seed recorded), and writes ``model.pt``, ``history.png``,
``reconstructions.png``, ``samples.png`` and, last, ``metrics.json`` into ``--out`` (the rules of
:mod:`pyro_flows.cli` apply). With no options it trains a small MLP model on CPU for two minutes; ``--arch conv``
is the gated convolutional encoder and decoder of Berg et al. 2018 (with ``--context-dim 256 --flow-hidden 320``,
the defaults, their IAF setting).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from .. import data as datasets
from .. import plots
from ..models import VAE, fit_vae, log_likelihood, negative_elbo
from ..models.vae import FLOW_OPS, POSTERIORS
from . import common

__all__ = ["DEFAULT_FLOWS", "DEFAULT_FLOW_HIDDEN", "DEFAULT_HIDDEN", "add_parser", "model_options", "report", "run"]

DEFAULT_HIDDEN = 512
"""The default ``--hidden``: the width of the two hidden layers of the MLP encoder (the decoder mirrors them)."""

DEFAULT_FLOWS = 4
"""The default ``--flows``: planar or IAF steps."""

DEFAULT_FLOW_HIDDEN = 320
"""The default ``--flow-hidden``: the width of each IAF step's MADE (Berg et al. 2018's)."""


def _number(kind, minimum):
    return common.number(kind, minimum=minimum)


def add_parser(commands) -> argparse.ArgumentParser:
    """Adds the ``vae`` subcommand to ``commands`` (argparse subparsers) and returns its parser."""
    p = commands.add_parser(
        "vae",
        help="train a VAE with a flow posterior on binarized MNIST and write metrics, images and weights",
        description="Train a VAE with a diagonal, planar or IAF posterior on binarized MNIST and write model.pt, "
        "PNG images and metrics.json into --out.",
    )
    add = p.add_argument
    add("--posterior", choices=POSTERIORS, default="iaf", help="posterior family (default: %(default)s)")
    add(
        "--arch",
        choices=("mlp", "conv"),
        default="mlp",
        help="encoder/decoder: MLP (--hidden), or Berg et al.'s gated convolutions (default: %(default)s)",
    )
    add(
        "--data",
        choices=("static", "dynamic"),
        default="static",
        help="static binarized MNIST (binarized_mnist.npz) or dynamic binarization of mnist.npz (default: static)",
    )
    add("--z-dim", type=_number(int, 1), default=64, help="latent size (default: %(default)s)")
    add(
        "--flows",
        type=_number(int, 1),
        default=None,
        help=f"flow steps, planar/iaf only (default: {DEFAULT_FLOWS})",
    )
    add(
        "--hidden",
        type=_number(int, 1),
        default=None,
        help=f"hidden width of the MLP encoder/decoder, two layers, --arch mlp only (default: {DEFAULT_HIDDEN})",
    )
    add(
        "--context-dim",
        type=_number(int, 1),
        default=256,
        help="size of the encoder's output h, from which mu and scale are computed and which the flow steps see "
        "as context (default: %(default)s)",
    )
    add(
        "--flow-hidden",
        type=_number(int, 1),
        default=None,
        help=f"hidden width of each IAF step's MADE, one layer, --posterior iaf only (default: {DEFAULT_FLOW_HIDDEN})",
    )
    add(
        "--flow-op",
        choices=FLOW_OPS,
        default="gated",
        help="elementwise op of each IAF step: gated (identity at initialization), gated_published (the paper's "
        "gate, a contraction at initialization) or affine (default: %(default)s)",
    )
    add(
        "--gate-bias",
        type=common.number(float, minimum=-1e6, what="a finite number"),
        default=None,
        help="bias of the gated ops' sigmoid, --posterior iaf only (default: 1, as in Kingma et al. 2016)",
    )
    add("--minutes", type=_number(float, 0), default=2.0, help="training budget in minutes (default: %(default)s)")
    add("--steps", type=_number(int, 1), default=None, help="maximum steps (default: only --minutes)")
    add("--batch-size", type=_number(int, 1), default=100, help="minibatch size (default: %(default)s)")
    add("--lr", type=_number(float, 0), default=1e-3, help="Adamax learning rate (default: %(default)s)")
    add("--kl-warmup", type=_number(int, 0), default=2000, help="steps of linear KL warm-up (default: %(default)s)")
    add("--free-bits", type=_number(float, 0), default=0.0, help="free nats of KL per image (default: %(default)s)")
    add("--eval-every", type=_number(int, 1), default=500, help="steps between validations (default: %(default)s)")
    add(
        "--n-eval",
        type=_number(int, 1),
        default=1000,
        help="validation and test images evaluated (default: %(default)s; 10000 for the full sets)",
    )
    add("--is-samples", type=_number(int, 1), default=1000, help="K of the IS log-likelihood (default: %(default)s)")
    add("--out", type=Path, default=None, help="output folder (default: runs/vae-POSTERIOR)")
    add("--seed", type=_number(int, 0), default=0, help="random seed (default: %(default)s)")
    add("--device", choices=("cpu", "cuda"), default="cpu", help="torch device (default: %(default)s)")
    add("--threads", type=_number(int, 1), default=1, help="CPU threads (default: %(default)s)")
    add("--no-progress", action="store_true", help="hide the progress bar")
    add("--quiet", action="store_true", help="print nothing on success")
    return p


def model_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :class:`~pyro_flows.models.VAE` that the options give.

    Raises:
        ValueError: For an option given explicitly where it has no effect: ``--hidden`` with ``--arch conv``,
            ``--flow-hidden``, ``--flow-op`` or ``--gate-bias`` without ``--posterior iaf``, ``--gate-bias`` with
            ``--flow-op affine``, ``--flows`` with ``--posterior diagonal``.
    """
    if args.hidden is not None and args.arch != "mlp":
        raise ValueError("--hidden sets the MLP's width and does not apply to --arch conv (Berg et al.'s gated convs)")
    if args.flow_hidden is not None and args.posterior != "iaf":
        raise ValueError(f"--flow-hidden sets the IAF steps' MADE and does not apply to --posterior {args.posterior}")
    if (args.flow_op != "gated" or args.gate_bias is not None) and args.posterior != "iaf":
        raise ValueError(
            f"--flow-op and --gate-bias set the IAF steps and do not apply to --posterior {args.posterior}"
        )
    if args.gate_bias is not None and args.flow_op == "affine":
        raise ValueError("--gate-bias sets the gated ops' sigmoid and does not apply to --flow-op affine")
    if args.flows is not None and args.posterior == "diagonal":
        raise ValueError("--flows does not apply to --posterior diagonal, which has no flow steps")
    hidden = DEFAULT_HIDDEN if args.hidden is None else args.hidden
    return {
        "arch": args.arch,
        "z_dim": args.z_dim,
        "posterior": args.posterior,
        "num_flows": DEFAULT_FLOWS if args.flows is None else args.flows,
        "hidden_dims": (hidden, hidden),
        "context_dim": args.context_dim,
        "flow_hidden_dims": (DEFAULT_FLOW_HIDDEN if args.flow_hidden is None else args.flow_hidden,),
        **(
            {"flow_op": args.flow_op, "gate_bias": 1.0 if args.gate_bias is None else args.gate_bias}
            if args.posterior == "iaf"
            else {}
        ),
    }


def _data(args):
    """Train, valid and test images and whether to binarize dynamically; valid and test are strided subsets of
    ``--n-eval`` images (the static test split is sorted by class: a prefix would be one digit)."""
    split = datasets.binarized_mnist() if args.data == "static" else datasets.mnist()
    valid, _ = datasets.evaluation_subset(split.valid, args.n_eval)
    test, how = datasets.evaluation_subset(split.test, args.n_eval)
    args.test_subset = "test split: " + how  # recorded in metrics.json
    if args.data == "static":
        return split.train, valid, test, False
    g = torch.Generator().manual_seed(args.seed + 1)  # fixed draws for validation and test
    return split.train, datasets.binarize(valid, generator=g), datasets.binarize(test, generator=g), True


def _evaluate(vae: VAE, test: torch.Tensor, args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    torch.manual_seed(args.seed)
    nll = -torch.cat(
        [log_likelihood(vae, chunk, num_samples=args.is_samples, batch_size=200) for chunk in test.split(100)]
    ).mean()
    return {
        "test_negative_elbo": negative_elbo(vae, test, num_particles=10),
        "test_nll_is": nll.item(),
        "eval_wall_s": time.perf_counter() - start,
    }


def _plot_writers(vae: VAE, test: torch.Tensor, result, args) -> dict:
    """``metrics.json``'s neighbours that are drawn: name -> writer(path)."""

    def reconstructions(path):
        with torch.no_grad():
            x = test[:8]
            recon = torch.sigmoid(vae.decoder(vae.posterior(x).sample()).reshape(x.shape))
            grid = torch.stack([x, recon], 1).reshape(-1, *x.shape[1:])
        plots.plot_images(grid.cpu(), path, image_shape=(28, 28), ncols=4, title="data | reconstruction")

    def samples(path):
        with torch.no_grad():
            z = vae.prior((32,)).sample()
            images = torch.sigmoid(vae.decoder(z)).reshape(32, 28, 28)
        plots.plot_images(images.cpu(), path, image_shape=(28, 28), ncols=8, title="samples (means)")

    title = f"VAE, {args.posterior} posterior (-ELBO)"
    return {
        "history.png": lambda path: plots.plot_history(result.history, path, title=title),
        "reconstructions.png": reconstructions,
        "samples.png": samples,
    }


def run(args: argparse.Namespace) -> dict:
    """Runs the ``vae`` command for parsed arguments and returns the metrics written (with ``"out"``).

    Raises:
        ValueError: For options that do not apply (:func:`model_options`) or bad data (from the library).
        Interrupted: After an interruption during training, evaluation or plotting, once the best parameters
            and ``metrics.json`` (``"interrupted": true``) are written.
    """
    device = common.device(args.device)
    options = model_options(args)
    out = args.out if args.out is not None else Path("runs") / f"vae-{args.posterior}"
    common.check_out(out)
    train, valid, test, dynamic = _data(args)
    test = test.to(device)
    torch.manual_seed(args.seed)
    vae = VAE(train.shape[1:], **options).to(device)
    start = time.perf_counter()
    result, interruption = None, None
    try:
        result = fit_vae(
            vae,
            train,
            valid,
            kl_warmup_steps=args.kl_warmup,
            free_bits=args.free_bits,
            patience=None,
            max_seconds=60 * args.minutes,
            dynamic_binarization=dynamic,
            **common.training_options(args),
        )
        evaluation = _evaluate(vae, test, args)
    except KeyboardInterrupt as error:  # fit_vae restored the best parameters; the test evaluation is skipped
        interruption = error
        evaluation = {"test_negative_elbo": None, "test_nll_is": None, "eval_wall_s": None}
    metrics = {
        "posterior": args.posterior,
        "arch": vae.arch,
        "data": args.data,
        "model": {key: list(value) if isinstance(value, tuple) else value for key, value in options.items()},
        "interrupted": interruption is not None,
        "evaluated": interruption is None,
        **evaluation,
        "is_samples": args.is_samples,
        "is_seed": args.seed,
        "test_images": len(test),
        "test_subset": getattr(args, "test_subset", None),
        "best_valid_negative_elbo": result.best_valid if result is not None else None,
        "steps_run": result.steps_run if result is not None else None,
        "train_wall_s": result.wall_time if result is not None else time.perf_counter() - start,
        "steps_per_s": result.steps_run / result.wall_time if result is not None else None,
        "num_parameters": sum(p.numel() for p in vae.parameters()),
        "history": result.history.as_dict() if result is not None else None,
        **common.args_record(args),
    }
    metrics = common.save_run(out, vae, metrics, interruption, lambda: _plot_writers(vae, test, result, args))
    return metrics


def report(metrics: dict) -> str:
    """The line printed after a run (or, with ``"interrupted"``, after an interrupted one)."""
    if metrics["interrupted"]:
        done = "" if metrics["steps_run"] is None else f" after {metrics['steps_run']} steps"
        evaluated = "" if metrics["evaluated"] else ", not evaluated"
        return (
            f"VAE ({metrics['posterior']}): interrupted{done}{evaluated}; wrote {metrics['out']}/ [interrupted: true]"
        )
    return (
        f"VAE ({metrics['posterior']}, {metrics['arch']}): test -ELBO {metrics['test_negative_elbo']:.2f} nats, IS NLL "
        f"{metrics['test_nll_is']:.2f} (K={metrics['is_samples']}, {metrics['test_images']} test images), "
        f"{metrics['steps_run']} steps ({metrics['steps_per_s']:.1f}/s); wrote {metrics['out']}/"
    )
