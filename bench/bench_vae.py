"""The VAE on statically binarized MNIST with the three posteriors at an equal budget (issue 10, section 4).

Runs ``python -m pyro_flows vae --posterior P`` for diagonal, planar and IAF with the same MLP encoder/decoder,
the same wall-clock training budget, seed and settings, then writes ``results/vae_<device>.{json,md}``: test
negative ELBO, importance-sampled NLL (K and seed), steps run and steps per second, beside the published
anchors (Berg et al. 2018 Table 2, gated-conv architecture, hundreds of epochs).

    python bench/bench_vae.py --minutes 8                 # the recorded CPU run (about 30 min)
    python bench/bench_vae.py --minutes 4 --device cuda   # the GPU run
    python bench/bench_vae.py --quick                     # smoke run
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from common import environment, environment_line, record_end, write_results

from pyro_flows import cli

ANCHORS = {"diagonal": (86.55, 82.14), "planar": (86.06, 81.91), "iaf": (84.20, 80.79)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=8.0, help="training budget per posterior")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n-eval", type=int, default=1000, help="validation/test images evaluated")
    p.add_argument("--is-samples", type=int, default=1000)
    p.add_argument("--quick", action="store_true", help="a few seconds per posterior, tiny evaluation")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    minutes, n_eval, k = (0.05, 50, 10) if args.quick else (args.minutes, args.n_eval, args.is_samples)
    res = {
        "environment": environment(quick=args.quick, device=args.device),
        "settings": {
            "minutes": minutes,
            "n_eval": n_eval,
            "is_samples": k,
            "arch": "mlp 784-512-512",
            "z": 64,
            "flows": 4,
            "batch_size": 100,
            "optimizer": "adamax lr 1e-3",
            "kl_warmup_steps": 2000,
        },
    }
    start = time.perf_counter()
    name = f"vae_{torch.device(args.device).type}" + ("_quick" if args.quick else "")
    for posterior in ("diagonal", "planar", "iaf"):
        out = args.out / name / posterior
        code = cli.main(
            [
                "vae",
                "--posterior",
                posterior,
                "--minutes",
                str(minutes),
                "--n-eval",
                str(n_eval),
                "--is-samples",
                str(k),
                "--device",
                args.device,
                "--threads",
                str(args.threads),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        if code:
            raise SystemExit(f"the {posterior} run failed")
        res[posterior] = json.loads((out / "metrics.json").read_text())
        res[posterior].pop("history")
    res["wall_time_s"] = time.perf_counter() - start
    record_end(res["environment"])
    lines = [
        "# VAE on statically binarized MNIST: diagonal vs planar vs IAF posterior at an equal budget",
        "",
        environment_line(res["environment"], res["wall_time_s"], with_git=True),
        "",
        f"MLP encoder/decoder (784-512-512, h = 256), z = 64, 4 flow steps (IAF: MADE 320 with the context in its "
        f"first layer, gated update, orderings reversed), Adamax lr 1e-3, batch 100, KL warm-up 2000 steps, "
        f"{minutes:g} min of training each on {args.device}; test on {n_eval} test images strided over the class-sorted split; IS NLL with "
        f"K = {k}, seed 0. Anchors: Berg et al. 2018 Table 2 (gated conv, hundreds of epochs, full test set).",
        "",
        "| posterior | test -ELBO | test NLL (IS) | steps | steps/s | anchor -ELBO / NLL |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for posterior in ("diagonal", "planar", "iaf"):
        m = res[posterior]
        lines.append(
            f"| {posterior} | {m['test_negative_elbo']:.2f} | {m['test_nll_is']:.2f} | {m['steps_run']} | "
            f"{m['steps_per_s']:.1f} | {ANCHORS[posterior][0]} / {ANCHORS[posterior][1]} |"
        )
    gap = res["diagonal"]["test_negative_elbo"] - res["iaf"]["test_negative_elbo"]
    lines += ["", f"IAF - diagonal: {gap:.2f} nats of test -ELBO (target >= 1.5)."]
    write_results(args.out, name, res, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
