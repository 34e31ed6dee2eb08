"""An interrupted command loses nothing and leaves no broken or stale file (the rules of pyro_flows.cli).

The signal tests run ``python -m pyro_flows fit`` in a subprocess and send SIGINT or SIGTERM once training has
started (the progress bar on stderr is the marker); the others stop an in-process run at chosen moments.
"""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import pyro_flows as pf
from pyro_flows import cli
from pyro_flows.cli import common

ROOT = Path(__file__).resolve().parents[1]
LONG = ["--steps", "100000", "--eval-every", "50", "--patience", "100000", "--n-train", "2000"]
SHORT = ["--steps", "150", "--eval-every", "50", "--n-train", "2000"]  # about 1 s of training, 2 s of writing
CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
TINY = ["--steps", "3", "--eval-every", "2", "--layers", "2", "--hidden", "8", "--n-train", "50", "--no-progress"]


def _default_signals():
    # A child started from a non-interactive shell's background job inherits SIGINT ignored; Python then
    # installs no KeyboardInterrupt handler. Give the child the defaults, as a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class Child:
    """``python -m pyro_flows fit ARGS --out OUT`` with its progress bar; ``started`` is set once it trains."""

    def __init__(self, args, out):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pyro_flows", "fit", *args, "--out", str(out)],
            cwd=out.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_default_signals,
        )
        self.stderr = b""
        self.started = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while chunk := os.read(self.process.stderr.fileno(), 65536):
            self.stderr += chunk
            if b"fit:" in self.stderr:  # the progress bar: the training loop has begun
                self.started.set()
        self.started.set()

    def wait_for_training(self, timeout=60):
        assert self.started.wait(timeout), "the run did not start training"

    def finish(self, timeout=60):
        code = self.process.wait(timeout)
        self.reader.join(timeout)
        return code, self.stderr.decode(errors="replace")


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_consistent(out):
    """Every output under its own name is complete; a metrics.json describes exactly the files beside it."""
    files = {p.name for p in out.iterdir() if p.is_file()}
    if "model.pt" in files:
        state = torch.load(out / "model.pt")
        assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    for name in files:
        if name.endswith(".png"):
            data = (out / name).read_bytes()
            assert data.startswith(b"\x89PNG") and data.endswith(b"IEND\xaeB`\x82"), f"{name} is truncated"
    if "metrics.json" not in files:
        return None
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["outputs"]) == {name for name in files if name in common.OUTPUTS} - {"metrics.json"}
    for name, record in metrics["outputs"].items():
        assert sha256(out / name) == record["sha256"], f"metrics.json does not describe {name}"
    return metrics


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_training_saves_the_best_parameters_and_exits_128_plus_the_signal(tmp_path, signum):
    out = tmp_path / "run"
    child = Child(LONG, out)
    child.wait_for_training()
    time.sleep(1.0)  # past the first evaluations
    child.process.send_signal(signum)
    code, stderr = child.finish()
    assert code == CODES[signum], stderr[-2000:]
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.pt"]  # no plots, no leftovers
    metrics = assert_consistent(out)
    assert metrics["interrupted"] is True and metrics["evaluated"] is False and metrics["nll"] is None
    assert metrics["flow"] == "realnvp" and metrics["args"]["steps"] == 100000
    flow = cli.build_flow("realnvp", 2, hidden=128)
    flow.load_state_dict(torch.load(out / "model.pt"))  # the whole flow's state


def test_signals_at_random_moments_never_leave_a_broken_or_inconsistent_folder(tmp_path):
    rng = random.Random()
    slots = 5  # one delay in each of 5 slices of the 3 s from the first training step to the end of the run
    delays = [rng.uniform(0.6 * i, 0.6 * (i + 1)) for i in range(slots)]
    signals = [(signal.SIGINT, signal.SIGTERM)[i % 2] for i in range(slots)]
    outcomes = []
    for pair in range(0, slots, 2):  # two at a time: a shared 2-core machine
        batch = range(pair, min(pair + 2, slots))
        children = {i: Child(SHORT, tmp_path / f"run{i}") for i in batch}
        for i in batch:
            children[i].wait_for_training()
        start = time.perf_counter()
        for i in sorted(batch, key=lambda i: delays[i]):
            time.sleep(max(0.0, delays[i] - (time.perf_counter() - start)))
            children[i].process.send_signal(signals[i])
        for i in batch:
            code, stderr = children[i].finish()
            out = tmp_path / f"run{i}"
            what = f"{signals[i].name} {delays[i]:.2f} s after training began: exit {code}"
            # 0: it had finished; 130/143: caught; -2/-15: the signal came at start-up or after main returned
            assert code in (0, CODES[signals[i]], -signals[i]), f"{what}\n{stderr[-2000:]}"
            metrics = assert_consistent(out) if out.exists() else None
            if code == 0:
                assert metrics is not None and metrics["interrupted"] is False, what
            if code == CODES[signals[i]] and metrics is not None:
                assert metrics["interrupted"] is True, what
            outcomes.append((what, None if metrics is None else metrics["evaluated"]))
    print(outcomes)


# --------------------------------------------------------------------------- in process, at chosen moments


def test_atomic_write_leaves_the_old_file_when_the_writer_is_stopped(tmp_path):
    path = tmp_path / "model.pt"
    common.atomic_write(path, lambda tmp: tmp.write_text("old"))

    def half_then_interrupted(tmp):
        tmp.write_text("new but trunc")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        common.atomic_write(path, half_then_interrupted)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # not mkstemp's private 0o600


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read(out):
    return json.loads((out / "metrics.json").read_text())


def test_a_rerun_replaces_the_earlier_outputs_together(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["fit", *TINY, "--quiet", "--out", str(out)]) == 0
    first = read(out)
    (out / "samples.png").write_bytes((out / "density.png").read_bytes())  # as if an earlier digits run had left it
    (out / "notes.txt").write_text("mine")
    assert cli.main(["fit", *TINY, "--quiet", "--seed", "1", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        ".previous",
        "density.png",
        "history.png",
        "metrics.json",
        "model.pt",
        "notes.txt",  # not an output: left alone
    ]
    assert read(out)["args"]["seed"] == 1 and assert_consistent(out)
    previous = out / common.PREVIOUS
    assert sorted(p.name for p in previous.iterdir()) == sorted(["samples.png", *common.OUTPUTS[:4]])
    assert read(previous) == first  # the earlier run's metrics.json, beside the files it describes
    assert all(sha256(previous / name) == record["sha256"] for name, record in first["outputs"].items())


def test_a_run_that_fails_before_writing_leaves_the_folder_as_it_was(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["fit", *TINY, "--quiet", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert cli.main(["fit", *TINY, "--lr", "1e30", "--out", str(out)]) == 1  # diverges
    assert "training diverged" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_an_interruption_while_plotting_still_writes_the_model_and_metrics(tmp_path, monkeypatch, capsys):
    import pyro_flows.cli.fit as fit_command

    def interrupted(*args, **kwargs):
        raise common.Terminated

    monkeypatch.setattr(fit_command.plots, "plot_density_2d", interrupted)
    out = tmp_path / "run"
    assert cli.main(["fit", *TINY, "--out", str(out)]) == 143
    assert "interrupted" in capsys.readouterr().err
    metrics = assert_consistent(out)
    assert metrics["interrupted"] is True and metrics["evaluated"] is True  # training and evaluation were done
    assert sorted(metrics["outputs"]) == ["history.png", "model.pt"]
    assert sorted(p.name for p in out.iterdir()) == ["history.png", "metrics.json", "model.pt"]


def test_an_interruption_during_training_skips_the_evaluation(tmp_path, monkeypatch):
    import pyro_flows.cli.fit as fit_command

    evaluated = []
    monkeypatch.setattr(fit_command, "nll", lambda *args, **kwargs: evaluated.append(1))

    def fit_then_ctrl_c(*args, **kwargs):
        pf.fit(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_command, "fit", fit_then_ctrl_c)
    out = tmp_path / "run"
    assert cli.main(["fit", *TINY, "--quiet", "--out", str(out)]) == 130
    assert not evaluated
    metrics = assert_consistent(out)
    assert metrics["interrupted"] is True and metrics["nll"] is None and metrics["steps_run"] is None


def test_a_second_signal_while_saving_leaves_no_broken_file(tmp_path, monkeypatch, capsys):
    import pyro_flows.cli.fit as fit_command

    out = tmp_path / "run"
    assert cli.main(["fit", *TINY, "--quiet", "--out", str(out)]) == 0
    first = read(out)

    def fit_then_ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt  # the first signal, during training

    def save_then_ctrl_c(obj, path):
        Path(path).write_bytes(b"half a model")
        raise KeyboardInterrupt  # the second, while model.pt is written

    monkeypatch.setattr(fit_command, "fit", fit_then_ctrl_c)
    monkeypatch.setattr(fit_command.torch, "save", save_then_ctrl_c)
    assert cli.main(["fit", *TINY, "--out", str(out)]) == 130
    assert "no metrics.json was written" in capsys.readouterr().err
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == [".previous"]  # nothing half-written under an output's name
    assert read(out / common.PREVIOUS) == first and assert_consistent(out / common.PREVIOUS)


def test_sigterm_becomes_an_interruption_only_inside_main():
    before = signal.getsignal(signal.SIGTERM)
    with common.signals_as_interrupts(), pytest.raises(common.Terminated):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises here, at once
    assert signal.getsignal(signal.SIGTERM) is before
    assert common.exit_code(common.Terminated()) == 143 and common.exit_code(KeyboardInterrupt()) == 130


def test_an_interruption_dropped_in_a_weakref_callback_is_delivered_again():
    # A signal that lands in a weakref callback (the flows' cache has them) raises there, where Python prints
    # and drops the exception; signals_as_interrupts sends the signal again once the callback has returned.
    import weakref

    class Tensorish:
        pass

    def callback(ref):
        raise common.Terminated  # as if SIGTERM had arrived here

    with common.signals_as_interrupts(), pytest.raises(common.Terminated):
        thing = Tensorish()
        ref = weakref.ref(thing, callback)
        del thing  # runs the callback: the exception is dropped ("Exception ignored in ...")
        time.sleep(5)  # the signal comes again, 50 ms later
    assert ref() is None


def test_an_interrupted_vae_run_saves_its_model_and_the_settings_to_rebuild_it(tmp_path, monkeypatch):
    import pyro_flows.cli.vae as vae_command

    images = (torch.rand(60, 1, 28, 28, generator=torch.Generator().manual_seed(0)) < 0.2).float()
    monkeypatch.setattr(vae_command.datasets, "binarized_mnist", lambda: pf.data.Split(images, images, images))

    def fit_then_sigterm(*args, **kwargs):
        pf.models.fit_vae(*args, **kwargs)
        raise common.Terminated

    monkeypatch.setattr(vae_command, "fit_vae", fit_then_sigterm)
    out = tmp_path / "run"
    argv = ["vae", "--steps", "2", "--z-dim", "2", "--hidden", "8", "--context-dim", "8", "--flow-hidden", "8"]
    assert cli.main([*argv, "--n-eval", "10", "--no-progress", "--out", str(out)]) == 143
    metrics = assert_consistent(out)
    assert metrics["interrupted"] is True and metrics["test_nll_is"] is None and metrics["arch"] == "mlp"
    settings = {key: tuple(v) if isinstance(v, list) else v for key, v in metrics["model"].items()}
    pf.models.VAE((1, 28, 28), **settings).load_state_dict(torch.load(out / "model.pt"))
