"""The training benchmarks run: the GPU one in its CPU smoke mode, the CPU one on a tiny scale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def bench(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "SYNTH_LAB_CACHE": str(tmp_path)}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_gpu_benchmark_smoke_mode_runs_on_cpu(tmp_path: Path) -> None:
    proc = bench("benchmarks/gpu_train.py", "--smoke", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert out["precision"] in ("bf16", "fp32") and out["tokens_per_second"] > 0
    assert out["final_loss"] > 0


def test_cpu_benchmark_smoke_mode_prints_the_table(tmp_path: Path) -> None:
    proc = bench(
        "benchmarks/train_cpu.py", "--smoke", "--only", "synth-lab", "trl-cpu-padding-free",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| synth-lab")]
    assert rows and "failed" not in rows[0]
    assert "| trl-cpu-padding-free |" in proc.stdout and "FLOP-bound" in proc.stdout


def test_gpu_smoke_script_runs_on_cpu_and_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "gpu_smoke.json"
    proc = bench("benchmarks/gpu_smoke.py", "--smoke", "--out", str(out), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert (
        report["environment"]["device"] == "cpu"
        and report["varlen_vs_loop"]["equal_within_tolerance"]
    )
    assert {"fft", "fft+ac", "lora"} <= set(report["training"])
    for case in report["training"].values():
        assert case["status"] == "succeeded" and case["loss_fell"], case
        assert case["memory_per_rank"][0]["peak_host_mb"] > 0
    assert report["resume"]["equal"] and report["generate"]["ok"]
    assert report["gpu_train"]["tokens_per_second"] > 0
