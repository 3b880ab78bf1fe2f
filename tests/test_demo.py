"""The main job: `nngsec demo` passes, and says so in text and JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_passes_and_reports_in_json():
    run = subprocess.run(
        [sys.executable, "-m", "nngsec", "demo", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    report = json.loads(run.stdout)
    assert report["ok"] is True
    assert report["seconds"] < 30
    channels = report["channels"]
    assert set(channels) == {"telemetry", "jobs", "control", "cells"}
    for name, row in channels.items():
        assert row["delivered"] == row["expected"] > 0, name
        assert row["rejected"] == row["expected_rejected"], name
        assert sum(row["rejected"].values()) >= 3, name  # every channel was attacked
    assert {"replay", "forged", "revoked", "unknown-sender", "unauthorized"} <= {
        reason for row in channels.values() for reason in row["rejected"]
    }


def test_demo_fails_loudly_when_an_attack_gets_through():
    """The verdict is computed, not printed: break a check and the demo must fail."""
    from nngsec import _demo

    report = _demo.DemoReport({"jobs": _demo.ChannelRow(sent=2, delivered=2, expected=2)}, 1.0)
    report.channels["jobs"].expected_rejected["forged"] = 1
    assert not report.ok  # an expected rejection that did not happen
    report.channels["jobs"].rejected["forged"] = 1
    assert report.ok
    report.channels["jobs"].delivered = 1
    assert not report.ok
    assert "FAILED" in report.table()
