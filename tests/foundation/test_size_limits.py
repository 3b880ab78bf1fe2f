"""A policy, channel-key or signature file over its size limit is refused before anything of
it is parsed, on every path that reads one (``_formats/_limits.py``): ``load_policy``, a
node started on a file, the one verification of a set from bytes (what a store answer
is), the channel-key and signature readers, and ``nngsec check``. The refusal names the
place, the size and the limit, and gives a hint. A file is read no further than the limit
(a stream such as ``/dev/zero`` does not hang the reader).

The oversized files here are cheap to parse (a long comment), so the old code, which had
no limit, accepts them at once instead of refusing; and the YAML parser is made to fail
the test if anything reaches it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from nngsec import Keystore, Node, PolicyError, load_policy
from nngsec._formats._limits import CHANNEL_KEYS_LIMIT, POLICY_LIMIT, SIGNATURE_LIMIT
from nngsec._keys._channel_keys import ChannelKeyFile
from nngsec._policy._admin import sign
from nngsec._policy._load import parse_policy
from nngsec._policy._policy import channel_keys_path, signature_path
from nngsec._policy._signing import parse_signature, read_signature
from nngsec._policy._verify import CandidateSet, accept_policy
from tests.support import TELEMETRY, World


@pytest.fixture
def world(world_factory: Callable[..., World]) -> World:
    return world_factory(TELEMETRY, ["sensor", "dashboard"])


@pytest.fixture
def no_yaml(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make any YAML parsing (policy or channel-key file) fail the test; the list holds
    what was offered to the parser (a watcher thread's failure would be logged, not seen)."""
    offered: list[str] = []

    def refuse(text: str, *args: object, **kwargs: object) -> None:
        offered.append(text[:40])
        raise AssertionError("parsed before it was refused")

    monkeypatch.setattr(yaml, "compose_all", refuse)
    return offered


def padded(data: bytes, size: int) -> bytes:
    """``data`` and a comment line up to exactly ``size`` bytes: valid, and cheap to parse."""
    assert data.endswith(b"\n")
    return data + b"#" + b"x" * (size - len(data) - 2) + b"\n"


def refusal(make: Callable[[], object]) -> tuple[str, str | None, str]:
    with pytest.raises(PolicyError) as caught:
        make()
    [problem] = caught.value.problems
    return problem.message, problem.path, problem.hint


def test_load_policy_refuses_a_policy_over_the_limit_unparsed(world, no_yaml):
    size = POLICY_LIMIT.limit + 1
    world.policy_path.write_bytes(padded(world.policy_path.read_bytes(), size))
    message, path, hint = refusal(lambda: load_policy(world.policy_path))
    assert message == (
        f"the policy file is {size:,} bytes, over the limit of 4MiB (4,194,304 bytes): "
        "refused before it is parsed"
    )
    assert path == str(world.policy_path)
    assert hint == POLICY_LIMIT.hint and "restore the policy" in hint
    assert not no_yaml


def test_a_policy_at_the_limit_loads(world):
    world.policy_path.write_bytes(padded(world.policy_path.read_bytes(), POLICY_LIMIT.limit))
    assert load_policy(world.policy_path).source == world.policy_path.read_bytes()


def test_parse_policy_refuses_text_over_the_limit_unparsed(world, no_yaml):
    text = padded(world.policy_path.read_bytes(), POLICY_LIMIT.limit + 1).decode()
    message, path, _ = refusal(lambda: parse_policy(text, "inline"))
    assert "the policy file is 4,194,305 bytes, over the limit of 4MiB" in message
    assert path == "inline"
    assert not no_yaml


def test_an_unsigned_node_refuses_a_policy_file_over_the_limit_unparsed(world, no_yaml):
    size = POLICY_LIMIT.limit + 100
    world.policy_path.write_bytes(padded(world.policy_path.read_bytes(), size))
    message, path, hint = refusal(
        lambda: Node(world.policy_path, identity="dashboard", keystore=world.keystore)
    )
    assert f"the policy file is {size:,} bytes, over the limit of 4MiB" in message
    assert path == str(world.policy_path)
    assert hint
    assert not no_yaml


def test_a_set_from_bytes_over_the_limit_is_refused_unparsed(world, no_yaml):
    """What a store answer becomes: a set of bytes, named by its URL, with no file."""
    policy = padded(world.policy_path.read_bytes(), POLICY_LIMIT.limit + 1)
    keys = channel_keys_path(world.policy_path).read_bytes()
    where = "etcd://127.0.0.1:2379/factory/policy"
    candidate = CandidateSet(policy, None, keys, where)
    message, path, hint = refusal(lambda: accept_policy(candidate, world.keystore))
    assert "the policy file is 4,194,305 bytes, over the limit of 4MiB" in message
    assert (path, hint) == (where, POLICY_LIMIT.hint)
    big_keys = CandidateSet(world.policy_path.read_bytes(), None, b" " * (16 << 20) + b"{}", where)
    message, path, hint = refusal(lambda: accept_policy(big_keys, world.keystore))
    assert message.startswith("the channel-key file is 16,777,218 bytes, over the limit of 16MiB")
    assert (path, hint) == (f"{where} (channel keys)", CHANNEL_KEYS_LIMIT.hint)
    big_sig = CandidateSet(world.policy_path.read_bytes(), b"#" * 5000, keys, where)
    message, path, hint = refusal(lambda: accept_policy(big_sig, world.keystore))
    assert message.startswith("the signature file is 5,000 bytes, over the limit of 4KiB")
    assert (path, hint) == (f"{where}.sig", SIGNATURE_LIMIT.hint)
    assert not no_yaml


def test_a_channel_key_file_over_the_limit_is_refused_unparsed(world, no_yaml):
    keys = channel_keys_path(world.policy_path)
    size = CHANNEL_KEYS_LIMIT.limit + 1
    keys.write_bytes(b" " * (size - 2) + b"{}")  # JSON whitespace: cheap to parse, and valid
    for make in (
        lambda: Node(world.policy_path, identity="dashboard", keystore=world.keystore),
        lambda: ChannelKeyFile.load(keys),
        lambda: ChannelKeyFile.parse(keys.read_text(), keys),
    ):
        message, path, hint = refusal(make)
        assert message == (
            f"the channel-key file is {size:,} bytes, over the limit of 16MiB "
            "(16,777,216 bytes): refused before it is parsed"
        )
        assert (path, hint) == (str(keys), CHANNEL_KEYS_LIMIT.hint)
    assert not no_yaml


def test_a_signature_file_over_the_limit_is_refused_unread(world, tmp_path):
    admin = Keystore(tmp_path / "admin")
    admin.generate("admin")
    world.keystore.trust(admin.directory / "admin.pub")
    sign(world.policy_path, admin.key_path("admin"))
    sig = signature_path(world.policy_path)
    sig.write_bytes(padded(sig.read_bytes(), SIGNATURE_LIMIT.limit + 1))
    for make in (
        lambda: Node(world.policy_path, identity="dashboard", keystore=world.keystore),
        lambda: read_signature(sig),
        lambda: parse_signature(sig.read_bytes(), str(sig)),
    ):
        message, path, hint = refusal(make)
        assert message == (
            "the signature file is 4,097 bytes, over the limit of 4KiB (4,096 bytes): "
            "refused before it is parsed"
        )
        assert (path, hint) == (str(sig), SIGNATURE_LIMIT.hint)


def test_a_stream_is_read_no_further_than_the_limit(world, tmp_path):
    """A policy path that is /dev/zero (endless, size 0): refused, not read forever."""
    stream = tmp_path / "stream.yaml"
    stream.symlink_to("/dev/zero")
    for make in (
        lambda: load_policy(stream),
        lambda: Node(stream, identity="dashboard", keystore=world.keystore),
    ):
        message, path, _ = refusal(make)
        assert message.startswith("the policy file is larger than that, over the limit of 4MiB")
        assert path == str(stream)


def test_check_refuses_a_policy_over_the_limit(world, cli, no_yaml):
    world.policy_path.write_bytes(padded(world.policy_path.read_bytes(), 5 << 20))
    result = cli("check", world.policy_path)
    assert result.code != 0
    assert "the policy file is 5,242,880 bytes, over the limit of 4MiB" in result.err
    assert "hint: restore the policy from its source" in result.err
    assert not no_yaml
