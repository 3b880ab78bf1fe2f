"""What ``nngsec._cli.main`` makes of failures no input check catches, and bench's options.

A bug is one line and exit 3 (a traceback only with NNGSEC_DEBUG), Ctrl-C is 130, a reader
that closed the pipe is not an error; bad bench options are one line and exit 2.
"""

from __future__ import annotations

import argparse
import re

import pytest

from nngsec._cli import _info_commands


@pytest.fixture
def schema_raises(monkeypatch):
    """Make ``nngsec schema`` raise ``error`` (a stand-in for any command failing)."""

    def install(error: BaseException) -> None:
        def run(args: argparse.Namespace) -> int:
            raise error

        monkeypatch.setattr(_info_commands, "_schema", run)

    return install


def test_a_bug_is_one_line_with_a_hint_and_exit_3(cli, schema_raises):
    schema_raises(ZeroDivisionError("division by zero"))
    result = cli("schema")
    assert result.code == 3
    assert result.out == ""
    [line] = result.error_lines
    assert line == (
        "nngsec: internal error: ZeroDivisionError: division by zero (hint: rerun with "
        "NNGSEC_DEBUG=1 for a traceback, and please report it)"
    )


def test_nngsec_debug_lets_the_traceback_through(cli, schema_raises):
    schema_raises(ZeroDivisionError("division by zero"))
    with pytest.raises(ZeroDivisionError):
        cli("schema", env={"NNGSEC_DEBUG": "1"})


def test_ctrl_c_exits_130_and_a_closed_pipe_0(cli, schema_raises):
    schema_raises(KeyboardInterrupt())
    assert cli("schema").code == 130
    schema_raises(BrokenPipeError())
    result = cli("schema")
    assert (result.code, result.err) == (0, "")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--sizes", "64,lots"], "argument --sizes: expected a comma-separated list, got"),
        (["--modes", "threads,fibres"], "argument --modes: unknown fibres; choose from threads"),
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--transport", "inproc", "--modes", "processes"], "inproc cannot cross processes"),
    ],
)
def test_bad_bench_options_are_one_line_and_exit_2(cli, args, words):
    result = cli("bench", *args)
    assert result.code == 2
    assert result.out == ""
    [line] = result.error_lines
    assert re.match(r"^nngsec( bench)?: error: ", line), line
    assert words in line
