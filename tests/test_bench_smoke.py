"""Smoke test of bench/bench_foundation.py: it runs in quick mode and writes the expected results.

No timing thresholds here: speed goals live in bench/ and its recorded results, not in unit tests.
"""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_foundation.py"


def test_bench_foundation_quick_writes_results(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    res = json.loads((tmp_path / "foundation_cpu_quick.json").read_text())
    md = (tmp_path / "foundation_cpu_quick.md").read_text()

    assert {"environment", "settings", "realnvp_speed", "planar_heldout", "moons_nll", "summary", "wall_time_s"} <= set(
        res
    )
    env = res["environment"]
    for key in ("command", "torch", "pyro", "torch_num_threads", "cpu_model", "date_utc", "mode"):
        assert key in env
    assert env["mode"] == "quick" and "--quick" in env["command"]

    speed = res["realnvp_speed"]
    assert speed["param_counts_equal"] and speed["architecture_check"]["equal"]
    for op in ("log_prob_nograd", "log_prob_grad", "train_step", "sample"):
        t = speed["timings"][op]
        for lib in ("pyro", "pyro_flows"):
            assert t[lib]["median_ms"] > 0 and t[lib]["iqr_ms"] >= 0
        assert t["ratio"] > 0 and isinstance(t["met"], bool)

    planar = res["planar_heldout"]
    assert planar["pyro_flows"]["log_prob_finite"]
    assert planar["pyro"]["raises"] and planar["pyro"]["log_prob_heldout_error"]["type"]

    moons = res["moons_nll"]
    assert moons["param_counts_equal"]
    for lib in ("pyro", "pyro_flows"):
        assert moons["test_nll_mean"][lib] == moons["test_nll_mean"][lib]  # not NaN

    assert isinstance(res["summary"]["all_targets_met"], bool)
    assert "| operation |" in md and "Two moons" in md
