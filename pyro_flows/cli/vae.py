"""``python -m pyro_flows vae``: train a VAE with a diagonal, planar or IAF posterior on binarized MNIST.

Trains with :func:`~pyro_flows.models.fit_vae`, evaluates the test negative ELBO and the importance-sampled
NLL (:func:`~pyro_flows.models.log_likelihood`, K and seed recorded), and writes ``metrics.json``,
``history.png``, ``reconstructions.png``, ``samples.png`` and ``model.pt`` into ``--out``. With no options it
trains a small MLP model on CPU for two minutes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from .. import data as datasets
from ..models.vae import POSTERIORS, VAE, fit_vae, log_likelihood, negative_elbo
from .fit import _check_out, _device, _number

__all__ = ["add_parser", "run_vae"]


def number(kind, minimum):
    """An argparse parser of a ``kind`` (int or float) of at least ``minimum``."""
    return _number(kind, minimum=minimum, what=f"a {kind.__name__} >= {minimum}")


def add_parser(commands) -> None:
    """Adds the ``vae`` subcommand to ``commands`` (argparse subparsers)."""
    p = commands.add_parser(
        "vae",
        help="train a VAE with a flow posterior on binarized MNIST and write metrics, images and weights",
        description=__doc__.splitlines()[0],
    )
    add = p.add_argument
    add("--posterior", choices=POSTERIORS, default="iaf", help="posterior family (default: %(default)s)")
    add(
        "--arch",
        choices=("mlp", "conv"),
        default="mlp",
        help="encoder/decoder: MLP, or Berg et al.'s gated convolutions (default: %(default)s)",
    )
    add(
        "--data",
        choices=("static", "dynamic"),
        default="static",
        help="static binarized MNIST (binarized_mnist.npz) or dynamic binarization of mnist.npz (default: static)",
    )
    add("--z-dim", type=number(int, 1), default=64, help="latent size (default: %(default)s)")
    add("--flows", type=number(int, 1), default=4, help="flow steps of planar/iaf (default: %(default)s)")
    add("--hidden", type=number(int, 1), default=512, help="MLP hidden width, two layers (default: %(default)s)")
    add("--minutes", type=number(float, 0), default=2.0, help="training budget in minutes (default: %(default)s)")
    add("--steps", type=number(int, 1), default=None, help="maximum steps (default: only --minutes)")
    add("--batch-size", type=number(int, 1), default=100, help="minibatch size (default: %(default)s)")
    add("--lr", type=number(float, 0), default=1e-3, help="Adamax learning rate (default: %(default)s)")
    add("--kl-warmup", type=number(int, 0), default=2000, help="steps of linear KL warm-up (default: %(default)s)")
    add("--free-bits", type=number(float, 0), default=0.0, help="free nats of KL per image (default: %(default)s)")
    add("--eval-every", type=number(int, 1), default=500, help="steps between validations (default: %(default)s)")
    add(
        "--n-eval",
        type=number(int, 1),
        default=1000,
        help="validation and test images evaluated (default: %(default)s; 10000 for the full sets)",
    )
    add("--is-samples", type=number(int, 1), default=1000, help="K of the IS log-likelihood (default: %(default)s)")
    add("--out", type=Path, default=None, help="output folder (default: runs/vae-POSTERIOR)")
    add("--seed", type=number(int, 0), default=0, help="random seed (default: %(default)s)")
    add("--device", choices=("cpu", "cuda"), default="cpu", help="torch device (default: %(default)s)")
    add("--threads", type=number(int, 1), default=1, help="CPU threads (default: %(default)s)")
    add("--no-progress", action="store_true", help="hide the progress bar")
    add("--quiet", action="store_true", help="print nothing on success")


def _data(args):
    if args.data == "static":
        split = datasets.binarized_mnist()
        return split.train, split.valid[: args.n_eval], split.test[: args.n_eval], False
    split = datasets.mnist()
    g = torch.Generator().manual_seed(args.seed + 1)  # fixed draws for validation and test
    valid = datasets.binarize(split.valid[: args.n_eval], generator=g)
    test = datasets.binarize(split.test[: args.n_eval], generator=g)
    return split.train, valid, test, True


def run_vae(args: argparse.Namespace) -> dict:
    """Runs the ``vae`` command for parsed arguments and returns the metrics written."""
    from .. import plots

    device = _device(args.device)
    out = args.out if args.out is not None else Path("runs") / f"vae-{args.posterior}"
    _check_out(out)
    train, valid, test, dynamic = _data(args)
    torch.manual_seed(args.seed)
    vae = VAE(
        train.shape[1:],
        z_dim=args.z_dim,
        posterior=args.posterior,
        num_flows=args.flows,
        hidden_dims=(args.hidden, args.hidden),
    ).to(device)
    result = fit_vae(
        vae,
        train,
        valid,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        kl_warmup_steps=args.kl_warmup,
        eval_every=args.eval_every,
        patience=None,
        max_seconds=60 * args.minutes,
        dynamic_binarization=dynamic,
        seed=args.seed,
        progress=not args.no_progress,
    )
    start = time.perf_counter()
    test = test.to(device)
    torch.manual_seed(args.seed)
    nll = (
        -torch.cat(
            [log_likelihood(vae, chunk, num_samples=args.is_samples, batch_size=200) for chunk in test.split(100)]
        )
        .mean()
        .item()
    )
    metrics = {
        "posterior": args.posterior,
        "arch": args.arch,
        "data": args.data,
        "test_negative_elbo": negative_elbo(vae, test, num_particles=10),
        "test_nll_is": nll,
        "is_samples": args.is_samples,
        "is_seed": args.seed,
        "test_images": len(test),
        "best_valid_negative_elbo": result.best_valid,
        "steps_run": result.steps_run,
        "train_wall_s": result.wall_time,
        "steps_per_s": result.steps_run / result.wall_time,
        "eval_wall_s": time.perf_counter() - start,
        "num_parameters": sum(p.numel() for p in vae.parameters()),
        "history": result.history.as_dict(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    out.mkdir(parents=True, exist_ok=True)
    torch.save(vae.state_dict(), out / "model.pt")
    plots.plot_history(result.history, out / "history.png", title=f"VAE, {args.posterior} posterior (-ELBO)")
    with torch.no_grad():
        x = test[:8]
        recon = torch.sigmoid(vae.decoder(vae.posterior(x).sample()).reshape(x.shape))
        grid = torch.stack([x, recon], 1).reshape(-1, *x.shape[1:])
        plots.plot_images(
            grid.cpu(), out / "reconstructions.png", image_shape=(28, 28), ncols=4, title="data | reconstruction"
        )
        z = vae.prior((32,)).sample()
        samples = torch.sigmoid(vae.decoder(z)).reshape(32, 28, 28)
        plots.plot_images(samples.cpu(), out / "samples.png", image_shape=(28, 28), ncols=8, title="samples (means)")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    metrics["out"] = str(out)
    return metrics


def report(metrics: dict) -> str:
    return (
        f"VAE ({metrics['posterior']}): test -ELBO {metrics['test_negative_elbo']:.2f} nats, IS NLL "
        f"{metrics['test_nll_is']:.2f} (K={metrics['is_samples']}, {metrics['test_images']} test images), "
        f"{metrics['steps_run']} steps ({metrics['steps_per_s']:.1f}/s); wrote {metrics['out']}/"
    )
