"""Cells of ``03_realnvp_glow_mnist.ipynb``; ``tutorials/_build.py 03`` writes (and with ``--execute`` runs) it."""

NOTEBOOK = "03_realnvp_glow_mnist.ipynb"
REQUIRES = ["mnist"]  # recorded in the notebook's metadata: the tests skip it, with the reason, when MNIST is absent

CELLS = [
    (
        "md",
        r"""
# RealNVP and Glow on MNIST

`pf.realnvp_image` (Dinh et al. 2017, arXiv:1605.08803) and `pf.glow` (Kingma & Dhariwal 2018, arXiv:1807.03039) are
flows over images of shape $(C, H, W)$. Each factory returns **one** flow, so the model is one
`pyro.distributions.TransformedDistribution` with a standard-normal base over $(C, H, W)$: `log_prob` is exact
(no bound, no sampling) and runs the layers from data to latent, and `sample` runs the same layers the other way.

This notebook: **1.** preprocessing: dequantization, the logit transform and bits/dim; **2.** the coupling masks and
the squeeze, pictured; **3.** the multi-scale architecture, and a check that it is still one exact density;
**4.** training a small RealNVP and a small Glow on MNIST on the CPU, test bits/dim and samples at two temperatures;
**5.** interpolation in latent space.

The models of section 4 are small and train for **about two minutes each on one CPU thread**. That takes them to
2 to 3 bits/dim and gives a latent space good enough for interpolation (section 5). It does not give samples that
look like digits, and it is far from the papers (RealNVP 1.06 and Glow 1.05 bits/dim on MNIST, as reported in the
Glow paper, after long GPU training). `bench/train_mnist.py` runs the longer benchmark.
""",
    ),
    (
        "code",
        r"""
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # Pyro imports tqdm.auto; without ipywidgets it warns

import copy
import math
import os

import matplotlib.pyplot as plt
import numpy as np
import pyro
import torch

import pyro_flows as pf

# The tests run this notebook with PYRO_FLOWS_SMOKE=1: tiny models, subsets, 10 steps, only to check that it runs.
SMOKE = os.environ.get("PYRO_FLOWS_SMOKE") == "1"
if SMOKE:
    print("smoke mode: tiny models, data subsets and 10 training steps; the numbers below mean nothing")

torch.set_num_threads(1)  # a shared CPU: one thread, so that the time budgets below mean the same on every run
pyro.set_rng_seed(0)      # seeds torch, numpy and random

# uint8 pixels (N, 1, 28, 28), the classic 50k/10k/10k split. Nothing is downloaded: without mnist.npz this raises
# FileNotFoundError naming PYRO_FLOWS_DATA (and the tests skip this notebook, saying so).
split = pf.data.mnist()
SHAPE = pf.data.MNIST_SHAPE                   # (1, 28, 28)
DIMS = math.prod(SHAPE)                       # 784
print({name: tuple(part.shape) for name, part in zip(("train", "valid", "test"), split)}, split.train.dtype)

def tile(images, ncols, pad=1):
    # (N, 1, H, W) images in [0, 1] as one array, ncols per row, pad pixels of grey between them
    images = images.detach().reshape(-1, *images.shape[-2:]).clamp(0, 1).numpy()
    n, h, w = images.shape
    nrows = math.ceil(n / ncols)
    canvas = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), 0.25)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = image
    return canvas

def show(ax, images, ncols, title=None):
    ax.imshow(tile(images, ncols), cmap="gray_r", vmin=0, vmax=1)  # dark ink on white, as the digits are drawn
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
""",
    ),
    (
        "md",
        r"""
## 1. Preprocessing: dequantization, logit, bits/dim

**Dequantization.** Pixels are integers $k \in \{0, \dots, 255\}$. A density on $\mathbb R^{784}$ fitted to
integer-valued points can grow without bound by piling its mass onto them, so the flows are trained on
$x = (k + u)/256$ with uniform noise $u \sim U(0, 1)^{784}$, drawn **afresh for every minibatch**
(`pf.fit(..., preprocess=pf.data.dequantize)`): the model never sees the same $x$ twice. The density of $x$ then gives
a lower bound on the probability of the discrete image, $\log P(k) \ge \mathbb E_u[\log p(k + u)]$ in pixel units
(Theis et al. 2016, arXiv:1511.01844). Validation and test images are dequantized once, with fixed seeds.

**Logit.** MNIST is mostly exact zeros and some 255s; after dequantization they sit against the edges of $[0, 1)$,
where a Gaussian base fits badly. RealNVP models $y = \operatorname{logit}(\lambda + (1 - 2\lambda)\,x)$ instead,
with $\lambda = 0.05$ keeping away from the infinities at 0 and 1. The map is elementwise, so its Jacobian is
diagonal:

$$\log\left|\det \frac{\partial y}{\partial x}\right| = \sum_i \Big[\log(1 - 2\lambda) - \log p_i - \log(1 - p_i)\Big],
\qquad p_i = \lambda + (1 - 2\lambda)\,x_i .$$

In `pyro_flows` this is a bijection, `pf.Logit(shape, lam)`, and a model ends in its inverse:
`pf.Compose([pf.realnvp_image(shape, ...), pf.Logit(shape, lam=0.05).inv])` maps base samples $z$ to logit space and
then to $[0, 1]$. The `TransformedDistribution` therefore lives on $[0, 1]^{784}$ and its `log_prob` already contains
the logit's Jacobian: no bookkeeping outside the model.

**Bits per dimension in pixel space.** The papers report $-\log_2 p$ per dimension of the dequantized image in
pixel units $k + u = 256\,x$. That change of variables divides the density by $256$ per dimension, hence

$$\text{bits/dim} = \frac{\mathrm{NLL}_{[0,1)} + D \log 256}{D \log 2}$$

(`pf.data.bits_per_dim(nll, 784)`). The offset $D \log 256$ puts the figure on an absolute scale: the uniform density
on $[0, 1)^{784}$ has NLL 0, i.e. **8 bits/dim**, the cost of storing raw bytes; every model must beat that.
""",
    ),
    (
        "code",
        r"""
gen = torch.Generator().manual_seed(0)
digits = split.train[:8]
x1, x2 = pf.data.dequantize(digits, generator=gen), pf.data.dequantize(digits, generator=gen)
print(f"two dequantizations of the same pixels differ by up to {(x1 - x2).abs().max().item() * 256:.3f} pixel units, "
      f"and never leave the pixel's bin: {bool(((x1 * 256).floor() == digits).all())}")

logit = pf.Logit(SHAPE, lam=0.05)
y, log_det = logit.forward_and_log_det(x1)
# The log-det against autograd, on 5 pixels in float64: the Jacobian is diagonal, its log-det the sum of the logs
few = x1[0, 0, 14, 10:15].double()
jac = torch.autograd.functional.jacobian(lambda v: torch.logit(0.05 + 0.9 * v), few)
print(f"Logit log-det of 5 pixels: formula {pf.Logit(5, lam=0.05).forward_and_log_det(few)[1].item():.10f}, "
      f"autograd {torch.linalg.slogdet(jac).logabsdet.item():.10f}")
print(f"mean log|det dy/dx| of the logit over an image: {log_det.mean().item():.1f} nats")
print(f"uniform density on [0, 1)^784 (NLL 0): {pf.data.bits_per_dim(0.0, DIMS):.2f} bits/dim")

fig, axes = plt.subplots(1, 3, figsize=(14, 3.2), gridspec_kw={"width_ratios": [2.2, 1, 1]})
show(axes[0], torch.cat([digits / 255, x1]), ncols=8, title="pixels k / 255 (top), dequantized x = (k + u) / 256")
axes[1].hist(x1.flatten().numpy(), bins=64, color="C0")
axes[1].set(yscale="log", xlabel="x", title="dequantized x in [0, 1)")
axes[2].hist(y.flatten().numpy(), bins=64, color="C1")
axes[2].set(yscale="log", xlabel="y = logit(0.05 + 0.9 x)", title="what the flow models: logit space")
plt.tight_layout()
plt.show()
""",
    ),
    (
        "md",
        r"""
The zeros of MNIST become a narrow spike near $\operatorname{logit}(0.05) \approx -2.94$ and the 255s one near
$+2.94$: bounded, and with no edge for the flow to fit.

## 2. Masks and the squeeze, pictured

An affine **coupling layer** keeps the entries where its mask is True and transforms the others,
$x_B \mapsto x_B \odot e^{s(x_A)} + t(x_A)$, with $(s, t)$ from a small convolutional ResNet that sees only the kept
entries ($x \odot \text{mask}$). Both directions cost one network pass, and the log-det is $\sum_B s$. Masks are
plain bool tensors from `pf.masks`:

* `pf.masks.checkerboard((C, H, W), flip=...)`: alternate pixels, the same for every channel (RealNVP at full
  resolution); consecutive layers flip it, so every pixel gets transformed.
* `pf.masks.channels((C, H, W), flip=...)`: the first half of the channels (RealNVP after a squeeze, and every Glow
  coupling, where a learned $1 \times 1$ convolution mixes the channels in between instead of a flip).

**Squeeze** (`pf.space_to_depth`) trades resolution for channels: every $2 \times 2$ block of pixels becomes 4
channels, so $(C, H, W) \to (4C, H/2, W/2)$; output channel $4c + 2i + j$ at $(h, w)$ is input channel $c$ at
$(2h + i, 2w + j)$. It is a permutation: log-det 0. A channel mask after a squeeze therefore splits every $2 \times 2$
block into its top and bottom rows.
""",
    ),
    (
        "code",
        r"""
def draw_mask(ax, mask, title):
    ax.imshow(mask.float().numpy(), cmap="Blues", vmin=-0.3, vmax=1.3)
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(title, fontsize=9)

fig = plt.figure(figsize=(15, 5.6))
grid = fig.add_gridspec(2, 8, height_ratios=[1, 1])
draw_mask(fig.add_subplot(grid[0, 0]), pf.masks.checkerboard((1, 6, 6))[0], "checkerboard((1, 6, 6))")
draw_mask(fig.add_subplot(grid[0, 1]), pf.masks.checkerboard((1, 6, 6), flip=True)[0], "flip=True")
channel_mask = pf.masks.channels((4, 3, 3))
for c in range(4):
    draw_mask(fig.add_subplot(grid[0, 2 + c]), channel_mask[c], f"channels((4, 3, 3)): ch {c}")
ax = fig.add_subplot(grid[0, 6:])
ax.axis("off")
ax.text(0, 0.5, "dark = kept (True): passed through,\nconditions the rest\nlight = transformed (False)", fontsize=10,
        va="center")

image = torch.arange(16.0).reshape(1, 4, 4)
squeezed = pf.space_to_depth(image)                      # (4, 2, 2)
assert torch.equal(pf.depth_to_space(squeezed), image)   # and back

def draw_numbers(ax, values, title, colors):
    ax.imshow(colors, cmap="tab20", vmin=0, vmax=20)
    for (r, c), v in np.ndenumerate(values):
        ax.text(c, r, f"{int(v)}", ha="center", va="center", fontsize=11)
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(title, fontsize=9)

block = (torch.arange(4)[:, None] // 2 * 2 + torch.arange(4)[None, :] // 2).numpy()  # which 2x2 block a pixel is in
draw_numbers(fig.add_subplot(grid[1, 0:2]), image[0].numpy(), "a 4x4 image (1, 4, 4),\ncoloured by 2x2 block",
             2 * block)
for c in range(4):
    i, j = divmod(c, 2)
    draw_numbers(fig.add_subplot(grid[1, 2 + c]), squeezed[c].numpy(),
                 f"space_to_depth: ch {c}\n= pixel (2h+{i}, 2w+{j})", 2 * np.arange(4).reshape(2, 2))
after = pf.masks.channels((4, 2, 2))                    # a channel mask on the squeezed image, seen unsqueezed
draw_mask(fig.add_subplot(grid[1, 6]), pf.depth_to_space(after)[0], "channels((4, 2, 2))\nseen at 4x4")
draw_mask(fig.add_subplot(grid[1, 7]), pf.depth_to_space(~after)[0], "flip=True\nseen at 4x4")
plt.tight_layout()
plt.show()
""",
    ),
    (
        "md",
        r"""
## 3. Multi-scale: levels and factor-out, still one exact density

Both architectures work at several scales (**levels**). Per level, in the density direction (data $\to$ latent):

* **RealNVP** (`pf.realnvp_image(shape, levels=2)`): 3 couplings with alternating checkerboard masks, squeeze, 3
  couplings with alternating channel masks, factor out half of the channels; the last level runs 4 checkerboard
  couplings.
* **Glow** (`pf.glow(shape, levels=2, depth=K)`): squeeze, then $K$ steps of ActNorm (per-channel affine map,
  initialized from the first data batch) $\to$ invertible $1 \times 1$ convolution (an LU-parametrized channel
  mixing matrix, log-det $HW \sum \log|s|$) $\to$ affine coupling with a channel mask (below with a bounded scale,
  see section 4), then factor out half of the channels (except at the last level). MNIST's 28 is $4 \times 7$: at
  most two squeezes, so 2 levels (the paper pads to 32 for 3).

**Factor-out** (`pf.FactorOut(inner, factored)`): half of the channels stop being transformed and go straight to the
base distribution; the deeper levels work on the other half only, at half the resolution. This saves compute and
gives a hierarchy of latents: the early-exiting ones hold local detail, the ones that pass through every level hold
what the whole network has mixed.

In `pyro_flows` the shape-changing steps are wrappers: `Squeeze(inner)` runs `inner` on the squeezed view and
squeezes back, `FactorOut(inner, k)` runs `inner` on the first channels and passes the last `k` through. Every
wrapper keeps the event shape $(C, H, W)$, so the whole model is one flow over $(1, 28, 28)$ with one
standard-normal base over $(1, 28, 28)$; the latent $z$ is a fixed permutation of the papers' multi-scale latent,
which does not change a standard-normal density. `log_prob` and `sample` are the ordinary ones of
`TransformedDistribution`:

$$\log p(x) = \log \mathcal N(z; 0, I) - \log\left|\det \frac{\partial x}{\partial z}\right|, \qquad z = f^{-1}(x).$$

Below: the two models of section 4 (smaller than the papers'), their layers in the density direction, their
parameter counts, which level each latent dimension leaves at, and the check of the formula above on a batch.
""",
    ),
    (
        "code",
        r"""
LAM = 0.05  # RealNVP's logit margin, used for both models
if SMOKE:
    realnvp_kw = dict(levels=2, hidden_channels=4, num_blocks=1)
    glow_kw = dict(levels=2, depth=1, hidden_channels=4, num_blocks=1)
else:
    realnvp_kw = dict(levels=2, hidden_channels=32, num_blocks=1)
    glow_kw = dict(levels=2, depth=4, hidden_channels=32, num_blocks=1)
glow_kw["scale"] = "softclamp"  # pf.glow's default, spelled out: see section 4

models = {
    "RealNVP": pf.Compose([pf.realnvp_image(SHAPE, **realnvp_kw), pf.Logit(SHAPE, lam=LAM).inv]),
    "Glow": pf.Compose([pf.glow(SHAPE, **glow_kw), pf.Logit(SHAPE, lam=LAM).inv]),
}
dists = {name: pf.flow_distribution(flow) for name, flow in models.items()}

def describe(part):
    name = type(part).__name__
    if isinstance(part, pf.Inverse):
        if isinstance(part.inv, pf.Logit):  # the model's last part, Logit(...).inv, seen in the density direction
            return f"Logit(lam={part.inv.lam:g}): [0, 1] -> logit space"
        return name
    if hasattr(part, "mask") and part.mask.dim() == 3:  # an image coupling: which mask?
        spatial = bool((part.mask != part.mask[:, :1, :1]).any())
        return f"{name}({'checkerboard' if spatial else 'channel'} mask)"
    return name

def outline(flow, indent=0):
    # the layers in the density direction (data -> latent), repeats of a short pattern collapsed
    lines, pad = [], "  " * indent
    parts = list(flow.parts)[::-1] if isinstance(flow, pf.Compose) else [flow]
    for part in parts:
        if isinstance(part, pf.Compose):
            lines += outline(part, indent)
        elif isinstance(part, pf.Squeeze):
            lines.append(f"{pad}Squeeze {tuple(part.event_shape)} -> {tuple(part.flow.event_shape)}:")
            lines += outline(part.flow, indent + 1)
        elif isinstance(part, pf.FactorOut):
            kept = tuple(part.flow.event_shape)
            lines.append(f"{pad}FactorOut: {part.factored} of {kept[0] + part.factored} channels go to the base; "
                         f"the inner flow continues on {kept}:")
            lines += outline(part.flow, indent + 1)
        else:
            lines.append(f"{pad}{describe(part)}")
    return collapse(lines)

def collapse(lines):
    # consecutive repeats of a pattern of 1 to 3 plain lines -> "n x a -> b -> c"
    out, i = [], 0
    while i < len(lines):
        repeated = False
        for size in (1, 2, 3):  # the shortest pattern that repeats
            pattern = lines[i:i + size]
            if len(pattern) < size or any(line.endswith(":") for line in pattern):
                break
            n = 1
            while lines[i + n * size:i + (n + 1) * size] == pattern:
                n += 1
            if n > 1:
                pad = pattern[0][:len(pattern[0]) - len(pattern[0].lstrip())]
                out.append(f"{pad}{n} x " + " -> ".join(line.strip() for line in pattern))
                i += n * size
                repeated = True
                break
        if not repeated:
            out.append(lines[i])
            i += 1
    return out

for name, flow in models.items():
    n_params = sum(p.numel() for p in flow.parameters())
    print(f"{name}: {n_params:,} parameters; density direction, data (1, 28, 28) -> latent (1, 28, 28):")
    print("\n".join("  " + line for line in outline(flow)))
    print()
""",
    ),
    (
        "md",
        r"""
Which level each latent dimension leaves at, found by walking the same structure (`FactorOut`'s last channels exit
at its level, `Squeeze` moves them back to full-resolution positions). In both models the first factor-out takes the
last 2 of the 4 squeezed channels, i.e. the bottom row of every $2 \times 2$ block: the odd rows of $z$ leave after
level 1, and the even rows pass through the second level. The base density is i.i.d. over positions, so this
arrangement costs nothing.
""",
    ),
    (
        "code",
        r"""
def latent_levels(flow, level=1):
    # for every position of z, the level at which it leaves the flow (density direction)
    if isinstance(flow, pf.Compose):
        return torch.stack([latent_levels(part, level) for part in flow.parts]).amax(0)
    if isinstance(flow, pf.Squeeze):
        return pf.depth_to_space(latent_levels(flow.flow, level))
    if isinstance(flow, pf.FactorOut):
        inner = latent_levels(flow.flow, level + 1)
        return torch.cat([inner, torch.full((flow.factored, *inner.shape[1:]), level)])
    return torch.full(tuple(flow.event_shape), level)

levels = {name: latent_levels(flow) for name, flow in models.items()}
colors = plt.get_cmap("Pastel1").colors
fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
for ax, (name, lv) in zip(axes, levels.items()):
    ax.imshow(np.array(colors)[lv[0].numpy() - 1])
    ax.set_title(f"{name}: the level at which each\nposition of z leaves the flow", fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
    counts = {int(v): int((lv == v).sum()) for v in lv.unique()}
    print(f"{name}: latent dimensions per level {counts}")
fig.legend(handles=[plt.matplotlib.patches.Patch(color=colors[k - 1], label=f"level {k}") for k in (1, 2)],
           loc="center right")
plt.tight_layout(rect=(0, 0, 0.86, 1))
plt.show()
""",
    ),
    (
        "code",
        r"""
# The exactness check, on a batch of dequantized training images. This first call also initializes Glow's ActNorm
# layers from data (each standardizes its output on the first batch it sees), as the paper does.
torch.manual_seed(1)
x = pf.data.dequantize(split.train[:64 if SMOKE else 256])
for name, flow in models.items():
    d = dists[name]
    with torch.no_grad():
        log_p = d.log_prob(x)                        # TransformedDistribution's own log_prob
        z, log_det = flow.inverse_and_log_det(x)     # z = f^-1(x) and log|det dx/dz| (the forward log-det)
        by_hand = d.base_dist.log_prob(z) - log_det  # log N(z) - log|det dx/dz|
        x_back = flow(z.clone())                     # .clone(): bypass the cache, really run f
    print(f"{name}: log_prob {log_p.mean().item():9.2f} nats on average; max |log_prob - (log N(z) - log det)| = "
          f"{(log_p - by_hand).abs().max().item():.1e}; round trip max |f(f^-1(x)) - x| = "
          f"{(x_back - x).abs().max().item():.1e}; z {tuple(z.shape)}")
    print(f"{' ' * len(name)}  an untrained model: {pf.data.bits_per_dim(-log_p.mean().item(), DIMS):.2f} bits/dim")
""",
    ),
    (
        "md",
        r"""
The two sides agree (exactly: `TransformedDistribution.log_prob` runs the same layers), and the round trip is exact
to float32 rounding. Section 4 checks the log-det once more, against autograd, after training. An untrained RealNVP
is the identity (its couplings' last layers start at zero), i.e. a standard normal in logit space, worse than the
uniform's 8 bits/dim; Glow's data-initialized ActNorm layers already standardize the data, which helps from the first
step.

## 4. Training on MNIST, on the CPU

`pf.fit` maximizes `log_prob` with Adam (batch 64, learning rate $10^{-3}$), draws fresh dequantization noise for every
minibatch (`preprocess=pf.data.dequantize`, so `train` holds the raw uint8 pixels), evaluates on 500 validation
images every 50 steps, keeps the best parameters, and stops after the wall-clock budget (`max_seconds`, evaluations
included). Test bits/dim is measured on the first 2,000 test images, dequantized once with a fixed seed. The global
seed is reset before each model, so that each run's dequantization noise does not depend on how many steps the
other managed in its budget.

**The Glow here uses `scale="softclamp"`** (`pf.glow`'s default), RealNVP's bounded scale $e^{3 \tanh(h/3)}$,
bounded in both directions. Glow's own choice is available as `scale="sigmoid"`: the density direction (data to
latent, the flow's inverse in Pyro's convention) multiplies by $\sigma(h + 2) \in (0, 1)$ as in the paper, so it can
only contract. In a 300-step check of this small Glow on 5,000 training images it learned more slowly than softclamp
(3.29 vs 2.39 validation bits/dim), which is why it is not the default.
""",
    ),
    (
        "code",
        r"""
BUDGET_S = None if SMOKE else 120  # seconds per model
train = split.train[:256] if SMOKE else split.train
valid = pf.data.dequantize(split.valid[:32 if SMOKE else 500], generator=torch.Generator().manual_seed(1))
test = pf.data.dequantize(split.test[:32 if SMOKE else 2000], generator=torch.Generator().manual_seed(2))

results, test_bpd = {}, {}
for name, d in dists.items():
    torch.manual_seed(0)  # the dequantization noise of pf.fit's preprocess comes from the global generator
    results[name] = pf.fit(
        d, train, valid, preprocess=pf.data.dequantize, batch_size=64, lr=1e-3, patience=None, seed=0,
        steps=10 if SMOKE else None, max_seconds=BUDGET_S, eval_every=5 if SMOKE else 50, eval_batch_size=250,
        progress=False,
    )
    test_bpd[name] = pf.data.bits_per_dim(pf.nll(d, test, batch_size=250), DIMS)

print(f"{'model':8} {'parameters':>10} {'steps':>6} {'seconds':>8} {'s/step':>7} {'images seen':>12} "
      f"{'valid bits/dim':>15} {'test bits/dim':>14}")
for name, r in results.items():
    n_params = sum(p.numel() for p in models[name].parameters())
    print(f"{name:8} {n_params:10,} {r.steps_run:6} {r.wall_time:8.0f} {r.wall_time / r.steps_run:7.2f} "
          f"{r.steps_run * 64:12,} {pf.data.bits_per_dim(r.best_valid, DIMS):15.3f} {test_bpd[name]:14.3f}")
print("for scale: uniform 8 bits/dim; RealNVP 1.06 and Glow 1.05 bits/dim in the Glow paper, after far longer training")
""",
    ),
    (
        "md",
        r"""
Now that the flows are far from the identity, the log-det of the whole multi-scale map (data $\to$ latent, logit,
couplings, squeezes and factor-outs together) against the log-determinant of its full $784 \times 784$ Jacobian,
computed by autograd in float64 for one test image:
""",
    ),
    (
        "code",
        r"""
for name, flow in models.items():
    flow64 = copy.deepcopy(flow).double()
    x0 = test[:1].double()
    to_latent = lambda v: flow64.inverse_and_log_det(v.reshape(1, *SHAPE))[0].flatten()
    jacobian = torch.autograd.functional.jacobian(to_latent, x0.flatten(), vectorize=True)  # dz/dx, (784, 784)
    _, log_det = flow64.inverse_and_log_det(x0)                                              # log|det dx/dz|
    print(f"{name}: log|det dz/dx| by autograd {torch.linalg.slogdet(jacobian).logabsdet.item():.9f}, "
          f"from the layers {-log_det.item():.9f}")
""",
    ),
    (
        "code",
        r"""
fig, ax = plt.subplots(figsize=(7, 4))
for (name, r), color in zip(results.items(), ("C0", "C1")):
    h = r.history
    ax.plot(h.step, [pf.data.bits_per_dim(v, DIMS) for v in h.train_nll], color=color, ls="--",
            label=f"{name} train (mean since last evaluation)")
    ax.plot(h.step, [pf.data.bits_per_dim(v, DIMS) for v in h.valid_nll], color=color, marker="o",
            label=f"{name} valid")
ax.set(xlabel="step (batch of 64)", ylabel="bits/dim", title="learning curves in the time budget")
ax.legend()
plt.tight_layout()
plt.show()
""",
    ),
    (
        "md",
        r"""
Glow's steps are cheaper here: its couplings run on squeezed $(4, 14, 14)$ and $(8, 7, 7)$ tensors, while RealNVP's
first three couplings run its convolutions at the full $28 \times 28$ resolution. In the same time budget Glow takes
about three times as many steps. Both curves are still falling when the budget ends: these models are nowhere
near converged.

**Samples at a temperature.** Sampling is the flow's forward direction: $x = f(z)$ with $z \sim \mathcal N(0, I)$.
Sampling at temperature $T$ means $z \sim \mathcal N(0, T^2 I)$, i.e. scaling the base samples: `flow(T * z)`. Lower
temperatures trade diversity for cleaner images (Glow's samples are shown at $T = 0.7$). The `Logit(...).inv` at the
end of the flow maps back to $[0, 1]$. Same base noise for both models and both temperatures.
""",
    ),
    (
        "code",
        r"""
N_SAMPLES = 16 if SMOKE else 48
z = torch.randn(N_SAMPLES, *SHAPE, generator=torch.Generator().manual_seed(3))
fig, axes = plt.subplots(2, 2, figsize=(12, 8.4))
for row, (name, flow) in zip(axes, models.items()):
    with torch.no_grad():  # fit leaves the modules in eval mode
        for ax, temperature in zip(row, (1.0, 0.7)):
            title = f"{name}, T = {temperature} ({results[name].steps_run} steps, test {test_bpd[name]:.2f} bits/dim)"
            show(ax, flow(temperature * z), ncols=8, title=title)
plt.tight_layout()
plt.show()
""",
    ),
    (
        "md",
        r"""
After two minutes the samples are white backgrounds with blots and fragments of strokes; at most a few of Glow's
begin to resemble a digit. The models have learned local statistics (mostly empty background, saturated ink), but not
yet the global shape of a digit. At $T = 0.7$ they are cleaner, i.e. emptier.
Recognizable samples need far more training (hours on a GPU with `bench/train_mnist.py`, and wider, deeper models).
""",
    ),
    (
        "md",
        r"""
## 5. Interpolation in latent space

The flow is a bijection, so a test image has exactly one latent: $z = f^{-1}(x)$, the density direction (here with
the pixels centred in their bins, $x = (k + 0.5)/256$, instead of random noise). Between two latents $z_0, z_1$:

* **linear**: $z_t = (1 - t) z_0 + t z_1$. In high dimension two independent latents are nearly orthogonal, and the
  midpoint's norm is then about $1/\sqrt 2$ of theirs: the path passes through atypical, low-temperature latents.
  (Two encoded digits are correlated, so the dip below is smaller, but there.)
* **spherical** (slerp): $z_t = \frac{\sin((1 - t)\Omega)}{\sin \Omega} z_0 + \frac{\sin(t \Omega)}{\sin \Omega} z_1$
  with $\cos \Omega = \frac{z_0 \cdot z_1}{|z_0||z_1|}$, which keeps the norm.

Each row is then decoded with $x_t = f(z_t)$; its ends are the two test digits, reconstructed.
""",
    ),
    (
        "code",
        r"""
def slerp(z0, z1, t):
    cos = (z0.flatten() @ z1.flatten()) / (z0.norm() * z1.norm())
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)

pairs = [(0, 1), (3, 4)]  # test images: a 7 and a 2, a 0 and a 4
ts = torch.linspace(0, 1, 9)
rows, labels = [], []
for name, flow in models.items():
    for i, j in pairs:
        ends = (split.test[[i, j]].float() + 0.5) / 256
        with torch.no_grad():
            z0, z1 = flow.inv(ends)
            for kind, path in (("linear", lambda t: (1 - t) * z0 + t * z1), ("spherical", lambda t: slerp(z0, z1, t))):
                zt = torch.stack([path(t) for t in ts])
                rows.append(flow(zt))
                labels.append(f"{name}, {kind}")
                norms = zt.flatten(1).norm(dim=1) / math.sqrt(DIMS)
                if (i, j) == pairs[0]:
                    print(f"{name}, {kind:9}: |z_t| / sqrt(D) along the path: "
                          + " ".join(f"{v:.2f}" for v in norms.tolist()))
        print(f"{name}, test images {i} and {j}: reconstructed ends, max |f(f^-1(x)) - x| = "
              f"{(rows[-1][[0, -1]] - ends).abs().max():.1e}")

fig, axes = plt.subplots(len(rows), 1, figsize=(9, 1.15 * len(rows)))
for ax, images, label in zip(axes, rows, labels):
    show(ax, images, ncols=len(ts))
    ax.text(-4, 15, label, ha="right", va="center", fontsize=9)
plt.subplots_adjust(left=0.2, right=0.98, top=0.98, bottom=0.02, hspace=0.1)
plt.show()
""",
    ),
    (
        "md",
        r"""
The ends are the test digits themselves (a flow reconstructs exactly). In between, the decoded frames are not a
cross-fade of the two images' pixels: they stay on a white background with strokes, but the middle of the path is
where these undertrained models are weakest, with faint fragments like those of the samples. Spherical paths keep
the norm of the ends and tend to give stronger strokes in the middle than linear ones.

**What the levels hold.** Keep one part of a test digit's latent and redraw the other at $T = 0.7$: first the 392
dimensions that leave at level 1 (the odd rows of $z$), then the 392 that pass through level 2.
""",
    ),
    (
        "code",
        r"""
gen = torch.Generator().manual_seed(4)
fig, axes = plt.subplots(4, 1, figsize=(9, 4.8))
for k, (name, flow) in enumerate(models.items()):
    x0 = (split.test[[1]].float() + 0.5) / 256
    with torch.no_grad():
        z0 = flow.inv(x0)
        for m, level in enumerate((1, 2)):
            redraw = levels[name] == level
            noise = 0.7 * torch.randn(7, *SHAPE, generator=gen)
            images = flow(torch.where(redraw, noise, z0))
            ax = axes[2 * k + m]
            show(ax, torch.cat([x0, images]), ncols=8)
            ax.text(-4, 15, f"{name}: digit, then level {level}\nredrawn ({int(redraw.sum())} dims)",
                    ha="right", va="center", fontsize=9)
plt.subplots_adjust(left=0.25, right=0.98, top=0.98, bottom=0.02, hspace=0.1)
plt.show()
""",
    ),
    (
        "md",
        r"""
Redrawing the level-1 latents keeps the digit and changes local detail (stroke ends, small marks); redrawing the
level-2 latents loses the digit. The global shape is carried by the dimensions that pass through both levels, the
kind of hierarchy the RealNVP paper shows by resampling the lower levels of latents. It is also the part that two
minutes of training have not learned: redrawing it gives what the samples above give, fragments rather than digits.
""",
    ),
    (
        "md",
        r"""
## Summary

* Preprocessing is part of the model: fresh uniform dequantization per minibatch, and `pf.Logit(shape, lam).inv` as
  the flow's last part so that `log_prob` is a density on $[0, 1]^D$ with the logit's Jacobian inside;
  `pf.data.bits_per_dim` adds the $D \log 256$ offset to report pixel-space bits/dim (uniform = 8).
* Coupling masks are bool tensors (`pf.masks.checkerboard`, `pf.masks.channels`); `Squeeze` is `space_to_depth`
  around an inner flow, `FactorOut` passes half of the channels straight to the base.
* `pf.realnvp_image` and `pf.glow` return one flow over $(C, H, W)$; the multi-scale model is one
  `TransformedDistribution` with exact `log_prob` (checked above against $\log \mathcal N(z) - \log|\det|$) and
  exact sampling and encoding.
* The bits/dim above come from two minutes of single-thread CPU training of small models; they are far from the
  papers' 1.06 (RealNVP) and 1.05 (Glow). For longer runs use `bench/train_mnist.py --model realnvp|glow`.
""",
    ),
]
