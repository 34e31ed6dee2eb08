"""Smoke test of bench/bench_speech.py: quick mode trains the three models a few seconds and writes its tables."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import pyro_flows as pf

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_speech.py"


def test_bench_speech_quick_writes_results(tmp_path):
    if not (pf.data.data_dir() / "spoken_digits.npz").is_file():
        pytest.skip(f"spoken_digits.npz is not in {pf.data.data_dir()} (set PYRO_FLOWS_DATA)")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    res = json.loads((tmp_path / "speech_cpu_quick.json").read_text())
    assert set(res["models"]) == {"linear-ar32", "made-maf", "wavenet-maf"}
    for m in res["models"].values():
        assert math.isfinite(m["nats_per_sample"]) and m["params"] > 0
    assert [g["batch"] for g in res["generation"]] == [1, 16]
    assert all(g["finite"] and g["cached_samples_per_s"] > 0 for g in res["generation"])
    assert (tmp_path / "speech_cpu_quick" / "speech.png").stat().st_size > 10_000
    assert "| wavenet-maf |" in (tmp_path / "speech_cpu_quick.md").read_text()
