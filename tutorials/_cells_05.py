"""Cells of ``05_wavenet_pixelcnn.ipynb``; ``tutorials/_build.py 05`` writes (and with ``--execute`` runs) it."""

NOTEBOOK = "05_wavenet_pixelcnn.ipynb"
REQUIRES = ["spoken_digits", "mnist"]  # the tests skip it, with the reason, when either data set is absent

CELLS = [
    (
        "md",
        r"""
# WaveNet and PixelCNN conditioners: autoregressive flows over audio and images

A MAF or IAF layer (tutorial 02) needs a *conditioner*: a network whose output for entry $i$ depends only on the
entries before $i$. A MADE does this for vectors with masked dense layers. For a long sequence or an image that
is wasteful: the dependencies are local and the same everywhere, which is what convolutions express.

* `pf.nn.WaveNet(C, T, ...)` (van den Oord et al. 2016, arXiv:1609.03499) conditions sequences of shape
  $(C, T)$ with causal, dilated convolutions;
* `pf.nn.PixelCNN(C, H, W, ...)` (gated PixelCNN, van den Oord et al. 2016, arXiv:1606.05328) conditions images
  of shape $(C, H, W)$ in raster order.

Either goes into a layer as `pf.MAF(conditioner=net)` or `pf.IAF(conditioner=net)`, or into a stack as
`pf.maf((C, T), num_layers=n, conditioner=lambda i: pf.nn.WaveNet(C, T, ...))` (one fresh network per layer).

This notebook: **1.** causal and dilated convolutions pictured, and the receptive field read off the Jacobian;
**2.** a WaveNet MAF on spoken digits (8 kHz speech), conditioned on the digit: test NLL and generated audio;
**3.** naive vs cached generation on that model, timed; **4.** a PixelCNN MAF on MNIST downsampled to
$14 \times 14$, with samples.

Everything runs on one CPU thread in about six minutes: the models are small and train for two and a half
minutes (speech) and a minute and a half (digits). They are far from the published models (WaveNet trains for
days on GPUs); `bench/bench_speech.py` runs a longer speech comparison.
""",
    ),
    (
        "code",
        r"""
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # Pyro imports tqdm.auto; without ipywidgets it warns

import math
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from IPython.display import Audio, display

import pyro_flows as pf

# The tests run this notebook with PYRO_FLOWS_SMOKE=1: tiny models, short windows and 5 training steps.
SMOKE = os.environ.get("PYRO_FLOWS_SMOKE") == "1"
if SMOKE:
    print("smoke mode: tiny models, short windows and 5 training steps; the numbers below mean nothing")

torch.set_num_threads(1)  # a shared CPU: one thread, so that the time budgets and speeds mean the same on every run
pyro.set_rng_seed(0)      # seeds torch, numpy and random

def onehot(digit):
    # the context of every conditional model here: the spoken (or drawn) digit, one-hot
    return F.one_hot(digit, 10).float()
""",
    ),
    (
        "md",
        r"""
## 1. Causal and dilated convolutions

A WaveNet maps a sequence $x_{1..T}$ to the parameters $(m_t, s_t)$ of every step at once, with $m_t, s_t$
depending on $x_{<t}$ only. Two tricks make that cheap and long-ranged:

* **causal**: the input is shifted right by one step, then every convolution is padded on the left only, so no
  output sees the present or the future;
* **dilated**: residual layer $\ell$ reads its input at $t$ and at $t - d_\ell$ (kernel size 2), with dilations
  $1, 2, 4, \dots$: the receptive field doubles with every layer instead of growing by one.

With kernel size $k$ and dilations $d_1, \dots, d_L$ (after an input convolution of $k$ taps) the output at $t$
sees $R = (k - 1)(1 + \sum_\ell d_\ell) + 1$ past samples, `net.receptive_field`. Left: the stack of a small
WaveNet, with the inputs that one output depends on. Middle and right: the Jacobian
$\partial m_t / \partial x_s$ of two small WaveNets computed with `torch.autograd.functional.jacobian`, black where
it is nonzero. It is strictly lower triangular (causal) and a band $R$ wide. A new WaveNet's output convolution
is zero (a new flow layer is the identity), so we give it random weights first.
""",
    ),
    (
        "code",
        r"""
def draw_stack(ax, length, dilations, t):
    # the nodes (time s, level) that output t depends on, top down; level 0 is the input x, level 1 the input
    # convolution (k = 2) of x shifted by one (it reads x[s-2], x[s-1]), level l >= 2 a residual layer that
    # reads its input at s and s - d
    levels = [1] + list(dilations)
    need, edges = {t}, []
    for level in range(len(levels), 0, -1):
        below = set()
        for s in need:
            sources = (s - 2, s - 1) if level == 1 else (s - levels[level - 1], s)
            for r in sources:
                if r >= 0:
                    below.add(r)
                    edges.append(((s, level), (r, level - 1)))
        need = below
    for level in range(len(levels) + 1):
        ax.scatter(range(length), [level] * length, s=12, color="lightgrey", zorder=1)
    for (s, a), (r, b) in edges:
        ax.plot([s, r], [a, b], color="C0", lw=0.8, zorder=2)
    used = {node for edge in edges for node in edge}
    ax.scatter([s for s, _ in used], [lv for _, lv in used], s=18, color="C0", zorder=3)
    ax.scatter([t], [len(levels)], s=50, color="C3", zorder=4)
    ax.set_yticks(range(len(levels) + 1), ["input x", "input conv"] + [f"dilation {d}" for d in dilations])
    ax.set_xlabel("time step")
    ax.set_title(f"output at t = {t} reads x[{min(need)}..{max(need)}]: {len(need)} samples", fontsize=10)
    return len(need)

def wavenet_jacobian(length, **kwargs):
    torch.manual_seed(0)
    net = pf.nn.WaveNet(1, length, residual_channels=8, skip_channels=8, **kwargs)
    torch.nn.init.normal_(net.output.weight)  # zero at construction: the Jacobian would be zero
    x = torch.randn(length)
    jac = torch.autograd.functional.jacobian(lambda v: net(v.reshape(1, 1, -1))[0].reshape(-1), x)
    return net, jac  # jac[t, s] = d m_t / d x_s

DILATIONS = (1, 2, 4, 8)
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), gridspec_kw={"width_ratios": [2.2, 1, 1]})
seen = draw_stack(axes[0], 24, DILATIONS, t=23)
print(f"kernel 2, dilations {DILATIONS}: the picture counts {seen} samples, "
      f"receptive_field = {pf.nn.WaveNet(1, 24, dilations=DILATIONS).receptive_field}")
for ax, k in zip(axes[1:], (2, 3)):
    net, jac = wavenet_jacobian(40, kernel_size=k, dilations=DILATIONS)
    nonzero = jac != 0
    t, s = nonzero.nonzero(as_tuple=True)
    print(f"kernel {k}: Jacobian zero on and above the diagonal: {not nonzero.triu().any().item()}; "
          f"widest reach t - s = {(t - s).max().item()}, receptive_field = {net.receptive_field}")
    ax.imshow(nonzero, cmap="Greys", interpolation="nearest")
    ax.set(title=f"kernel {k}: d m_t / d x_s != 0", xlabel="input s", ylabel="output t")
plt.tight_layout()
plt.show()
""",
    ),
    (
        "md",
        r"""
Nine layers of dilations $1, \dots, 256$ see 513 samples, 64 ms of 8 kHz audio, for the price of nine small
convolutions; WaveNet repeats such blocks to see further.

## 2. A WaveNet MAF on spoken digits

`pf.data.spoken_digits` holds "zero" to "nine" spoken by 32 synthetic voices at 8 kHz, split by speaker (24
train voices, 4 validation, 4 test: the test NLL is on **unheard voices**). With `window=T` each clip gives one
window of $T$ samples inside the clip (random in train, centered in valid and test); `add_noise=True` adds one
16-bit quantization step of uniform noise, so that a density of the waveform lower-bounds the probability of the
integers, as for images. We take three random windows per training clip.

The model, over events of shape $(1, T)$ (one channel, $T$ time steps):

* two MAF layers, each $z_t = x_t\, e^{s_t} + m_t$ with $(m_t, s_t)$ from a WaveNet of $x_{<t}$ and of the digit
  (`context_dim=10`, a one-hot vector added to every gate: *global conditioning*);
* `pf.MuLaw((1, T)).inv` last: the MAF models mu-law companded audio (the compander of WaveNet and G.711, which
  spreads the small amplitudes where speech spends its time), and the expansion's exact log-det brings every
  density back to waveform units;
* a **Logistic** base: $z_t \sim \mathrm{Logistic}(0, 1)$, what Parallel WaveNet (van den Oord et al. 2017,
  arXiv:1711.10433) uses, whose student is an IAF of this kind driven by logistic noise.

`pf.flow_distribution(flow, base=...)` of a conditional flow is a conditional distribution;
`pf.fit(..., context=...)` trains it with one context row per training row, by maximum likelihood.
""",
    ),
    (
        "code",
        r"""
T = 128 if SMOKE else 1024  # samples per window: 16 or 128 ms at 8 kHz
CROPS = 1 if SMOKE else 3   # random windows per training clip
# drop_short=True leaves out the clips shorter than T (none for these T; the shortest clip has 1920 samples)
parts = [pf.data.spoken_digits("train", window=T, add_noise=True, drop_short=True, seed=s) for s in range(CROPS)]
train_x = torch.cat([p.x for p in parts])[:, None, :]  # (N, 1, T): the flow's event is (channels, time)
train_c = onehot(torch.cat([p.digit for p in parts]))
valid = pf.data.spoken_digits("valid", window=T, add_noise=True, seed=2)
test = pf.data.spoken_digits("test", window=T, add_noise=True, seed=1)
n_eval = 20 if SMOKE else None
valid_x, valid_c = valid.x[:n_eval, None, :], onehot(valid.digit[:n_eval])
test_x, test_c = test.x[:n_eval, None, :], onehot(test.digit[:n_eval])
RATE = test.sample_rate
print(f"train {tuple(train_x.shape)}, valid {tuple(valid_x.shape)}, test {tuple(test_x.shape)}, {RATE} Hz, "
      f"values in [{train_x.min().item():.3f}, {train_x.max().item():.3f}]")

NET = dict(  # every layer's WaveNet
    residual_channels=8 if SMOKE else 24,
    skip_channels=8 if SMOKE else 24,
    kernel_size=2,
    dilations=tuple(2**i for i in range(4 if SMOKE else 9)),  # 1, 2, ..., 256
    context_dim=10,  # the digit, one-hot
)

def wavenet_maf(length):
    # two MAF layers with WaveNet conditioners over (1, length), then the mu-law expansion
    layers = pf.maf((1, length), num_layers=2, conditioner=lambda i: pf.nn.WaveNet(1, length, **NET))
    return pf.Compose([layers, pf.MuLaw((1, length)).inv])

def logistic(length, temperature=1.0, dtype=torch.float32):
    return dist.Logistic(torch.zeros(1, length, dtype=dtype), torch.full((1, length), temperature, dtype=dtype)).to_event(2)

torch.manual_seed(0)
flow = wavenet_maf(T)
speech = pf.flow_distribution(flow, base=logistic(T))  # conditional: speech.condition(onehot(digits))
print(flow.parts[0].parts[0].conditioner.extra_repr())  # each layer's WaveNet
print(f"{sum(p.numel() for p in flow.parameters()):,} parameters")
""",
    ),
    (
        "code",
        r"""
fit = pf.fit(
    speech, train_x, valid_x, context=train_c, valid_context=valid_c,
    steps=5 if SMOKE else None, max_seconds=None if SMOKE else 150,  # a budget of two and a half minutes
    batch_size=8, lr=1e-3, eval_every=5 if SMOKE else 100, eval_batch_size=60, patience=None,
    progress=False, seed=0,
)
print(f"{fit.steps_run} steps in {fit.wall_time:.0f} s; validation NLL (nats per sample) every {fit.history.step[0]} steps:")
print(" ".join(f"{v / T:.3f}" for v in fit.history.valid_nll))
""",
    ),
    (
        "md",
        r"""
**The test NLL** is in nats per sample of the density of the dequantized waveform in $[-1, 1)$ units. Adding
$\ln 32768$ per sample turns it into the NLL of the 16-bit integers (the dequantization bound), in bits per
sample after dividing by $\ln 2$: 16 bits is the cost of storing raw samples. For reference, a classic of speech
coding: a **linear predictor**, $x_t = w \cdot x_{t-32..t-1} + b + \sigma\varepsilon$ with Gaussian
$\varepsilon$, fitted by least squares on the same training windows (its NLL is exact too).
""",
    ),
    (
        "code",
        r"""
LN_STEP = math.log(32768.0)

def bits_per_sample(nats):
    return (nats + LN_STEP) / math.log(2)

def linear_ar_nll(train, test, order=32):
    # x_t = w . x[t-order..t-1] + b + sigma eps, least squares; the past before a window's start is zeros
    def lagged(x):
        padded = F.pad(x, (order, 0))
        return torch.stack([padded[:, order - k : padded.shape[1] - k] for k in range(1, order + 1)], dim=-1)
    X = lagged(train.double())[:, order:].reshape(-1, order)
    y = train.double()[:, order:].reshape(-1)
    A = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], 1)
    w = torch.linalg.lstsq(A, y[:, None]).solution[:, 0]
    var = ((A @ w - y) ** 2).mean().item()
    residual = test.double() - (lagged(test.double()) @ w[:-1] + w[-1])
    return 0.5 * math.log(2 * math.pi * var) + (residual**2).mean().item() / (2 * var)

wavenet_nats = pf.nll(speech, test_x, context=test_c, batch_size=60) / T
linear_nats = linear_ar_nll(train_x[:, 0], test_x[:, 0])
print(f"test NLL on the {len(test_x)} centered windows of 4 unheard voices, T = {T}:")
print("| model | nats/sample | bits/sample (16-bit) |")
print("| --- | ---: | ---: |")
for name, nats in (("linear AR(32), Gaussian", linear_nats), ("WaveNet MAF, 2 layers", wavenet_nats)):
    print(f"| {name} | {nats:.3f} | {bits_per_sample(nats):.2f} |")
""",
    ),
    (
        "md",
        r"""
**Samples.** The convolutions work at any length, but a flow layer is built for one (its order, `degrees`, has
$T$ entries); to generate longer clips we build the same stack for length $G$ and load the trained weights into
it. Sampling a MAF runs each layer's slow side, $x_t = (z_t - m_t)\, e^{-s_t}$ one step at a time; section 3 is
about its cost. We draw at temperature 0.8 (the base's scale): a model trained for minutes drifts, at full
temperature, into amplitudes beyond the companded range $[-1, 1]$, which the mu-law expansion then blows up
exponentially; the clips are clipped to $[-1, 1]$ for playback. Above: the longest test clip of three digits (unheard
voices); below: samples conditioned on the same digits.
""",
    ),
    (
        "code",
        r"""
G = T if SMOKE else 4096  # samples to generate: 0.5 s
long_flow = wavenet_maf(G)
long_flow.load_state_dict(flow.state_dict())
clips = pf.data.spoken_digits("test")  # whole clips, zero-padded to 8192 samples
DIGITS = [0, 5, 9]
pick = [int(torch.where(clips.digit == d, clips.length, 0).argmax()) for d in DIGITS]  # the longest clip of each
real = clips.x[pick, :G]
TEMPERATURE = 0.8
NFFT = 32 if SMOKE else 256  # spectrogram frames of 32 ms
torch.manual_seed(3)
with torch.no_grad():
    generated = pf.flow_distribution(long_flow, base=logistic(G, TEMPERATURE), context=onehot(torch.tensor(DIGITS))).sample()[:, 0]
outside = (generated.abs() > 1).float().mean().item()
generated = generated.nan_to_num(0.0).clamp(-1, 1)
print(f"{len(DIGITS)} samples of {G} ({G / RATE:.2f} s) at temperature {TEMPERATURE}; {100 * outside:.2f}% of their "
      "values beyond [-1, 1], clipped")

fig, axes = plt.subplots(4, len(DIGITS), figsize=(13, 7.5), sharex=True)
for j, d in enumerate(DIGITS):
    for row, (name, clip) in enumerate((("test clip", real[j]), ("generated", generated[j]))):
        seconds = np.arange(G) / RATE
        axes[2 * row, j].plot(seconds, clip.numpy(), lw=0.4, color="C0" if row == 0 else "C3")
        axes[2 * row, j].set(ylim=(-1, 1), title=f"{name}, digit {d}")
        axes[2 * row + 1, j].specgram(clip.numpy(), Fs=RATE, NFFT=NFFT, noverlap=NFFT * 3 // 4, cmap="magma", interpolation="nearest")
        axes[2 * row + 1, j].set_ylabel("Hz")
for ax in axes[-1]:
    ax.set_xlabel("seconds")
plt.tight_layout()
plt.show()
for d, clip in zip(DIGITS, generated):
    print(f"generated, digit {d}:")
    display(Audio(clip.numpy(), rate=RATE, normalize=False))
""",
    ),
    (
        "md",
        r"""
After two and a half minutes of training on one thread the samples are no words. Each starts with a loud burst:
the model was trained on windows cut out of running speech, so at $t = 0$, with nothing but zeros in its past,
it is at its most uncertain. Then it mostly drifts into near-silence with short bursts: quiet is the easiest
thing to predict, and a temperature below 1 pulls the sampler towards it. The NLL rewards the short-range
structure (what follows the last few milliseconds), which the model has learned better than the linear
predictor; the shape of a word spans thousands of samples beyond its receptive field of 513. That takes far
longer training, larger networks and, in WaveNet, local conditioning on linguistic or spectral features
(`local_context=` of `pf.nn.WaveNet`).

## 3. Naive vs cached generation

Each layer's sampling direction is sequential: $x_t$ needs $m_t, s_t$, which need $x_{<t}$. Two ways to compute
it, chosen by `layer.inversion`:

* `"recursive"` (naive): step $t$ runs the **whole** WaveNet over the whole sequence and keeps the entries of
  step $t$: $T$ passes of cost $O(T)$, $O(T^2)$ in all. It needs nothing but the order, and keeps the autograd
  graph.
* `"sequential"` (cached, Paine et al. 2016, arXiv:1611.09482, "Fast WaveNet generation"): each layer keeps a
  queue of its last $(k - 1)\,d + 1$ inputs, so a step computes one new column of activations per layer: $O(1)$
  per step, $O(T)$ in all. No gradients; it is what `"auto"`, the default, uses under `torch.no_grad()`.

Both are exact: in float64 they give the same sample from the same noise. Below, both run in full on a short
sequence; at longer lengths the naive time is estimated from a few timed passes (one step of the recursion is one
pass of every layer's WaveNet at the full length, so its cost is the same at every step), the cached one is
measured in full. Batch 1 is the case of a real-time speech synthesizer.
""",
    ),
    (
        "code",
        r"""
def with_weights(length, dtype=torch.float32):
    stack = wavenet_maf(length).to(dtype)
    stack.load_state_dict(flow.state_dict())
    return stack

def timed_sample(stack, length, batch, mode, dtype=torch.float32):
    pf.set_inversion(stack, mode)  # every autoregressive layer of the stack
    d = pf.flow_distribution(stack, base=logistic(length, TEMPERATURE, dtype), context=onehot(torch.arange(batch) % 10).to(dtype))
    torch.manual_seed(7)  # the same base noise for both modes
    with torch.no_grad():
        start = time.perf_counter()
        x = d.sample()
        return x, time.perf_counter() - start

def naive_step_seconds(stack, length, batch, passes):
    # one step of the recursion: a full pass of every layer's WaveNet (and its op) at this length
    u, ctx = torch.zeros(batch, 1, length), onehot(torch.arange(batch) % 10)
    total = 0.0
    with torch.no_grad():
        for layer in (step.layer for step in pf.layers(stack) if isinstance(step.layer, pf.MAF)):
            layer.op.inverse(u, layer.conditioner(u, ctx))  # warm-up
            start = time.perf_counter()
            for _ in range(passes):
                layer.op.inverse(u, layer.conditioner(u, ctx))
            total += (time.perf_counter() - start) / passes
    return total

SHORT = 32 if SMOKE else 256
short64 = with_weights(SHORT, torch.float64)
a, _ = timed_sample(short64, SHORT, 2, "recursive", torch.float64)
b, _ = timed_sample(short64, SHORT, 2, "sequential", torch.float64)
relative = ((a - b).abs() / a.abs().clamp_min(1.0)).max().item()  # the mu-law expansion amplifies large values
print(f"float64, length {SHORT}: recursive and cached samples differ by at most {relative:.1e} (relative)")

rows = []
for length, batch in ((SHORT, 1), (T, 1), (4 * T if SMOKE else 8192, 1), (4 * T if SMOKE else 8192, 16)):
    stack = with_weights(length)
    _, cached = timed_sample(stack, length, batch, "sequential")
    if length == SHORT:
        _, naive = timed_sample(stack, length, batch, "recursive")
        how = "measured"
        estimate = length * naive_step_seconds(stack, length, batch, passes=3)
        print(f"length {length}: the naive run measured {naive:.2f} s, estimated from 3 timed passes {estimate:.2f} s")
    else:
        naive = length * naive_step_seconds(stack, length, batch, passes=1 if SMOKE else 3)
        how = "estimated"
    rows.append((length, batch, batch * length / naive, how, batch * length / cached, cached, naive / cached))
    print(f"length {length}, batch {batch}: cached {cached:.2f} s, naive {naive:.2f} s ({how})", flush=True)
print()
print("| length | batch | naive samples/s | cached samples/s | cached run | speed-up |")
print("| ---: | ---: | ---: | ---: | ---: | ---: |")
for length, batch, naive_rate, how, cached_rate, cached, ratio in rows:
    print(f"| {length} | {batch} | {naive_rate:,.1f} ({how}) | {cached_rate:,.0f} | {cached:.2f} s | {ratio:,.0f}x |")
""",
    ),
    (
        "md",
        r"""
The cached generation's cost per sample does not depend on the length, the naive one's grows with it: at
$T = 8192$ (about a second of audio) the queues are tens of times faster at batch 1. A batch of 16 costs the
cached generation about as much as one clip (its steps are small matrix products dominated by per-step overhead),
while the naive passes over $16 \times 8192$ samples are as large as they get. Neither is real time at 8 kHz for
one clip on one CPU thread in Python. Parallel WaveNet removes the sequential loop altogether by
distilling the MAF into an IAF, whose sampling direction is one parallel pass.

## 4. A PixelCNN MAF on MNIST

`pf.nn.PixelCNN(C, H, W, hidden_channels=, num_layers=, kernel_size=)` is a gated PixelCNN over images in raster
order (row by row, left to right, channels inside a pixel). A **vertical stack** of convolutions sees the rows
above; a **horizontal stack** sees the pixels to the left in the current row and receives the vertical stack's
features shifted down one row. This removes the *blind spot* of the original PixelCNN, whose masked $k \times k$
convolutions missed a growing wedge of pixels up and to the right. With $L$ layers of kernel size $2r + 1$ the
receptive field, `net.receptive_field` $= L r$, is the $Lr$ pixels to the left and the $Lr + 1$ rows above,
$Lr$ columns each side: the gradient of one output below, on a $24 \times 24$ canvas (black: the inputs it depends on; red: the pixel
itself).

The model: `pf.MAF(conditioner=pf.nn.PixelCNN(1, 14, 14, ...))`, then `pf.Logit(...).inv` as in tutorial 03
(dequantized pixels in $[0, 1)$, modelled in logit space), a standard normal base. To keep sampling quick the
digits are downsampled to $14 \times 14$ (the mean of each $2 \times 2$ block, rounded to an integer
$0..255$), and the PixelCNN is small and trains for a minute and a half: the samples show strokes, not yet
reliable digits.
""",
    ),
    (
        "code",
        r"""
S = (1, 14, 14)
PIXELCNN = dict(hidden_channels=8 if SMOKE else 32, num_layers=2 if SMOKE else 4, kernel_size=5)

torch.manual_seed(0)
CANVAS = 24
probe = pf.nn.PixelCNN(1, CANVAS, CANVAS, **PIXELCNN)  # the model's settings, on a larger canvas: its edges show
torch.nn.init.normal_(probe.output.weight)  # zero at construction: the gradient would be zero
x = torch.randn(1, 1, CANVAS, CANVAS, requires_grad=True)
i, j = 16, 12
probe(x)[0][0, 0, i, j].backward()
field = (x.grad[0, 0] != 0).float()
rows_above = int(field[:i].any(1).sum())
columns = field[:i].any(0).nonzero()[:, 0]
print(f"output ({i}, {j}) depends on {int(field.sum())} inputs: {int(field[i].sum())} to its left in its row, "
      f"{rows_above} rows above from column {j - int(columns.min())} left to {int(columns.max()) - j} right; "
      f"on itself: {bool(field[i, j])}; receptive_field = {probe.receptive_field}")

split = pf.data.mnist()  # uint8 (N, 1, 28, 28), 50k / 10k / 10k

def downsample(pixels):  # (N, 1, 28, 28) uint8 -> (N, 1, 14, 14) uint8: the mean of each 2 x 2 block
    return F.avg_pool2d(pixels.float(), 2).round().to(torch.uint8)

digits_train = downsample(split.train[:2000] if SMOKE else split.train)
digits_valid = pf.data.dequantize(downsample(split.valid[: 50 if SMOKE else 500]), generator=torch.Generator().manual_seed(1))
digits_test = pf.data.dequantize(downsample(split.test[: 50 if SMOKE else 2000]), generator=torch.Generator().manual_seed(2))

fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
axes[0].imshow(field, cmap="Greys", vmin=0, vmax=1)
axes[0].add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color="C3"))
axes[0].set_title(f"receptive field of pixel ({i}, {j})", fontsize=10)
axes[0].set_xticks(np.arange(-0.5, CANVAS), minor=True)
axes[0].set_yticks(np.arange(-0.5, CANVAS), minor=True)
axes[0].grid(which="minor", color="0.8", lw=0.5)
axes[0].tick_params(which="minor", length=0)
axes[1].imshow(np.hstack([np.pad(im[0].numpy(), 1, constant_values=128) for im in digits_train[:6]]), cmap="gray_r")
axes[1].set_title("downsampled training digits, 14 x 14", fontsize=10)
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
plt.tight_layout()
plt.show()
""",
    ),
    (
        "code",
        r"""
torch.manual_seed(0)
pixel_flow = pf.Compose([pf.MAF(conditioner=pf.nn.PixelCNN(*S, **PIXELCNN)), pf.Logit(S, lam=0.05).inv])
pixels = pf.flow_distribution(pixel_flow)  # standard normal base over (1, 14, 14)
print(pixel_flow.parts[0].conditioner.extra_repr())
print(f"{sum(p.numel() for p in pixel_flow.parameters()):,} parameters")
torch.manual_seed(0)  # the dequantization noise of pf.fit's preprocess comes from the global generator
pixel_fit = pf.fit(
    pixels, digits_train, digits_valid, preprocess=pf.data.dequantize,  # fresh dequantization noise every step
    steps=5 if SMOKE else None, max_seconds=None if SMOKE else 90,
    batch_size=32, lr=2e-3, eval_every=5 if SMOKE else 200, patience=None, progress=False, seed=0,
)
test_bpd = pf.data.bits_per_dim(pf.nll(pixels, digits_test, batch_size=500), math.prod(S))
print(f"{pixel_fit.steps_run} steps in {pixel_fit.wall_time:.0f} s; test {test_bpd:.3f} bits/dim on {len(digits_test)} "
      "downsampled test digits (uniform: 8)")
""",
    ),
    (
        "md",
        r"""
**Sampling** a PixelCNN MAF is sequential too: $C H W = 196$ steps. The naive recursion runs the PixelCNN over
the whole image at every step; the PixelCNN's own `invert` (`"sequential"`, the default under `no_grad`) runs it
at each step on the crop of its receptive field only, $(R + 2) \times (2R + 1)$ pixels, which gives the same
parameters. On a $14 \times 14$ image with $R = 8$ the crop is most of the image, so the gain is small; it grows
with the image.
""",
    ),
    (
        "code",
        r"""
def timed_pixels(mode, n, seed):
    pf.set_inversion(pixel_flow, mode)
    torch.manual_seed(seed)
    with torch.no_grad():
        start = time.perf_counter()
        images = pixels.sample((n,))
    pf.set_inversion(pixel_flow, "auto")
    return images, time.perf_counter() - start

N_TIMED = 2 if SMOKE else 8
a, naive = timed_pixels("recursive", N_TIMED, seed=4)
b, cached = timed_pixels("sequential", N_TIMED, seed=4)
print(f"{N_TIMED} images: recursive {naive:.2f} s, cached crops {cached:.2f} s ({naive / cached:.1f}x); "
      f"largest difference {(a - b).abs().max().item():.1e}")
samples, _ = timed_pixels("auto", 8 if SMOKE else 32, seed=5)

def tile(images, ncols, pad=1):  # (N, 1, H, W) in [0, 1] as one array, ncols per row
    images = images.reshape(-1, *images.shape[-2:]).clamp(0, 1).numpy()
    n, h, w = images.shape
    nrows = math.ceil(n / ncols)
    canvas = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), 0.25)
    for k, image in enumerate(images):
        r, c = divmod(k, ncols)
        canvas[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = image
    return canvas

fig, axes = plt.subplots(1, 2, figsize=(13, 4))
axes[0].imshow(tile(digits_test[:32], 8), cmap="gray_r", vmin=0, vmax=1)
axes[0].set_title("test digits (dequantized)", fontsize=10)
axes[1].imshow(tile(samples, 8), cmap="gray_r", vmin=0, vmax=1)
axes[1].set_title(f"PixelCNN MAF samples ({pixel_fit.steps_run} steps, {test_bpd:.2f} bits/dim)", fontsize=10)
for ax in axes:
    ax.set_axis_off()
plt.tight_layout()
plt.show()
""",
    ),
    (
        "md",
        r"""
## Summary

* `pf.nn.WaveNet` and `pf.nn.PixelCNN` are autoregressive conditioners for sequences $(C, T)$ and images
  $(C, H, W)$: `pf.MAF(conditioner=net)`, `pf.IAF(conditioner=net)`, or `pf.maf(shape, num_layers=n,
  conditioner=lambda i: ...)`. Their receptive fields (`.receptive_field`) are exact, as the Jacobians show.
* A MAF with WaveNet conditioners is a density over waveforms with an exact `log_prob` in one pass per layer;
  with a Logistic base and the mu-law expansion it is the model Parallel WaveNet distils. Global conditioning
  (`context_dim`) takes a speaker or a class, local conditioning (`local_context`) a feature sequence.
* Sampling it is sequential; `layer.inversion = "sequential"` (the default without gradients) uses the queues
  of fast WaveNet generation, `"recursive"` the naive full-pass recursion, which keeps gradients.
* `bench/bench_speech.py` trains a larger WaveNet MAF for longer and compares it with a MADE MAF.
""",
    ),
]
