"""Smoke test of bench/bench_defaults.py: quick mode runs every flow and writes its table."""

import json
import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_defaults.py"


def test_bench_defaults_quick_writes_results(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    res = json.loads((tmp_path / "defaults_cpu_quick.json").read_text())
    assert res["settings"]["steps"] == 20 and "--quick" in res["environment"]["command"]
    for task, flows in (("1d", 4), ("2d", 4)):
        assert len(res[task]) == flows
        for r in res[task].values():
            assert math.isfinite(r["final_loss"]) and r["params"] > 0 and r["wall_s"] > 0
    assert res["1d"]["pf.maf(1)"]["params"] < res["1d"]["pf.maf(1), old defaults"]["params"]
    assert "| 2d | pf.realnvp(2) |" in (tmp_path / "defaults_cpu_quick.md").read_text()
