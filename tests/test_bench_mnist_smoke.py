"""Smoke test of bench/train_mnist.py on the CPU: tiny models, a data subset, 20 steps.

No timing or quality thresholds: the recorded MNIST results live in bench/results/.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import pyro_flows as pf

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "train_mnist.py"


@pytest.fixture(scope="module")
def mnist_path():
    try:
        pf.data.mnist()
    except FileNotFoundError as err:
        pytest.skip(f"MNIST is not available here: {err}")
    return str(pf.data.data_dir())


@pytest.mark.parametrize("model", ["maf", "realnvp", "glow"])
def test_train_mnist_quick_writes_metrics_and_plots(model, mnist_path, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--model",
            model,
            "--quick",
            "--data",
            mnist_path,
            "--out",
            str(tmp_path),
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["model"] == model and m["steps"] == 20 and m["settings"]["quick"]
    assert "--quick" in m["environment"]["command"]
    for key in ("test_nll", "test_bits_per_dim", "valid_bits_per_dim", "test_log_likelihood_logit_space"):
        assert math.isfinite(m[key]), key  # finite numbers: no NaN, no infinity
    assert 0 < m["test_bits_per_dim"] < 16
    assert m["test_bits_per_dim"] == pytest.approx(pf.data.bits_per_dim(m["test_nll"], 784))
    assert m["throughput"]["train_step_images_per_s"] > 0 and m["throughput"]["sample_images_per_s"] > 0
    assert (tmp_path / "samples.png").stat().st_size > 1000 and (tmp_path / "history.png").exists()
