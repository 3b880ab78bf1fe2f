"""A node whose keystore pins a signer verifies a set's signature over the raw bytes before it
parses anything (the red team's finding in ``docs/threat-model.md``, "The store"): a
tampered policy of 2 MB, one long YAML list that took 11 s and 600 MB to refuse when it
was parsed first, is refused as modified after signing (or badly signed) without reaching
the YAML parser, from files at start-up, as a watched file update, from etcd at start-up
and as a watched etcd update. A set over the size limits is refused unparsed on the
unsigned path too, from etcd and as a watched file update. And the parsed ``version:`` is
still compared with the version signed.

The YAML parser is replaced by one that records what reached it and fails; the time
bound is a loose second check only.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping

import pytest
import yaml

from nngsec import Keystore, Node, PolicyError
from nngsec._formats._text import encode_text
from nngsec._keys._identity import IdentityKey
from nngsec._policy._policy import channel_keys_path, signature_path
from nngsec._policy._signing import SIGNATURE_PREFIX, parse_signature, sign_files
from nngsec._runtime._store import publish
from tests.etcd_support import Etcd
from tests.live_support import Signed, overwrite_store, refused_update, signed_world, watching
from tests.net import wait_for
from tests.support import TELEMETRY

TAMPERED_SIZE = 2_000_000  # bytes: the red team's 2 MB policy of one long YAML list
QUICK = 1.0  # seconds: a loose bound on refusing it (parsing it took 11 s)
_prefixes = itertools.count()


pytestmark = pytest.mark.usefixtures("no_thread_left_behind")  # see tests/conftest.py


@pytest.fixture(scope="module")
def big_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    """A real etcd that takes values of a few MB (by default it refuses requests over
    2 MiB; a store an attacker set up, or answers for, may hold anything)."""
    server = Etcd(tmp_path_factory.mktemp("etcd") / "data", f"--max-request-bytes={8 << 20}")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def store(big_etcd: Etcd) -> str:
    return big_etcd.url(f"sig-first-{next(_prefixes)}")


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """From the first call on, anything offered to the YAML parser is recorded (the start
    of its text) and fails; returns the records (a watcher thread's failure would only be
    logged)."""
    offered: list[str] = []

    def refuse(text: str, *args: object, **kwargs: object) -> None:
        offered.append(text[:60])
        raise AssertionError("parsed before its signature was checked")

    def arm() -> list[str]:
        monkeypatch.setattr(yaml, "compose_all", refuse)
        return offered

    return arm


@pytest.fixture
def signed(world_factory) -> Signed:
    return signed_world(world_factory(TELEMETRY, ["sensor", "dashboard"]))


def one_long_list(policy: bytes, size: int = TAMPERED_SIZE) -> bytes:
    """The signed policy with a list appended up to ``size`` bytes: what was slow to parse."""
    items = (size - len(policy) - len(b"revoked:\n")) // 4
    return policy + b"revoked:\n" + b"- a\n" * items


def _untrusted(signed: Signed, tampered: bytes) -> None:
    """Signed over the tampered bytes by a key the keystore does not pin."""
    sign_files(
        signature_path(signed.policy_path),
        version=1,
        policy_bytes=tampered,
        keys_bytes=channel_keys_path(signed.policy_path).read_bytes(),
        key=IdentityKey.generate(),
        comment="the attacker's own key",
    )


def _forged(signed: Signed, tampered: bytes) -> None:
    """The admin's key id over the tampered digests, with a signature that is not the
    admin's (the attacker's, moved under the admin's key id)."""
    _untrusted(signed, tampered)
    sig = signature_path(signed.policy_path)
    found = parse_signature(sig.read_bytes(), str(sig))
    admin = Keystore(signed.admin_key.parent).identity("admin")
    body = (
        admin.key_id
        + found.version.to_bytes(8, "big")
        + found.policy_digest
        + (b"\x00" + bytes(32) if found.keys_digest is None else b"\x01" + found.keys_digest)
        + found.signature
    )
    sig.write_text("# nngsec policy signature\n" + encode_text(SIGNATURE_PREFIX, body) + "\n")


FORGERIES: Mapping[str, tuple[Callable[[Signed, bytes], None] | None, str]] = {
    "the admin's signature of the policy before": (
        None,
        "the signature by 'admin' does not match the policy (modified after signing)",
    ),
    "a signature by an untrusted key": (_untrusted, "which this keystore does not trust"),
    "the admin's key id over a signature of another key": (
        _forged,
        "the signature by 'admin' is not valid (the signature file was altered)",
    ),
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_tampered_policy_is_refused_before_it_is_parsed(signed, parsed, forgery):
    forge, reason = FORGERIES[forgery]
    tampered = one_long_list(signed.policy_path.read_bytes())
    assert len(tampered) >= 1_990_000
    if forge is not None:
        forge(signed, tampered)
    signed.policy_path.write_bytes(tampered)
    offered = parsed()
    started = time.perf_counter()
    with pytest.raises(PolicyError) as caught:
        Node(signed.policy_path, identity="dashboard", keystore=signed.world.keystore)
    elapsed = time.perf_counter() - started
    [problem] = caught.value.problems
    assert reason in problem.message
    assert problem.path == str(signature_path(signed.policy_path))
    assert problem.hint
    assert offered == []
    assert elapsed < QUICK, f"refused in {elapsed:.2f} s"


def test_reload_keys_refuses_a_tampered_policy_before_it_is_parsed(signed, parsed):
    node = Node(
        signed.policy_path, identity="dashboard", keystore=signed.world.keystore, watch=False
    )
    try:
        signed.policy_path.write_bytes(one_long_list(signed.policy_path.read_bytes()))
        offered = parsed()
        with pytest.raises(PolicyError, match=r"modified after signing"):
            node.reload_keys()
        assert offered == []
        assert node.policy.version == 1
    finally:
        node.close()


def test_a_watching_node_refuses_a_tampered_file_before_it_is_parsed(signed, parsed, caplog):
    node = watching(signed.policy_path, "dashboard", signed.world.keystore)
    tampered = one_long_list(signed.policy_path.read_bytes())
    with caplog.at_level(logging.INFO, logger="nngsec"):
        offered = parsed()
        signed.policy_path.write_bytes(tampered)
        refused_update(node, caplog, "does not match the policy (modified after signing)")
    assert offered == []
    assert not [r for r in caplog.records if "internal error" in r.getMessage()]


def test_a_tampered_policy_in_the_store_is_refused_before_it_is_parsed(signed, store, parsed):
    publish(signed.policy_path, store)
    tampered = one_long_list(signed.policy_path.read_bytes())
    overwrite_store(store, {"policy": tampered})  # the admin's signature stays beside it
    offered = parsed()
    started = time.perf_counter()
    with pytest.raises(PolicyError) as caught:
        Node(store, identity="dashboard", keystore=signed.world.keystore, state_dir=False)
    elapsed = time.perf_counter() - started
    [problem] = caught.value.problems
    assert "does not match the policy (modified after signing)" in problem.message
    assert problem.path == f"{store}/policy.sig"
    assert offered == []
    assert elapsed < QUICK + 1.0, f"read and refused in {elapsed:.2f} s"


def test_a_node_following_the_store_refuses_a_tampered_policy_before_it_is_parsed(
    signed, store, parsed, caplog
):
    publish(signed.policy_path, store)
    node = watching(store, "dashboard", signed.world.keystore, state_dir=False)
    with caplog.at_level(logging.INFO, logger="nngsec"):
        offered = parsed()
        overwrite_store(store, {"policy": one_long_list(signed.policy_path.read_bytes())})
        refused_update(node, caplog, "does not match the policy (modified after signing)")
    assert offered == []


def test_a_signed_policy_of_another_version_than_signed_is_refused(signed):
    """Signed over exactly these bytes, but for version 1 while the policy says 2: the
    signature verifies before parsing, and the parsed version is compared after."""
    text = signed.policy_path.read_text().replace("name: factory\n", "name: factory\nversion: 2\n")
    signed.policy_path.write_text(text)
    sign_files(
        signature_path(signed.policy_path),
        version=1,
        policy_bytes=signed.policy_path.read_bytes(),
        keys_bytes=channel_keys_path(signed.policy_path).read_bytes(),
        key=Keystore(signed.admin_key.parent).identity("admin"),
        comment="signed for the wrong version",
    )
    with pytest.raises(PolicyError) as caught:
        Node(signed.policy_path, identity="dashboard", keystore=signed.world.keystore)
    [problem] = caught.value.problems
    assert problem.message == (
        "the signature by 'admin' is for version 1, but the policy says version 2"
    )
    assert problem.path == str(signature_path(signed.policy_path))
    assert problem.hint == "have the admin sign the policy again"
    assert signed.world.keystore.accepted_versions(verified=True) == {}


def test_a_store_answer_over_the_limit_is_refused_unparsed(world_factory, store, parsed, caplog):
    """Unsigned: nothing to verify, so the size limit is what bounds the parse."""
    world = world_factory(TELEMETRY, ["sensor", "dashboard"])
    publish(world.policy_path, store)
    node = watching(store, "dashboard", world.keystore, state_dir=False)
    oversized = world.policy_path.read_bytes() + b"#" + b"x" * (5 << 20) + b"\n"
    size = len(oversized)
    reason = f"the policy file is {size:,} bytes, over the limit of 4MiB (4,194,304 bytes)"
    with caplog.at_level(logging.INFO, logger="nngsec"):
        offered = parsed()
        overwrite_store(store, {"policy": oversized})
        refused_update(node, caplog, reason)
        with pytest.raises(PolicyError) as caught:
            Node(store, identity="dashboard", keystore=world.keystore, state_dir=False)
    [problem] = caught.value.problems
    assert reason in problem.message
    assert problem.path == f"{store}/policy"
    assert "restore the policy from its source" in problem.hint
    assert offered == []


def test_a_watched_file_over_the_limit_is_refused_unparsed(world_factory, parsed, caplog):
    world = world_factory(TELEMETRY, ["sensor", "dashboard"])
    node = watching(world.policy_path, "dashboard", world.keystore)
    oversized = world.policy_path.read_bytes() + b"#" + b"x" * (5 << 20) + b"\n"
    with caplog.at_level(logging.INFO, logger="nngsec"):
        offered = parsed()
        world.policy_path.write_bytes(oversized)
        wait_for(
            lambda: any("over the limit of 4MiB" in r.getMessage() for r in caplog.records),
            "the refusal of the oversized policy",
        )
    [record] = [r for r in caplog.records if "over the limit" in r.getMessage()]
    assert f"{world.policy_path}: the policy file is {len(oversized):,} bytes" in (
        record.getMessage()
    )
    assert "still running the last verified set" in record.getMessage()
    assert node.policy.version == 1
    assert offered == []
