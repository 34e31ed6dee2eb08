"""Tests of the command-line main job: python -m pyro_flows fit."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pyro_flows import cli

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--steps", "3", "--eval-every", "2", "--layers", "2", "--no-progress", "--quiet"]
METRIC_KEYS = {
    "flow",
    "data",
    "dims",
    "sizes",
    "nll",
    "nll_per_dim",
    "wall_time_s",
    "num_parameters",
    "steps_run",
    "best_step",
    "stopped_early",
    "history",
    "args",
    "versions",
}


def run(*args):
    return cli.main(["fit", *args])


def read_metrics(out):
    return json.loads((out / "metrics.json").read_text())


def test_fit_moons_writes_metrics_plots_and_weights(tmp_path):
    out = tmp_path / "moons"
    assert run("--data", "moons", "--n-train", "100", "--hidden", "8", "--out", str(out), *TINY) == 0
    assert sorted(p.name for p in out.iterdir()) == ["density.png", "history.png", "metrics.json", "model.pt"]
    metrics = read_metrics(out)
    assert set(metrics) == METRIC_KEYS
    assert metrics["flow"] == "realnvp" and metrics["data"] == "moons" and metrics["dims"] == 2
    assert metrics["sizes"] == {"train": 100, "valid": 20, "test": 20}
    for part in ("train", "valid", "test"):
        assert math.isfinite(metrics["nll"][part])
        assert metrics["nll_per_dim"][part] == pytest.approx(metrics["nll"][part] / 2)
    assert metrics["steps_run"] == 3 and metrics["history"]["step"] == [2, 3]
    assert metrics["args"]["out"] == str(out) and metrics["args"]["steps"] == 3
    assert set(metrics["versions"]) >= {"torch", "pyro", "pyro_flows"}
    assert metrics["versions"]["torch"] == torch.__version__
    assert metrics["num_parameters"] > 0
    state = torch.load(out / "model.pt")
    assert sum(v.numel() for k, v in state.items() if "running" not in k) >= 1
    assert all((out / name).stat().st_size > 1000 for name in ("density.png", "history.png"))


def test_fit_digits_reports_bits_per_dim_and_writes_a_sample_grid(tmp_path):
    out = tmp_path / "digits"
    assert run("--data", "digits", "--hidden", "16", "--batch-size", "64", "--out", str(out), *TINY) == 0
    assert sorted(p.name for p in out.iterdir()) == ["history.png", "metrics.json", "model.pt", "samples.png"]
    metrics = read_metrics(out)
    assert set(metrics) == METRIC_KEYS | {"bits_per_dim"}
    assert metrics["dims"] == 64
    assert metrics["sizes"] == {"train": 1257, "valid": 270, "test": 270}
    nll = metrics["nll"]["test"]
    assert metrics["bits_per_dim"]["test"] == pytest.approx((nll + 64 * math.log(17)) / (64 * math.log(2)))


@pytest.mark.parametrize("flow", ["planar", "radial", "nice", "maf", "iaf"])
def test_fit_every_flow_family(tmp_path, flow):
    extra = [] if flow in ("planar", "radial") else ["--hidden", "8"]
    out = tmp_path / flow
    assert run("--flow", flow, "--n-train", "50", "--out", str(out), *extra, *TINY) == 0
    assert read_metrics(out)["flow"] == flow


def test_in_process_runs_leave_threads_and_rng_alone(tmp_path):
    threads = torch.get_num_threads()
    state = torch.get_rng_state()
    assert run("--n-train", "50", "--hidden", "8", "--threads", "1", "--out", str(tmp_path), *TINY) == 0
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), state)


def test_same_seed_same_result(tmp_path):
    for name in ("a", "b"):
        assert run("--n-train", "60", "--hidden", "8", "--seed", "3", "--out", str(tmp_path / name), *TINY) == 0
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert a["nll"] == b["nll"] and a["history"] == b["history"]


def test_fit_prints_where_it_wrote(tmp_path, capsys):
    out = tmp_path / "printed"
    args = ["--n-train", "50", "--hidden", "8", "--steps", "2", "--layers", "2", "--no-progress"]
    assert run("--out", str(out), *args) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "test NLL" in printed


@pytest.mark.parametrize(
    "args, message",
    [
        (["--flow", "glow"], "invalid choice: 'glow'"),
        (["--data", "mnist"], "invalid choice: 'mnist'"),
        (["--steps", "0"], "expected a positive integer, got '0'"),
        (["--steps", "ten"], "expected a positive integer, got 'ten'"),
        (["--lr", "-1"], "expected a positive number, got '-1'"),
        (["--seed", "-1"], "expected an integer >= 0"),
        (["--device", "tpu"], "invalid choice: 'tpu'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_with_a_usage_error(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        run(*args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--flow", "planar", "--hidden", "8"], "--hidden does not apply to 'planar'"),
        (["--data", "digits", "--n-train", "100"], "n_train cannot be set for 'digits'"),
    ],
)
def test_library_errors_are_one_line_and_exit_1(tmp_path, args, message, capsys):
    assert run("--out", str(tmp_path / "x"), *args, *TINY) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_divergence_is_one_line_and_exits_1(tmp_path, capsys):
    args = ["--lr", "1e30", "--n-train", "100", "--hidden", "8", "--out", str(tmp_path / "x")]
    assert run(*args, *TINY) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: training diverged at step ")
    assert "restored" in err and err.count("\n") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error(tmp_path, capsys):
    assert run("--device", "cuda", "--out", str(tmp_path / "x"), *TINY) == 1
    assert "torch.cuda.is_available() is False" in capsys.readouterr().err


def python_m(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "pyro_flows", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_python_m_pyro_flows_writes_to_the_default_folder(tmp_path):
    done = python_m(
        "fit", "--steps", "2", "--layers", "2", "--hidden", "8", "--n-train", "50", "--no-progress", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "wrote runs/realnvp-moons" in done.stdout  # the default --out, relative to cwd
    assert (tmp_path / "runs" / "realnvp-moons" / "metrics.json").exists()


def test_a_bad_out_is_refused_before_training(tmp_path, capsys):
    existing_file = tmp_path / "taken"
    existing_file.write_text("")
    assert run("--out", str(existing_file), *TINY) == 1
    assert "is an existing file" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        assert run("--out", str(locked / "run"), *TINY) == 1
        assert "cannot be written" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)
