"""Parallel WaveNet on spoken digits: distill the WaveNet MAF teacher of ``bench_speech.py`` into an IAF student
with WaveNet conditioners by probability density distillation, then compare NLL, speed and spectra (issue 12).

The teacher is the digit-conditioned WaveNet MAF trained by ``bench_speech.py`` (loaded from
``results/speech_cpu/model.pt`` when present, else trained here for ``--teacher-minutes``). Both flows model
mu-law companded audio over a Logistic base; the shared ``MuLaw(...).inv`` tail maps both to waveforms and
leaves the KL unchanged, so the distillation runs on the MAF and IAF stacks alone
(:func:`pyro_flows.models.distillation_loss`, Parallel WaveNet's per-step estimator). The student trains on
windows of ``--distill-length`` samples (its WaveNets work at any length; the trained weights are loaded into
stacks built for the evaluation and generation lengths).

Reported: KL, entropy and cross-entropy curves (nats per sample); held-out NLL of teacher and student on the test
speakers' windows; synthesis speed at T = 8192 (student one parallel pass vs teacher naive and cached);
spectrograms of real, teacher and student clips; the log-spectral distance of teacher and student samples to
held-out speech; WAV files of generated clips.

    python bench/bench_distill.py           # the recorded CPU run
    python bench/bench_distill.py --quick   # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import time
import wave
from pathlib import Path

import bench_speech as speech
import numpy as np
import torch
from common import environment, environment_line, record_end, write_results

import pyro_flows as pf
from pyro_flows.models import DistillationMonitor, distillation_loss

HERE = Path(__file__).resolve().parent


def teacher_stack(T: int, cfg: dict, state: dict) -> pf.Compose:
    """The teacher (MAF stack + mu-law tail) with trained weights, built for length ``T``, frozen."""
    return speech.wavenet_stack(T, cfg["flows"], cfg["net"], state).requires_grad_(False)


def student_stack(T: int, cfg: dict) -> pf.Compose:
    """The student: IAF layers whose WaveNets have ``cfg['layers'][i]`` dilated layers each, + mu-law tail."""

    def net(i):
        dilations = tuple(2 ** (k % cfg["cycle"]) for k in range(cfg["layers"][i]))
        return pf.nn.WaveNet(
            1, T, residual_channels=cfg["channels"], skip_channels=cfg["channels"], dilations=dilations, context_dim=10
        )

    return pf.Compose([pf.iaf((1, T), num_layers=len(cfg["layers"]), conditioner=net), pf.MuLaw((1, T)).inv])


def load_teacher(args, train_clips, valid) -> tuple[dict, dict, dict]:
    path = args.teacher
    if path.is_file() and not args.quick:
        saved = torch.load(path, weights_only=False)
        cfg = {"flows": saved["flows"], "net": saved["net"], "T": saved["T"], "source": str(path)}
        return cfg, saved["state_dict"], {"trained_here": False}
    ns = argparse.Namespace(
        flows=2,
        channels=args.teacher_channels,
        dilation_levels=args.teacher_levels,
        lr=1e-3,
        batch=8,
        eval_every=4 * args.eval_every,  # a validation pass over 240 windows is costly: every 100 steps
    )
    wn, net = speech.wavenet_maf(args.window, ns)
    fit = speech.train(
        wn, speech.logistic_base((1, args.window)), train_clips, valid, args.window, ns, args.teacher_minutes * 60
    )
    cfg = {"flows": 2, "net": net, "T": args.window, "source": "trained here"}
    return cfg, wn.state_dict(), {"trained_here": True, "steps": fit["steps"], "train_s": fit["train_s"]}


def distill(student, teacher, args, history) -> dict:
    """Trains the student's IAF stack against the teacher's MAF stack (tails left out: the KL is the same)."""
    L = args.distill_length
    base = speech.logistic_base((1, L))
    s_d = pf.flow_distribution(student.parts[0], base=base)
    t_d = pf.flow_distribution(teacher.parts[0], base=base)
    opt = torch.optim.Adam(student.parameters(), lr=args.lr)
    monitor = DistillationMonitor(window=args.monitor_window, entropy_drop=0.05 * L, kl_improvement=0.005 * L)
    gen = torch.Generator().manual_seed(0)
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < args.minutes * 60:
        digits = torch.randint(0, 10, (args.batch,), generator=gen)
        out = distillation_loss(
            s_d, t_d, context=speech.onehot(digits), estimator=args.estimator, num_draws=args.num_draws
        )
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 10.0)
        opt.step()
        steps += 1
        monitor.record(out)
        if steps % args.eval_every == 0:
            history.append(
                {
                    "step": steps,
                    "seconds": time.perf_counter() - start,
                    **{k: float(np.mean(v[-args.eval_every :])) / L for k, v in monitor.history.items()},
                }
            )
            h = history[-1]
            print(
                f"  step {steps}: KL {h['kl']:.3f}, entropy {h['entropy']:.3f}, cross-entropy "
                f"{h['cross_entropy']:.3f} nats/sample",
                flush=True,
            )
    return {"steps": steps, "train_s": time.perf_counter() - start, "collapse_steps": monitor.collapse_steps}


def student_speed(student, T: int, batch: int) -> dict:
    d = pf.flow_distribution(
        student, base=speech.logistic_base((1, T)), context=speech.onehot(torch.arange(batch) % 10)
    )
    with torch.no_grad():
        d.sample()  # warm-up
        start = time.perf_counter()
        x = d.sample()
        seconds = time.perf_counter() - start
    return {
        "batch": batch,
        "T": T,
        "seconds": seconds,
        "samples_per_s": batch * T / seconds,
        "finite": bool(torch.isfinite(x).all()),
    }


def log_spectral_distance(a: torch.Tensor, b: torch.Tensor, n_fft=256) -> float:
    """dB distance between the average power spectra of two sets of clips (rows): sqrt(mean_f (10 log10 P_a / P_b)^2)."""

    def power(x):
        spec = torch.stft(x, n_fft, hop_length=n_fft // 4, window=torch.hann_window(n_fft), return_complex=True)
        return spec.abs().pow(2).mean(dim=(0, 2)) + 1e-12

    return float(torch.sqrt(((10 * torch.log10(power(a) / power(b))) ** 2).mean()))


def sample(flow, T, digits, temperature=1.0):
    base = speech.logistic_base((1, T))
    base = type(base.base_dist)(base.base_dist.loc, base.base_dist.scale * temperature).to_event(2)
    with torch.no_grad():
        x = pf.flow_distribution(flow, base=base, context=speech.onehot(digits)).sample()[:, 0]
    return x.clamp(-1, 1)


def plot_curves(history, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].plot(steps, [h["kl"] for h in history], label="KL(student || teacher)")
    ax[0].set_ylabel("nats per sample")
    ax[1].plot(steps, [h["entropy"] for h in history], label="student entropy H(S)")
    ax[1].plot(steps, [h["cross_entropy"] for h in history], label="cross-entropy H(S, T)")
    for a in ax:
        a.set_xlabel("step")
        a.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_spectrograms(rows, rate, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rows[0][1])
    fig, axes = plt.subplots(len(rows), n, figsize=(3.2 * n, 2.6 * len(rows)), squeeze=False)
    for i, (name, clips, digits) in enumerate(rows):
        for j in range(n):
            axes[i, j].specgram(clips[j].numpy(), Fs=rate, NFFT=256, noverlap=192, cmap="magma")
            axes[i, j].set_title(f"{name}, digit {int(digits[j])}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_wav(path: Path, clip: torch.Tensor, rate: int) -> None:
    """A mono 16-bit WAV file (the standard library's ``wave``)."""
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes((clip.clamp(-1, 1 - 2**-15) * 32768).round().short().numpy().astype("<i2").tobytes())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--window", type=int, default=2048, help="evaluation windows (the teacher's training length)")
    p.add_argument("--distill-length", type=int, default=1024)
    p.add_argument("--minutes", type=float, default=15.0, help="distillation budget")
    p.add_argument("--teacher", type=Path, default=HERE / "results" / "speech_cpu" / "model.pt")
    p.add_argument("--teacher-minutes", type=float, default=10.0, help="when no saved teacher is found")
    p.add_argument("--teacher-channels", type=int, default=32)
    p.add_argument("--teacher-levels", type=int, default=10)
    p.add_argument("--student-layers", default="10,10,10,10", help="dilated layers of each IAF step's WaveNet")
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--cycle", type=int, default=10, help="dilations 1, 2, ..., 2^(cycle-1), repeated")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--estimator", default="per_step")
    p.add_argument("--num-draws", type=int, default=4)
    p.add_argument("--monitor-window", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--gen-length", type=int, default=8192)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.quick:
        args.window, args.distill_length, args.minutes, args.teacher_minutes = 256, 128, 0.05, 0.03
        args.teacher_channels, args.teacher_levels, args.channels, args.cycle = 8, 4, 8, 4
        args.student_layers, args.eval_every, args.monitor_window, args.gen_length = "4,4", 5, 5, 512
    wall = time.perf_counter()
    train_clips, valid, test = speech.load(args.window, 40 if args.quick else None)
    res = {
        "environment": environment(quick=args.quick),
        "settings": vars(args) | {"out": str(args.out), "teacher": str(args.teacher)},
    }

    print("teacher ...", flush=True)
    tcfg, tstate, tinfo = load_teacher(args, train_clips, valid)
    res["teacher"] = tcfg | tinfo
    scfg = {"layers": [int(n) for n in args.student_layers.split(",")], "channels": args.channels, "cycle": args.cycle}
    res["student"] = scfg

    print("distilling ...", flush=True)
    teacher_short = teacher_stack(args.distill_length, tcfg, tstate)
    student = student_stack(args.distill_length, scfg)
    history: list = []
    res["distillation"] = distill(student, teacher_short, args, history) | {"curve": history}
    sstate = student.state_dict()

    print("held-out NLL ...", flush=True)
    T = args.window
    teacher, student_T = teacher_stack(T, tcfg, tstate), student_stack(T, scfg)
    student_T.load_state_dict(sstate)
    base = speech.logistic_base((1, T))
    nll_t = speech.score(teacher, base, test.x, test.digit)
    start = time.perf_counter()
    nll_s = speech.score(student_T, base, test.x, test.digit)
    res["nll"] = {
        "teacher_nats_per_sample": nll_t,
        "student_nats_per_sample": nll_s,
        "gap": nll_s - nll_t,
        "student_scoring_s": time.perf_counter() - start,
    }

    print("speed ...", flush=True)
    G = args.gen_length
    teacher_G, student_G = teacher_stack(G, tcfg, tstate), student_stack(G, scfg)
    student_G.load_state_dict(sstate)
    res["speed"] = []
    for b in (1, 16):
        t = speech.generation_speed(teacher_G, G, b, 3 if args.quick else 10)
        s = student_speed(student_G, G, b)
        res["speed"].append(
            {
                "batch": b,
                "student_samples_per_s": s["samples_per_s"],
                "teacher_cached_samples_per_s": t["cached_samples_per_s"],
                "teacher_naive_samples_per_s": t["naive_samples_per_s"],
                "student_vs_naive": s["samples_per_s"] / t["naive_samples_per_s"],
                "student_vs_cached": s["samples_per_s"] / t["cached_samples_per_s"],
                "finite": s["finite"] and t["finite"],
            }
        )

    print("spectra and plots ...", flush=True)
    name = "distill_cpu" + ("_quick" if args.quick else "")
    folder = args.out / name
    folder.mkdir(parents=True, exist_ok=True)
    digits = torch.arange(10)
    held = pf.data.spoken_digits("test", window=min(G, 2048), drop_short=True)
    L = held.x.shape[-1]
    s_stack = student_stack(L, scfg)
    s_stack.load_state_dict(sstate)
    t_clips, s_clips = sample(teacher_stack(L, tcfg, tstate), L, digits), sample(s_stack, L, digits)
    res["spectral_distance_db"] = {
        "teacher_to_real": log_spectral_distance(t_clips, held.x),
        "student_to_real": log_spectral_distance(s_clips, held.x),
        "teacher_to_student": log_spectral_distance(t_clips, s_clips),
    }
    pick = [0, 4, 7]
    real_rows = [held.x[(held.digit == d).nonzero()[0, 0]] for d in pick]
    plot_spectrograms(
        [
            ("real", real_rows, pick),
            ("teacher", [t_clips[d] for d in pick], pick),
            ("student", [s_clips[d] for d in pick], pick),
        ],
        8000,
        folder / "spectrograms.png",
    )
    plot_curves(history, folder / "curves.png")
    for d in pick:
        write_wav(folder / f"teacher_digit{d}.wav", t_clips[d], 8000)
        write_wav(folder / f"student_digit{d}.wav", s_clips[d], 8000)
    torch.save({"state_dict": sstate, "config": scfg}, folder / "model.pt")

    wall = time.perf_counter() - wall
    record_end(res["environment"])
    n = res["nll"]
    lines = [
        "# Parallel WaveNet: a WaveNet MAF teacher distilled into an IAF student (spoken digits, 8 kHz)",
        "",
        environment_line(res["environment"], wall),
        "",
        f"Teacher: {tcfg['flows']} MAF layers of WaveNets ({tcfg['source']}). Student: {len(scfg['layers'])} IAF "
        f"layers of WaveNets with {scfg['layers']} dilated layers (cycle 1..{2 ** (scfg['cycle'] - 1)}), "
        f"{scfg['channels']} channels, digit-conditioned, Logistic base; trained {res['distillation']['steps']} "
        f"steps ({res['distillation']['train_s']:.0f} s) on windows of {args.distill_length} samples with the "
        f"'{args.estimator}' estimator ({args.num_draws} draws per step), batch {args.batch}, Adam lr {args.lr}.",
        "",
        f"| held-out NLL (test speakers, windows of T = {T}) | nats/sample | bits/sample |",
        "| --- | ---: | ---: |",
        f"| teacher (WaveNet MAF) | {n['teacher_nats_per_sample']:.3f} | {speech.bits(n['teacher_nats_per_sample']):.2f} |",
        f"| student (WaveNet IAF) | {n['student_nats_per_sample']:.3f} | {speech.bits(n['student_nats_per_sample']):.2f} |",
        "",
        f"Gap student - teacher: {n['gap']:+.3f} nats/sample (goal: within 0.05).",
        "",
        f"## Synthesis at T = {G}, CPU, {args.threads} thread(s)",
        "",
        "| batch | student (one pass) samples/s | teacher cached | teacher naive | student / naive | student / cached |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in res["speed"]:
        lines.append(
            f"| {s['batch']} | {s['student_samples_per_s']:.0f} | {s['teacher_cached_samples_per_s']:.0f} | "
            f"{s['teacher_naive_samples_per_s']:.1f} | {s['student_vs_naive']:.0f}x | {s['student_vs_cached']:.1f}x |"
        )
    sd = res["spectral_distance_db"]
    lines += [
        "",
        "Goal: student >= 1000x the teacher's naive generation (on a GPU; this is the CPU).",
        "",
        f"Log-spectral distance of the average power spectra (dB, 10 clips, one per digit, vs the {len(held.x)} "
        f"held-out clips): teacher {sd['teacher_to_real']:.2f}, student {sd['student_to_real']:.2f}, teacher to "
        f"student {sd['teacher_to_student']:.2f}. Collapse warnings at steps: {res['distillation']['collapse_steps'] or 'none'}.",
        f"Curves `{name}/curves.png`, spectrograms `{name}/spectrograms.png`, WAV files in `{name}/`.",
        "",
    ]
    write_results(args.out, name, res, "\n".join(lines))


if __name__ == "__main__":
    main()
