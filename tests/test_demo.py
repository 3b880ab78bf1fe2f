"""The main job: `nngsec demo` passes, and says so in text and JSON."""

from __future__ import annotations

import json
import logging

import pytest


class _Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.reasons: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.reasons.add(getattr(record, "reason", ""))


@pytest.mark.slow
def test_demo_passes_and_reports_in_json(cli):
    ours = logging.getLogger("nngsec")
    seen = _Seen()  # an application's own handler on the library's logger
    ours.addHandler(seen)
    try:
        run = cli("demo", "--format", "json")
    finally:
        ours.removeHandler(seen)
    assert run.code == 0, run.out + run.err
    assert "Traceback" not in run.err
    assert run.err == ""  # the demo shows rejections in its table, not as log lines
    assert ours.level == logging.NOTSET  # and set no logger's level: the quieting is a
    assert {"replay", "forged", "wrong-channel"} <= seen.reasons  # filter on other handlers
    report = json.loads(run.out)
    assert report["ok"] is True
    assert report["seconds"] < 30
    channels = report["channels"]
    assert set(channels) == {
        "telemetry", "jobs", "control", "cells", "sync", "health", "rotation", "revocation",
    }  # fmt: skip
    # Each attack was injected on its own and rejected, by every receiver it reached, for
    # the reason the design gives; the report says which check that is.
    attacks = report["attacks"]
    assert {attack["channel"] for attack in attacks} == set(channels) - {"rotation", "revocation"}
    for attack in attacks:
        assert attack["ok"] is True, attack
        assert attack["rejected_as"] == {attack["expected"]: attack["receivers"]}, attack
        assert attack["check"], attack
    by_channel = {
        (a["channel"], a["expected"]) for a in attacks
    }  # pair and survey: every kind of attack they can meet
    assert {
        ("sync", "replay"), ("sync", "forged"), ("sync", "unauthorized"), ("sync", "wrong-channel"),
        ("health", "replay"), ("health", "forged"), ("health", "unknown-sender"),
    } <= by_channel  # fmt: skip
    # Counts per receiver add up to the channel's.
    for name, row in channels.items():
        receivers = row["receivers"]
        assert receivers, name
        total: dict[str, int] = {}
        for tally in receivers.values():
            for reason, count in tally["rejected"].items():
                total[reason] = total.get(reason, 0) + count
        assert total == {r: n for r, n in row["rejected"].items() if n}, name
    assert set(channels["health"]["receivers"]) == {"dashboard", "worker-1", "worker-2"}
    assert channels["sync"]["receivers"]["archiver"]["rejected"] == {
        "forged": 2, "replay": 1, "unauthorized": 1, "wrong-channel": 1,
    }  # fmt: skip
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
    assert {"replay", "forged", "revoked", "unknown-sender", "unauthorized", "wrong-channel"} <= {
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
    row.leaked = 0
    assert report.ok


def test_the_demo_says_what_each_attack_was_and_which_check_rejected_it():
    """An attack rejected for another reason than the design's, or not at all, fails the
    demo, even when the channel's totals come out right; the table names the check."""
    from collections import Counter

    from nngsec._cli import _demo

    row = _demo.ChannelRow(expected_rejected=Counter({"replay": 1, "forged": 1}))
    row.rejected = Counter({"replay": 1, "forged": 1})
    row.tally("archiver", 4, row.rejected)
    replayed = _demo.Attack("sync", "a frame, replayed", "replay", 1, Counter({"forged": 1}))
    flipped = _demo.Attack("sync", "a bit flipped", "forged", 1, Counter({"replay": 1}))
    report = _demo.DemoReport({"sync": row}, 1.0, [replayed, flipped])
    assert row.ok and not report.ok  # the totals match; the attacks were swapped
    table = report.table()
    assert "sync: a frame, replayed" in table and "FAILED (expected replay)" in table
    assert "the signature or the AEAD tag does not verify" in table  # the check, in words
    assert "sync archiver" in table and "forged 1, replay 1" in table  # per receiver
    replayed.rejected_as, flipped.rejected_as = Counter({"replay": 1}), Counter()
    assert flipped.outcome == "NOT REJECTED" and not report.ok
    flipped.rejected_as = Counter({"forged": 1})
    assert report.ok
    assert "every honest message arrived and every attack was rejected" in report.table()
    data = json.loads(report.to_json())
    assert data["attacks"][0] == {
        "channel": "sync",
        "attack": "a frame, replayed",
        "expected": "replay",
        "receivers": 1,
        "rejected_as": {"replay": 1},
        "check": _demo.CHECKS["replay"],
        "ok": True,
    }
    assert data["channels"]["sync"]["receivers"] == {
        "archiver": {"delivered": 4, "rejected": {"forged": 1, "replay": 1}}
    }


def test_every_reason_has_its_check_in_words():
    from nngsec import Rejected
    from nngsec._cli import _demo

    assert sorted(_demo.CHECKS) == sorted(Rejected.REASONS)


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
