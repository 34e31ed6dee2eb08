"""Speed of the image flows (issue 4): images/second for a training step and for sampling, and the
invertible 1x1 convolution's plain and LU forms.

    .venv/bin/python bench/bench_images.py                          # CPU, batch 16 (about 3 minutes)
    .venv/bin/python bench/bench_images.py --device cuda --batch 256
    .venv/bin/python bench/bench_images.py --quick                  # smoke test, seconds

Models: the MNIST models of ``bench/train_mnist.py`` (``MODELS``: RealNVP multi-scale and Glow with 2 levels on
(1, 28, 28), each ending in ``pf.Logit(...).inv``), and Glow with plain instead of LU 1x1 convolutions. A
training step is ``zero_grad``, ``-log_prob(batch).mean()``, backward and Adam; sampling is ``sample((B,))``
under ``no_grad`` in eval mode. The 1x1 convolution alone: forward with its log-det, inverse, and a
forward+backward, for C in (4, 16, 64) channels on (B, C, 14, 14) inputs.

Timer: warm-up, then the median of ``--repeats`` wall-clock runs (``torch.cuda.synchronize()`` on a GPU).
Writes ``results/images_<device>.json`` and ``.md`` (``images_<device>_quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import time

import torch
from common import (
    HERE,
    count_params,
    environment,
    git_label,
    plain_settings,
    sample_op,
    train_step_op,
    wall_timer,
    write_results,
)
from train_mnist import build  # one definition of the MNIST models

import pyro_flows as pf

SHAPE = pf.data.MNIST_SHAPE


def model_speed(name, flow, batch, device, run) -> dict:
    flow = flow.to(device)
    d = pf.flow_distribution(flow)
    params = list(flow.parameters())
    opt = torch.optim.Adam(params, lr=1e-4)
    pixels = torch.randint(0, 256, (batch, *SHAPE), generator=torch.Generator().manual_seed(0))
    x = pf.data.dequantize(pixels).to(device)
    flow.train()
    with torch.no_grad():
        d.log_prob(x)  # data-dependent initialization (ActNorm) before timing

    t_train = run(train_step_op(d, opt, [x]))
    flow.eval()
    t_sample = run(sample_op(d, batch))
    return {
        "parameters": count_params(flow),
        "train_step_ms": 1e3 * t_train,
        "train_images_per_s": batch / t_train,
        "sample_ms": 1e3 * t_sample,
        "sample_images_per_s": batch / t_sample,
    }


def conv1x1_speed(channels, batch, device, run) -> dict:
    out = {}
    x = torch.randn(batch, channels, 14, 14, device=device)
    weight = torch.linalg.qr(torch.randn(channels, channels))[0]
    for form, lu in (("plain", False), ("lu", True)):
        t = pf.InvertibleConv1x1((channels, 14, 14), lu=lu, weight=weight).to(device)
        params = list(t.parameters())

        def fwd(t=t):
            with torch.no_grad():
                t.forward_and_log_det(x)

        def inv(t=t):
            with torch.no_grad():
                t.inverse_and_log_det(x)

        def fwd_bwd(t=t, params=params):
            y, ld = t.forward_and_log_det(x)
            torch.autograd.grad(y.square().sum() - ld.sum(), params)

        out[form] = {
            k: 1e3 * run(f) for k, f in (("forward_ms", fwd), ("inverse_ms", inv), ("forward_backward_ms", fwd_bwd))
        }
    return out


def markdown(res) -> str:
    env = res["environment"]
    lines = [
        f"# Image flow speed ({env['device']}{', ' + env['gpu'] if 'gpu' in env else ''})",
        "",
        f"`{env['command']}` — {env['date_utc']}, torch {env['torch']}, {env['torch_num_threads']} thread(s), "
        f"{env['cpu_count']} CPUs, git {git_label(env['git'])}. "
        f"Median of {res['settings']['repeats']} wall-clock runs.",
        "",
        f"## Models on MNIST shape {tuple(SHAPE)}, batch {res['settings']['batch']}",
        "",
        "| model | settings | parameters | train step ms | train images/s | sample ms | sample images/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in res["models"].items():
        lines.append(
            f"| {name} | `{r['settings']}` | {r['parameters']:,} | {r['train_step_ms']:.1f} | "
            f"{r['train_images_per_s']:.1f} | {r['sample_ms']:.1f} | {r['sample_images_per_s']:.1f} |"
        )
    lines += [
        "",
        f"## Invertible 1x1 convolution, (B={res['settings']['batch']}, C, 14, 14): plain (slogdet and inverse of W) "
        "vs LU (W = P L (U + diag(s)))",
        "",
        "| C | form | forward + log-det ms | inverse ms | forward + backward ms |",
        "|---|---|---|---|---|",
    ]
    for c, forms in res["conv1x1"].items():
        for form, r in forms.items():
            lines.append(
                f"| {c} | {form} | {r['forward_ms']:.3f} | {r['inverse_ms']:.3f} | {r['forward_backward_ms']:.3f} |"
            )
    lines += ["", f"Wall time of the whole run: {res['wall_time_s']:.0f} s.", ""]
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=None, help="default 16 on CPU, 256 on a GPU")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batch = args.batch or (4 if args.quick else 16 if device.type == "cpu" else 256)
    repeats = args.repeats or (2 if args.quick else 5)
    run = wall_timer(device, repeats)
    start = time.perf_counter()
    torch.manual_seed(0)
    models = {}
    for name, model, extra in (
        ("realnvp", "realnvp", {}),
        ("glow (LU 1x1 conv)", "glow", {}),
        ("glow (plain 1x1 conv)", "glow", {"lu": False}),
    ):
        flow, _, kw = build(model, args.quick, extra)
        print(f"[{name}] {kw}", flush=True)
        r = model_speed(name, flow, batch, device, run)
        r["settings"] = plain_settings(kw)
        models[name] = r
        print(
            f"  train {r['train_images_per_s']:.1f} images/s, sample {r['sample_images_per_s']:.1f} images/s",
            flush=True,
        )
    conv = {str(c): conv1x1_speed(c, batch, device, run) for c in ((4,) if args.quick else (4, 16, 64))}
    res = {
        "environment": environment(quick=args.quick, device=device),
        "settings": {"batch": batch, "repeats": repeats, "quick": args.quick, "shape": list(SHAPE)},
        "models": models,
        "conv1x1": conv,
        "wall_time_s": time.perf_counter() - start,
    }
    stem = f"images_{device.type}{'_quick' if args.quick else ''}"
    print(f"wrote {write_results(args.out, stem, res, markdown(res))}")
    return res


if __name__ == "__main__":
    main()
