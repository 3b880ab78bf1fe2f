"""The benchmarks still run (a smoke run each; figures are measured, not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_codec_benchmark_runs():
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.codec", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "sealed (cached content key)" in run.stdout


def test_bench_command_runs():
    run = subprocess.run(
        [sys.executable, "-m", "nngsec", "bench", "--quick", "--repeats", "1", "--sizes", "64",
         "--modes", "threads", "--format", "json"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    import json

    rows = json.loads(run.stdout)
    assert {r["pattern"] for r in rows} == {"pair", "pubsub", "pipeline", "reqrep"}
    assert all(r["plain"]["msgs_per_s"] > 0 and r["secured"]["msgs_per_s"] > 0 for r in rows)


def test_async_receive_benchmark_runs():
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.async_recv", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "SecureSocket.arecv" in run.stdout
