"""Cells of ``02_maf_vs_iaf.ipynb``; ``tutorials/_build.py 02`` writes (and with ``--execute`` runs) it."""

NOTEBOOK = "02_maf_vs_iaf.ipynb"

CELLS = [
    (
        "md",
        r"""
# MAF vs IAF: which direction is fast, and why

Both flows are built from one **affine autoregressive map** between two vectors $u, v \in \mathbb R^D$:

$$v_d = u_d \, e^{s_d(u_{<d})} + t_d(u_{<d}), \qquad (t, s) = \mathrm{MADE}(u),$$

where MADE (Germain et al. 2015) is a masked network whose outputs $t_d, s_d$ only read the inputs $u_{<d}$ that come
earlier in its ordering. Its Jacobian $\partial v / \partial u$ is triangular with diagonal $e^{s_d}$, so
$\log|\det| = \sum_d s_d$. The two directions cost very different amounts:

* **$u \to v$ is one network pass.** All of $u$ is known, so one MADE pass gives every $(t_d, s_d)$ at once.
* **$v \to u$ is sequential.** $u_d = (v_d - t_d(u_{<d}))\, e^{-s_d(u_{<d})}$ needs $u_{<d}$ first: $u_1$ from $v_1$,
  then $u_2$, ..., $D$ generation steps, one after the other.

MAF and IAF differ only in which end of a `TransformedDistribution` the fast side $u \to v$ is put on (base $z$,
data $x$; `log_prob` runs data $\to$ base, sampling runs base $\to$ data):

| | $u$ | $v$ | `log_prob(x)` of any $x$ | sampling | use it for |
|---|---|---|---|---|---|
| **MAF** (Papamakarios et al. 2017), `pf.MAF`, `pf.maf` | data $x$ | base $z$ | **one pass** | sequential | density estimation: maximum likelihood on data |
| **IAF** (Kingma et al. 2016), `pf.IAF`, `pf.iaf` | base $z$ | data $x$ | sequential | **one pass**, and `log_prob` of its own samples for free | variational guides (SVI), fast samplers |

Both are exact in both directions; `pf.MAF` and `pf.IAF` are the same class, `pf.AffineAutoregressive`, with
`fast="inverse"` or `fast="forward"`. The slow direction has two exact algorithms in `pyro_flows`, chosen by the
layer's public switch `layer.inversion` (`"auto"` by default, `"recursive"` or `"sequential"`):

* the **D-pass recursion** (`inversion="recursive"`): run the whole MADE, fix the dimensions of the
  next degree, run it again: $D$ full network passes. This is what Pyro's own `AffineAutoregressive` does. It keeps
  the autograd graph, so `pyro_flows` uses it when gradients are needed (`rsample()` of a MAF, `log_prob` of an IAF
  during training);
* **`pyro_flows.nn.sequential_inverse`** (`inversion="sequential"`, the MADE's own `invert`): every hidden unit of a
  MADE has a degree (the last input it sees), so it can
  be computed as soon as the inputs up to that degree are known, *once*. That is about one network pass of arithmetic
  plus $D$ small steps. `pyro_flows` uses it whenever no gradient is needed (`sample()`, evaluation under `no_grad`).

This notebook: **1.** counting network passes in each direction, **2.** MAF density estimation on two moons,
**3.** sampling timings of a MAF, naive vs fast slow direction, **4.** an IAF as the guide of a Pyro model (SVI).
""",
    ),
    (
        "code",
        r"""
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # Pyro imports tqdm.auto; without ipywidgets it warns

import math
import os
import tempfile
import time
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pyro
import pyro.distributions as dist
import torch
from IPython.display import Image, display

import pyro_flows as pf
from pyro_flows import plots

# The tests run this notebook with PYRO_FLOWS_SMOKE=1: tiny data and few steps, only to check that it runs.
SMOKE = os.environ.get("PYRO_FLOWS_SMOKE") == "1"
if SMOKE:
    print("smoke mode: tiny data and few steps; the numbers below mean nothing")

torch.set_num_threads(1)  # small networks, and timings below: one thread makes them repeatable
pyro.set_rng_seed(0)      # seeds torch, numpy and random
FIGURES = Path(tempfile.mkdtemp())  # pyro_flows.plots writes PNG files; we display them from here
""",
    ),
    (
        "md",
        r"""
## 1. Counting network passes

A forward hook on the MADE counts its full passes. One MAF layer and one IAF layer with $D = 6$; a new MADE's last
layer is zero (a new flow is the identity), so we give it small random weights to make the maps non-trivial.
""",
    ),
    (
        "code",
        r"""
D = 6
passes = {"n": 0}

def count_pass(module, inputs, output):
    passes["n"] += 1

def count(fn, grad=True):
    passes["n"] = 0
    with torch.set_grad_enabled(grad):
        fn()
    return passes["n"]

x = torch.randn(4, D)  # "data", not sampled by the flow
table = {}
for name, cls in [("MAF", pf.MAF), ("IAF", pf.IAF)]:
    layer = cls(D, (32, 32))
    torch.nn.init.normal_(layer.conditioner.output.weight, std=0.1)
    layer.conditioner.register_forward_hook(count_pass)
    d = pf.flow_distribution(layer)  # TransformedDistribution(Normal(0, I), layer)
    own = lambda: d.log_prob(d.rsample((4,)))  # the rsample's passes are counted too, below
    table[name] = {
        "log_prob(x) of data, with gradients": count(lambda: d.log_prob(x.clone())),
        "log_prob(x) of data, under no_grad": count(lambda: d.log_prob(x.clone()), grad=False),
        "rsample(): sampling with gradients": count(lambda: d.rsample((4,))),
        "sample(): sampling under no_grad": count(lambda: d.sample((4,))),
        "log_prob of its own rsample()": count(own) - count(lambda: d.rsample((4,))),
    }
print(f"{'full MADE passes, D = ' + str(D):40} {'MAF':>5} {'IAF':>5}")
for op in table["MAF"]:
    print(f"{op:40} {table['MAF'][op]:5} {table['IAF'][op]:5}")
""",
    ),
    (
        "md",
        r"""
* The fast side is **1 pass**: MAF's `log_prob`, IAF's sampling.
* The slow side with gradients is the recursion: **$D$ = 6 passes**.
* The slow side without gradients is `sequential_inverse`: **0 full passes** (it never calls `MADE.forward`; it computes
  each hidden unit once, in $D$ steps). Section 3 times it.
* `log_prob` of a sample the flow just drew costs nothing in either flow: the transform caches its last `(x, y)` pair
  and the log-det, so the base point is not recomputed. This is why an IAF guide is cheap in SVI: it samples and
  scores its own samples.

The Jacobian of the MAF layer's density direction (data $\to$ base), by autograd: lower triangular, because output
$d$ only reads inputs before $d$; its log-determinant is the sum of the log-scales.
""",
    ),
    (
        "code",
        r"""
maf_layer = pf.MAF(D, (32, 32))
torch.nn.init.normal_(maf_layer.conditioner.output.weight, std=0.1)
x0 = torch.randn(D, dtype=torch.float64)
maf_layer = maf_layer.double()
jacobian = torch.autograd.functional.jacobian(lambda v: maf_layer.inv(v), x0)  # dz/dx
print("nonzero pattern of dz/dx:\n", (jacobian.abs() > 0).int().numpy())
_, log_det = maf_layer.inverse_and_log_det(x0[None])  # log|det dx/dz| of the layer, at z = f^-1(x0)
print(f"log|det dz/dx| by autograd {torch.linalg.slogdet(jacobian).logabsdet.item():.12f}, "
      f"from the log-scales {-log_det.item():.12f}")
""",
    ),
    (
        "md",
        r"""
## 2. Density estimation with MAF: two moons

MAF's density direction is its fast one, so maximum-likelihood training costs one MADE pass per layer and step.
`pf.maf(2, num_layers=8)` stacks 8 MAF layers whose MADE orderings alternate (natural, reversed), so every
coordinate is transformed conditioned on the other in turn. `pf.fit` trains with Adam on minibatches, evaluates the
validation NLL every `eval_every` steps, and keeps the best parameters; `progress=False` turns off its tqdm bar.
""",
    ),
    (
        "code",
        r"""
sizes = dict(n_train=500, n_valid=200, n_test=200) if SMOKE else dict(n_train=5000, n_valid=1000, n_test=1000)
split = pf.data.load("moons", seed=0, **sizes)

maf_flow = pf.maf(2, num_layers=8, hidden_dims=(64, 64))
moons = pf.flow_distribution(maf_flow)
result = pf.fit(moons, split.train, split.valid, steps=20 if SMOKE else 2000, batch_size=256, lr=3e-3,
                eval_every=10 if SMOKE else 100, seed=0, progress=False)
print(f"{result.steps_run} steps in {result.wall_time:.0f} s, best validation NLL {result.best_valid:.3f} "
      f"at step {result.best_step}")

gaussian = dist.MultivariateNormal(split.train.mean(0), torch.cov(split.train.T))
maf_test_nll = pf.nll(moons, split.test)
print(f"held-out (test) NLL: MAF {maf_test_nll:.3f} nats, full-covariance Gaussian "
      f"{-gaussian.log_prob(split.test).mean():.3f} nats")
""",
    ),
    (
        "md",
        r"""
The learning curve, then the data, the learned density $p(x) = \exp(\text{log\_prob})$ on a grid, and samples
drawn from the flow (2-D histograms over the same box). The density grid is MAF's fast direction; the samples are its
slow one, computed exactly (here with only $D = 2$ generation steps per layer).
""",
    ),
    (
        "code",
        r"""
display(Image(filename=str(plots.plot_history(result.history, FIGURES / "history.png", title="MAF on two moons"))))
display(Image(filename=str(plots.plot_density_2d(
    moons, split.train, FIGURES / "moons.png", grid_size=40 if SMOKE else 200,
    num_samples=500 if SMOKE else 20_000, bins=60, title="pf.maf(2, num_layers=8) on two moons"))))
""",
    ),
    (
        "md",
        r"""
## 3. Sampling a MAF: naive vs fast slow direction

A MAF of 5 layers with MADEs of fixed width $2 \times 256$, for $D$ from 8 to 128, batches of 256 points, one thread.
Sampling runs each layer's slow side $v \to u$ (base $\to$ data: a MAF's forward map). Two ways, chosen by the
layer's `inversion` switch:

* naive: `layer.inversion = "recursive"`, the $D$-pass recursion;
* fast: `layer.inversion = "sequential"` (under `no_grad`), which runs `pyro_flows.nn.sequential_inverse`; this is
  what `d.sample()` runs with the default `"auto"`.

Both return `(u, log_det)`. We check that they agree, and time both against `log_prob` (the fast direction, one pass
per layer). Each time is the median CPU time of several calls; every call gets a fresh tensor (`.clone()`), because a
transform caches its last input and output.
""",
    ),
    (
        "code",
        r"""
DIMS = (8, 16) if SMOKE else (8, 16, 32, 64, 128)
HIDDEN = (64, 64) if SMOKE else (256, 256)
BATCH, LAYERS = (64 if SMOKE else 256), 5

def median_ms(fn, repeats):  # CPU time of this process: other programs on a shared machine disturb it less
    fn()  # warm-up (the first call builds sequential_inverse's weight blocks)
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return 1e3 * float(np.median(times))

def sample_through(flow, z, slow_side):  # base -> data through every MAF layer's slow side
    x, log_det = z, 0.0
    for layer in flow.parts:
        x, ld = slow_side(layer, x)
        log_det = log_det + ld
    return x, log_det

def slow_side(inversion):
    def run(layer, v):
        layer.inversion = inversion
        return layer.forward_and_log_det(v)  # a MAF layer's forward map is its slow side
    return run

naive, fast = slow_side("recursive"), slow_side("sequential")

timings = {"naive sample": [], "fast sample": [], "log_prob": []}
for D in DIMS:
    flow = pf.maf(D, num_layers=LAYERS, hidden_dims=HIDDEN)
    for layer in flow.parts:  # random last layers, so that the maps are not the identity
        torch.nn.init.normal_(layer.conditioner.output.weight, std=0.02)
        torch.nn.init.normal_(layer.conditioner.output.bias, std=0.02)
    d = pf.flow_distribution(flow)
    z = torch.randn(BATCH, D)
    with torch.no_grad():
        x_naive, ld_naive = sample_through(flow, z.clone(), naive)
        x_fast, ld_fast = sample_through(flow, z.clone(), fast)
        timings["naive sample"].append(median_ms(lambda: sample_through(flow, z.clone(), naive), 1 if SMOKE else 5))
        timings["fast sample"].append(median_ms(lambda: sample_through(flow, z.clone(), fast), 2 if SMOKE else 15))
        timings["log_prob"].append(median_ms(lambda: d.log_prob(x_fast.clone()), 2 if SMOKE else 25))
    print(f"D = {D:3}: naive {timings['naive sample'][-1]:7.1f} ms, fast {timings['fast sample'][-1]:6.2f} ms, "
          f"log_prob {timings['log_prob'][-1]:5.2f} ms | sample/log_prob: naive "
          f"{timings['naive sample'][-1] / timings['log_prob'][-1]:5.1f}, fast "
          f"{timings['fast sample'][-1] / timings['log_prob'][-1]:4.1f} | max |x_naive - x_fast| = "
          f"{(x_naive - x_fast).abs().max().item():.1e}, "
          f"max |log-det diff| = {(ld_naive - ld_fast).abs().max().item():.1e}")
""",
    ),
    (
        "code",
        r"""
dims = np.array(DIMS)
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
for (name, ms), marker in zip(timings.items(), "o^s"):
    axes[0].plot(dims, ms, marker=marker, label=name)
axes[0].set(xscale="log", yscale="log", xlabel="D", ylabel=f"ms per batch of {BATCH}",
            title=f"MAF, {LAYERS} layers, MADE {HIDDEN[0]}x{len(HIDDEN)}, 1 thread")
for name, marker in [("naive sample", "o"), ("fast sample", "^")]:
    axes[1].plot(dims, np.array(timings[name]) / np.array(timings["log_prob"]), marker=marker, label=name)
axes[1].plot(dims, dims, "k--", lw=1, label="= D")
axes[1].set(xscale="log", yscale="log", xlabel="D", ylabel="time(sample) / time(log_prob)",
            title="cost of the slow direction relative to the fast one")
for ax in axes:
    ax.set_xticks(dims, [str(v) for v in dims])
    ax.minorticks_off()
    ax.legend()
plt.tight_layout()
plt.show()
""",
    ),
    (
        "md",
        r"""
The naive slow direction costs about $D$ times the fast one: it runs the whole network once per generation step.
The sequential one computes every hidden unit once; what it pays beyond one pass is $D$ small sequential steps (a
few small matrix products each), so its ratio grows far more slowly with $D$. Both are exact: the samples and log-dets
agree to float32 rounding. The naive recursion still has one use: it keeps the autograd graph, so `rsample()` of a
MAF with gradients (and `log_prob` of an IAF while training it) runs it.

## 4. An IAF as a variational guide (SVI)

In SVI the guide $q$ is sampled with the reparametrization trick and scored on its own samples:
$\mathrm{ELBO} = \mathbb E_{z \sim q}[\log p(z, y) - \log q(z)]$. For an IAF both are its fast direction: `rsample`
is one MADE pass per layer, and `log_prob` of that sample comes from the cache. A MAF guide would run the $D$-pass
recursion with gradients in every step. Counting MADE passes in one SVI step (8 particles, vectorized) with a guide
of 4 layers, $D = 2$:
""",
    ),
    (
        "code",
        r"""
from pyro.infer import SVI, Predictive, Trace_ELBO
from pyro.infer.autoguide import AutoNormal, AutoNormalizingFlow
from pyro.optim import ClippedAdam

def log_target(z):  # Neal's funnel in 2-D: v ~ N(0, 1), x | v ~ N(0, e^{2v}); z = (v, x). Normalized.
    v, x = z[..., 0], z[..., 1]
    return dist.Normal(0.0, 1.0).log_prob(v) + dist.Normal(0.0, torch.exp(v)).log_prob(x)

def model():  # a N(0, I) prior times a factor: the joint density is the funnel, so log p(y) = 0
    z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    pyro.factor("target", log_target(z) - dist.Normal(0.0, 1.0).log_prob(z).sum(-1))

def flow_guide(flow):
    def guide():
        pyro.module("flow", flow)  # registers the flow's parameters in Pyro's parameter store
        pyro.sample("z", pf.flow_distribution(flow))
    return guide

def make_elbo(particles):
    return Trace_ELBO(num_particles=particles, vectorize_particles=True, max_plate_nesting=0)

for name, factory in [("IAF guide", pf.iaf), ("MAF guide", pf.maf)]:
    flow = factory(2, num_layers=4, hidden_dims=(32, 32))
    for layer in flow.parts:
        layer.conditioner.register_forward_hook(count_pass)
    pyro.clear_param_store()
    svi = SVI(model, flow_guide(flow), ClippedAdam({"lr": 1e-2}), make_elbo(8))
    print(f"{name}: {count(svi.step)} MADE passes per SVI step")
""",
    ),
    (
        "md",
        r"""
The target is Neal's funnel, given to Pyro as a `pyro.factor`: the model's joint density is the normalized funnel
density, so the log evidence is exactly 0 and $-\mathrm{ELBO} = \mathrm{KL}(q \,\|\, p)$. Its scale in $x$ changes by
a factor $e^{v}$ along $v$: no Gaussian follows it, and a mean-field Gaussian (`AutoNormal`) cannot even correlate
the two coordinates. The funnel's conditionals are Gaussian in the order $(v, x)$, so it is exactly an affine
autoregressive transform of $\mathcal N(0, I)$: an IAF can represent it, and SVI has to find it.

Three guides, each trained with 8 particles per step and a learning rate that decays by a factor 50
(`ClippedAdam`'s `lrd`): the IAF guide written by hand, `AutoNormal`, and Pyro's `AutoNormalizingFlow` with
`pf.iaf` as its transform factory (it calls `partial(pf.iaf, ...)(latent_dim)`). The final ELBO uses 20,000
particles.
""",
    ),
    (
        "code",
        r"""
STEPS = 30 if SMOKE else 1500

def train(guide, lr):
    pyro.clear_param_store()
    svi = SVI(model, guide, ClippedAdam({"lr": lr, "lrd": 0.02 ** (1 / STEPS)}), make_elbo(8))
    start = time.perf_counter()
    curve = [-svi.step() for _ in range(STEPS)]
    return curve, time.perf_counter() - start

def final_elbo(guide, particles=200 if SMOKE else 20_000):
    with torch.no_grad():
        return -make_elbo(particles).loss(model, guide)

iaf_flow = pf.iaf(2, num_layers=4, hidden_dims=(32, 32))
guides = {
    "IAF guide": (flow_guide(iaf_flow), 1e-2),
    "AutoNormal": (AutoNormal(model), 3e-2),
    "AutoNormalizingFlow(pf.iaf)": (
        AutoNormalizingFlow(model, partial(pf.iaf, num_layers=4, hidden_dims=(32, 32))), 1e-2),
}
curves, elbos, samples = {}, {}, {}
for name, (guide, lr) in guides.items():
    curves[name], seconds = train(guide, lr)
    elbos[name] = final_elbo(guide)
    with torch.no_grad():  # guide samples, vectorized over a plate
        samples[name] = Predictive(model, guide=guide, num_samples=2000, parallel=True, return_sites=["z"])()["z"]
    print(f"{name:28} ELBO {elbos[name]:7.3f}   KL(q || p) = -ELBO = {-elbos[name]:.3f}   "
          f"({STEPS} steps, {seconds:.0f} s)")
""",
    ),
    (
        "code",
        r"""
v_grid, x_grid = torch.linspace(-3.5, 3.5, 281), torch.linspace(-8, 8, 321)
vv, xx = torch.meshgrid(v_grid, x_grid, indexing="ij")
log_p = log_target(torch.stack([vv, xx], dim=-1))

fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
window = 5 if SMOKE else 50
for name, curve in curves.items():  # single-step ELBOs are noisy: plot a running median
    smooth = np.median(np.lib.stride_tricks.sliding_window_view(curve, window), axis=-1)
    axes[0].plot(np.arange(window, len(curve) + 1), smooth, label=f"{name} (final {elbos[name]:.3f})")
axes[0].axhline(0.0, color="k", ls="--", lw=1, label="log p(y) = 0")
axes[0].set(xlabel="SVI step", ylabel=f"ELBO (running median of {window})", ylim=(-1.5, 0.1))
axes[0].legend(loc="lower right")
for ax, name, color in [(axes[1], "IAF guide", "C0"), (axes[2], "AutoNormal", "C1")]:
    ax.contour(x_grid.numpy(), v_grid.numpy(), log_p.numpy(), levels=[-7, -5, -3.5, -2.5, -1.7],
               colors="k", linewidths=0.8, linestyles="solid")
    s = samples[name]
    ax.scatter(s[:, 1].numpy(), s[:, 0].numpy(), s=2, alpha=0.3, color=color)
    ax.set(title=f"{name} samples over the funnel", xlabel="$x = z_2$", ylabel="$v = z_1$",
           xlim=(-8, 8), ylim=(-3.5, 3.5))
plt.tight_layout()
plt.show()
""",
    ),
    (
        "md",
        r"""
## Summary

* MAF and IAF are one affine autoregressive map put in opposite directions. MAF: `log_prob` is one MADE pass
  (train it on data); IAF: sampling, and `log_prob` of its own samples, is one pass (use it as a guide).
* The other direction is exact and sequential. Without gradients `pyro_flows` runs it with `sequential_inverse`,
  which computes each hidden unit once; the naive recursion runs the network $D$ times, and the gap grows with $D$
  (section 3's plot). With gradients the recursion is used, so that the result keeps its graph.
* An IAF guide closes the KL gap on a funnel that a mean-field guide cannot follow; `AutoNormalizingFlow` with
  `partial(pf.iaf, ...)` gives the same guide in one line.
""",
    ),
]
