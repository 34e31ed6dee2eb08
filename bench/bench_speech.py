"""A WaveNet MAF on real speech (spoken digits, 8 kHz), against a linear autoregressive Gaussian and a MADE MAF
on the same windows and test speakers; and naive vs cached generation speed at T = 8192 (issue 11, section 4).

Models, all conditioned on nothing but what is said (the WaveNet and MADE MAFs get the digit, one-hot):

* ``linear-ar32``: x_t = w . x_{t-32..t-1} + b + sigma eps, least squares on the train windows (the past before a
  window's start is zeros, as for the flows); its NLL is exact.
* ``made-maf``: ``pf.maf(T, ...)`` (MADE conditioners over the whole window) then mu-law expansion.
* ``wavenet-maf``: MAF layers with WaveNet conditioners (``pf.maf((1, T), conditioner=lambda i: WaveNet(...))``)
  over a Logistic base (Parallel WaveNet's choice: the student of the distillation issue is an IAF over
  Logistic noise), then ``pf.MuLaw(...).inv``: the flows model mu-law companded audio, whose amplitudes are
  spread evenly, and the expansion's exact log-det returns every density to waveform units.

NLL per sample: nats of the density of the dequantized waveform in [-1, 1) units, and bits per sample of the
16-bit integers (``(nats + ln 32768) / ln 2``, the dequantization bound), over the test speakers' centered windows.

    python bench/bench_speech.py                    # the recorded CPU run (about 25 minutes)
    python bench/bench_speech.py --quick            # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from common import environment, environment_line, record_end, write_results

import pyro_flows as pf

LN_STEP = math.log(32768.0)


def load(window: int, n: int | None):
    train = pf.data.spoken_digits("train")
    test = pf.data.spoken_digits("test", window=window, add_noise=True, seed=1)
    valid = pf.data.spoken_digits("valid", window=window, add_noise=True, seed=2)
    if n:
        test, valid = (s._replace(x=s.x[:n], digit=s.digit[:n]) for s in (test, valid))
    return train, valid, test


def onehot(digit):
    return F.one_hot(digit, 10).float()


def bits(nats_per_sample: float) -> float:
    return (nats_per_sample + LN_STEP) / math.log(2)


# --- the linear autoregressive Gaussian --------------------------------------------------------------------
def lagged(x: torch.Tensor, order: int) -> torch.Tensor:
    """(N, T, order) previous samples, zeros before the window's start."""
    padded = F.pad(x, (order, 0))
    return torch.stack([padded[:, order - k : padded.shape[1] - k] for k in range(1, order + 1)], dim=-1)


def linear_ar(train_x, test_x, order=32) -> dict:
    start = time.perf_counter()
    X = lagged(train_x.double(), order)[:, order:].reshape(-1, order)
    y = train_x.double()[:, order:].reshape(-1)
    A = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], 1)
    w = torch.linalg.lstsq(A, y[:, None]).solution[:, 0]
    var = float(((A @ w - y) ** 2).mean())
    Xt = lagged(test_x.double(), order)
    pred = Xt @ w[:-1] + w[-1]
    nll = 0.5 * math.log(2 * math.pi * var) + ((test_x.double() - pred) ** 2).mean().item() / (2 * var)
    return {"nats_per_sample": nll, "train_s": time.perf_counter() - start, "params": order + 2, "steps": 0}


# --- flows ---------------------------------------------------------------------------------------------------
def wavenet_stack(T: int, flows: int, net: dict, state: dict | None = None) -> pf.Compose:
    """``flows`` WaveNet MAF layers (``net``: the WaveNet options) and the mu-law expansion, built for length
    ``T``; with ``state``, trained weights (of any length: the convolutions work for every length)."""
    flow = pf.Compose(
        [pf.maf((1, T), num_layers=flows, conditioner=lambda i: pf.nn.WaveNet(1, T, **net)), pf.MuLaw((1, T)).inv]
    )
    if state is not None:
        flow.load_state_dict(state)
    return flow


def wavenet_maf(T, args):
    dilations = tuple(2**i for i in range(args.dilation_levels))
    net = dict(residual_channels=args.channels, skip_channels=args.channels, dilations=dilations, context_dim=10)
    return wavenet_stack(T, args.flows, net), net


def made_maf(T, args):
    flow = pf.maf(T, num_layers=args.flows, hidden_dims=(args.made_hidden,), context_dim=10)
    return pf.Compose([flow, pf.MuLaw(T).inv])


def logistic_base(shape):
    return dist.Logistic(torch.zeros(shape), torch.ones(shape)).to_event(len(shape))


def shaped(x, flow):
    return x[:, None, :] if len(flow.event_shape) == 2 else x


def score(flow, base, x, digit, batch=40) -> float:
    """Test NLL in nats per sample of [-1, 1) waveform units."""
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            d = pf.flow_distribution(flow, base=base, context=onehot(digit[i : i + batch]))
            total += -d.log_prob(shaped(x[i : i + batch], flow)).sum().item()
    return total / x.numel()


def train(flow, base, train_clips, valid, T, args, seconds) -> dict:
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(flow.parameters(), lr=args.lr)
    start, steps, curve = time.perf_counter(), 0, []
    best = (math.inf, None)
    while time.perf_counter() - start < seconds:
        w = pf.data.speech_windows(train_clips, T, add_noise=True, generator=gen, drop_short=True)
        order = torch.randperm(len(w.x), generator=gen)
        for i in range(0, len(order) - args.batch + 1, args.batch):
            idx = order[i : i + args.batch]
            d = pf.flow_distribution(flow, base=base, context=onehot(w.digit[idx]))
            loss = -d.log_prob(shaped(w.x[idx], flow)).mean() / T
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(flow.parameters(), 10.0)
            opt.step()
            steps += 1
            if steps % args.eval_every == 0:
                v = score(flow, base, valid.x, valid.digit)
                curve.append({"step": steps, "seconds": time.perf_counter() - start, "train": loss.item(), "valid": v})
                print(f"  step {steps}: train {loss.item():.3f} valid {v:.3f} nats/sample", flush=True)
                if v < best[0]:
                    best = (v, {k: t.clone() for k, t in flow.state_dict().items()})
            if time.perf_counter() - start >= seconds:
                break
    if best[1] is not None:
        flow.load_state_dict(best[1])
    return {"steps": steps, "train_s": time.perf_counter() - start, "curve": curve, "best_valid": best[0]}


# --- generation speed ------------------------------------------------------------------------------------------
def generation_speed(flow, T, batch, naive_passes) -> dict:
    """Cached: one full sampling run. Naive: T full network passes per MAF layer, timed on ``naive_passes``
    passes at length T (every pass of the recursion costs the same) and scaled to T steps."""
    layers = [p for p in flow.parts[0].parts]
    ctx = onehot(torch.arange(batch) % 10)
    d = pf.flow_distribution(flow, base=logistic_base((1, T)), context=ctx)
    with torch.no_grad():
        start = time.perf_counter()
        x = d.sample()
        cached = time.perf_counter() - start
        u = torch.randn(batch, 1, T)
        per_step = 0.0
        for layer in layers:
            layer.conditioner(u, ctx)  # warm-up
            start = time.perf_counter()
            for _ in range(naive_passes):
                params = layer.conditioner(u, ctx)
                v, _ = layer.op.inverse(u, params)
                u = torch.where(layer.conditioner.degrees == 1, v, u)
            per_step += (time.perf_counter() - start) / naive_passes
    naive = per_step * T
    return {
        "batch": batch,
        "T": T,
        "cached_s": cached,
        "cached_samples_per_s": batch * T / cached,
        "naive_s_estimated": naive,
        "naive_samples_per_s": batch * T / naive,
        "naive_passes_timed_per_layer": naive_passes,
        "ratio": naive / cached,
        "finite": bool(torch.isfinite(x).all()),
    }


# --- plots -------------------------------------------------------------------------------------------------------
def plot(real, generated, digits, rate, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(real)
    fig, axes = plt.subplots(4, n, figsize=(3.2 * n, 8), squeeze=False)
    for j in range(n):
        for row, (name, clip) in enumerate((("real", real[j]), ("generated", generated[j]))):
            t = np.arange(len(clip)) / rate
            axes[2 * row, j].plot(t, clip.numpy(), lw=0.4)
            axes[2 * row, j].set_title(f"{name}, digit {int(digits[j])}", fontsize=9)
            axes[2 * row, j].set_ylim(-1, 1)
            axes[2 * row + 1, j].specgram(clip.numpy(), Fs=rate, NFFT=256, noverlap=192, cmap="magma")
            axes[2 * row + 1, j].set_ylabel("Hz", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--window", type=int, default=2048)
    p.add_argument("--minutes", type=float, default=10.0, help="training budget of the WaveNet MAF")
    p.add_argument("--made-minutes", type=float, default=4.0, help="training budget of the MADE MAF")
    p.add_argument("--flows", type=int, default=2)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--dilation-levels", type=int, default=10, help="dilations 1, 2, ..., 2^(levels-1)")
    p.add_argument("--made-hidden", type=int, default=1024)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--gen-length", type=int, default=8192)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.quick:
        args.window, args.minutes, args.made_minutes = 256, 0.05, 0.03
        args.channels, args.dilation_levels, args.made_hidden, args.eval_every = 8, 4, 64, 5
        args.gen_length = 512
    wall = time.perf_counter()
    T = args.window
    train_clips, valid, test = load(T, 40 if args.quick else None)
    res = {"environment": environment(quick=args.quick), "settings": vars(args) | {"out": str(args.out)}}
    models = {}

    print("linear AR(32) ...", flush=True)
    train_w = pf.data.speech_windows(
        train_clips, T, add_noise=True, generator=torch.Generator().manual_seed(0), drop_short=True
    )
    models["linear-ar32"] = linear_ar(train_w.x, test.x)

    print("MADE MAF ...", flush=True)
    made = made_maf(T, args)
    base = logistic_base((T,))
    fit = train(made, base, train_clips, valid, T, args, args.made_minutes * 60)
    models["made-maf"] = fit | {"nats_per_sample": score(made, base, test.x, test.digit), "params": pf_params(made)}

    print("WaveNet MAF ...", flush=True)
    wn, net = wavenet_maf(T, args)
    base = logistic_base((1, T))
    fit = train(wn, base, train_clips, valid, T, args, args.minutes * 60)
    models["wavenet-maf"] = fit | {"nats_per_sample": score(wn, base, test.x, test.digit), "params": pf_params(wn)}
    models["wavenet-maf"]["receptive_field"] = wn.parts[0].parts[0].conditioner.receptive_field
    for m in models.values():
        m["bits_per_sample"] = bits(m["nats_per_sample"])
    res["models"] = models

    print("generation speed ...", flush=True)
    G = args.gen_length
    gen = wavenet_stack(G, args.flows, net, wn.state_dict())
    res["generation"] = [generation_speed(gen, G, b, 3 if args.quick else 10) for b in (1, 16)]

    name = "speech_cpu" + ("_quick" if args.quick else "")
    folder = args.out / name
    folder.mkdir(parents=True, exist_ok=True)
    whole = pf.data.spoken_digits("test")
    pick = [0, 81, 162]
    real = [whole.x[i, : G if not args.quick else G] for i in pick]
    digits = whole.digit[pick]
    with torch.no_grad():
        d = pf.flow_distribution(gen, base=logistic_base((1, G)), context=onehot(digits))
        samples = d.sample()[:, 0]
    plot(real, list(samples), digits, 8000, folder / "speech.png")
    # the trained teacher of bench_distill.py (model.pt files are not committed)
    torch.save({"state_dict": wn.state_dict(), "net": net, "flows": args.flows, "T": T}, folder / "model.pt")
    res["plots"] = str((folder / "speech.png").relative_to(args.out))

    wall = time.perf_counter() - wall
    record_end(res["environment"])
    lin = models["linear-ar32"]["nats_per_sample"]
    lines = [
        "# WaveNet MAF on spoken digits (8 kHz): held-out speakers, against a linear AR(32) Gaussian and a MADE MAF",
        "",
        environment_line(res["environment"], wall),
        "",
        f"Windows of T = {T} samples inside each clip (train: fresh random crops every epoch, the 3 train clips "
        f"shorter than T left out; test: the centered window of each of the 240 clips of the 4 test voices), "
        "dequantized (one 16-bit step of uniform noise). Flows: conditioned on the digit (one-hot), Logistic base, "
        f"mu-law expansion last; Adam lr {args.lr}, batch {args.batch}, gradient norm clipped at 10, best validation "
        "checkpoint kept. NLL in nats per sample of the [-1, 1) waveform density; bits per sample of the 16-bit "
        "integers (dequantization bound).",
        "",
        "| model | params | training | steps | test NLL nats/sample | bits/sample | vs linear |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, m in models.items():
        lines.append(
            f"| {key} | {m['params']:,} | {m['train_s']:.0f} s | {m['steps']} | {m['nats_per_sample']:.3f} | "
            f"{m['bits_per_sample']:.2f} | {m['nats_per_sample'] - lin:+.3f} |"
        )
    wnm = models["wavenet-maf"]
    lines += [
        "",
        f"WaveNet MAF: {args.flows} layers, each a WaveNet of {args.dilation_levels} dilated layers (1..{2 ** (args.dilation_levels - 1)}), "
        f"{args.channels} residual/skip channels, kernel 2, receptive field {wnm['receptive_field']} samples. "
        f"It is {lin - wnm['nats_per_sample']:.3f} nats/sample better than the linear AR(32) model "
        f"({(lin - wnm['nats_per_sample']) * T:.0f} nats per window).",
        "",
        f"## Generation at T = {G} (the trained weights in a stack built for length {G}), CPU, {args.threads} thread(s)",
        "",
        "Naive: T full passes of every layer's WaveNet (timed over "
        f"{res['generation'][0]['naive_passes_timed_per_layer']} passes per layer at length T, scaled to T); cached: "
        "one sampling run with the queue-cached generation (`inversion='sequential'`, the default without gradients).",
        "",
        "| batch | naive samples/s | cached samples/s | cached / naive | cached run |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for g in res["generation"]:
        lines.append(
            f"| {g['batch']} | {g['naive_samples_per_s']:.1f} | {g['cached_samples_per_s']:.0f} | "
            f"{g['ratio']:.0f}x | {g['cached_s']:.1f} s |"
        )
    lines += ["", f"Target: cached >= 50x naive at T = 8192 on CPU. Plots: `{res['plots']}`.", ""]
    write_results(args.out, name, res, "\n".join(lines))


def pf_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


if __name__ == "__main__":
    main()
