"""Smoke test of bench/bench_distill.py: quick mode trains a teacher, distills a student and writes its tables."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import pyro_flows as pf

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_distill.py"


def test_bench_distill_quick_writes_results(tmp_path):
    if not (pf.data.data_dir() / "spoken_digits.npz").is_file():
        pytest.skip(f"spoken_digits.npz is not in {pf.data.data_dir()} (set PYRO_FLOWS_DATA)")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    res = json.loads((tmp_path / "distill_cpu_quick.json").read_text())
    assert res["teacher"]["trained_here"] and res["distillation"]["steps"] > 0
    curve = res["distillation"]["curve"]
    assert curve and all(
        math.isfinite(c["kl"]) and math.isclose(c["cross_entropy"] - c["entropy"], c["kl"], abs_tol=1e-6) for c in curve
    )
    assert math.isfinite(res["nll"]["gap"])
    assert [s["batch"] for s in res["speed"]] == [1, 16] and all(s["finite"] for s in res["speed"])
    folder = tmp_path / "distill_cpu_quick"
    for name in ("curves.png", "spectrograms.png", "teacher_digit0.wav", "student_digit0.wav"):
        assert (folder / name).stat().st_size > 1000
    assert "| student (WaveNet IAF) |" in (tmp_path / "distill_cpu_quick.md").read_text()
