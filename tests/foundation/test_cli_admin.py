"""The admin commands through the command line: exit codes, output, files written.

Everything runs through ``nngsec._cli.main`` in this process (the ``cli`` fixture: same
code, without an interpreter start-up per command); what only a real process shows (the
keystore taken from the environment at start-up) runs ``python -m nngsec``, marked
``subprocess``. ``tests/test_entry_points.py`` runs the rest of that kind.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
from pathlib import Path

import pytest

from nngsec import Keystore, Node, load_policy
from nngsec._policy._signing import sign_files
from tests.support import DATA, ROOT, InProcessCli, Result, run_subprocess

ERROR_LINE = re.compile(r"^nngsec: error: (?P<place>\S+?): (?P<rest>.*) \(hint: (?P<hint>.+)\)$")
PLACED = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<column>\d+)$")


def assert_clean_error(result: Result, *, lines: int = 1) -> list[re.Match[str]]:
    """Exit 2, nothing on stdout, ``lines`` error lines each with a place and a hint."""
    assert result.code == 2, result
    assert "Traceback" not in result.err
    assert result.out == ""
    matches = [ERROR_LINE.match(line) for line in result.error_lines]
    assert all(matches), result.err
    assert len(matches) == lines, result.err
    return [m for m in matches if m]


def placed(match: re.Match[str]) -> tuple[str, int, int]:
    found = PLACED.match(match["place"])
    assert found, f"no file:line:column in {match.string!r}"
    return found["file"], int(found["line"]), int(found["column"])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- round trips ------------------------------------------------------------------------


def keygen(cli: InProcessCli, tmp_path: Path, name: str, keystore: str = "keys") -> str:
    result = cli("keygen", name, "--keystore", keystore, cwd=tmp_path)
    assert result.code == 0, result
    assert "Traceback" not in result.err
    assert f"wrote {keystore}/{name}.key (private, mode 0600) and {keystore}/{name}.pub" in (
        result.err
    )
    [line] = result.out.splitlines()
    return line


def test_keygen_prints_the_entry_to_paste(cli, tmp_path):
    line = keygen(cli, tmp_path, "sensor-1")
    assert re.fullmatch(r"sensor-1: nngsec-id-v1:[A-Za-z0-9_-]{91}", line)
    public_file = tmp_path / "keys" / "sensor-1.pub"
    assert line in public_file.read_text().splitlines()
    assert mode(tmp_path / "keys" / "sensor-1.key") == 0o600
    assert mode(public_file) == 0o644
    key = Keystore(tmp_path / "keys").identity("sensor-1")
    assert line == f"sensor-1: {key.public.to_text()}"


@pytest.mark.subprocess  # the command line reads NNGSEC_KEYSTORE when it starts
def test_keygen_uses_the_keystore_from_the_environment(tmp_path):
    result = run_subprocess("keygen", "a", cwd=tmp_path, env={"NNGSEC_KEYSTORE": "elsewhere"})
    assert result.code == 0, result
    assert (tmp_path / "elsewhere" / "a.key").exists()


def test_keygen_refuses_to_overwrite(cli, tmp_path):
    keygen(cli, tmp_path, "sensor-1")
    before = (tmp_path / "keys" / "sensor-1.key").read_bytes()
    result = cli("keygen", "sensor-1", "--keystore", "keys", cwd=tmp_path)
    [error] = assert_clean_error(result)
    assert error["place"] == "keys/sensor-1.key"
    assert "refusing to overwrite" in error["rest"]
    assert (tmp_path / "keys" / "sensor-1.key").read_bytes() == before


FACTORY = """\
# Written by the test, keys pasted from keygen.
nngsec: 1
name: factory
identities:
{identities}
groups:
  sensors: [sensor-1, sensor-2]
channels:
  telemetry:
    pattern: pubsub
    publishers: [sensors]
    subscribers: [dashboard]   # only the dashboard reads
  cells:
    pattern: bus
    members: [sensors, dashboard]
  sync:
    pattern: pair
    members: [sensor-1, dashboard]
revoked: []
"""


def make_deployment(tmp_path: Path, *, cli: InProcessCli | None = None) -> Path:
    """Three identities and an admin, and a policy made from keygen's output (through
    the command line when given ``cli``)."""
    names = ("sensor-1", "sensor-2", "dashboard")
    if cli is not None:
        entries = [keygen(cli, tmp_path, name) for name in names]
        keygen(cli, tmp_path, "admin", keystore="admin")
    else:
        keys = Keystore(tmp_path / "keys")
        entries = [f"{name}: {keys.generate(name)[0].public.to_text()}" for name in names]
        Keystore(tmp_path / "admin").generate("admin")
    policy = tmp_path / "factory.yaml"
    policy.write_text(FACTORY.format(identities="\n".join(f"  {e}" for e in entries)))
    return policy


@pytest.fixture
def deployment(tmp_path) -> Path:
    return make_deployment(tmp_path)


def epoch_of(tmp_path: Path, channel: str) -> int:
    """The current key epoch of ``channel`` in the deployment's channel-key file."""
    keys = json.loads((tmp_path / "factory.keys.json").read_text())
    epoch: int = keys["channels"][channel]["epochs"][0]["epoch"]
    return epoch


def test_keygen_rotate_sign_trust_revoke_round_trip(cli, tmp_path):
    deployment = make_deployment(tmp_path, cli=cli)
    # rotate: every channel that needs keys
    result = cli("rotate", "factory.yaml", cwd=tmp_path)
    assert result.code == 0, result
    first = epoch_of(tmp_path, "telemetry")
    assert epoch_of(tmp_path, "cells") == first
    assert result.out.splitlines() == [
        f"telemetry: epoch {first}, sealed to dashboard",
        f"cells: epoch {first}, sealed to dashboard, sensor-1, sensor-2",
        "wrote factory.keys.json (previous epochs readable for 1h)",
    ]
    # sign, then trust the admin in the node keystore
    result = cli("sign", "factory.yaml", "--key", "admin/admin.key", cwd=tmp_path)
    assert result.code == 0, result
    admin_id = Keystore(tmp_path / "admin").identity("admin").key_id.hex()
    assert result.out == (
        f"signed factory.yaml version 1 and its channel keys factory.keys.json with key id "
        f"{admin_id}: wrote factory.yaml.sig\n"
    )
    result = cli("trust", "admin/admin.pub", "--keystore", "keys", cwd=tmp_path)
    assert result.code == 0, result
    assert result.out == f"pinned admin (key id {admin_id}) as a policy signer in keys\n"
    result = cli("trust", "admin/admin.pub", "--keystore", "keys", cwd=tmp_path)
    assert result.out.startswith("already pinned admin")
    # the node accepts the signed policy
    keys = Keystore(tmp_path / "keys")
    node = Node(load_policy(deployment), identity="dashboard", keystore=keys)
    assert node.channel_keys["telemetry"].current.epoch == first
    # rotate again: the signature is now stale, and the command says so
    result = cli("rotate", "factory.yaml", "telemetry", "--grace", "5m", cwd=tmp_path)
    assert result.code == 0, result
    # a new epoch is distributed ahead of its use (--activate-in, 10s by default)
    first, second = result.out.splitlines()
    assert re.fullmatch(
        rf"telemetry: epoch {epoch_of(tmp_path, 'telemetry')}, sealed to dashboard; senders use "
        r"it from \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
        first,
    ), first
    assert second == "wrote factory.keys.json (previous epochs readable for 5m)"
    assert "sign again: nngsec sign factory.yaml --key ADMIN.key" in result.err
    with pytest.raises(Exception, match="modified after signing"):
        Node(load_policy(deployment), identity="dashboard", keystore=keys)
    # revoke: listed, version raised, what it could read rotated; pair reported
    result = cli("revoke", "factory.yaml", "sensor-2", cwd=tmp_path)
    assert result.code == 0, result
    assert result.out.splitlines() == [
        "revoked sensor-2 in factory.yaml (version now 2)",
        f"cells: rotated to epoch {epoch_of(tmp_path, 'cells')}, sealed to dashboard, sensor-1",
    ]
    result = cli("revoke", "factory.yaml", "sensor-1", cwd=tmp_path)
    assert result.code == 0, result
    assert "warning: sync: its keys come from identity keys" in result.err
    text = deployment.read_text()
    assert "version: 3\n" in text
    assert "revoked: [sensor-2, sensor-1]\n" in text
    assert "    subscribers: [dashboard]   # only the dashboard reads\n" in text
    assert text.startswith("# Written by the test, keys pasted from keygen.\n")
    # sign again: accepted, and the revoked identities have no entry anywhere current
    assert cli("sign", "factory.yaml", "--key", "admin/admin.key", cwd=tmp_path).code == 0
    node = Node(load_policy(deployment), identity="dashboard", keystore=keys)
    assert node.policy.version == 3
    for identity in ("sensor-1", "sensor-2"):
        with pytest.raises(Exception, match="is revoked"):
            Node(load_policy(deployment), identity=identity, keystore=keys)


def test_sign_says_everything_it_did_at_once(cli, tmp_path):
    """One sign that adds the deployment id, raises the version (--bump) and signs a policy
    without a channel-key file says all three; without --bump it refuses and writes
    nothing (the deployment line is not left behind)."""
    keys = Keystore(tmp_path / "keys")
    entries = [f"  {n}: {keys.generate(n)[0].public.to_text()}" for n in ("a", "b")]
    policy = tmp_path / "pair.yaml"
    policy.write_text(
        "nngsec: 1\nname: pair\nidentities:\n" + "\n".join(entries) + "\n"
        "channels:\n  sync:\n    pattern: pair\n    members: [a, b]\n"
    )
    admin = Keystore(tmp_path / "admin")
    admin.generate("admin")
    # Signed (format 2) before it had a deployment id, by an earlier nngsec.
    sign_files(
        policy.with_name("pair.yaml.sig"),
        version=1,
        policy_bytes=policy.read_bytes(),
        keys_bytes=None,
        key=admin.identity("admin"),
        comment="before deployment ids",
    )
    before = policy.read_bytes()
    [error] = assert_clean_error(cli("sign", "pair.yaml", "--key", "admin/admin.key", cwd=tmp_path))
    assert "changed since it was signed at version 1" in error["rest"]
    assert "--bump" in error["hint"]
    assert policy.read_bytes() == before
    result = cli("sign", "pair.yaml", "--key", "admin/admin.key", "--bump", cwd=tmp_path)
    assert result.code == 0, result
    deployment = load_policy(policy).model.deployment
    assert deployment is not None and load_policy(policy).version == 2
    assert result.err.splitlines() == [
        f"added deployment: {deployment} to pair.yaml (a random id every key and signature of "
        "this deployment is bound to; the rest of the file is unchanged)",
        "raised version: from 1 to 2 in pair.yaml (it changed since it was last signed)",
    ]
    admin_id = admin.identity("admin").key_id.hex()
    assert result.out == (
        f"signed pair.yaml version 2 (it has no channel-key file) with key id {admin_id}: "
        "wrote pair.yaml.sig\n"
    )


def test_rotate_says_so_when_no_channel_needs_keys(cli, tmp_path):
    entries = [keygen(cli, tmp_path, name) for name in ("a", "b")]
    (tmp_path / "p.yaml").write_text(
        "nngsec: 1\nname: p\nidentities:\n"
        + "".join(f"  {e}\n" for e in entries)
        + "channels:\n  sync:\n    pattern: pair\n    members: [a, b]\n"
    )
    result = cli("rotate", "p.yaml", cwd=tmp_path)
    assert result.code == 0, result
    assert result.out.startswith("no channel of p.yaml needs channel keys")
    assert not (tmp_path / "p.keys.json").exists()


# -- bad input --------------------------------------------------------------------------


def test_a_malformed_policy_is_one_line_per_problem(cli, tmp_path):
    shutil.copy(DATA / "bad_policies" / "many-problems.yaml", tmp_path / "p.yaml")
    result = cli("rotate", "p.yaml", cwd=tmp_path)
    errors = assert_clean_error(result, lines=4)
    assert [placed(e) for e in errors] == [
        ("p.yaml", 2, 7),
        ("p.yaml", 3, 10),
        ("p.yaml", 9, 23),
        ("p.yaml", 10, 14),
    ]
    assert errors[0]["rest"].startswith("name: invalid name 'Bad'")


def test_unknown_channel_and_identity_are_placed(cli, tmp_path, deployment):
    [error] = assert_clean_error(cli("rotate", "factory.yaml", "telemtry", cwd=tmp_path))
    assert placed(error) == ("factory.yaml", 10, 1)
    assert error["hint"] == "channels are: telemetry, cells, sync"
    [error] = assert_clean_error(cli("revoke", "factory.yaml", "intruder", cwd=tmp_path))
    assert placed(error) == ("factory.yaml", 4, 1)
    assert cli("revoke", "factory.yaml", "sensor-1", cwd=tmp_path).code == 0
    [error] = assert_clean_error(cli("revoke", "factory.yaml", "sensor-1", cwd=tmp_path))
    assert placed(error) == (
        "factory.yaml",
        23,
        11,
    )  # after rotate added deployment:, revoke version:
    assert "is already revoked" in error["rest"]


def test_a_world_readable_admin_key_is_refused_with_chmod_hint(cli, tmp_path, deployment):
    (tmp_path / "admin" / "admin.key").chmod(0o644)
    result = cli("sign", "factory.yaml", "--key", "admin/admin.key", cwd=tmp_path)
    [error] = assert_clean_error(result)
    assert error["place"] == "admin/admin.key"
    assert error["hint"] == "chmod 600 admin/admin.key"
    assert not (tmp_path / "factory.yaml.sig").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rotate", "missing.yaml"], "missing.yaml: policy file not found"),
        (["revoke", "missing.yaml", "a"], "missing.yaml: policy file not found"),
        (["sign", "missing.yaml", "--key", "admin/admin.key"], "policy file not found"),
        (["sign", "factory.yaml", "--key", "nope.key"], "private key file not found"),
        (["trust", "nope.pub", "--keystore", "keys"], "public key file not found"),
        (["rotate", "."], "expected a policy file, found a directory"),
        (["keygen", "Bad-Name", "--keystore", "keys"], "invalid identity name 'Bad-Name'"),
    ],
)
def test_missing_files_and_bad_names_are_one_line(cli, tmp_path, deployment, args, message):
    [error] = assert_clean_error(cli(*args, cwd=tmp_path))
    assert message in error.string


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["sign", "factory.yaml"],
        ["rotate", "factory.yaml", "--grace", "5 parsecs"],
        ["revoke", "factory.yaml"],
        ["schema", "nonsense"],
    ],
)
def test_usage_errors_are_one_line_with_a_hint(cli, tmp_path, args):
    result = cli(*args, cwd=tmp_path)
    assert result.code == 2
    assert "Traceback" not in result.err
    [line] = result.error_lines
    assert re.match(r"^nngsec( \w+)?: error: .+ \(hint: nngsec( \w+)? --help\)$", line), line


def test_every_command_has_help(cli, tmp_path):
    for command in ("keygen", "trust", "sign", "rotate", "revoke", "schema"):
        result = cli(command, "--help", cwd=tmp_path)
        assert result.code == 0
        assert result.out.startswith(f"usage: nngsec {command}")


# -- the corpora ------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((DATA / "bad_policies").glob("*.yaml")), ids=str)
@pytest.mark.parametrize("command", ["rotate", "revoke", "sign"])
def test_every_malformed_policy_is_a_clean_error(cli, tmp_path, path, command):
    extra = {"rotate": [], "revoke": ["sensor"], "sign": ["--key", tmp_path / "no.key"]}[command]
    result = cli(command, path, *extra)
    errors = assert_clean_error(result, lines=len(result.error_lines))
    for error in errors:
        assert placed(error)[0] == str(path)


@pytest.mark.parametrize("path", sorted((DATA / "bad_keys").glob("*.key")), ids=lambda p: p.name)
def test_every_malformed_private_key_is_a_clean_error(cli, tmp_path, path):
    policy = ROOT / "policies" / "factory.yaml"
    shutil.copy(policy, tmp_path / "factory.yaml")
    key = tmp_path / path.name
    shutil.copy(path, key)
    key.chmod(0o600)
    [error] = assert_clean_error(cli("sign", tmp_path / "factory.yaml", "--key", key))
    assert placed(error)[0] == str(key)
    assert not (tmp_path / "factory.yaml.sig").exists()


@pytest.mark.parametrize("path", sorted((DATA / "bad_keys").glob("*.pub")), ids=lambda p: p.name)
def test_every_malformed_public_key_is_a_clean_error_for_trust(cli, tmp_path, path):
    [error] = assert_clean_error(cli("trust", path, "--keystore", tmp_path / "keys"))
    assert placed(error)[0] == str(path)
    assert not (tmp_path / "keys" / "trusted").exists()


@pytest.mark.parametrize("grace", ["99999999d", "9" * 400 + "d", "366d"])
@pytest.mark.parametrize("command", [["rotate", "factory.yaml"], ["revoke", "factory.yaml", "a"]])
def test_an_impossible_grace_is_a_usage_error(cli, tmp_path, grace, command):
    result = cli(*command, "--grace", grace)
    assert result.code == 2
    [line] = result.error_lines
    assert f"argument --grace: got {grace!r}, expected a duration from 0s to 365d" in line
    assert line.endswith(f"(hint: nngsec {command[0]} --help)")
