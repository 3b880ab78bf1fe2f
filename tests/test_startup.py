"""Start-up: ``nngsec --version``, ``--help`` and ``relay --help`` answer at once, because
neither ``import nngsec`` nor the command line imports what a command does not need.

Scripts and supervisors run these (a health check, ``--version`` in a bug report, a relay
restarted in a loop). Building the pydantic models and loading libsodium took 0.4-1.0 s at
every start; now a command's modules load when that command runs. Two kinds of check: which
libraries a start imports (exact, in a fresh interpreter), and how much CPU time it takes
(a generous bound on the best of several runs, without coverage measuring the child).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import pytest

import nngsec
from nngsec._cli import COMMANDS, build_parser

# Libraries a short start must not import: pydantic (its models are built at import),
# libsodium's bindings, NNG's, and the YAML parser.
HEAVY = ("pydantic", "pydantic_core", "nacl", "pynng", "yaml")
PROBE = """
import json, sys
from nngsec._cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
print("\\nIMPORTED " + json.dumps(heavy), file=sys.stderr)
""".replace("HEAVY", repr(HEAVY))


def _clean_env() -> dict[str, str]:
    """This environment without coverage's start-up hook (it would time coverage)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}


def _imported(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_clean_env(),
    )
    marker = done.stderr.rsplit("IMPORTED ", 1)
    assert len(marker) == 2, done.stderr
    found: list[str] = json.loads(marker[1])
    return found


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["--version"], ()),
        (["-V"], ()),
        (["--help"], ()),
        (["relay", "--help"], ()),  # NNG is imported when a relay starts
        (["schema", "--help"], ()),
        (["completion", "--help"], ()),
    ],
)
def test_short_commands_import_no_heavy_library(args, allowed):
    assert set(_imported(*args)) <= set(allowed), args


@pytest.mark.subprocess
def test_a_running_relay_imports_nng_and_nothing_that_holds_a_key(tmp_path):
    """A relay started as supervisors start it: NNG, none of pydantic, libsodium, YAML."""
    front, back = f"ipc://{tmp_path}/front", f"ipc://{tmp_path}/back"
    relay = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "nngsec", "relay", "pubsub",
         "--front", front, "--back", back],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_env(),
    )  # fmt: skip
    try:
        assert relay.stdout is not None
        banner = relay.stdout.readline()
        assert banner.startswith("nngsec: pubsub relay: front "), banner
    finally:
        relay.terminate()
        _, importtime = relay.communicate(timeout=30)
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in importtime.splitlines()}
    assert "pynng" in imported
    assert imported & set(HEAVY) == {"pynng"}


@pytest.mark.subprocess
def test_import_nngsec_imports_only_the_exceptions():
    code = (
        "import sys, nngsec; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env(), check=True
    )
    assert done.stdout.strip() == "[]"


# Seconds of CPU (user + system) of the child: what a start costs, whatever else the
# machine runs at the same time (the wall-clock time of a loaded CI machine is not). These
# took 0.55-0.7 s before; they take about 0.05-0.15 s now.
BOUND = 0.3


def _cpu_seconds(args: list[str]) -> float:
    script = os.path.join(os.path.dirname(sys.executable), "nngsec")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [script, *args], capture_output=True, timeout=60, check=False, env=_clean_env()
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0, done.stderr
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@pytest.mark.subprocess
@pytest.mark.parametrize("args", [["--version"], ["--help"], ["relay", "--help"]])
def test_short_commands_start_in_well_under_a_third_of_a_second(args):
    """The best of five runs of the console script, as a shell runs it."""
    best = min(_cpu_seconds(args) for _ in range(5))
    assert best < BOUND, f"nngsec {' '.join(args)}: {best:.3f}s of CPU"


# -- the lazy parts say the same as the eager ones --------------------------------------------


def test_the_short_help_lists_every_command_as_the_full_parser_does():
    """``nngsec --help`` lists the commands from COMMANDS without importing them; a command
    added to a module but not to COMMANDS (or with another summary) fails here."""
    assert build_parser([]).format_help() == build_parser().format_help()


def _command_parsers(parser):
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    return commands.choices


def test_each_command_is_fully_defined_when_it_is_the_one_run():
    full = _command_parsers(build_parser())
    assert list(full) == list(COMMANDS)
    for name, (module, _) in COMMANDS.items():
        chosen = _command_parsers(build_parser([name]))
        assert chosen[name].format_help() == full[name].format_help(), (name, module)


@pytest.mark.subprocess
def test_public_names_load_on_first_use_and_report_nngsec_as_home():
    code = """
import sys, pickle, nngsec
assert "nngsec._runtime._node" not in sys.modules
node = nngsec.Node
assert "nngsec._runtime._node" in sys.modules
assert node.__module__ == "nngsec", node.__module__
# A class loaded by another public name reports nngsec too, before anyone asked for it.
nngsec.load_policy
assert sys.modules["nngsec._policy._policy"].Policy.__module__ == "nngsec"
assert set(nngsec.__all__) <= set(dir(nngsec))
try:
    nngsec.Nod
except AttributeError as error:
    assert "Nod" in str(error)
else:
    raise SystemExit("a misspelt name must raise AttributeError")
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env(), check=False
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_star_import_gives_every_public_name():
    namespace: dict[str, object] = {}
    exec("from nngsec import *", namespace)  # the statement under test
    assert set(nngsec.__all__) <= set(namespace)
