"""What users write first: the default flows on the small problems of Pyro's tutorials (issue 8, item 15).

The Pyro normalizing-flow tutorial's loop (Adam at lr 5e-3, full-batch ``-log_prob(data).mean()``, 1000
steps) on two data sets, each flow built with its factory's defaults only:

* 1-D: a two-component Gaussian mixture (1000 points). ``pf.maf(1)`` with the old defaults (2 x 256 hidden
  units per layer) and the new ones (``pf.nn.default_hidden_dims``: 2 x 32 for D = 1), Pyro's ``Spline(1)``
  (the tutorial's flow) and Pyro's five ``affine_autoregressive(1)`` layers (the MAF twin).
* 2-D: scikit-learn's noisy circles (1000 points). ``pf.realnvp(2)`` with old and new defaults, Pyro's
  ``spline_coupling(2)`` (the tutorial's) and eight ``affine_coupling(2)`` with permutations (the RealNVP twin).

Reported per flow: wall time, final and worst training loss (a loss that climbs far above its start is the
instability the issue saw), parameter count. Run: ``python bench/bench_defaults.py`` (``--quick``: 20 steps).
"""

from __future__ import annotations

import time

import pyro.distributions as dist
import pyro.distributions.transforms as T
import torch
from common import bench_parser, count_params, environment, environment_line, record_end, write_results
from sklearn.datasets import make_circles

import pyro_flows as pf

OLD_HIDDEN = (256, 256)  # the vector factories' fixed default before issue 8


def data_1d(n=1000, seed=0):
    g = torch.Generator().manual_seed(seed)
    sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    return (sign * 2 + 0.5 * torch.randn(n, generator=g))[:, None]


def data_2d(n=1000, seed=0):
    x, _ = make_circles(n_samples=n, factor=0.5, noise=0.05, random_state=seed)
    return torch.tensor(x, dtype=torch.float32)


def pyro_maf(dim, layers=5):
    return [T.affine_autoregressive(dim) for _ in range(layers)]


def pyro_realnvp(dim, layers=8):
    parts = []
    for i in range(layers):
        if i:
            parts.append(T.Permute(torch.arange(dim - 1, -1, -1)))
        parts.append(T.affine_coupling(dim))
    return parts


def train(parts, data, steps, lr=5e-3):
    parts = parts if isinstance(parts, list) else [parts]
    modules = torch.nn.ModuleList([p for p in parts if isinstance(p, torch.nn.Module)])
    base = dist.Normal(torch.zeros(data.shape[1]), torch.ones(data.shape[1])).to_event(1)
    d = dist.TransformedDistribution(base, parts)
    opt = torch.optim.Adam(modules.parameters(), lr=lr)
    losses = []
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = -d.log_prob(data.clone()).mean()  # a new tensor: Pyro's one-entry caches would answer with a freed graph
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {
        "wall_s": time.perf_counter() - start,
        "first_loss": losses[0],
        "final_loss": losses[-1],
        "worst_loss": max(losses),
        "params": count_params(modules),
    }


def main():
    p = bench_parser(__doc__.splitlines()[0], quick_help="20 steps (a smoke run)", name_help="results name")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    steps = 20 if args.quick else 1000
    res = {"environment": environment(quick=args.quick), "settings": {"steps": steps, "lr": 5e-3}}
    start = time.perf_counter()
    flows = {
        "1d": (
            data_1d(),
            {
                "pf.maf(1), old defaults": lambda: pf.maf(1, hidden_dims=OLD_HIDDEN),
                "pf.maf(1)": lambda: pf.maf(1),
                "pyro Spline(1)": lambda: T.Spline(1),
                "pyro 5 x affine_autoregressive(1)": lambda: pyro_maf(1),
            },
        ),
        "2d": (
            data_2d(),
            {
                "pf.realnvp(2), old defaults": lambda: pf.realnvp(2, hidden_dims=OLD_HIDDEN),
                "pf.realnvp(2)": lambda: pf.realnvp(2),
                "pyro spline_coupling(2)": lambda: T.spline_coupling(2),
                "pyro 8 x affine_coupling(2)": lambda: pyro_realnvp(2),
            },
        ),
    }
    for task, (data, makers) in flows.items():
        res[task] = {}
        for name, make in makers.items():
            torch.manual_seed(0)
            res[task][name] = train(make(), data, steps)
            print(task, name, {k: round(v, 3) for k, v in res[task][name].items()}, flush=True)
    res["wall_time_s"] = time.perf_counter() - start
    record_end(res["environment"])
    lines = [
        "# Default flows on the tutorials' small problems",
        "",
        environment_line(res["environment"], res["wall_time_s"], with_git=True),
        "",
        f"Adam lr 5e-3, full batch of 1000 points, {steps} steps, seed 0; losses in nats.",
        "",
        "| task | flow | params | wall (s) | first loss | final loss | worst loss |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for task in flows:
        for name, r in res[task].items():
            lines.append(
                f"| {task} | {name} | {r['params']} | {r['wall_s']:.1f} | {r['first_loss']:.3f} | "
                f"{r['final_loss']:.3f} | {r['worst_loss']:.3f} |"
            )
    write_results(
        args.out, args.name or ("defaults_cpu" + ("_quick" if args.quick else "")), res, "\n".join(lines) + "\n"
    )


if __name__ == "__main__":
    main()
