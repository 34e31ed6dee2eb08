"""The VAE's posteriors at EQUAL STEPS, and the IAF step's initialization (issue 18, sections 1 and 2).

Runs ``python -m pyro_flows vae`` for the diagonal posterior and the IAF posterior with each ``--flow-op``
(``gated``: identity at initialization, the default; ``gated_published``: the paper's gate, a contraction at
initialization; ``affine``), the same MLP, seed, minibatches and number of steps, two processes at a time
(one per core, one thread each), and writes ``results/vae_steps_<device>.{json,md}``: the validation -ELBO
curve (a strided validation subset), test -ELBO and IS NLL on a strided, class-balanced test subset.

    python bench/bench_vae_steps.py --steps 6000 --n-eval 1000 --is-samples 200 --seeds 0 1   # the recorded CPU run
    python bench/bench_vae_steps.py --quick                                         # smoke run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import environment, environment_line, record_end, write_results

RUNS = {
    "diagonal": ["--posterior", "diagonal"],
    "iaf gated (identity at init)": ["--posterior", "iaf", "--flow-op", "gated"],
    "iaf gated_published (contraction at init)": ["--posterior", "iaf", "--flow-op", "gated_published"],
    "iaf affine": ["--posterior", "iaf", "--flow-op", "affine"],
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--n-eval", type=int, default=1000)
    p.add_argument("--is-samples", type=int, default=200)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--parallel", type=int, default=2, help="runs at a time (one per core)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args()
    steps, n_eval, k = (4, 20, 2) if args.quick else (args.steps, args.n_eval, args.is_samples)
    name = "vae_steps_cpu" + ("_quick" if args.quick else "")
    env = environment(quick=args.quick)
    start = time.perf_counter()
    seeds = args.seeds[:1] if args.quick else args.seeds
    pending = [(label, extra, seed) for seed in seeds for label, extra in RUNS.items()]
    running, per_seed = [], {}
    while pending or running:
        while pending and len(running) < args.parallel:
            label, extra, seed = pending.pop(0)
            out = args.out / name / f"seed{seed}" / label.split(" (")[0].replace(" ", "_")
            cmd = [sys.executable, "-m", "pyro_flows", "vae", *extra, "--steps", str(steps), "--minutes", "1e6"]
            cmd += ["--eval-every", str(max(1, steps // 6)), "--n-eval", str(n_eval), "--is-samples", str(k)]
            cmd += ["--seed", str(seed), "--threads", "1", "--out", str(out), "--no-progress", "--quiet"]
            running.append((label, seed, out, subprocess.Popen(cmd)))
        for item in list(running):
            label, seed, out, proc = item
            if proc.poll() is not None:
                running.remove(item)
                if proc.returncode:
                    raise SystemExit(f"{label} (seed {seed}) failed ({proc.returncode})")
                per_seed.setdefault(seed, {})[label] = json.loads((out / "metrics.json").read_text())
        time.sleep(1)
    settings = {"steps": steps, "n_eval": n_eval, "is_samples": k, "seeds": seeds}
    res = {"environment": env, "settings": settings, "seeds": {str(s): per_seed[s] for s in seeds}}
    res["wall_time_s"] = time.perf_counter() - start
    record_end(env)
    first = per_seed[seeds[0]]["diagonal"]
    lines = [
        "# VAE posteriors at equal steps: the IAF step's initialization",
        "",
        environment_line(env, res["wall_time_s"], with_git=True),
        "",
        f"Command: `python bench/bench_vae_steps.py --steps {steps} --n-eval {n_eval} --is-samples {k} --seeds "
        f"{' '.join(map(str, seeds))}`. Static binarized MNIST, MLP 784-512-512 (h = 256), z = 64, 4 IAF steps "
        f"(MADE 320), Adamax 1e-3, batch 100, KL warm-up 2000 steps, {steps} steps each, one thread per run, two "
        f"runs at a time. Test: {first['test_subset']} (class-balanced); IS NLL with K = {k}. Mean over seeds "
        f"{seeds}, with the range (min..max) of the NLL margin.",
        "",
        "| posterior | test -ELBO | test NLL (IS) | NLL vs diagonal (range) | steps/s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    summary = {}
    for label in RUNS:
        ms = [per_seed[s][label] for s in seeds]
        gaps = [per_seed[s][label]["test_nll_is"] - per_seed[s]["diagonal"]["test_nll_is"] for s in seeds]
        mean = {key: sum(m[key] for m in ms) / len(ms) for key in ("test_negative_elbo", "test_nll_is", "steps_per_s")}
        summary[label] = {
            **mean,
            "nll_vs_diagonal": sum(gaps) / len(gaps),
            "nll_vs_diagonal_range": [min(gaps), max(gaps)],
        }
        lines.append(
            f"| {label} | {mean['test_negative_elbo']:.2f} | {mean['test_nll_is']:.2f} | {sum(gaps) / len(gaps):+.2f} "
            f"({min(gaps):+.2f}..{max(gaps):+.2f}) | {mean['steps_per_s']:.1f} |"
        )
    res["summary"] = summary
    lines += ["", "Validation -ELBO (strided validation subset) by step, seed-mean: the margin's curve:", ""]
    steps_row = first["history"]["step"]
    lines.append("| posterior | " + " | ".join(str(s) for s in steps_row) + " |")
    lines.append("| --- |" + " ---: |" * len(steps_row))
    for label in RUNS:
        curves = [per_seed[s][label]["history"]["valid_nll"] for s in seeds]
        lines.append(f"| {label} | " + " | ".join(f"{sum(v) / len(v):.2f}" for v in zip(*curves)) + " |")
    write_results(args.out, name, res, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
