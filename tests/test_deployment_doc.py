"""docs/deployment.md's example runs as written, and its bundles start nodes that follow
their files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nngsec import Node

DOC = Path(__file__).parents[1] / "docs" / "deployment.md"


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_deployment_example_runs(tmp_path):
    match = re.search(r"<!-- example:deployment -->\n```sh\n(.*?)```", DOC.read_text(), re.S)
    assert match, "docs/deployment.md has no example"
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    run = subprocess.run(
        ["bash", "-e", "-c", match.group(1)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    for name in ("sensor", "dashboard"):
        bundle = tmp_path / f"bundle-{name}"
        private = sorted(p.name for p in (bundle / "keys").glob("*.key"))
        assert private == [f"{name}.key"]
        config = json.loads((bundle / "node.json").read_text())
        with Node(
            bundle / config["source"], identity=name, keystore=bundle / config["keystore"]
        ) as node:
            keys = node.channel_keys["telemetry"]
            newest, previous = (k.epoch for k in keys.epochs)  # rotated once
            assert newest > previous
            assert keys.current.activate_at is not None  # distributed ahead of its use
