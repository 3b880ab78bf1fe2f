"""``nngsec init DIR`` writes a working starter deployment and never replaces one;
``nngsec keys POLICY`` shows fingerprints and channel-key epochs; ``keygen`` shows the
fingerprint of the key it made."""

from __future__ import annotations

import json
import os
import re
import stat

import pytest

from nngsec import Keystore, Node, load_policy
from nngsec._keys._files import read_public_file
from tests.support import ROOT

EXAMPLE = ROOT / "policies" / "factory.yaml"


@pytest.fixture
def site(cli, tmp_path):
    result = cli("init", "site")
    assert result.code == 0, result.err
    return tmp_path / "site", result


def test_init_writes_policy_topology_channel_keys_and_a_keystore(site):
    root, result = site
    names = sorted(load_policy(EXAMPLE).identities)
    assert sorted(p.name for p in root.iterdir()) == [
        "factory.keys.json",
        "factory.topology.yaml",
        "factory.yaml",
        "keys",
    ]
    assert sorted(p.stem for p in (root / "keys").glob("*.key")) == names
    for key in (root / "keys").glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert f"wrote {root.name}/factory.yaml (policy, {len(names)} new identities)" in result.out
    assert "next: nngsec check site/factory.topology.yaml" in result.err


def test_init_gives_every_identity_a_fresh_key_and_keeps_the_comments(site):
    root, _ = site
    written = (root / "factory.yaml").read_text()
    example = EXAMPLE.read_text()
    policy, template = load_policy(root / "factory.yaml"), load_policy(EXAMPLE)
    assert list(policy.identities) == list(template.identities)
    for name, public in policy.identities.items():
        assert public != template.identities[name], name  # not the example's keys
        pinned_name, on_disk = read_public_file(root / "keys" / f"{name}.pub")
        assert (pinned_name, on_disk) == (name, public)
        example = example.replace(template.identities[name].to_text(), public.to_text())
    # A deployment of its own: the example's id would make every starter accept the others'
    # frames (the id is bound into every key and frame signature).
    assert policy.model.deployment is not None
    assert policy.model.deployment != template.model.deployment
    example = example.replace(str(template.model.deployment), policy.model.deployment)
    assert written == example  # the example, comments and all, with only the keys and id new


def test_two_starters_are_two_deployments(cli, tmp_path):
    assert cli("init", "one").code == 0
    assert cli("init", "two").code == 0
    one, two = (
        load_policy(tmp_path / "one" / "factory.yaml"),
        load_policy(tmp_path / "two" / "factory.yaml"),
    )
    assert one.model.deployment != two.model.deployment


def test_the_starter_deployment_checks_clean(cli, site):
    root, _ = site
    result = cli("check", root / "factory.topology.yaml", "--keystore", root / "keys")
    assert result.code == 0, result.out + result.err
    # unsigned; two servers share a service key; jobs and requests replayable across receivers
    assert "0 errors, 4 warnings" in result.out


def test_the_starter_deployment_carries_messages(site):
    root, _ = site
    policy = load_policy(root / "factory.yaml")
    keystore = Keystore(root / "keys")
    sensor = Node(policy, identity="sensor-1", keystore=keystore)
    dashboard = Node(policy, identity="dashboard", keystore=keystore)
    frame = sensor.seal("telemetry", b"21.5", topic="temp.line1")
    message = dashboard.open("telemetry", frame)
    assert (message.sender, message.payload) == ("sensor-1", b"21.5")


def test_init_never_replaces_a_deployment(cli, site):
    root, _ = site
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    again = cli("init", "site")
    assert again.code == 2
    assert again.out == ""
    [line] = again.error_lines
    assert "site already holds a deployment" in line and "(hint: " in line
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("existing", ["factory.yaml", "factory.keys.json", "keys/other.key"])
def test_init_refuses_before_writing_anything_when_one_target_exists(cli, tmp_path, existing):
    target = tmp_path / "site" / existing
    target.parent.mkdir(parents=True)
    target.write_text("mine\n")
    result = cli("init", "site")
    assert result.code == 2
    assert sorted(
        p.relative_to(tmp_path / "site").as_posix() for p in (tmp_path / "site").rglob("*")
    ) == sorted({existing, *(["keys"] if existing.startswith("keys/") else [])})


def test_init_into_a_directory_with_other_files(cli, tmp_path):
    (tmp_path / "README").write_text("my project\n")
    assert cli("init", ".").code == 0
    assert (tmp_path / "README").read_text() == "my project\n"
    assert (tmp_path / "factory.yaml").is_file()


# -- keys ---------------------------------------------------------------------------------------


def test_keys_lists_fingerprints_epochs_and_holders(cli, site):
    root, _ = site
    result = cli("keys", root / "factory.yaml")
    assert result.code == 0, result.err
    policy = load_policy(root / "factory.yaml")
    for name, public in policy.identities.items():
        assert f"{name}  " in result.out and public.fingerprint in result.out
    assert "telemetry  pubsub, sealed, audience key:" in result.out
    # epochs are numbered from the time of the first rotate (max(previous + 1, now))
    assert re.search(r"epoch \d{10,}  created ", result.out), result.out
    assert "current; held by archiver, dashboard" in result.out
    assert "sync       pair, secretbox: no channel key (identity keys suffice)" in result.out


def test_keys_shows_when_the_previous_epoch_retires(cli, site):
    root, _ = site
    rotated = cli(
        "rotate", root / "factory.yaml", "telemetry", "--grace", "2h", "--activate-in", "0s"
    )
    assert rotated.code == 0, rotated.err
    result = cli("keys", root / "factory.yaml", "--format", "json")
    channels = {c["channel"]: c for c in json.loads(result.out)["channels"]}
    current, previous = channels["telemetry"]["epochs"]
    assert current["epoch"] > previous["epoch"] and current["retire_at"] is None
    assert previous["retire_at"] and previous["retired"] is False
    assert previous["holders"] == ["archiver", "dashboard"]
    text = cli("keys", root / "factory.yaml").out
    assert f"retires at {previous['retire_at']} (in 1" in text  # in 119m or 1h59m, roughly


def test_keys_marks_revoked_identities_and_missing_holders(cli, site):
    root, _ = site
    policy_path = root / "factory.yaml"
    text = policy_path.read_text().replace(
        "subscribers: [dashboard, archiver]", "subscribers: [dashboard, archiver, scheduler]"
    )
    policy_path.write_text(text)
    assert cli("revoke", policy_path, "worker-2").code == 0
    result = cli("keys", policy_path)
    assert result.code == 0, result.err
    assert any(
        line.split()[:1] == ["worker-2"] and line.endswith("revoked")
        for line in result.out.splitlines()
    )
    assert f"not held by scheduler: run nngsec rotate {policy_path} telemetry" in result.out
    data = json.loads(cli("keys", policy_path, "--format", "json").out)
    revoked = {i["name"] for i in data["identities"] if i["revoked"]}
    assert revoked == {"worker-2"}


def test_keys_without_a_channel_key_file(cli, tmp_path):
    (tmp_path / "p.yaml").write_text(EXAMPLE.read_text())
    result = cli("keys", "p.yaml")
    assert result.code == 0
    assert "channel keys (no channel-key file yet):" in result.out
    assert "needs audience keys and has none (nngsec rotate)" in result.out


def test_keys_of_a_missing_policy_is_one_line(cli):
    result = cli("keys", "nope.yaml")
    assert result.code == 2
    assert result.error_lines == [
        "nngsec: error: nope.yaml: policy file not found (hint: check the path)"
    ]


def test_keygen_shows_the_fingerprint(cli, tmp_path):
    result = cli("keygen", "sensor-9")
    assert result.code == 0
    _, public = read_public_file(tmp_path / "keys" / "sensor-9.pub")
    assert f"fingerprint (key id) {public.fingerprint}" in result.err
    assert result.out == f"sensor-9: {public.to_text()}\n"  # stdout: only the line to paste
    assert os.path.exists(tmp_path / "keys" / "sensor-9.key")
