"""Anti-rollback without holes (issue 9, finding 8).

(a) a policy changed at an unchanged version, and re-signed, left the older signed set
acceptable; (b) an unsigned policy with a huge version, accepted before a signer was
pinned, made the admin's signed versions look old forever; (c) rotating after deleting
the channel-key file reused epoch numbers with new keys, and a running sender kept its
content key wrapped for the old audience; (d) ``nngsec sign`` said it signed channel keys
that did not exist.
"""

from __future__ import annotations

import json
import shutil

import pytest

from nngsec import Keystore, Node, PolicyError, Rejected, load_policy
from nngsec._keys._channel_keys import ChannelKeyFile
from nngsec._policy._admin import rotate, sign
from nngsec._policy._signing import sign_files
from nngsec._runtime._codec import ChannelCodec
from tests.support import FIRST_EPOCH, NOW, TELEMETRY, recorded_as

TWO_READERS = """
channels:
  telemetry:
    pattern: pubsub
    publishers: [sensor]
    subscribers: [dashboard, archiver]
"""


@pytest.fixture
def admin(tmp_path) -> Keystore:
    keystore = Keystore(tmp_path / "admin")
    keystore.generate("admin")
    return keystore


@pytest.fixture
def pinned(world_factory, admin):
    """A signed deployment whose keystore pins the admin."""
    world = world_factory(TWO_READERS, ["sensor", "dashboard", "archiver"])
    world.keystore.trust(admin.directory / "admin.pub")
    sign(world.policy_path, admin.key_path("admin"))
    return world


def refused(world, identity: str = "dashboard") -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        world.node(identity)
    return caught.value


def files(world) -> dict[str, bytes]:
    return {
        name: world.root.joinpath(name).read_bytes()
        for name in ("policy.yaml", "policy.keys.json", "policy.yaml.sig")
    }


def put_back(world, saved: dict[str, bytes]) -> None:
    for name, data in saved.items():
        world.root.joinpath(name).write_bytes(data)


# -- (a) a changed policy under an unchanged version -----------------------------------


def test_a_changed_policy_at_a_verified_version_is_refused(pinned, admin):
    """The red team's attack: the admin removes archiver at version 1 and signs again;
    the old signed set (archiver still a reader) stays acceptable, and comes back."""
    pinned.node("dashboard")  # version 1, with archiver, is verified and recorded
    text = pinned.policy_path.read_text().replace("[dashboard, archiver]", "[dashboard]")
    pinned.policy_path.write_text(text)
    pinned.policy_path.with_name("policy.yaml.sig").unlink()  # so sign does not object
    sign(pinned.policy_path, admin.key_path("admin"))  # signed, still version 1
    error = refused(pinned)
    assert error.problems[0].message == (
        "policy 'factory' version 1 differs from the version 1 this keystore verified "
        "before: a changed policy must have a higher version (refused: it could bring back "
        "what was removed)"
    )
    assert error.field == "version"
    assert "--bump" in error.hint


def test_sign_refuses_a_changed_policy_at_the_version_it_signed(pinned, admin):
    signed = files(pinned)
    text = pinned.policy_path.read_text().replace("[dashboard, archiver]", "[dashboard]")
    pinned.policy_path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        sign(pinned.policy_path, admin.key_path("admin"))
    [problem] = caught.value.problems
    assert problem.message.startswith(
        "the policy changed since it was signed at version 1, and its version is 1"
    )
    assert problem.hint == "raise version: to 2, or sign with --bump to do it"
    assert (problem.path, problem.line) == (str(pinned.policy_path), 2)  # at name:, no version:
    assert files(pinned)["policy.yaml.sig"] == signed["policy.yaml.sig"]


def test_sign_bump_raises_the_version_and_the_old_set_is_then_refused(pinned, admin):
    old = files(pinned)
    pinned.node("dashboard")
    text = pinned.policy_path.read_text().replace("[dashboard, archiver]", "[dashboard]")
    pinned.policy_path.write_text(text)
    result = sign(pinned.policy_path, admin.key_path("admin"), bump=True)
    assert (result.bumped_from, result.version) == (1, 2)
    edited = pinned.policy_path.read_text()
    assert edited == text.replace("name: factory\n", "name: factory\nversion: 2\n")
    assert pinned.node("dashboard").policy.version == 2
    put_back(pinned, old)  # the validly signed version 1, archiver still a reader
    assert "rollback refused" in refused(pinned).problems[0].message


def test_bump_is_needed_only_for_a_changed_policy(pinned, admin):
    result = sign(pinned.policy_path, admin.key_path("admin"), bump=True)
    assert (result.bumped_from, result.version) == (None, 1)
    text = pinned.policy_path.read_text().replace("name: factory\n", "name: factory\nversion: 5\n")
    pinned.policy_path.write_text(text)
    assert sign(pinned.policy_path, admin.key_path("admin")).version == 5  # raised by hand


def test_rotating_keys_and_signing_again_at_the_same_version_stays_legal(pinned, admin):
    pinned.node("dashboard")
    rotate(pinned.policy_path, now=NOW)
    result = sign(pinned.policy_path, admin.key_path("admin"))
    assert (result.version, result.bumped_from) == (1, None)
    assert pinned.node("dashboard").channel_keys["telemetry"].current.epoch == FIRST_EPOCH


def test_the_signature_says_its_version_and_nodes_check_it(pinned, admin):
    """A signature of version 5 over a policy that says version 1 (only a faulty signer
    could make one) is refused: the signed version is the one that counts."""
    policy = load_policy(pinned.policy_path)
    keys = pinned.policy_path.with_name("policy.keys.json")
    sign_files(
        pinned.policy_path.with_name("policy.yaml.sig"),
        version=5,
        policy_bytes=policy.source,
        keys_bytes=keys.read_bytes(),
        key=admin.identity("admin"),
        comment="forged version",
    )
    message = refused(pinned).problems[0].message
    assert message == "the signature by 'admin' is for version 5, but the policy says version 1"


def test_a_signature_of_format_1_is_refused_with_a_hint_to_sign_again(pinned):
    sig = pinned.policy_path.with_name("policy.yaml.sig")
    sig.write_text(sig.read_text().replace("nngsec-sig-v2:", "nngsec-sig-v1:"))
    error = refused(pinned)
    assert error.problems[0].message.startswith("a signature of format 1")
    assert error.hint == "sign it again: nngsec sign POLICY --key ADMIN.key"


# -- (b) unsigned acceptances do not poison the signed record ---------------------------


def test_an_unsigned_huge_version_does_not_block_the_admins_signed_policy(world_factory, admin):
    world = world_factory(TELEMETRY, ["sensor", "dashboard"])
    text = world.policy_path.read_text()
    world.policy_path.write_text(
        text.replace("name: factory\n", "name: factory\nversion: 999999999\n")
    )
    world.node("dashboard")  # no signer pinned yet: used unverified, recorded apart
    world.policy_path.write_text(text.replace("name: factory\n", "name: factory\nversion: 2\n"))
    sign(world.policy_path, admin.key_path("admin"))
    world.keystore.trust(admin.directory / "admin.pub")
    assert world.node("dashboard").policy.version == 2
    recorded = recorded_as(world.policy_path)
    assert world.keystore.accepted_versions(verified=True) == {recorded: 2}
    assert world.keystore.accepted_versions() == {recorded: 999999999}


# -- (c) epoch numbers are never reused --------------------------------------------------


def keys_file(world) -> dict:  # type: ignore[type-arg]
    data: dict = json.loads(world.policy_path.with_name("policy.keys.json").read_text())  # type: ignore[type-arg]
    return data


def test_rotate_after_deleting_the_keys_file_does_not_reuse_an_epoch(world_factory):
    world = world_factory(TWO_READERS, ["sensor", "dashboard", "archiver"], with_keys=False)
    rotate(world.policy_path, now=NOW)
    rotate(world.policy_path, now=NOW + 1)
    seen = {e["epoch"] for e in keys_file(world)["channels"]["telemetry"]["epochs"]}
    world.policy_path.with_name("policy.keys.json").unlink()
    result = rotate(world.policy_path, now=NOW + 60)
    assert result.rotated["telemetry"] == FIRST_EPOCH + 60
    assert result.rotated["telemetry"] > max(seen)


def test_other_keys_under_an_epoch_already_seen_are_refused(world_factory):
    world = world_factory(TWO_READERS, ["sensor", "dashboard", "archiver"], with_keys=False)
    rotate(world.policy_path, now=NOW)
    world.node("dashboard")  # epoch FIRST_EPOCH with these keys is recorded
    world.policy_path.with_name("policy.keys.json").unlink()
    rotate(world.policy_path, now=NOW)  # the same second: the same number, other keys
    with pytest.raises(PolicyError) as caught:
        world.node("dashboard")
    [problem] = caught.value.problems
    assert problem.message == (
        f"channel 'telemetry' has other keys under epoch {FIRST_EPOCH} than this keystore "
        "accepted before (an epoch number is never reused: refused)"
    )
    assert problem.field == "channels.telemetry"
    assert problem.hint.startswith("rotate the channel again: nngsec rotate")
    rotate(world.policy_path, ["telemetry"], now=NOW + 1)  # the fix the hint gives
    assert world.node("dashboard").channel_keys["telemetry"].current.epoch == FIRST_EPOCH + 1


def test_a_running_sender_does_not_keep_a_content_key_wrapped_for_the_old_audience(world_factory):
    """Keys loaded anew under the same epoch number (here past the keystore's check, as a
    codec would get them): the sender must wrap a new content key to the new audience."""
    world = world_factory(TWO_READERS, ["sensor", "dashboard", "archiver"], with_keys=False)
    rotate(world.policy_path, now=NOW)
    sensor, archiver = world.node("sensor"), world.node("archiver")
    first = sensor.channel_keys["telemetry"].current.epoch
    assert archiver.open("telemetry", sensor.seal("telemetry", b"1", topic="t")).payload == b"1"
    # archiver is removed; the keys file is deleted and rotated in the same second.
    text = world.policy_path.read_text().replace("[dashboard, archiver]", "[dashboard]")
    world.policy_path.write_text(text)
    world.policy_path.with_name("policy.keys.json").unlink()
    rotate(world.policy_path, now=NOW)
    new_keys = ChannelKeyFile.load(world.policy_path.with_name("policy.keys.json"))
    assert new_keys is not None
    opened = new_keys.open_channel("telemetry", "sensor", world.keystore.identity("sensor"))
    assert opened is not None and opened.current.epoch == first  # the same number
    # The node's running sender sees them as after a switch: its channel slot gets a codec
    # with the new keys, and the sending session (with its cached material) carries on.
    before = sensor.codec("telemetry")
    sensor._slot("telemetry").replace(
        ChannelCodec(
            before.policy,
            "telemetry",
            identity="sensor",
            identity_key=world.keystore.identity("sensor"),
            channel_keys=opened,
            clock=before.clock,
            random=before.random,
            clock_skew=before.clock_skew,
        )
    )
    frame = sensor.seal("telemetry", b"after the removal", topic="t")  # the same session
    with pytest.raises(Rejected) as caught:
        archiver.open("telemetry", frame)
    assert caught.value.reason == "forged"  # its old secret does not unwrap the new key
    # dashboard, with its own keystore (the shared one refuses the reused number), reads it.
    fresh = world.root / "dashboard-keys"
    fresh.mkdir(mode=0o700)
    shutil.copy2(world.keystore.key_path("dashboard"), fresh / "dashboard.key")
    dashboard = Node(load_policy(world.policy_path), identity="dashboard", keystore=fresh)
    assert dashboard.open("telemetry", frame).payload == b"after the removal"


# -- (d) what sign says it signed --------------------------------------------------------


def test_sign_says_when_there_is_no_channel_key_file(cli, tmp_path, world_factory, admin):
    body = "channels:\n  sync:\n    pattern: pair\n    members: [a, b]\n"
    world = world_factory(body, ["a", "b"])
    assert not world.policy_path.with_name("policy.keys.json").exists()
    result = cli("sign", world.policy_path, "--key", admin.key_path("admin"))
    assert result.code == 0, result
    assert "channel keys" not in result.out
    assert result.out.startswith(
        f"signed {world.policy_path} version 1 (it has no channel-key file)"
    )
    sig = world.policy_path.with_name("policy.yaml.sig").read_text()
    assert "channel keys: none" in sig


def test_sign_names_the_channel_key_file_it_signed(cli, pinned, admin):
    result = cli("sign", pinned.policy_path, "--key", admin.key_path("admin"))
    assert result.code == 0, result
    keys = pinned.policy_path.with_name("policy.keys.json")
    assert f"version 1 and its channel keys {keys} with key id" in result.out


def test_sign_bump_on_the_command_line(cli, pinned, admin):
    text = pinned.policy_path.read_text().replace("[dashboard, archiver]", "[dashboard]")
    pinned.policy_path.write_text(text)
    result = cli("sign", pinned.policy_path, "--key", admin.key_path("admin"))
    assert result.code == 2
    assert "--bump" in result.err
    result = cli("sign", pinned.policy_path, "--key", admin.key_path("admin"), "--bump")
    assert result.code == 0, result
    assert f"raised version: from 1 to 2 in {pinned.policy_path}" in result.err
    assert load_policy(pinned.policy_path).version == 2
