"""Cells of ``06_parallel_wavenet.ipynb``; ``tutorials/_build.py 06`` writes (and with ``--execute`` runs) it."""

NOTEBOOK = "06_parallel_wavenet.ipynb"
REQUIRES = ["spoken_digits"]  # the tests skip it, with the reason, when the data set is absent

CELLS = [
    (
        "md",
        r"""
# Parallel WaveNet: probability density distillation

Tutorial 05 trained a WaveNet MAF on spoken digits: its density is one network pass per layer, but sampling it
is a loop over time steps, even with the queues of fast WaveNet generation. An IAF is the mirror image: it
samples in one parallel pass, and scores its *own* samples in that same pass, but scoring anything else is the
sequential loop. Parallel WaveNet (van den Oord et al. 2017, arXiv:1711.10433) takes the best of both: a trained
MAF **teacher** $T$ teaches an IAF **student** $S$ by minimizing

$$\mathrm{KL}(S \,\|\, T) = \mathbb{E}_{x \sim S}\left[\log p_S(x) - \log p_T(x)\right]
= \underbrace{H(S, T)}_{\text{cross-entropy}} - \underbrace{H(S)}_{\text{entropy}},$$

which needs exactly the cheap operations of both: student samples with their own log-density (one student pass)
and the teacher's log-density of them (one teacher pass). No data is needed, only the teacher.

This notebook: **1.** the two flows, and why one samples fast and the other scores fast, by counting network
passes; **2.** the teacher, a digit-conditioned WaveNet MAF on spoken digits (tutorial 05); **3.** the
distillation objective, as a plain loss and as Pyro SVI (model = teacher, guide = student); **4.** distilling the
teacher into a WaveNet IAF, with the KL, entropy and cross-entropy curves; **5.** spectrograms and audio of a
real, a teacher and a student clip; **6.** held-out NLL of both; **7.** sampling speed at $T = 8192$: the
student's one pass against the teacher's cached and naive generation.

`pyro_flows.models` has the tools: `distillation_loss`, `distillation_model_guide`, `DistillationMonitor`,
`power_loss`. Everything runs on one CPU thread in under five minutes: the teacher trains for a minute and a half,
two students for a minute and for a minute and a half. That is far from the published models (days on many
accelerators), as the samples will show.
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
import time

import matplotlib.pyplot as plt
import numpy as np
import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from IPython.display import Audio, display
from pyro.infer import SVI, Trace_ELBO

import pyro_flows as pf
from pyro_flows.models import (
    DistillationMonitor,
    StudentCollapseWarning,
    distillation_loss,
    distillation_model_guide,
    power_loss,
)

# The tests run this notebook with PYRO_FLOWS_SMOKE=1: tiny models, short windows and a few training steps.
SMOKE = os.environ.get("PYRO_FLOWS_SMOKE") == "1"
if SMOKE:
    print("smoke mode: tiny models, short windows and a few training steps; the numbers below mean nothing")

torch.set_num_threads(1)  # a shared CPU: one thread, so that the time budgets and speeds mean the same on every run
pyro.set_rng_seed(0)      # seeds torch, numpy and random

def onehot(digit):
    # the context of both flows: the spoken digit, one-hot
    return F.one_hot(digit, 10).float()

def logistic(length, temperature=1.0):
    # the base of both flows, over (1, length): Logistic(0, temperature) noise per time step
    return dist.Logistic(torch.zeros(1, length), torch.full((1, length), temperature)).to_event(2)
""",
    ),
    (
        "md",
        r"""
## 1. Teacher and student

Both flows model mu-law companded audio over a Logistic base, conditioned on the digit, and end with the same
mu-law expansion `pf.MuLaw((1, T)).inv` to waveforms (tutorial 05). Both use WaveNets over time as conditioners;
what differs is which side of each layer is the network pass:

* **teacher**, `pf.maf`: a MAF layer computes the noise from the data, $z_t = x_t\, e^{s_t(x_{<t})} + m_t(x_{<t})$.
  Given the data all of $x$ is known, so `log_prob(x)` is **one WaveNet pass per layer**; sampling must produce
  $x_t$ before $x_{t+1}$'s parameters exist: $T$ sequential steps per layer.
* **student**, `pf.iaf`: an IAF layer computes the data from the noise, $x_t = z_t\, e^{s_t(z_{<t})} + m_t(z_{<t})$.
  Given the noise all of $z$ is known, so `rsample()` is **one pass per layer**, and so is the `log_prob` of that
  sample: the layers cache their noise and log-determinant with the output they produced. Scoring someone else's
  $x$ must recover $z_t$ before $z_{t+1}$'s parameters exist: $T$ sequential steps per layer.

The teacher is the model of tutorial 05 (two MAF layers, WaveNets of dilations $1, \dots, 256$); the student has
four IAF layers. Every WaveNet here starts as the identity (its output convolution is zero).

To see the costs, a forward hook on every WaveNet counts its full passes, and a wrapper of its cached generation
(`WaveNet.invert`, the queues of tutorial 05, which never calls `forward`) counts its steps, one per time step.
The sequential sides run either way: cached (`layer.inversion = "sequential"`, the default without gradients) or
naive (`"recursive"`: one full pass per time step). On a short window of $L = 128$ samples:
""",
    ),
    (
        "code",
        r"""
T = 64 if SMOKE else 512  # the distillation's window: 64 ms at 8 kHz
TEACHER_NET = dict(
    residual_channels=8 if SMOKE else 24,
    skip_channels=8 if SMOKE else 24,
    dilations=tuple(2**i for i in range(4 if SMOKE else 9)),  # 1, 2, ..., 256: a receptive field of 513
    context_dim=10,  # the digit, one-hot
)
STUDENT_NET = dict(TEACHER_NET)  # the same WaveNet in each of the student's layers...
STUDENT_LAYERS = 2 if SMOKE else 4  # ...and twice as many layers

def teacher_stack(length):
    # MAF layers over companded audio (1, length), then the mu-law expansion to waveforms
    maf = pf.maf((1, length), num_layers=2, conditioner=lambda i: pf.nn.WaveNet(1, length, **TEACHER_NET))
    return pf.Compose([maf, pf.MuLaw((1, length)).inv])

def student_stack(length):
    iaf = pf.iaf((1, length), num_layers=STUDENT_LAYERS, conditioner=lambda i: pf.nn.WaveNet(1, length, **STUDENT_NET))
    return pf.Compose([iaf, pf.MuLaw((1, length)).inv])

class Counter:
    # full passes of the WaveNets (a forward hook) and steps of their cached generation (WaveNet.invert)
    def __init__(self, nets):
        self.passes = self.steps = 0
        for net in nets:
            net.register_forward_hook(self.count_pass)
            net.invert = self.counting(net.invert)  # an instance attribute: shadows the method

    def count_pass(self, module, inputs, output):
        self.passes += 1

    def counting(self, invert):
        def counted(solve, *args, **kwargs):
            def step(index, params):  # called once per time step, with that step's parameters
                self.steps += 1
                return solve(index, params)
            return invert(step, *args, **kwargs)
        return counted

L = 32 if SMOKE else 128
small_teacher, small_student = teacher_stack(L), student_stack(L)
counter = Counter([m for m in (*small_teacher.modules(), *small_student.modules()) if isinstance(m, pf.nn.WaveNet)])
clips = pf.data.spoken_digits("test", window=L, add_noise=True, seed=1)
x, c = clips.x[:2, None, :], onehot(clips.digit[:2])  # two real windows (1, L) and their digits
teacher_L = pf.flow_distribution(small_teacher, base=logistic(L), context=c)
student_L = pf.flow_distribution(small_student, base=logistic(L), context=c)

def student_own():
    sample = student_L.rsample()  # with gradients, as in training
    student_L.log_prob(sample)    # the same tensor: the IAF layers' cache has its noise and log-det

def sample_teacher(mode):
    pf.set_inversion(small_teacher, mode)
    with torch.no_grad():
        teacher_L.sample()

def score_student(mode):
    pf.set_inversion(small_student, mode)
    with torch.no_grad():
        student_L.log_prob(x)

rows = []
for what, run in (
    ("teacher: log_prob(x) of data", lambda: teacher_L.log_prob(x)),
    ("student: rsample(), then log_prob of that sample", student_own),
    ("teacher: sample(), cached", lambda: sample_teacher("sequential")),
    ("teacher: sample(), naive", lambda: sample_teacher("recursive")),
    ("student: log_prob(x) of data, cached", lambda: score_student("sequential")),
    ("student: log_prob(x) of data, naive", lambda: score_student("recursive")),
):
    counter.passes = counter.steps = 0
    run()
    rows.append((what, counter.passes, counter.steps))
print(f"teacher: 2 MAF layers, student: {STUDENT_LAYERS} IAF layers; windows of L = {L}, batch of 2")
print("| operation | full WaveNet passes | cached generation steps |")
print("| --- | ---: | ---: |")
for what, passes, steps in rows:
    print(f"| {what} | {passes} | {steps} |")
""",
    ),
    (
        "md",
        r"""
One pass per layer on the fast sides; on the slow sides $L$ steps per layer, each either a cheap queue update
(cached) or a full pass (naive, $L$ passes per layer). The cache of the student's own samples is per
distribution object and per tensor: `log_prob` of a *copy* of the sample, or of the sample under a second
`.condition(c)`, is external data again, and with gradients enabled (`"auto"` then picks `"recursive"`) costs
$L$ full passes per layer.

## 2. The teacher

As in tutorial 05: the digit-conditioned WaveNet MAF fitted by maximum likelihood to windows of $T = 512$
samples of 24 training voices, three random windows per clip, for a minute and a half. After training its
parameters are frozen (`requires_grad_(False)`): distillation trains the student only.
""",
    ),
    (
        "code",
        r"""
CROPS = 1 if SMOKE else 3  # random windows per training clip
parts = [pf.data.spoken_digits("train", window=T, add_noise=True, drop_short=True, seed=s) for s in range(CROPS)]
train_x = torch.cat([p.x for p in parts])[:, None, :]  # (N, 1, T)
train_c = onehot(torch.cat([p.digit for p in parts]))
valid = pf.data.spoken_digits("valid", window=T, add_noise=True, seed=2)
test = pf.data.spoken_digits("test", window=T, add_noise=True, seed=1)  # the centered window of each clip
n_eval = 20 if SMOKE else None
valid_x, valid_c = valid.x[:n_eval, None, :], onehot(valid.digit[:n_eval])
test_x, test_c = test.x[:n_eval, None, :], onehot(test.digit[:n_eval])
RATE = test.sample_rate

torch.manual_seed(0)
teacher = teacher_stack(T)
teacher_dist = pf.flow_distribution(teacher, base=logistic(T))  # conditional: .condition(onehot(digits))
fit = pf.fit(
    teacher_dist, train_x, valid_x, context=train_c, valid_context=valid_c,
    steps=5 if SMOKE else 900, batch_size=8, lr=1e-3,  # about a minute and a half on one thread
    eval_every=5 if SMOKE else 300, eval_batch_size=60, patience=None,
    progress=False, seed=0,
)
teacher.requires_grad_(False)
print(f"train {tuple(train_x.shape)}; {fit.steps_run} steps in {fit.wall_time:.0f} s; "
      f"validation NLL (nats per sample) every {fit.history.step[0]} steps:")
print(" ".join(f"{v / T:.3f}" for v in fit.history.valid_nll))
""",
    ),
    (
        "md",
        r"""
## 3. The objective: a loss, or SVI

**Leave out the shared tail.** A bijection $f$ applied to both flows leaves the KL unchanged: the log-determinant
of $f$ enters $\log p_S$ and $\log p_T$ alike at the same point and cancels. So both are distilled without their
mu-law expansion: `student.parts[0]` (the IAF stack) against `teacher.parts[0]` (the MAF stack), over the same
Logistic base. The Monte Carlo estimates below, with and without the tail, from the same noise, agree to float
precision.

**The per-step estimator** (`estimator="per_step"`, the paper's appendix A). With affine autoregressive layers in
one time order over a Logistic base, each $x_t$ given the past is a Logistic under the student, with location
and scale from one student pass (`student_conditionals`), and a Logistic under the teacher, from one teacher pass
on the student's sample (`teacher_conditionals`). The entropy is then exact, $H(S) = \sum_t \mathbb{E}[\log s_t]
+ 2T$, and each step's cross-entropy is averaged over `num_draws` fresh draws of that step alone. Same
expectation as Monte Carlo, lower variance. It needs the stacks alone: with the mu-law tail it refuses, with the
reason.
""",
    ),
    (
        "code",
        r"""
torch.manual_seed(1)
student = student_stack(T)
student_iaf = pf.flow_distribution(student.parts[0], base=logistic(T))  # conditional, companded audio
teacher_maf = pf.flow_distribution(teacher.parts[0], base=logistic(T))
student_full = pf.flow_distribution(student, base=logistic(T))          # with the mu-law tail: waveforms
digits = torch.tensor([0, 3, 5, 9])

estimates = {}
for name, (s, t) in {"with the tail": (student_full, teacher_dist), "stacks alone": (student_iaf, teacher_maf)}.items():
    torch.manual_seed(2)  # the same noise for both
    estimates[name] = distillation_loss(s, t, num_samples=2, context=onehot(digits)).kl_samples.flatten() / T
    print(f"Monte Carlo KL per sample, {name}: " + " ".join(f"{v:.4f}" for v in estimates[name].tolist()))
largest = (estimates["with the tail"] - estimates["stacks alone"]).abs().max().item()
print(f"largest difference: {largest:.1e} nats per sample")
try:
    distillation_loss(student_full, teacher_dist, context=onehot(digits), estimator="per_step")
except (TypeError, ValueError) as err:
    print(f"per_step with the tail: {type(err).__name__}: {err}")
""",
    ),
    (
        "md",
        r"""
**As Pyro SVI.** `distillation_model_guide(student, teacher)` returns a `(model, guide)` pair: the guide samples
the site `"x"` from the student, the model scores it under the teacher and observes nothing, so
$-\mathrm{ELBO} = \mathbb{E}_q[\log q(x) - \log p(x)] = \mathrm{KL}(S \,\|\, T)$: the usual
`SVI(model, guide, optim, Trace_ELBO())` trains the student. The student's layers are registered with Pyro
(`pyro.module`); the teacher's are not, and are frozen. With a batch of contexts the loss is the batch mean, what
`distillation_loss(..., num_samples=1).kl` computes: from the same random state they are the same number.
`Trace_ELBO` is the Monte Carlo estimator; the per-step one is `distillation_loss`'s. The context goes in
**positionally**, `svi.step(c)`: Pyro wraps the model and the guide in functions whose first parameter is named
`context` (its effect handlers'), so `svi.step(context=c)` fails with "got multiple values for argument
'context'". A few SVI steps, on a copy of the student (the plain loop below trains the original):
""",
    ),
    (
        "code",
        r"""
svi_student = copy.deepcopy(student)
svi_iaf = pf.flow_distribution(svi_student.parts[0], base=logistic(T))
model, guide = distillation_model_guide(svi_iaf, teacher_maf)
for seed in (3, 4):
    pyro.set_rng_seed(seed)
    neg_elbo = Trace_ELBO().loss(model, guide, onehot(digits))  # the context positionally
    pyro.set_rng_seed(seed)
    kl = distillation_loss(svi_iaf, teacher_maf, num_samples=1, context=onehot(digits)).kl.item()
    print(f"seed {seed}: -ELBO {neg_elbo:.3f}, distillation_loss(...).kl {kl:.3f} nats per window")

pyro.clear_param_store()
svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), Trace_ELBO())
generator = torch.Generator().manual_seed(5)
losses = [svi.step(onehot(torch.randint(0, 10, (8,), generator=generator))) for _ in range(3 if SMOKE else 10)]
print("SVI steps, -ELBO per sample: " + " ".join(f"{v / T:.3f}" for v in losses))
""",
    ),
    (
        "md",
        r"""
## 4. Distilling

A plain PyTorch loop: each step draws 8 digits, computes `distillation_loss(..., estimator="per_step")` at one
student sample per digit (4 draws per step for the cross-entropy), and takes an Adam step on the student. The
`DistillationMonitor` records the KL, the entropy and the cross-entropy of every step and watches for **student
collapse**: the student's entropy falling while the KL stalls. The reverse KL is *mode-seeking*: a student can
lower its cross-entropy by concentrating where the teacher is dense and pay for it in entropy. The rule compares
the means of two consecutive windows of 50 steps; its thresholds are in nats per window, here 0.05 and 0.005
nats per sample times $T$.

Two students from the same initialization: one on the KL alone, and one with ClariNet's regularizer (Ping et al.
2018, arXiv:1807.07281), `regularizer=4`: $\lambda \sum_t (\log s_{S,t} - \log s_{T,t})^2$ added to the loss,
which ties the scale of each step's conditional to the teacher's scale at the same point (both come out of the
per-step estimator anyway). The KL alone trains for 200 steps, the regularized student for 300, about 50 s and 80 s:
a fixed number of steps, so that reruns give the same numbers.

A step whose loss is not finite is skipped. Pyro's `Logistic.rsample` is `icdf(uniform_())`, and `uniform_`
returns exactly 0 about once in $2^{24}$ draws: a noise value of $-\infty$, a NaN sample, and, after the
backward pass, NaN in every parameter. With $8 \times 512$ draws per step that is about once in 4000 steps.
""",
    ),
    (
        "code",
        r"""
BATCH = 8

def distill(student, steps, regularizer, seed=0):
    # Adam on the student's IAF stack against the teacher's MAF stack; returns the monitor and the last result
    iaf = pf.flow_distribution(student.parts[0], base=logistic(T))
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)
    monitor = DistillationMonitor(window=2 if SMOKE else 50, entropy_drop=0.05 * T, kl_improvement=0.005 * T)
    generator = torch.Generator().manual_seed(seed)  # the digits of each batch
    torch.manual_seed(seed)                           # the student's noise and the per-step draws
    start, skipped = time.perf_counter(), 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StudentCollapseWarning)
        for step in range(1, steps + 1):
            out = distillation_loss(
                iaf, teacher_maf, context=onehot(torch.randint(0, 10, (BATCH,), generator=generator)),
                estimator="per_step", num_draws=4, regularizer=regularizer,
            )
            if not torch.isfinite(out.loss):  # a -inf base draw (see below): skip the step
                skipped += 1
                continue
            opt.zero_grad()
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 10.0)
            opt.step()
            monitor.record(out)
            if step % 100 == 0:
                recent = {k: np.mean(v[-100:]) / T for k, v in monitor.history.items()}
                print(f"  step {step} ({time.perf_counter() - start:.0f} s): KL {recent['kl']:.3f}, entropy "
                      f"{recent['entropy']:.3f}, cross-entropy {recent['cross_entropy']:.3f} nats per sample")
    student.eval()
    print(f"  {steps} steps in {time.perf_counter() - start:.0f} s ({skipped} skipped); collapse flagged at steps "
          f"{monitor.collapse_steps or 'none'}")
    for w in caught:
        print(f"  {w.category.__name__}: {w.message}")
    return monitor, out

plain_student = copy.deepcopy(student)  # the same initialization
print("KL alone:")
plain_monitor, _ = distill(plain_student, steps=5 if SMOKE else 200, regularizer=0.0)
print("KL + 4 x the scale regularizer:")
monitor, out = distill(student, steps=5 if SMOKE else 300, regularizer=4.0)

def smooth(values, n=25):
    # per sample, the running mean of n steps, at the steps it ends
    values = np.asarray(values) / T
    n = min(n, len(values))
    return np.arange(n - 1, len(values)), np.convolve(values, np.ones(n) / n, mode="valid")

fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
for m, style, label in ((monitor, "-", "regularizer 4"), (plain_monitor, "--", "KL alone")):
    axes[0].plot(*smooth(m.history["kl"]), "C0" + style, label=label)
    axes[1].plot(*smooth(m.history["entropy"]), "C1" + style, label=f"entropy H(S), {label}")
    axes[1].plot(*smooth(m.history["cross_entropy"]), "C2" + style, label=f"cross-entropy H(S, T), {label}")
    for s in m.collapse_steps:
        axes[0].axvline(s, color="C3", lw=0.8, ls=style)
axes[0].set(yscale="log", title="KL(student || teacher), mean of 25 steps", xlabel="step", ylabel="nats per sample")
axes[1].set(title="its two parts: KL = H(S, T) - H(S)", xlabel="step", ylabel="nats per sample")
for ax in axes:
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
""",
    ),
    (
        "md",
        r"""
Both KLs fall fast at first: the new student is white Logistic noise in companded space, far louder than speech,
and its entropy and cross-entropy drop together as it learns to be quiet where the teacher is quiet. Then the KL,
their difference, decreases slowly: it is still about 0.07 nats per sample, 35 nats per window of 512, when the
training stops. The two students end at about the same KL in different places: the one trained on the KL alone
has an entropy about 0.6 nats per sample lower, a narrower distribution (the reverse KL is mode-seeking); the
regularizer keeps each step's scale near the teacher's, and the entropy with it. The monitor flagged nothing: its
rule looks for an entropy that falls *while the KL stalls*, and here both fell together. In other runs, with
other seeds and teachers, made while writing this notebook, the KL alone sometimes settled in a worse state,
KL about 0.2 and entropy about -1.3 nats per sample (an entropy drop the monitor did not flag either: it came with
the KL's initial fall), with a held-out NLL above +1 nat per sample; the regularized runs did not.

**The power loss.** Parallel WaveNet adds a term that compares the average power spectrum of the student's
samples with that of real speech (`power_loss(x_student, x_real, n_fft=256)`, section 4.1 of the paper): it
pushes the student towards the energy of real speech in each frequency band, which the KL alone does not see.
It is not used above; to use it, add `weight * power_loss(waveforms, real_batch)` to `out.loss` (the student's
sample is `out.sample`, companded: the mu-law tail makes waveforms of it). Its value for the last training batch
against the test windows, and between two halves of the test windows:
""",
    ),
    (
        "code",
        r"""
N_FFT = 64 if SMOKE else 256
with torch.no_grad():
    waveforms = student.parts[1](out.sample)  # the mu-law expansion of the last training batch
half = len(test_x) // 2
print(f"power_loss(student batch, test windows) = {power_loss(waveforms, test_x, n_fft=N_FFT).item():.3e}")
print(f"power_loss(test windows, test windows') = {power_loss(test_x[:half], test_x[half:], n_fft=N_FFT).item():.3e}")
""",
    ),
    (
        "md",
        r"""
## 5. Listening, and looking

Both flows were trained on windows of 512 samples; their WaveNets run at any length, so for one-second clips we
build the stacks for $G = 8192$ samples and load the trained weights (`load_state_dict`). The teacher generates
with the queues (cached, a loop over 8192 steps per layer), the student in one pass per layer; both are timed,
for section 7. Rows: a test clip of the digit (an unheard voice), a teacher sample and a student sample
conditioned on it, at temperature 1 (the distribution the student was trained to match), clipped to $[-1, 1]$
for playback; each spectrogram has its own colour scale.
""",
    ),
    (
        "code",
        r"""
G = 256 if SMOKE else 8192  # one second at 8 kHz
teacher_G, student_G = teacher_stack(G), student_stack(G)
teacher_G.load_state_dict(teacher.state_dict())
student_G.load_state_dict(student.state_dict())
teacher_G.eval(), student_G.eval()

def generate(stack, digits, seed=7):
    # (len(digits), G) waveforms of the given digits, and the seconds it took
    d = pf.flow_distribution(stack, base=logistic(G), context=onehot(digits))
    torch.manual_seed(seed)
    with torch.no_grad():
        start = time.perf_counter()
        x = d.sample()
        return x[:, 0], time.perf_counter() - start

DIGIT = 7
one = torch.tensor([DIGIT])
timings = {}  # (who, batch) -> seconds of one sampling run
generate(student_G, one)  # warm-up
(student_clip,), timings["student", 1] = generate(student_G, one)
(teacher_clip,), timings["teacher cached", 1] = generate(teacher_G, one)
whole = pf.data.spoken_digits("test", add_noise=True)  # whole clips, padded to 8192 samples with 16-bit noise
longest = int(torch.where(whole.digit == DIGIT, whole.length, 0).argmax())
real_clip = whole.x[longest, :G]
print(f"digit {DIGIT}, {G} samples: teacher (cached) {timings['teacher cached', 1]:.2f} s, student {timings['student', 1]:.3f} s")
for name, clip in (("teacher", teacher_clip), ("student", student_clip)):
    print(f"{name}: {100 * (clip.abs() > 1).float().mean().item():.2f}% of the samples beyond [-1, 1], "
          f"RMS {clip.clamp(-1, 1).pow(2).mean().sqrt().item():.3f} (test clip: {real_clip.pow(2).mean().sqrt().item():.3f})")

NFFT = 32 if SMOKE else 256  # frames of 32 ms
rows = (("test clip", real_clip), ("teacher", teacher_clip.nan_to_num(0.0).clamp(-1, 1)),
        ("student", student_clip.nan_to_num(0.0).clamp(-1, 1)))
fig, axes = plt.subplots(2, 3, figsize=(15, 5.5), sharex=True)
seconds = np.arange(G) / RATE
for j, (name, clip) in enumerate(rows):
    axes[0, j].plot(seconds, clip.numpy(), lw=0.3, color=f"C{j}")
    axes[0, j].set(ylim=(-1, 1), title=f"{name}, digit {DIGIT}")
    # each spectrogram on its own colour scale (dB): the samples are far louder than the test clip
    axes[1, j].specgram(clip.numpy(), Fs=RATE, NFFT=NFFT, noverlap=NFFT * 3 // 4, cmap="magma", interpolation="nearest")
    axes[1, j].set(xlabel="seconds", ylabel="Hz")
plt.tight_layout()
plt.show()
for name, clip in rows:
    print(name)
    display(Audio(clip.numpy(), rate=RATE, normalize=False))
""",
    ),
    (
        "md",
        r"""
Neither sample is speech. The teacher, trained for a minute and a half on windows of 512 samples, drifts at
temperature 1 into loud bursts beyond the companded range (tutorial 05 sampled at 0.8 for this reason); the
student has the same character, spiky noise without the harmonics and formant tracks of the real clip, but
quieter: the reverse KL charges the student for mass where the teacher has little, not for missing the teacher's
loudest excursions. That is what distillation promises: the student imitates the teacher, flaws included, and it
is no better than its teacher. The power loss above measured the same gap to real speech: orders of magnitude
above the distance between two sets of real windows. A WaveNet that generates words trains for days, with local
conditioning on linguistic features.

## 6. Held-out NLL

Both flows have exact densities. The teacher scores the 240 test windows (the centered window of every clip of
the 4 unheard voices) in one pass per layer; the student runs its sequential side, with the queues (`pf.nll`
computes without gradients, so `"auto"` picks them): at $T = 512$ that takes seconds. In nats per sample of the
waveform, and in bits per sample of the 16-bit integers (add $\ln 32768$, divide by $\ln 2$; 16 is the cost of
raw samples).
""",
    ),
    (
        "code",
        r"""
def bits_per_sample(nats):
    return (nats + math.log(32768.0)) / math.log(2)

print(f"test NLL on {len(test_x)} windows of T = {T} (unheard voices)")
print("| model | test NLL, nats/sample | bits/sample (16-bit) | scoring time | KL(S || T), last 50 steps |")
print("| --- | ---: | ---: | ---: | ---: |")
for name, stack, m in (
    ("teacher (WaveNet MAF, 2 layers)", teacher, None),
    (f"student (WaveNet IAF, {STUDENT_LAYERS} layers), regularizer 4", student, monitor),
    (f"student (WaveNet IAF, {STUDENT_LAYERS} layers), KL alone", plain_student, plain_monitor),
):
    start = time.perf_counter()
    nats = pf.nll(pf.flow_distribution(stack, base=logistic(T)), test_x, context=test_c, batch_size=240) / T
    seconds = time.perf_counter() - start
    kl = "" if m is None else f"{np.mean(m.history['kl'][-50:]) / T:.3f}"  # the mean of the last 50 steps
    print(f"| {name} | {nats:.3f} | {bits_per_sample(nats):.2f} | {seconds:.2f} s | {kl} |")
""",
    ),
    (
        "md",
        r"""
The teacher learned from data; the students never saw any: their only signal was the teacher's density at their own
samples. The held-out NLL measures the *forward* direction, how well a model covers real speech, while the
students minimized the *reverse* KL, which charges them for mass where the teacher has little but hardly for
missing regions where the teacher (and the data) have mass. So a student with a small KL from its teacher can
still be far behind it on held-out data, as here: Parallel WaveNet's students trained for days to come close.
The narrower student of the KL alone covers the data worse. Scoring data with a student is its sequential side;
with the queues and batches of 240 windows it takes seconds at $T = 512$.

## 7. Sampling speed

At $G = 8192$ samples (one second), batch 1 (a speech synthesizer's case) and batch 16: the student's one pass
per layer, the teacher's cached generation (both timed in full), and the teacher's naive recursion, estimated:
one step of it is one full pass of every layer's WaveNet at length $G$, the same cost at every step, so a few
timed passes times $G$ give its time (as `bench/bench_speech.py` does; its full run would take hours).
""",
    ),
    (
        "code",
        r"""
def naive_seconds(stack, batch, passes):
    # G steps, each a full pass of every MAF layer's WaveNet (and its affine op) at length G
    u, ctx = torch.zeros(batch, 1, G), onehot(torch.arange(batch) % 10)
    per_step = 0.0
    with torch.no_grad():
        for layer in (step.layer for step in pf.layers(stack) if isinstance(step.layer, pf.MAF)):
            layer.op.inverse(u, layer.conditioner(u, ctx))  # warm-up
            start = time.perf_counter()
            for _ in range(passes):
                layer.op.inverse(u, layer.conditioner(u, ctx))
            per_step += (time.perf_counter() - start) / passes
    return G * per_step

BATCHES = (1, 4) if SMOKE else (1, 16)
many = torch.arange(BATCHES[1]) % 10
_, timings["student", BATCHES[1]] = generate(student_G, many)
_, timings["teacher cached", BATCHES[1]] = generate(teacher_G, many)
for b in BATCHES:
    timings["teacher naive", b] = naive_seconds(teacher_G, b, passes=1 if SMOKE else 3)
print(f"samples per second at G = {G}, one CPU thread (naive: estimated from timed passes)")
print("| batch | student, one pass | teacher, cached | teacher, naive | student / cached | student / naive |")
print("| ---: | ---: | ---: | ---: | ---: | ---: |")
for b in BATCHES:
    rate = {who: b * G / timings[who, b] for who in ("student", "teacher cached", "teacher naive")}
    print(f"| {b} | {rate['student']:,.0f} | {rate['teacher cached']:,.0f} | {rate['teacher naive']:,.1f} | "
          f"{rate['student'] / rate['teacher cached']:,.0f}x | {rate['student'] / rate['teacher naive']:,.0f}x |")
""",
    ),
    (
        "md",
        r"""
At batch 1 the student generates one second of audio in about a tenth of a second, faster than real time at 8 kHz:
tens of times faster than the teacher's cached generation and thousands of times faster than its naive
recursion. At batch 16 the cached teacher closes most of the gap: its cost is per-step overhead, nearly
independent of the batch, while the student's one pass grows with it. On a GPU the student's pass also runs in
parallel over time, where the teacher's steps cannot: that is Parallel WaveNet's point. These are single runs on a
shared CPU thread and vary by tens of percent from run to run; `bench/bench_distill.py` distills a larger
teacher for longer and records its speeds at $T = 8192$ in `bench/results/distill_cpu.md`.

## Summary

* Probability density distillation trains an IAF student, fast to sample, against a MAF teacher, fast to score,
  by $\mathrm{KL}(S \,\|\, T)$: student samples and their own log-density (one student pass), the teacher's
  log-density of them (one teacher pass). `distillation_loss` computes it with its parts kept apart, by Monte
  Carlo or by Parallel WaveNet's per-step estimator; `distillation_model_guide` makes it a Pyro `(model, guide)`
  whose `-ELBO` is the same quantity.
* Leave a shared bijective tail (the mu-law expansion) out of both: the KL is the same, and the per-step
  estimator needs the stacks of affine layers alone.
* `DistillationMonitor` records the curves and warns (`StudentCollapseWarning`) when the entropy falls while the
  KL stalls; `power_loss` is Parallel WaveNet's spectral term against whispering.
* `bench/bench_distill.py` runs a longer distillation of the teacher of `bench/bench_speech.py` (a larger WaveNet
  MAF on windows of 2048 samples); its recorded CPU numbers are in `bench/results/distill_cpu.md`.
""",
    ),
]
