"""Tests of the command line: python -m pyro_flows fit and vae."""

import importlib
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

import pyro_flows as pf
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
    "interrupted",
    "evaluated",
    "outputs",
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


# --------------------------------------------------------------------------- every option reaches its object
#
# For each command, OPTIONS lists every option of its parser (the test below fails, naming it, for an option
# that is not listed): a non-default value, the run it is given in, and a check that the value arrived where it
# configures something (the keyword arguments of the recorded calls, the network built, the files, the output).
# The other options of a run keep their defaults unless the run's BASE gives them.


class Option(NamedTuple):
    run: str
    argv: list[str]
    check: Callable  # check(runs) -> bool; runs[name] is the Run of that name


class Call(NamedTuple):
    args: tuple
    kwargs: dict
    value: object
    threads: int  # torch's threads during the call


class Run(NamedTuple):
    code: int
    stdout: str
    stderr: str
    calls: dict  # name -> the last Call
    folder: Path


def recorder(monkeypatch, calls, owner, name):
    """Replaces ``owner.name`` by a wrapper that records its last call in ``calls[name]``."""
    real = getattr(owner, name)

    def record(*args, **kwargs):
        threads = torch.get_num_threads()
        value = real(*args, **kwargs)
        calls[name] = Call(args, kwargs, value, threads)
        return value

    monkeypatch.setattr(owner, name, record)


def passes(check, runs) -> bool:
    try:
        return bool(check(runs))
    except (KeyError, IndexError, AttributeError, TypeError, FileNotFoundError):  # e.g. a keyword never passed
        return False


def no_cuda(runs, run):
    """The --device cuda run: without CUDA it stops at the device check, with CUDA the model is on the GPU."""
    r = runs[run]
    if torch.cuda.is_available():
        model = r.calls["VAE"].value if "VAE" in r.calls else r.calls["fit"].args[0].transforms[0]
        return r.code == 0 and next(model.parameters()).is_cuda
    return r.code == 1 and "torch.cuda.is_available() is False" in r.stderr


def fit_kwargs(runs):
    return runs["main"].calls["fit"].kwargs


def fit_metrics(runs):
    return read_metrics(runs["main"].folder / "chosen")


FIT_OPTIONS = {
    "flow": Option("main", ["--flow", "maf"], lambda r: "maf" in r["main"].calls and fit_metrics(r)["flow"] == "maf"),
    "data": Option("main", ["--data", "circles"], lambda r: r["main"].calls["load"].args == ("circles",)),
    "out": Option("main", ["--out", "{tmp}/chosen"], lambda r: (r["main"].folder / "chosen/model.pt").exists()),
    "steps": Option("main", ["--steps", "7"], lambda r: fit_kwargs(r)["steps"] == 7 == fit_metrics(r)["steps_run"]),
    "batch_size": Option("main", ["--batch-size", "16"], lambda r: fit_kwargs(r)["batch_size"] == 16),
    "lr": Option("main", ["--lr", "0.005"], lambda r: fit_kwargs(r)["lr"] == 0.005),
    "layers": Option("main", ["--layers", "3"], lambda r: r["main"].calls["maf"].kwargs["num_layers"] == 3),
    "hidden": Option("main", ["--hidden", "8"], lambda r: r["main"].calls["maf"].kwargs["hidden_dims"] == (8, 8)),
    "eval_every": Option(
        "main",
        ["--eval-every", "3"],
        lambda r: fit_kwargs(r)["eval_every"] == 3 and fit_metrics(r)["history"]["step"] == [3, 6, 7],
    ),
    "patience": Option("main", ["--patience", "4"], lambda r: fit_kwargs(r)["patience"] == 4),
    "n_train": Option(
        "main",
        ["--n-train", "60"],
        lambda r: r["main"].calls["load"].kwargs == dict(n_train=60, n_valid=12, n_test=12, seed=3),
    ),
    "clip_grad": Option("main", ["--clip-grad", "5"], lambda r: fit_kwargs(r)["clip_grad"] == 5.0),
    "seed": Option(
        "main", ["--seed", "3"], lambda r: fit_kwargs(r)["seed"] == 3 and r["main"].calls["load"].kwargs["seed"] == 3
    ),
    "device": Option("device", ["--device", "cuda"], lambda r: no_cuda(r, "device")),
    "threads": Option("main", ["--threads", "2"], lambda r: r["main"].calls["fit"].threads == 2),
    "no_progress": Option(
        "main", ["--no-progress"], lambda r: fit_kwargs(r)["progress"] is False and "fit:" not in r["main"].stderr
    ),
    # without --quiet a run prints its result: test_fit_prints_where_it_wrote
    "quiet": Option("main", ["--quiet"], lambda r: r["main"].code == 0 and r["main"].stdout == ""),
}
FIT_BASE = {
    "main": [],
    "device": ["--steps", "2", "--n-train", "50", "--hidden", "8", "--out", "{tmp}/device", "--quiet"],
}


def vae_kwargs(runs, run="mlp"):
    return runs[run].calls["fit_vae"].kwargs


def vae_built(runs, run="mlp"):
    return runs[run].calls["VAE"].value


def vae_metrics(runs, run="mlp"):
    return read_metrics(runs[run].folder / "chosen" if run == "mlp" else runs[run].folder / run)


def made_widths(vae):
    return [made.layers[0].weight.shape[0] for made in vae.flow.modules() if isinstance(made, pf.nn.MADE)]


def mlp_widths(vae):
    return [layer.out_features for layer in vae.encoder if isinstance(layer, torch.nn.Linear)]


VAE_OPTIONS = {
    "posterior": Option(
        "mlp", ["--posterior", "planar"], lambda r: any(isinstance(m, pf.Planar) for m in vae_built(r).modules())
    ),
    "arch": Option(
        "conv",
        ["--arch", "conv"],
        lambda r: (
            vae_built(r, "conv").arch == "conv"
            and any(isinstance(m, torch.nn.Conv2d) for m in vae_built(r, "conv").encoder.modules())
            and vae_metrics(r, "conv")["arch"] == "conv"
        ),
    ),
    "data": Option(
        "mlp",
        ["--data", "dynamic"],
        lambda r: (
            vae_kwargs(r)["dynamic_binarization"] is True and r["mlp"].calls["fit_vae"].args[1].dtype == torch.uint8
        ),
    ),
    "z_dim": Option("mlp", ["--z-dim", "3"], lambda r: vae_built(r).z_dim == 3 == vae_built(r).mu.out_features),
    "flows": Option(
        "mlp", ["--flows", "2"], lambda r: sum(isinstance(m, pf.Planar) for m in vae_built(r).modules()) == 2
    ),
    "hidden": Option("mlp", ["--hidden", "16"], lambda r: mlp_widths(vae_built(r)) == [16, 16, 256]),
    "context_dim": Option(
        "conv",
        ["--context-dim", "16"],
        lambda r: (
            vae_built(r, "conv").mu.in_features == 16
            and all(
                made.context_layer.in_features == 16
                for made in vae_built(r, "conv").flow.modules()
                if isinstance(made, pf.nn.MADE)
            )
        ),
    ),
    "flow_hidden": Option("conv", ["--flow-hidden", "8"], lambda r: made_widths(vae_built(r, "conv")) == [8]),
    "flow_op": Option(
        "conv",
        ["--flow-op", "gated_published"],
        lambda r: all(not m.op.normalized for m in vae_built(r, "conv").flow.modules() if isinstance(m, pf.IAF)),
    ),
    "gate_bias": Option(
        "conv",
        ["--gate-bias", "2"],
        lambda r: all(m.op.bias == 2.0 for m in vae_built(r, "conv").flow.modules() if isinstance(m, pf.IAF)),
    ),
    "minutes": Option("mlp", ["--minutes", "0.5"], lambda r: vae_kwargs(r)["max_seconds"] == 30),
    "steps": Option("mlp", ["--steps", "2"], lambda r: vae_kwargs(r)["steps"] == 2 == vae_metrics(r)["steps_run"]),
    "batch_size": Option("mlp", ["--batch-size", "10"], lambda r: vae_kwargs(r)["batch_size"] == 10),
    "lr": Option("mlp", ["--lr", "0.002"], lambda r: vae_kwargs(r)["lr"] == 0.002),
    "kl_warmup": Option("mlp", ["--kl-warmup", "5"], lambda r: vae_kwargs(r)["kl_warmup_steps"] == 5),
    "free_bits": Option("mlp", ["--free-bits", "0.5"], lambda r: vae_kwargs(r)["free_bits"] == 0.5),
    "eval_every": Option(
        "mlp",
        ["--eval-every", "1"],
        lambda r: vae_kwargs(r)["eval_every"] == 1 and vae_metrics(r)["history"]["step"] == [1, 2],
    ),
    "n_eval": Option(
        "mlp",
        ["--n-eval", "20"],
        lambda r: len(r["mlp"].calls["fit_vae"].args[2]) == 20 == vae_metrics(r)["test_images"],
    ),
    "is_samples": Option(
        "mlp", ["--is-samples", "3"], lambda r: r["mlp"].calls["log_likelihood"].kwargs["num_samples"] == 3
    ),
    "out": Option("mlp", ["--out", "{tmp}/chosen"], lambda r: (r["mlp"].folder / "chosen/model.pt").exists()),
    "seed": Option("mlp", ["--seed", "4"], lambda r: vae_kwargs(r)["seed"] == 4 and vae_metrics(r)["is_seed"] == 4),
    "device": Option("device", ["--device", "cuda"], lambda r: no_cuda(r, "device")),
    "threads": Option("mlp", ["--threads", "2"], lambda r: r["mlp"].calls["fit_vae"].threads == 2),
    "no_progress": Option(
        "mlp", ["--no-progress"], lambda r: vae_kwargs(r)["progress"] is False and "vae:" not in r["mlp"].stderr
    ),
    # the conv run, without --quiet, prints its result
    "quiet": Option(
        "mlp", ["--quiet"], lambda r: r["mlp"].code == 0 and r["mlp"].stdout == "" and "wrote" in r["conv"].stdout
    ),
}
_VAE_SMALL = ["--steps", "1", "--n-eval", "10", "--is-samples", "2", "--z-dim", "2", "--batch-size", "10"]
VAE_BASE = {
    "mlp": [],
    "conv": [*_VAE_SMALL, "--flows", "1", "--out", "{tmp}/conv", "--no-progress"],
    "device": [*_VAE_SMALL, "--hidden", "8", "--out", "{tmp}/device", "--quiet"],
}
OPTIONS = {"fit": (FIT_OPTIONS, FIT_BASE), "vae": (VAE_OPTIONS, VAE_BASE)}


def fake_mnist(monkeypatch, module):
    """200 random 0/1 images for binarized MNIST, 200 random uint8 images for MNIST (dynamic binarization)."""
    g = torch.Generator().manual_seed(0)

    def images(dtype):
        x = torch.randint(0, 256, (200, 1, 28, 28), generator=g, dtype=torch.uint8)
        return x if dtype == torch.uint8 else (x > 200).float()

    def binarized_mnist(*args, **kwargs):
        return pf.data.Split(*(images(torch.float32) for _ in range(3)))

    def mnist(*args, **kwargs):
        return pf.data.Split(*(images(torch.uint8) for _ in range(3)))

    monkeypatch.setattr(module.datasets, "binarized_mnist", binarized_mnist)
    monkeypatch.setattr(module.datasets, "mnist", mnist)


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_every_option_is_listed_with_a_non_default_value(command):
    options, _ = OPTIONS[command]
    parser = cli.make_parser()
    defaults = vars(parser.parse_args([command]))
    dests = set(defaults) - {"command"}
    assert dests - set(options) == set(), f"options of `{command}` without a check in OPTIONS: add them"
    assert set(options) - dests == set(), "OPTIONS lists options the parser does not have"
    for dest, option in options.items():
        parsed = vars(parser.parse_args([command, *option.argv]))
        changed = {key for key in defaults if parsed[key] != defaults[key]}
        assert changed == {dest}, (dest, option.argv, changed)


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_every_option_reaches_what_it_configures(command, tmp_path, monkeypatch, capsys):
    options, base = OPTIONS[command]
    module = importlib.import_module(f"pyro_flows.cli.{command}")
    calls: dict = {}
    if command == "fit":
        recorder(monkeypatch, calls, module, "fit")
        recorder(monkeypatch, calls, module.datasets, "load")
        recorder(monkeypatch, calls, pf.flows, "maf")
    else:
        fake_mnist(monkeypatch, module)
        for name in ("VAE", "fit_vae", "log_likelihood"):
            recorder(monkeypatch, calls, module, name)
    monkeypatch.chdir(tmp_path)
    runs = {}
    for run_name, base_argv in base.items():
        argv = [*base_argv, *(arg for option in options.values() if option.run == run_name for arg in option.argv)]
        calls.clear()
        code = cli.main([command, *(arg.format(tmp=tmp_path) for arg in argv)])
        printed = capsys.readouterr()
        runs[run_name] = Run(code, printed.out, printed.err, dict(calls), tmp_path)
        assert code == 0 or run_name == "device", (run_name, printed.err)
    failed = [dest for dest, option in options.items() if not passes(option.check, runs)]
    assert not failed, f"these options of `{command}` did not reach what they configure: {failed}"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--arch", "conv", "--hidden", "64"], "--hidden sets the MLP's width and does not apply to --arch conv"),
        (["--posterior", "planar", "--flow-hidden", "64"], "--flow-hidden sets the IAF steps' MADE"),
        (["--posterior", "diagonal", "--flows", "2"], "--flows does not apply to --posterior diagonal"),
        (["--posterior", "planar", "--flow-op", "affine"], "--flow-op and --gate-bias set the IAF steps"),
        (["--flow-op", "affine", "--gate-bias", "2"], "--gate-bias sets the gated ops' sigmoid"),
    ],
)
def test_vae_options_that_do_not_apply_are_errors(args, message, tmp_path, capsys):
    assert cli.main(["vae", *args, "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert not (tmp_path / "x").exists()
