"""Logging: one logger per module under ``nngsec.*``, records with ``extra`` fields a log
processor can use (channel, reason, count, claimed sender), and a library that never sets
a logger's level, not even from the demo or the bench."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pynng
import pytest

from nngsec._cli import _logs
from tests.net import address, connected
from tests.support import ROOT

PACKAGE = ROOT / "src" / "nngsec"
BODY = """
channels:
  telemetry:
    pattern: pubsub
    publishers: [sensor]
    subscribers: [dashboard]
"""


def _calls(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)]


def _attribute(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else ""


def test_every_logger_of_the_library_is_its_modules_own():
    loggers = 0
    for path in PACKAGE.rglob("*.py"):
        for call in _calls(path):
            where = f"{path.relative_to(PACKAGE)}:{call.lineno}"
            if _attribute(call) == "getLogger" and call.args:
                loggers += 1
                (argument,) = call.args
                assert isinstance(argument, ast.Name) and argument.id == "__name__", where
            elif _attribute(call) == "getLogger":  # the root logger: the CLI's handler only
                assert path == PACKAGE / "_cli" / "_logs.py", where
    assert loggers >= 4


def _is_logging_disable(call: ast.Call) -> bool:
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "disable"
        and isinstance(func.value, ast.Name)
        and func.value.id == "logging"
    )


def test_the_library_never_sets_a_level_or_silences_a_logger():
    for path in PACKAGE.rglob("*.py"):
        for call in _calls(path):
            where = f"{path.relative_to(PACKAGE)}:{call.lineno}"
            assert _attribute(call) != "setLevel", where
            assert not _is_logging_disable(call), where


def _flipped(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 1])


def test_a_rejection_record_carries_channel_reason_count_and_the_claimed_sender(
    world_factory, tmp_path, caplog
):
    world = world_factory(BODY, ["sensor", "dashboard"])
    outsider = world_factory(BODY, ["sensor", "dashboard"])  # same names, other keys
    honest = world.node("sensor").seal("telemetry", b"21.5", topic="temp.x")
    foreign = outsider.node("sensor").seal("telemetry", b"21.5", topic="temp.x")
    url = address("inproc", tmp_path)
    with (
        pynng.Pub0(listen=url) as attacker,
        world.node("dashboard").attach(pynng.Sub0(dial=url, recv_timeout=300), "telemetry") as sub,
        caplog.at_level(logging.WARNING, logger="nngsec"),
    ):
        sub.subscribe("")
        connected(attacker, sub)
        for frame in (_flipped(honest), foreign, b"temp.x\x00not a frame"):
            attacker.send(frame)
        with pytest.raises(pynng.Timeout):
            sub.recv()
    records = {r.reason: r for r in caplog.records if hasattr(r, "reason")}
    assert set(records) == {"forged", "unknown-sender", "malformed"}
    for reason, record in records.items():
        assert record.name == "nngsec._runtime._sockets"
        assert (record.channel, record.count) == ("telemetry", 1), reason
        assert "21.5" not in record.getMessage()
    assert records["forged"].claimed_sender == "sensor"
    assert "claims to be from sensor" in records["forged"].getMessage()
    foreign_id = outsider.node("sensor").public_key.key_id.hex()
    assert records["unknown-sender"].claimed_sender == f"key id {foreign_id}"
    assert records["malformed"].claimed_sender is None


def test_a_node_warning_names_its_channel_and_identity(world_factory, caplog):
    world = world_factory(BODY, ["sensor", "dashboard"], with_keys=False)
    with caplog.at_level(logging.WARNING, logger="nngsec"):
        world.node("dashboard")
    (record,) = [r for r in caplog.records if r.name == "nngsec._runtime._node"]
    assert (record.channel, record.identity) == ("telemetry", "dashboard")


# -- quieting without touching a logger -------------------------------------------------------


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(f"{record.name}:{record.levelname}")


def test_quieted_filters_at_the_handlers_and_changes_no_logger(monkeypatch):
    root_handler, user_handler, last_resort = _Keep(), _Keep(), _Keep()
    monkeypatch.setattr(logging.getLogger(), "handlers", [root_handler])
    monkeypatch.setattr(logging, "lastResort", last_resort)
    ours = logging.getLogger("nngsec._runtime._sockets")
    ours.addHandler(user_handler)  # a user who asked for nngsec's records gets them all
    levels = {name: logging.getLogger(name).level for name in ("nngsec", ours.name)}
    try:
        with _logs.quieted():
            ours.warning("a rejection the demo shows itself")
            ours.error("a real failure")
            logging.getLogger("app").warning("the application's own warning")
            assert {name: logging.getLogger(name).level for name in levels} == levels
        ours.warning("after")
    finally:
        ours.removeHandler(user_handler)
    assert root_handler.seen == [
        "nngsec._runtime._sockets:ERROR",
        "app:WARNING",
        "nngsec._runtime._sockets:WARNING",
    ]
    assert user_handler.seen == [
        "nngsec._runtime._sockets:WARNING",
        "nngsec._runtime._sockets:ERROR",
        "nngsec._runtime._sockets:WARNING",
    ]
    assert root_handler.filters == [] and last_resort.filters == []


def test_quieted_covers_a_process_without_logging_set_up(monkeypatch):
    """A spawned bench process has no handler: Python's last resort prints warnings."""
    last_resort = _Keep()
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.setattr(logging, "lastResort", last_resort)
    with _logs.quieted():
        logging.getLogger("nngsec._runtime._trust").warning("policy used unsigned")
    assert last_resort.seen == []
