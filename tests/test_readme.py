"""The README's example works as pasted: its shell block, then its Python block."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.net import free_port

README = Path(__file__).parents[1] / "README.md"


def block(marker: str) -> str:
    match = re.search(rf"<!-- example:{marker} -->\n```\w+\n(.*?)```", README.read_text(), re.S)
    assert match, f"README has no {marker} example"
    return match.group(1)


@pytest.mark.subprocess  # the shell block and the Python block, each as pasted
def test_readme_example_runs_as_pasted(tmp_path):
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}

    def run_in_tmp(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, check=False, text=True, timeout=60
        )

    shell = run_in_tmp("bash", "-e", "-c", block("shell"))
    assert shell.returncode == 0, shell.stderr
    # The block's comment says how many warnings to expect: it must be what check says.
    said = re.search(r"exit 0: (\w+) warnings to read", block("shell"))
    words = {"two": 2, "three": 3, "four": 4, "five": 5}
    assert said, "the README's check line says how many warnings to expect"
    assert f"0 errors, {words[said.group(1)]} warnings" in shell.stdout + shell.stderr
    written = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    again = subprocess.run(
        ["bash", "-e", "-c", block("shell")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert again.returncode == 2, "a second run must refuse, not replace the deployment"
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == written
    code = block("python").replace("5555", str(free_port()))  # the port may be taken here
    assert len(code.strip().splitlines()) <= 22
    run = run_in_tmp(sys.executable, "-c", code)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "sensor-1 temp.line1 b'21.5' Counter()"
    assert "Traceback" not in run.stderr
