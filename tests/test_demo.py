"""The main job: `nngsec demo` passes, and says so in text and JSON."""

from __future__ import annotations

import json
import logging

import pytest


@pytest.mark.slow
def test_demo_passes_and_reports_in_json(cli):
    run = cli("demo", "--format", "json")
    assert run.code == 0, run.out + run.err
    assert "Traceback" not in run.err
    assert run.err == ""  # the demo shows rejections in its table, not as log lines
    assert logging.getLogger("nngsec").level == logging.NOTSET  # and set no logger's level
    report = json.loads(run.out)
    assert report["ok"] is True
    assert report["seconds"] < 30
    channels = report["channels"]
    assert set(channels) == {"telemetry", "jobs", "control", "cells", "rotation", "revocation"}
    live = {name: channels.pop(name) for name in ("rotation", "revocation")}
    assert live["rotation"]["rejected"] == {} and live["rotation"]["missing"] == 0
    assert live["rotation"]["delivered"] == live["rotation"]["expected"] > 0
    assert live["revocation"]["rejected"] == live["revocation"]["expected_rejected"]
    assert live["revocation"]["rejected"]["no-key"] > 0  # the revoked one read nothing new
    assert live["revocation"]["unexpected"] == live["revocation"]["missing"] == 0
    for name, row in channels.items():
        assert row["delivered"] == row["expected"] > 0, name
        assert row["missing"] == row["unexpected"] == row["leaked"] == 0, name
        assert row["rejected"] == row["expected_rejected"], name
        assert sum(row["rejected"].values()) >= 3, name  # every channel was attacked
    assert {"replay", "forged", "revoked", "unknown-sender", "unauthorized"} <= {
        reason for row in channels.values() for reason in row["rejected"]
    }


def test_demo_verdict_is_computed_from_what_arrived():
    """The verdict compares messages, not counts: a lost message plus a duplicate of another
    fails, and so does an attack that was not rejected or a payload a relay could read."""
    from collections import Counter

    from nngsec._cli import _demo

    sent = Counter({("w", "s", b"job 1"): 1, ("w", "s", b"job 2"): 1})
    row = _demo.ChannelRow(sent=2, expected=sent, delivered=Counter(sent))
    row.expected_rejected["forged"] = 1
    report = _demo.DemoReport({"jobs": row}, 1.0)
    assert not report.ok  # the expected rejection did not happen
    row.rejected["forged"] = 1
    assert report.ok
    row.delivered = Counter({("w", "s", b"job 1"): 2})  # same count, wrong messages
    assert not report.ok
    assert (row.missing, row.unexpected) == (1, 1)
    assert "FAILED" in report.table()
    row.delivered = Counter(sent)
    row.leaked = 1
    assert not report.ok


def test_a_socket_that_stalls_fails_the_demo_in_one_line(cli, monkeypatch):
    from nngsec._cli import _demo

    def stalled(say):
        raise TimeoutError("no reply from controller-a")

    monkeypatch.setattr(_demo, "run_demo", stalled)
    result = cli("demo")
    assert result.code == 1
    [line] = result.error_lines
    assert line.startswith("nngsec demo: FAILED: a socket did not deliver in time")
    assert "no reply from controller-a" in line and "(hint: " in line
