"""The test harness itself: the in-process command line behaves as a fresh process would."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from nngsec._cli import _admin_commands, _info_commands


def test_log_records_land_in_the_captured_stderr_of_every_run(cli, monkeypatch):
    """main() configures logging; each run's records reach that run's stderr, formatted
    as a user sees them, and nothing stays bound to a stream that is gone."""
    ours = logging.getLogger("nngsec")

    def warn(args: argparse.Namespace) -> int:
        ours.warning("a warning during %s", args.command)
        return 0

    monkeypatch.setattr(_info_commands, "_schema", warn)
    handlers = logging.getLogger().handlers[:]
    first, second = cli("schema"), cli("schema")
    for result in (first, second):
        assert result.code == 0, result
        assert result.err == "nngsec: WARNING: a warning during schema\n"
    assert logging.getLogger().handlers == handlers
    assert ours.level == logging.NOTSET


def test_argparse_exits_become_the_exit_status(cli):
    version = cli("--version")
    assert (version.code, version.err) == (0, "")
    assert version.out.startswith("nngsec ")
    usage = cli("frobnicate")
    assert usage.code == 2 and usage.out == ""
    assert "invalid choice" in usage.err


def test_directory_and_environment_apply_to_one_run(cli, tmp_path):
    before = Path.cwd()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("keygen", "a", cwd=elsewhere, env={"NNGSEC_KEYSTORE": "ks"})
    assert result.code == 0, result
    assert (elsewhere / "ks" / "a.key").exists()
    assert Path.cwd() == before
    assert os.environ.get("NNGSEC_KEYSTORE") != "ks"
    assert _admin_commands.DEFAULT_KEYSTORE != "ks"
    assert cli("keygen", "b").code == 0  # the default: ./keys in tmp_path
    assert (tmp_path / "keys" / "b.key").exists()
