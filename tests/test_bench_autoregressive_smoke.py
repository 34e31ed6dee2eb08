"""Smoke test of bench/bench_autoregressive.py: it runs in quick mode and writes the expected results.

No timing thresholds here: speed goals live in bench/ and its recorded results, not in unit tests.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_autoregressive.py"


def test_bench_autoregressive_quick_writes_results(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    res = json.loads((tmp_path / "autoregressive_cpu_quick.json").read_text())
    md = (tmp_path / "autoregressive_cpu_quick.md").read_text()

    assert {
        "environment",
        "settings",
        "architecture_check",
        "slow_direction",
        "fast_direction",
        "moons_nll",
        "digits_nll",
        "mnist",
        "summary",
        "wall_time_s",
    } <= set(res)
    env = res["environment"]
    for key in ("command", "torch", "pyro", "torch_num_threads", "cpu_model", "date_utc", "mode", "device"):
        assert key in env
    assert env["mode"] == "quick" and "--quick" in env["command"]

    check = res["architecture_check"]
    assert check["equal"] and check["maf"]["pyro_sampling_is_sequential"]
    assert check["maf"]["network_passes_sampling"]["pyro_flows"] == 0

    assert set(res["slow_direction"]) == {"D64", "D784"}
    for r in res["slow_direction"].values():
        assert r["param_counts"]["pyro"] == r["param_counts"]["pyro_flows"]
        for call in (
            "pyro_flows.log_prob",
            "pyro_flows.sample",
            "pyro_flows.sample_after_param_change",
            "pyro.log_prob",
            "pyro.sample",
        ):
            assert r["timings"][call]["median_ms"] > 0 and r["timings"][call]["iqr_ms"] >= 0
        for lib in ("pyro", "pyro_flows"):
            assert r["ratio_sample_over_log_prob"][lib] > 0
        assert isinstance(r["met"], bool)

    for r in res["fast_direction"].values():
        assert r["param_counts"]["pyro"] == r["param_counts"]["pyro_flows"]
        for op in (
            "maf_log_prob_nograd",
            "maf_train_step",
            "iaf_rsample_log_prob",
            "iaf_svi_step",
            "iaf_sample_nograd",
        ):
            t = r["timings"][op]
            assert t["ratio"] > 0 and isinstance(t["met"], bool) and isinstance(t["aim_met"], bool)

    moons = res["moons_nll"]
    assert moons["param_counts_equal"]
    for lib in ("pyro", "pyro_flows"):
        assert moons["test_nll_mean"][lib] == moons["test_nll_mean"][lib]  # not NaN

    digits = res["digits_nll"]
    assert digits["param_counts_equal"]
    for lib in ("pyro", "pyro_flows"):
        m = digits["mean"][lib]
        assert math.isfinite(m["test_nll_at_best_valid"]) and m["last_valid_bits_per_dim"] > 0

    assert res["mnist"]["run"] is False
    assert isinstance(res["summary"]["all_targets_met"], bool)
    assert "## 1. Slow direction" in md and "## 2. Fast direction" in md and "Two moons" in md and "digits" in md
