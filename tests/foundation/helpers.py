"""Helpers shared by the foundation tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from nngsec import Problem

# Public keys of the example policy (policies/factory.yaml); private halves are not needed.
K1 = (
    "nngsec-id-v1:4-MzAzl7_f67o0wbg15I396FhlEiYIpurfATwFxZZpGnwDDF9CcW9knd8BOzKRqp4p8X_uevuVDJ"
    "-LK_oLR6ayB-nB0"
)
K2 = (
    "nngsec-id-v1:UsoZL_w4igBKFpmo2-8BVKru023ueO5Xcm6w3eUoBhwWwbz-SkBVAA0uyhvbnnQiCwZr4_5DslfP05q"
    "-iSGLCCqN4yA"
)


def at(text: str, problem: Problem) -> str:
    """The rest of the line of ``text`` from the problem's line and column."""
    assert problem.line is not None, f"no line in {problem}"
    assert problem.column is not None, f"no column in {problem}"
    return text.splitlines()[problem.line - 1][problem.column - 1 :]


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return self.err.splitlines()


def run_cli(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> Result:
    """Run ``python -m nngsec ARGS`` in a real subprocess."""
    environment = {**os.environ, "NNGSEC_KEYSTORE": "keys", **(env or {})}
    environment.pop("NNGSEC_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-m", "nngsec", *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)
