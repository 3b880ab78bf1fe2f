"""The package as users get it: ``python -m build`` makes an sdist that holds the whole
test suite, the docs and the example policies, and a wheel (built from that sdist) that
holds the schemas and the example deployment ``nngsec init`` starts from, with SPDX
licence metadata; pytest collects the unpacked sdist's tests against the installed wheel.

The build takes some seconds: it runs once (a module fixture) for the slow tests below.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from nngsec._version import DOCS_URL, PROJECT_URL, __version__
from tests.support import ROOT

# What a source tree holds that is not the project: machine state and caches.
_NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".git", "node_modules", "__pycache__", "*.pyc", ".*_cache", ".hypothesis",
    ".coverage*", "htmlcov", "build", "dist", "*.egg-info", "out",
)  # fmt: skip


def _env() -> dict[str, str]:
    # Without coverage's hook: these children are not nngsec's code under test.
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env or _env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(sdist, wheel, build output): sdist from a copy of the source tree, wheel from it."""
    work = tmp_path_factory.mktemp("build")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE, symlinks=True)
    output = _run(
        sys.executable, "-m", "build", "--no-isolation", "--outdir", work / "dist", ".", cwd=source
    )
    (sdist,) = (work / "dist").glob("*.tar.gz")
    (wheel,) = (work / "dist").glob("*.whl")
    return sdist, wheel, output


def test_the_project_urls_are_written_once():
    """pyproject.toml's URLs are the ones SARIF reports (informationUri, helpUri) cite."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["urls"]["Homepage"] == project["urls"]["Source"] == PROJECT_URL
    assert project["urls"]["Documentation"] == DOCS_URL
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text()


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_build_prints_no_warning(built):
    """No Python warning (setuptools' deprecations were ``BuildBackendWarning`` and
    ``SetuptoolsDeprecationWarning``). The build's own lowercase ``warning:`` log lines are
    notes: a MANIFEST.in exclude that matched nothing (a clean tree has no caches to
    exclude), byte-compiling turned off by the environment."""
    _, _, output = built
    assert not re.search(r"\w*Warning\b", output), output
    assert "deprecat" not in output.lower(), output
    notes = [line for line in output.splitlines() if line.lower().startswith("warning")]
    for note in notes:
        assert "no previously-included files" in note or "byte-compiling" in note, note


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_sdist_holds_the_tests_docs_and_examples(built):
    sdist, _, _ = built
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    expected = [
        "LICENSE",
        "README.md",
        "Makefile",
        "MANIFEST.in",
        "pyproject.toml",
        "docs/architecture.md",
        "docs/policy-editing.md",
        "docs/rules.md",
        "docs/spec/wire-format.md",
        "policies/factory.yaml",
        "policies/factory.topology.yaml",
        "policies/factory.keys.json",
        "tests/conftest.py",
        "tests/data/bad_policies/many-problems.yaml",
        "tests/data/bad_keys/truncated.key",
        "tests/data/bad_channel_keys/empty.json",
        "tests/data/sarif-schema-2.1.0.json",
        "tests/vectors/sealed_pubsub.json",
        "tests/topology/test_check_cli.py",
        "tests/foundation/test_schema.py",
        "tests/ajv/package-lock.json",
        "tests/ajv/validate.mjs",
        "src/nngsec/schemas/policy.schema.json",
        "src/nngsec/_examples/factory.yaml",
    ]
    assert [name for name in expected if name not in names] == []
    for name in names:
        assert "node_modules" not in name and "__pycache__" not in name, name
    # Every test data file of the repository is in it.
    data = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("*") if p.is_file()}
    data = {n for n in data if "node_modules" not in n and "__pycache__" not in n}
    assert data - names == set()


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_wheel_holds_the_schemas_examples_and_licence(built):
    _, wheel, _ = built
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"nngsec-{__version__}.dist-info"
        metadata = email.message_from_bytes(archive.read(f"{info}/METADATA"))
    for name in (
        "nngsec/py.typed",
        "nngsec/_examples/factory.yaml",
        "nngsec/_examples/factory.topology.yaml",
        "nngsec/schemas/policy.schema.json",
        "nngsec/schemas/topology.schema.json",
        "nngsec/schemas/channel-keys.schema.json",
        f"{info}/licenses/LICENSE",
    ):
        assert name in names, name
    assert metadata["License-Expression"] == "MIT"
    assert metadata["License-File"] == "LICENSE"
    classifiers = metadata.get_all("Classifier") or []
    for classifier in (
        "Typing :: Typed",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
    ):
        assert classifier in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # SPDX says it
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert urls["Homepage"] == urls["Source"] == PROJECT_URL
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert extras == {"test", "dev"}


@pytest.mark.slow
@pytest.mark.subprocess
def test_pytest_collects_the_unpacked_sdist_against_the_installed_wheel(built, tmp_path):
    sdist, wheel, _ = built
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    (unpacked,) = tmp_path.glob("nngsec-*")
    installed = tmp_path / "installed"
    _run(
        sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
        "--target", installed, wheel, cwd=tmp_path,
    )  # fmt: skip
    env = {**_env(), "PYTHONPATH": str(installed)}
    where = _run(
        sys.executable, "-c", "import nngsec; print(nngsec.__file__)", cwd=tmp_path, env=env
    )
    assert Path(where.strip()).is_relative_to(installed), where  # the wheel, not src/
    output = _run(
        sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
        "-p", "no:xdist", cwd=unpacked, env=env,
    )  # fmt: skip
    summary = output.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ tests collected in [\d.]+s", summary), output[-3000:]
    assert int(summary.split()[0]) > 1000, summary
    # The example deployment comes from the installed package.
    init = _run(sys.executable, "-m", "nngsec", "init", tmp_path / "site", cwd=tmp_path, env=env)
    assert "12 new identities" in init
