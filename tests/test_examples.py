"""The user guide's programs run, and print what the guide says they print.

Every program of ``docs/guide/`` is a file of ``examples/``, shown in the guide byte for byte
(``<!-- example: NAME.py -->`` before its block), and followed by the output the guide
shows (``<!-- output: NAME.py -->``). The guide's shell blocks (``<!-- run: ... -->``) make
the deployment the programs run beside, as a reader would, in page order. Each program
then runs in a real child process, in a fresh copy of that deployment, over real sockets.
A guide block that is neither is refused: nothing in the guide goes unrun.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from nngsec import Rejected
from tests.support import ROOT

EXAMPLES = ROOT / "examples"
GUIDE = ROOT / "docs" / "guide"
PROGRAMS = sorted(path.name for path in EXAMPLES.glob("*.py"))
# A fenced block, and the marker comment on the line before it, if any.
FENCE = re.compile(r"(?:<!-- (\w+): (\S+) -->\n)?^```(\w*)\n(.*?)^```$", re.S | re.M)
TIMEOUT = 30  # seconds; each program takes one or two
_DONE = shutil.ignore_patterns("done")


@dataclass(frozen=True)
class Block:
    page: str
    marker: str | None  # example, output, run
    name: str | None
    language: str
    text: str


def blocks() -> list[Block]:
    found = []
    for page in sorted(GUIDE.glob("*.md")):
        for match in FENCE.finditer(page.read_text()):
            marker, name, language, text = match.groups()
            found.append(Block(page.name, marker, name, language, text))
    return found


def marked(marker: str) -> dict[str, Block]:
    chosen = [block for block in blocks() if block.marker == marker]
    by_name = {block.name: block for block in chosen if block.name is not None}
    assert len(by_name) == len(chosen), f"two {marker} blocks of one name"
    return by_name


def test_every_program_of_the_guide_is_an_example_file_as_it_is():
    examples = marked("example")
    assert sorted(examples) == PROGRAMS  # every file is shown, every block is a file
    for name, block in examples.items():
        assert block.language == "python", name
        assert block.text == (EXAMPLES / name).read_text(), f"{block.page}: {name} differs"
    assert sorted(marked("output")) == PROGRAMS  # and what each prints


def test_no_block_of_the_guide_goes_unrun():
    for block in blocks():
        where = f"{block.page}: a {block.language or 'plain'} block"
        if block.language == "python":
            assert block.marker == "example", f"{where} that is not an example file"
        elif block.language == "sh":
            assert block.marker == "run", f"{where} that the tests do not run"
        elif block.marker is not None:
            assert (block.marker, block.language) in (("output", "text"),), where


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory the guide's shell blocks leave behind, run as pasted, in order; made
    once for the whole run (xdist's workers share their base directory's parent), under a
    lock."""
    shared = tmp_path_factory.getbasetemp().parent
    root = shared / "guide-deployment"
    with (shared / "guide-deployment.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "done").exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            _run_the_guides_shell_blocks(root)
            (root / "done").touch()
    return root


def _run_the_guides_shell_blocks(root: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    runs = [block for block in blocks() if block.marker == "run"]
    assert runs, "the guide has no shell block making the deployment"
    for block in runs:
        done = subprocess.run(
            ["bash", "-e", "-c", block.text],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{block.page}: {block.name}: {done.stderr}"
        assert "Traceback" not in done.stderr


@pytest.mark.subprocess
@pytest.mark.parametrize("name", PROGRAMS)
def test_the_example_prints_what_the_guide_shows(name, deployment, tmp_path):
    shutil.copytree(deployment, tmp_path, dirs_exist_ok=True, ignore=_DONE)  # its own state
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    took = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == marked("output")[name].text
    assert took < TIMEOUT / 2, f"{name} took {took:.1f}s"


def test_the_troubleshooting_table_explains_every_reason():
    text = (GUIDE / "rejections.md").read_text()
    rows = re.findall(r"^\| `([a-z-]+)` \| (.+?) \| (.+?) \|$", text, re.M)
    assert sorted(reason for reason, _, _ in rows) == sorted(Rejected.REASONS)
    for reason, meaning, action in rows:
        assert len(meaning) > 40 and len(action) > 40, reason
    stale = next(row for row in rows if row[0] == "stale")
    assert "from the future" in stale[1] and "clock is ahead" in stale[1]
