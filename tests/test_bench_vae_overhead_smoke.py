"""Smoke test of bench/bench_vae_overhead.py: quick mode checks the plain-PyTorch twin and times the three routes."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_vae_overhead.py"


def test_bench_vae_overhead_quick_writes_results(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    res = json.loads((tmp_path / "vae_overhead_cpu_quick.json").read_text())
    for posterior in ("diagonal", "iaf"):
        run = res[posterior]
        assert set(run["ms_per_step"]) == {"twin", "fit_vae", "svi"}
        assert all(v > 0 for v in run["ms_per_step"].values())
        # the twin is the same computation as Trace_ELBO on the VAE's model and guide
        assert run["twin_loss_diff"] < 1e-3 and run["twin_grad_diff"] < 1e-4
    assert "fit_vae / twin" in (tmp_path / "vae_overhead_cpu_quick.md").read_text()
