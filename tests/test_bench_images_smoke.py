"""Smoke test of bench/bench_images.py: quick mode runs and writes its tables (no timing thresholds)."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_images.py"


def test_bench_images_quick_writes_results(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path), "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    res = json.loads((tmp_path / "images_cpu_quick.json").read_text())
    assert set(res["models"]) == {"realnvp", "glow (LU 1x1 conv)", "glow (plain 1x1 conv)"}
    for r in res["models"].values():
        assert r["parameters"] > 0 and r["train_images_per_s"] > 0 and r["sample_images_per_s"] > 0
    for forms in res["conv1x1"].values():
        assert set(forms) == {"plain", "lu"}
        assert all(v > 0 for f in forms.values() for v in f.values())
    md = (tmp_path / "images_cpu_quick.md").read_text()
    assert "--quick" in res["environment"]["command"] and "| glow (LU 1x1 conv) |" in md
