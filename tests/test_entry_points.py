"""The command line as a user starts it: real processes, for what only a process shows.

The other command-line tests run ``nngsec._cli.main`` in this process (the ``cli``
fixture). These start ``python -m nngsec`` and the ``nngsec`` console script, and check
the exit statuses (0 clean, 1 findings, 2 bad input) and the promise that bad input is one
line per problem with a hint, never a Python traceback, as the process ends.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import DATA, ROOT, run_subprocess

pytestmark = pytest.mark.subprocess

TOPOLOGY = ROOT / "policies" / "factory.topology.yaml"
ERROR_LINE = re.compile(r"^nngsec( \w+)?: error: .+ \(hint: .+\)$")


def test_python_dash_m_and_the_console_script_start_the_command_line(tmp_path):
    result = run_subprocess("--help", cwd=tmp_path)
    assert result.code == 0, result
    assert result.out.startswith("usage: nngsec")
    assert "keygen" in result.out and "relay" in result.out
    script = Path(sys.executable).with_name("nngsec")  # installed by pip with the package
    done = subprocess.run(
        [script, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"nngsec \d+\.\d+\.\d+\n", done.stdout)


def test_check_exit_statuses(tmp_path):
    clean = run_subprocess("check", TOPOLOGY, cwd=tmp_path)
    assert clean.code == 0, clean
    assert "0 errors, 4 warnings" in clean.out
    findings = run_subprocess("check", TOPOLOGY, "--warn-as-error", cwd=tmp_path)
    assert findings.code == 1, findings
    missing = run_subprocess("check", tmp_path / "nope.yaml", cwd=tmp_path)
    assert missing.code == 2
    assert missing.out == ""
    [line] = missing.error_lines
    assert ERROR_LINE.match(line), line
    assert "policy file not found" in line
    for result in (clean, findings, missing):
        assert "Traceback" not in result.err + result.out


def test_bad_input_is_one_line_per_problem_without_a_traceback(tmp_path):
    shutil.copy(DATA / "bad_policies" / "many-problems.yaml", tmp_path / "p.yaml")
    malformed = run_subprocess("rotate", "p.yaml", cwd=tmp_path)
    assert malformed.code == 2
    assert malformed.out == ""
    assert len(malformed.error_lines) == 4, malformed.err
    assert all(ERROR_LINE.match(line) for line in malformed.error_lines), malformed.err
    usage = run_subprocess("frobnicate", cwd=tmp_path)
    assert usage.code == 2
    [line] = usage.error_lines
    assert re.match(r"^nngsec: error: .+ \(hint: nngsec --help\)$", line), line
    for result in (malformed, usage):
        assert "Traceback" not in result.err
