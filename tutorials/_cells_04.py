"""Cells of ``04_vae_iaf.ipynb``; ``tutorials/_build.py 04`` writes (and with ``--execute`` runs) it."""

NOTEBOOK = "04_vae_iaf.ipynb"
REQUIRES = ["binarized_mnist"]  # the tests skip it, with the reason, when binarized_mnist.npz is absent

CELLS = [
    (
        "md",
        r"""
# A VAE whose posterior is refined by IAF steps

A variational autoencoder (Kingma & Welling 2014) fits $p(x) = \int p(z)\, p(x \mid z)\, dz$ by maximizing the
ELBO, $\mathbb{E}_{q(z \mid x)}[\log p(x, z) - \log q(z \mid x)] \le \log p(x)$. The gap is
$\mathrm{KL}(q(z \mid x)\,\|\,p(z \mid x))$: a diagonal Gaussian $q$ cannot follow a curved or skewed true
posterior. Inverse autoregressive flow (Kingma et al. 2016, arXiv:1606.04934) refines it: start from
$z_0 \sim \mathcal{N}(\mu, \sigma^2)$ given by the encoder, and apply $K$ IAF steps, each a MADE that also sees a
context $h$ computed by the encoder from $x$. Sampling and scoring a sample cost one pass per step: exactly what a
guide needs.

In pyro_flows this is an ordinary Pyro model and guide (`pyro_flows.models.VAE`) trained with `SVI` and
`Trace_ELBO`. This notebook: **1.** the model and the guide; **2.** three posteriors (diagonal, planar, IAF) with
the same encoder and decoder, trained for the same time on statically binarized MNIST: learning curves,
test $-$ELBO and importance-sampled NLL; **3.** reconstructions and samples; **4.** a 2-D latent space, where the
posterior of one image can be drawn: diagonal vs IAF against the true posterior.

The runs are short (CPU, a few minutes in all), far from the published tables (Berg et al. 2018, gated conv,
hundreds of epochs: diagonal 86.55, IAF 84.20 nats $-$ELBO); `bench/bench_vae.py` runs the longer comparison.
""",
    ),
    (
        "code",
        r"""
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")

import inspect
import os

import matplotlib.pyplot as plt
import numpy as np
import pyro
import torch

import pyro_flows as pf
from pyro_flows.models import VAE, fit_vae, log_likelihood, negative_elbo

# The tests run this notebook with PYRO_FLOWS_SMOKE=1: tiny runs, only to check that it runs.
SMOKE = os.environ.get("PYRO_FLOWS_SMOKE") == "1"
if SMOKE:
    print("smoke mode: tiny models, data subsets and a few steps; the numbers below mean nothing")

torch.set_num_threads(1)
pyro.set_rng_seed(0)

# Statically binarized MNIST (Larochelle & Murray), 50k / 10k / 10k 0/1 images; nothing is downloaded.
split = pf.data.binarized_mnist()
train = split.train[:2000] if SMOKE else split.train
valid, test = split.valid[: 100 if SMOKE else 1000], split.test[: 50 if SMOKE else 500]
print({name: tuple(part.shape) for name, part in zip(("train", "valid", "test"), (train, valid, test))})
""",
    ),
    (
        "md",
        r"""
## 1. The model and the guide

The model: $z \sim \mathcal{N}(0, I)$ and independent Bernoulli pixels with logits from the decoder, in a
`pyro.plate` over the minibatch. `beta` scales the latent site's log-densities in both (KL warm-up), `scale` the
whole minibatch (dataset-size scaling). The guide draws $z$ with **one** `pyro.sample` of a flow distribution:
`pf.flow_distribution(flow, base=Normal(mu, scale).to_event(1), context=h)`. `Trace_ELBO` then scores that
sample from the pass that drew it: the IAF steps never run their slow (sequential) direction.
""",
    ),
    (
        "code",
        r"""
print(inspect.getsource(VAE.model))
print(inspect.getsource(VAE.guide))
print(inspect.getsource(VAE.posterior))
""",
    ),
    (
        "md",
        r"""
## 2. Three posteriors, one budget

The same MLP encoder ($784 \to 512 \to 512 \to h \in \mathbb{R}^{256}$, then $\mu$ and $\sigma$) and decoder,
$z \in \mathbb{R}^{32}$, and four flow steps: amortized planar steps (their parameters are offsets computed from
$h$), or IAF steps with IAF's gated update $z' = \sigma z + (1 - \sigma) m$ and orderings reversed between steps.
Adamax, batch 100, linear KL warm-up over the first 1000 steps, the same wall-clock budget each.
""",
    ),
    (
        "code",
        r"""
BUDGET_S = None if SMOKE else 100  # seconds of training per posterior
results, models = {}, {}
for posterior in ("diagonal", "planar", "iaf"):
    torch.manual_seed(0)
    vae = VAE((1, 28, 28), z_dim=32, posterior=posterior, num_flows=4, hidden_dims=(512, 512))
    fit = fit_vae(vae, train, valid, steps=5 if SMOKE else None, max_seconds=BUDGET_S, batch_size=100,
                  kl_warmup_steps=1000, eval_every=5 if SMOKE else 200, patience=None, progress=False, seed=0)
    torch.manual_seed(1)
    nll = -log_likelihood(vae, test, num_samples=10 if SMOKE else 500, batch_size=250).mean().item()
    results[posterior] = dict(neg_elbo=negative_elbo(vae, test, num_particles=10), nll=nll, steps=fit.steps_run,
                              history=fit.history)
    models[posterior] = vae
    print(f"{posterior:9s}: {fit.steps_run:5d} steps, test -ELBO {results[posterior]['neg_elbo']:7.2f}, "
          f"IS NLL {nll:7.2f} nats (K = {10 if SMOKE else 500}, seed 1)")
""",
    ),
    (
        "code",
        r"""
fig, ax = plt.subplots(figsize=(7, 4))
for posterior, r in results.items():
    h = r["history"]
    ax.plot(h.step, h.valid_nll, marker="o", label=f"{posterior} (validation)")
ax.set(xlabel="step", ylabel="-ELBO per image (nats)", title="validation -ELBO (KL warm-up: early values are lower)")
ax.legend()
plt.show()
print("| posterior | test -ELBO | test NLL (IS) | steps |")
print("| --- | ---: | ---: | ---: |")
for posterior, r in results.items():
    print(f"| {posterior} | {r['neg_elbo']:.2f} | {r['nll']:.2f} | {r['steps']} |")
""",
    ),
    (
        "md",
        r"""
The IS estimate $\log \frac{1}{K}\sum_k p(x, z_k)/q(z_k \mid x)$ lies above the ELBO (so its NLL below the
$-$ELBO); the gap between them is what a better posterior closes. With a short budget the three are close; the IAF
steps cost time per step, so within one budget it runs fewer steps.

## 3. Reconstructions and samples (IAF posterior)
""",
    ),
    (
        "code",
        r"""
vae = models["iaf"]
with torch.no_grad():
    x = test[:8]
    recon = torch.sigmoid(vae.decoder(vae.posterior(x).sample())).reshape(8, 28, 28)
    samples = torch.sigmoid(vae.decoder(vae.prior((16,)).sample())).reshape(16, 28, 28)
fig, axes = plt.subplots(3, 8, figsize=(10, 4))
for i in range(8):
    axes[0, i].imshow(x[i, 0], cmap="gray_r")
    axes[1, i].imshow(recon[i], cmap="gray_r")
    axes[2, i].imshow(samples[i], cmap="gray_r")
for ax in axes.flat:
    ax.axis("off")
axes[0, 0].set_title("data", loc="left")
axes[1, 0].set_title("reconstruction (mean)", loc="left")
axes[2, 0].set_title("samples (means)", loc="left")
plt.show()
""",
    ),
    (
        "md",
        r"""
## 4. A 2-D latent space: the posterior of one image

With $z \in \mathbb{R}^2$ the true posterior $p(z \mid x) \propto p(z)\, p(x \mid z)$ can be evaluated on a grid.
Two VAEs with the same decoder size, one with a diagonal posterior and one with four IAF steps, trained for the
same time; for one test image we draw the true (unnormalized) posterior of each model's decoder and its $q(z \mid x)$.
A diagonal Gaussian is an axis-aligned ellipse; the IAF posterior can bend and skew towards the true one.
""",
    ),
    (
        "code",
        r"""
two_d = {}
for posterior in ("diagonal", "iaf"):
    torch.manual_seed(0)
    vae2 = VAE((1, 28, 28), z_dim=2, posterior=posterior, num_flows=4, hidden_dims=(256, 256), context_dim=64,
               flow_hidden_dims=(64,))
    fit_vae(vae2, train, valid, steps=5 if SMOKE else None, max_seconds=None if SMOKE else 60, batch_size=100,
            kl_warmup_steps=500, eval_every=5 if SMOKE else 500, patience=None, progress=False, seed=0)
    two_d[posterior] = vae2

x0 = test[3:4]
LEVELS = [np.exp(-4.5), np.exp(-2.0), np.exp(-0.5)]  # density / max at 3, 2 and 1 "sigmas"
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
for ax, (posterior, vae2) in zip(axes, two_d.items()):
    with torch.no_grad():
        center = vae2.posterior(x0).sample((2000,)).squeeze(1)  # zoom on where q and the posterior are
        lo, hi = center.mean(0) - 5 * center.std(0).max(), center.mean(0) + 5 * center.std(0).max()
        g1, g2 = torch.linspace(lo[0], hi[0], 121), torch.linspace(lo[1], hi[1], 121)
        zz = torch.stack(torch.meshgrid(g1, g2, indexing="xy"), -1).reshape(-1, 2)
        log_joint = vae2.prior(zz.shape[:1]).log_prob(zz) + vae2.likelihood(zz).log_prob(x0)
        log_q = vae2.posterior(x0).log_prob(zz[:, None, :]).squeeze(-1)  # an IAF scores a grid by its inverse
    true = torch.exp(log_joint - log_joint.max()).reshape(121, 121)
    q = torch.exp(log_q - log_q.max()).reshape(121, 121)
    ax.contourf(g1, g2, true, levels=[*LEVELS, 1.0], cmap="Greys")
    ax.contour(g1, g2, q, levels=LEVELS, colors="tab:red", linewidths=1.5)
    w = torch.softmax(log_q, 0)  # q on the grid, normalized
    neg_elbo = (w * (log_q - log_joint)).sum().item()
    log_px = (torch.logsumexp(log_joint, 0) + torch.log((g1[1] - g1[0]) * (g2[1] - g2[0]))).item()
    ax.set(title=f"{posterior}: true posterior (grey) and q(z|x) (red)", xlabel="z1", ylabel="z2")
    print(f"{posterior}: on the grid, -ELBO {neg_elbo:.2f} nats, -log p(x) {-log_px:.2f}, "
          f"KL(q || true posterior) {neg_elbo + log_px:.2f}")
plt.show()
""",
    ),
    (
        "md",
        r"""
`python -m pyro_flows vae --posterior iaf` trains the same model from the command line (`--arch conv` for the gated
convolutional encoder and decoder of Berg et al. 2018), and `bench/bench_vae.py` compares the three posteriors at
an equal budget with the numbers recorded in `bench/results/`.
""",
    ),
]
