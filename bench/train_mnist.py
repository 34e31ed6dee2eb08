"""Trains a flow on MNIST for a fixed wall-clock budget and reports test bits/dim (issues 3 and 4).

    .venv/bin/python bench/train_mnist.py --model maf --minutes 20 --device cuda    # issue 3, benchmark 4
    .venv/bin/python bench/train_mnist.py --model realnvp --minutes 20 --device cuda
    .venv/bin/python bench/train_mnist.py --model glow --minutes 20 --device cuda
    .venv/bin/python bench/train_mnist.py --model maf --quick                       # CPU smoke test, seconds

Data: ``mnist.npz`` (50k train / 10k valid / 10k test) from ``--data`` or ``$PYRO_FLOWS_DATA`` (default
``../shared/data``). Training minibatches get fresh uniform dequantization noise every step
(``x = (k + u) / 256``); validation and test images are dequantized once with fixed seeds. Every model ends in
``pf.Logit(shape, lam).inv``, so ``log_prob`` is the density of ``x`` in ``[0, 1)``-space with the logit's
Jacobian inside, and ``pf.data.bits_per_dim`` reports it in pixel space (0..255), as the papers do.

Models:
* ``maf``: ``pf.maf(784, num_layers=5, hidden_dims=(1024,), batch_norm=True)`` on flattened images, logit
  with lambda = 1e-6 (the MAF paper's MAF(5) on MNIST). Also reported: the test log-likelihood in logit space
  (the paper's figure, about -1300 nats for MAF(5)).
* ``realnvp``: ``pf.realnvp_image((1, 28, 28), ...)``, logit with lambda = 0.05 (RealNVP's choice).
* ``glow``: ``pf.glow((1, 28, 28), ...)``, logit with lambda = 0.05.

Writes ``<out>/metrics.json`` (settings, environment with the command and device, steps, epochs, wall time,
history, valid/test NLL and bits/dim, sampling and training throughput), ``samples.png`` (64 samples) and
``history.png`` into ``--out`` (default ``bench/results/mnist_<model>[_quick]``).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from common import HERE, count_params, environment, plain_settings, wall_timer

import pyro_flows as pf
from pyro_flows import plots

# Full settings per model; --quick shrinks them (see QUICK).
MODELS = {
    "maf": dict(lam=1e-6, batch_size=100, lr=1e-4, kwargs=dict(num_layers=5, hidden_dims=(1024,), batch_norm=True)),
    "realnvp": dict(lam=0.05, batch_size=64, lr=1e-3, kwargs=dict(levels=2, hidden_channels=64, num_blocks=4)),
    # 28 = 4 x 7: two squeezes at most, so Glow runs 2 levels on MNIST (the paper pads to 32 for 3)
    "glow": dict(lam=0.05, batch_size=64, lr=1e-3, kwargs=dict(levels=2, depth=16, hidden_channels=256)),
}
QUICK = {
    "maf": dict(num_layers=2, hidden_dims=(32,), batch_norm=True),
    "realnvp": dict(levels=2, hidden_channels=4, num_blocks=1),
    "glow": dict(levels=2, depth=1, hidden_channels=4),
}


def build(model: str, quick: bool, kwargs: dict):
    """The flow (base to [0, 1]-space) and the shape of one example."""
    settings = MODELS[model]
    kw = dict(QUICK[model] if quick else settings["kwargs"])
    kw.update(kwargs)
    if model == "maf":
        shape = (784,)
        flow = pf.maf(784, **kw)
    else:
        shape = pf.data.MNIST_SHAPE
        flow = {"realnvp": pf.realnvp_image, "glow": pf.glow}[model](shape, **kw)
    return pf.Compose([flow, pf.Logit(shape, lam=settings["lam"]).inv]), shape, kw


def throughput(d, batch_size, shape, device, repeats=3) -> dict:
    """Images per second for one training step (forward, backward; no optimizer) and for sampling: the best of
    ``repeats`` wall-clock times after one warm-up call."""
    best_of = wall_timer(device, repeats, warmup=1, reduce=min)
    x = torch.rand(batch_size, *shape, device=device) * 0.98 + 0.01
    params = [p for m in d.transforms for p in m.parameters()]
    times = {}
    for name, fn in {
        "train_step": lambda: torch.autograd.grad(-d.log_prob(x.clone()).mean(), params, allow_unused=True),
        "sample": lambda: d.sample((batch_size,)),
    }.items():
        ctx = torch.no_grad() if name == "sample" else torch.enable_grad()
        with ctx:
            times[name + "_images_per_s"] = batch_size / best_of(fn)
    return times


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(MODELS), default="maf")
    p.add_argument("--minutes", type=float, default=20.0, help="training budget (wall clock)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--data", default=None, help="mnist.npz or its folder (default $PYRO_FLOWS_DATA or ../shared/data)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="tiny model and data subset on the CPU (smoke test)")
    p.add_argument("--out", default=None)
    p.add_argument("--model-kwargs", default="{}", help="JSON dict of extra factory arguments")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    settings = MODELS[args.model]
    batch_size = args.batch_size or settings["batch_size"]
    lr = args.lr or settings["lr"]
    out = Path(args.out or HERE / "results" / f"mnist_{args.model}{'_quick' if args.quick else ''}")
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(args.seed)
    split = pf.data.mnist(args.data)
    flow, shape, kw = build(args.model, args.quick, json.loads(args.model_kwargs))
    flow = flow.to(device)
    train, valid, test = (t.reshape(len(t), *shape) for t in split)
    if args.quick:
        train, valid, test = train[:512], valid[:256], test[:256]
    valid = pf.data.dequantize(valid, generator=torch.Generator().manual_seed(1)).to(device)
    test = pf.data.dequantize(test, generator=torch.Generator().manual_seed(2)).to(device)
    d = pf.flow_distribution(flow)
    n_params = count_params(flow)
    print(f"{args.model}: {n_params:,} parameters, {kw}, device {device}", flush=True)

    steps = 20 if args.quick else None
    result = pf.fit(
        d,
        train,
        valid,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        patience=None,
        eval_every=20 if args.quick else args.eval_every,
        eval_batch_size=500,
        seed=args.seed,
        preprocess=pf.data.dequantize,
        max_seconds=None if args.quick else 60 * args.minutes,
        progress=not args.quick,
    )
    dims = math.prod(shape)
    test_nll = pf.nll(d, test, batch_size=500)
    with torch.no_grad():  # the logit's mean log-det: logit-space LL = LL in [0, 1)-space - log|dy/dx|
        logit = pf.Logit(shape, lam=settings["lam"])
        logit_ld = torch.cat([logit.forward_and_log_det(b)[1] for b in test.split(500)]).mean().item()
    flow.eval()
    with torch.no_grad():
        torch.manual_seed(args.seed)
        samples = d.sample((64,)).cpu()
    plots.plot_images(
        samples,
        out / "samples.png",
        image_shape=(28, 28),
        title=f"{args.model}: samples after {result.steps_run} steps",
    )
    plots.plot_history(result.history, out / "history.png", title=f"{args.model} on MNIST (nats per image)")
    speed = throughput(d, batch_size if not args.quick else 4, shape, device)

    metrics = {
        "model": args.model,
        "environment": environment(quick=args.quick, device=device),
        "settings": {
            "model_kwargs": plain_settings(kw),
            "lam": settings["lam"],
            "batch_size": batch_size,
            "lr": lr,
            "minutes": args.minutes,
            "quick": args.quick,
            "seed": args.seed,
            "eval_every": args.eval_every,
            "n_train": len(train),
            "n_valid": len(valid),
            "n_test": len(test),
        },
        "parameters": n_params,
        "steps": result.steps_run,
        "epochs": result.steps_run * batch_size / len(train),
        "wall_time_s": result.wall_time,
        "best_step": result.best_step,
        "valid_nll": result.best_valid,
        "valid_bits_per_dim": pf.data.bits_per_dim(result.best_valid, dims),
        "test_nll": test_nll,
        "test_bits_per_dim": pf.data.bits_per_dim(test_nll, dims),
        "test_log_likelihood_logit_space": -test_nll - logit_ld,
        "throughput": speed,
        "history": result.history.as_dict(),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps({k: v for k, v in metrics.items() if k != "history"}, indent=2))
    print(f"wrote {out}")
    return metrics


if __name__ == "__main__":
    main()
