"""The VAE's training step against a plain-PyTorch twin built from the same modules (issue 18, section 4).

The twin computes the same one-sample negative ELBO by hand from the VAE's own ``nn.Module`` parts (encoder,
``mu``/``raw_scale`` heads, decoder, and for the IAF each step's MADE with the normalized gated update written
out), with the same optimizer, minibatches and seed. Timed in one process in rotation, block by block, so
machine noise is shared:

* ``fit_vae``: :func:`pyro_flows.models.fit_vae` for a block of steps (the library's training loop);
* ``svi``: ``pyro.infer.SVI(vae.model, vae.guide, Adamax, Trace_ELBO())`` steps, the Pyro route users write;
* ``twin``: the plain-PyTorch loop.

Before timing, one check that the twin is the same computation: from the same seed, the twin's loss and
gradients equal those of ``Trace_ELBO`` on ``vae.model``/``vae.guide``.

    python bench/bench_vae_overhead.py                 # the recorded CPU run
    python bench/bench_vae_overhead.py --quick         # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import pyro
import torch
import torch.nn.functional as F
from common import environment, environment_line, record_end, write_results
from pyro.infer import SVI, Trace_ELBO

import pyro_flows as pf
from pyro_flows.models import VAE, fit_vae


def twin_loss(vae: VAE, x: torch.Tensor) -> torch.Tensor:
    """The one-sample negative ELBO per image, written in plain PyTorch over the VAE's modules."""
    h = vae.encoder(x.flatten(1))
    mu, scale = vae.mu(h), F.softplus(vae.raw_scale(h)) + 1e-4
    eps = torch.randn_like(mu)
    z = mu + scale * eps
    log_q = (-0.5 * eps**2 - scale.log() - 0.5 * torch.log(torch.tensor(2 * torch.pi))).sum(-1)
    if vae.flow is not None:
        for layer in vae.flow.parts:
            m, s = layer.conditioner(z, h)
            log_a = F.logsigmoid(s + layer.op.bias) - F.logsigmoid(torch.tensor(layer.op.bias))
            a = log_a.exp()
            z = a * z + (1 - a) * m
            log_q = log_q - log_a.sum(-1)
    log_prior = (-0.5 * z**2 - 0.5 * torch.log(torch.tensor(2 * torch.pi))).sum(-1)
    logits = vae.decoder(z)
    log_lik = -F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="none").sum(-1)
    return -(log_lik + log_prior - log_q).mean()


def check_twin(vae: VAE, x: torch.Tensor) -> tuple[float, float]:
    """The largest loss and gradient differences between the twin and ``Trace_ELBO`` from the same seed."""
    params = list(vae.parameters())
    torch.manual_seed(0)
    a = Trace_ELBO(max_plate_nesting=1).differentiable_loss(vae.model, vae.guide, x) / len(x)
    ga = torch.autograd.grad(a, params)
    torch.manual_seed(0)
    b = twin_loss(vae, x)
    gb = torch.autograd.grad(b, params)
    return abs(float(a.detach() - b.detach())), max(float((u - v).abs().max()) for u, v in zip(ga, gb))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--block", type=int, default=100, help="steps per timed block")
    p.add_argument("--rounds", type=int, default=8, help="rotations of the three routes")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    block, rounds = (3, 2) if args.quick else (args.block, args.rounds)
    env = environment(quick=args.quick)
    start = time.perf_counter()
    if args.quick:
        train = (torch.rand(500, 1, 28, 28) < 0.3).float()
    else:
        train = pf.data.binarized_mnist().train
    res: dict = {"environment": env, "settings": {"block": block, "rounds": rounds, "threads": args.threads}}
    lines = [
        "# The VAE's training step against a plain-PyTorch twin of the same modules",
        "",
        "",  # the environment line, written at the end
        "",
        f"Command: `python bench/bench_vae_overhead.py --block {block} --rounds {rounds}`. Static binarized MNIST,"
        f" MLP 784-512-512 (h = 256), z = 64, 4 IAF steps (MADE 320, normalized gated op), Adamax 1e-3, batch 100,"
        f" {args.threads} thread(s). Seconds per step: median over {rounds} rotations of {block}-step blocks.",
        "",
        "| posterior | twin ms/step | fit_vae ms/step | fit_vae / twin | SVI ms/step | SVI / twin | twin check |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for posterior in ("diagonal", "iaf"):
        torch.manual_seed(0)
        vae = VAE(posterior=posterior)
        loss_diff, grad_diff = check_twin(vae, train[:100])
        params = list(vae.parameters())
        twin_opt = torch.optim.Adamax(params, lr=1e-3)
        batches = pf.loop.minibatches(len(train), 100, seed=0)
        pyro.clear_param_store()
        svi = SVI(vae.model, vae.guide, pyro.optim.Adamax({"lr": 1e-3}), Trace_ELBO(max_plate_nesting=1))

        def run_twin(vae=vae, twin_opt=twin_opt, batches=batches):
            for _ in range(block):
                twin_opt.zero_grad(set_to_none=True)
                loss = twin_loss(vae, train[next(batches)])
                loss.item()
                loss.backward()
                twin_opt.step()

        def run_fit(vae=vae):
            fit_vae(vae, train, steps=block, eval_every=10**9, patience=None, progress=False, seed=0)

        def run_svi(svi=svi, batches=batches):
            for _ in range(block):
                svi.step(train[next(batches)])

        routes = {"twin": run_twin, "fit_vae": run_fit, "svi": run_svi}
        times: dict[str, list[float]] = {k: [] for k in routes}
        for route in routes.values():  # warm-up
            route()
        for _ in range(rounds):
            for name, route in routes.items():
                t0 = time.perf_counter()
                route()
                times[name].append((time.perf_counter() - t0) / block)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        res[posterior] = {
            "ms_per_step": med,
            "all_s_per_step": times,
            "twin_loss_diff": loss_diff,
            "twin_grad_diff": grad_diff,
        }
        lines.append(
            f"| {posterior} | {med['twin']:.2f} | {med['fit_vae']:.2f} | {med['fit_vae'] / med['twin']:.3f} | "
            f"{med['svi']:.2f} | {med['svi'] / med['twin']:.3f} | loss {loss_diff:.1e}, grads {grad_diff:.1e} |"
        )
    res["wall_time_s"] = time.perf_counter() - start
    record_end(env)
    lines[2] = environment_line(env, res["wall_time_s"], with_git=True).rstrip()
    lines += ["", "Target: fit_vae / twin <= 1.05 for both posteriors."]
    name = "vae_overhead_cpu" + ("_quick" if args.quick else "")
    write_results(args.out, name, res, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
