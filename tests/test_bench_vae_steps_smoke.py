"""Smoke test of bench/bench_vae_steps.py: quick mode trains every posterior a few steps and writes its tables."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from pyro_flows import data

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_vae_steps.py"


@pytest.mark.skipif(
    not (data.data_dir() / "binarized_mnist.npz").exists(), reason="binarized_mnist.npz is absent (PYRO_FLOWS_DATA)"
)
def test_bench_vae_steps_quick_writes_results(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    res = json.loads((tmp_path / "vae_steps_cpu_quick.json").read_text())
    (runs,) = res["seeds"].values()
    assert len(runs) == 4 and set(res["summary"]) == set(runs)
    for run in runs.values():
        assert run["steps_run"] == 4 and math.isfinite(run["test_nll_is"])
        assert run["test_subset"].startswith("test split: every")  # strided: the file is sorted by class
    table = (tmp_path / "vae_steps_cpu_quick.md").read_text()
    assert "| iaf gated (identity at init) |" in table and "NLL vs diagonal" in table
