"""The benchmarks still run (a smoke run each; figures are measured, not asserted).

In this process: ``nngsec bench`` through the ``cli`` fixture, the modules of
``benchmarks/`` as ``python -m`` would run them (``runpy``, ``--quick`` in ``sys.argv``).
"""

from __future__ import annotations

import json
import logging
import runpy
import sys

import pytest


@pytest.fixture
def run_module(monkeypatch, capsys):
    """``python -m MODULE --quick`` in this process: its exit status 0, and its stdout."""

    def run(module: str) -> str:
        monkeypatch.setattr(sys, "argv", [module, "--quick"])
        monkeypatch.setattr(sys, "path", list(sys.path))  # main() puts the repository first
        ours = logging.getLogger("nngsec")
        level = ours.level
        try:
            with pytest.raises(SystemExit) as exited:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
        finally:
            ours.setLevel(level)  # main() quietens the nngsec logger
        captured = capsys.readouterr()
        assert exited.value.code == 0, captured.err
        out: str = captured.out
        return out

    return run


def test_codec_benchmark_runs(run_module):
    assert "sealed (cached content key)" in run_module("benchmarks.codec")


@pytest.mark.slow
def test_bench_command_runs(cli):
    run = cli(
        "bench", "--quick", "--repeats", "1", "--sizes", "64", "--modes", "threads",
        "--format", "json",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert "WARNING" not in run.err
    assert logging.getLogger("nngsec").level == logging.NOTSET  # quieted at the handlers only
    rows = json.loads(run.out)
    assert {r["pattern"] for r in rows} == {"pair", "pubsub", "pipeline", "reqrep"}
    assert all(r["plain"]["msgs_per_s"] > 0 and r["secured"]["msgs_per_s"] > 0 for r in rows)


def test_async_receive_benchmark_runs(run_module):
    assert "SecureSocket.arecv" in run_module("benchmarks.async_recv")
