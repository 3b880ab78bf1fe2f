"""Every way a node gets a policy set applies every check, through one verification: a set
refused from files at start-up is refused for the same reason by ``reload_keys``, as an
update a watching node sees in its files, from etcd at start-up and as an update a node
following etcd sees; and ``nngsec check --keystore`` reports it without recording anything.

The reasons (issue 9, findings 8 and 10, against live operations): a signature of format
1, a policy changed at a version the keystore verified, an unsigned set where the node
requires a signed one, a signature that no pinned signer can verify, and a key epoch made
again with other keys.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nngsec import Keystore, Node, PolicyError
from nngsec._policy._admin import rotate, sign
from nngsec._policy._edit import set_version
from nngsec._policy._policy import channel_keys_path, signature_path
from nngsec._policy._signing import sign_files
from nngsec._runtime._store import StoreAddress, publish
from nngsec._topology._check import CheckOptions, run_check
from tests.etcd_support import Etcd
from tests.live_support import refused_update, watching
from tests.support import TELEMETRY, World, recorded_as

_prefixes = itertools.count()


pytestmark = pytest.mark.usefixtures("no_thread_left_behind")  # see tests/conftest.py


@dataclass
class Setting:
    """A world whose set a node runs (``prepare``), then spoiled (``spoil``) in one way."""

    world: World
    admin: Keystore

    @property
    def path(self) -> Path:
        return self.world.policy_path

    def pin(self) -> None:
        self.world.keystore.trust(self.admin.directory / "admin.pub")

    def sign(self) -> None:
        sign(self.path, self.admin.key_path("admin"))


@dataclass(frozen=True)
class Case:
    prepare: Callable[[Setting], None]
    spoil: Callable[[Setting], None]
    reason: str  # in the one problem of the refusal
    require_signed: bool = False
    checker: bool = True  # a keystore's nodes refuse it whatever their options


def _signed(setting: Setting) -> None:
    setting.pin()
    setting.sign()


def _format_1(setting: Setting) -> None:
    sig = signature_path(setting.path)
    sig.write_text(sig.read_text().replace("nngsec-sig-v2:", "nngsec-sig-v1:"))


def _changed_at_its_version(setting: Setting) -> None:
    """Edited without raising version:, and signed anyway (nngsec sign would refuse)."""
    setting.path.write_text(setting.path.read_text() + "description: changed\n")
    sign_files(
        signature_path(setting.path),
        version=1,
        policy_bytes=setting.path.read_bytes(),
        keys_bytes=channel_keys_path(setting.path).read_bytes(),
        key=setting.admin.identity("admin"),
        comment="re-signed at the same version",
    )


def _unsigned_and_unpinned(setting: Setting) -> None:
    """The keystore lost its pin; an unsigned version 2 arrives."""
    (setting.world.keystore.directory / "trusted" / "admin.pub").unlink()
    signature_path(setting.path).unlink()
    setting.path.write_text(set_version(setting.path.read_text(), str(setting.path), 2))


def _unsigned(setting: Setting) -> None:
    assert not signature_path(setting.path).exists()


def _signed_without_a_pin(setting: Setting) -> None:
    setting.sign()


def _epoch_made_again(setting: Setting) -> None:
    """The channel-key file deleted and rotated again in the same second: the same epoch
    number with other keys (signed: the signature is not what is wrong)."""
    keys = channel_keys_path(setting.path)
    epoch = json.loads(keys.read_text())["channels"]["telemetry"]["epochs"][0]["epoch"]
    keys.unlink()
    assert rotate(setting.path, now=float(epoch)).rotated == {"telemetry": epoch}
    setting.sign()


CASES = {
    "format-1 signature": Case(_signed, _format_1, "a signature of format 1"),
    "changed at a verified version": Case(
        _signed,
        _changed_at_its_version,
        "version 1 differs from the version 1 this keystore verified before",
    ),
    "unsigned under require_signed": Case(
        _signed,
        _unsigned_and_unpinned,
        "this node requires a signed policy (require_signed=True)",
        require_signed=True,
        checker=False,  # a node's own option, not the keystore's
    ),
    "signed, no signer pinned": Case(_unsigned, _signed_without_a_pin, "the policy is signed"),
    "epoch made again with other keys": Case(_signed, _epoch_made_again, "other keys under epoch"),
}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request: pytest.FixtureRequest, world_factory, tmp_path) -> tuple[Case, Setting]:
    chosen = CASES[request.param]
    world = world_factory(TELEMETRY, ["sensor", "dashboard"])
    admin = Keystore(tmp_path / "admin")
    admin.generate("admin")
    setting = Setting(world, admin)
    chosen.prepare(setting)
    return chosen, setting


def _options(case: Case) -> dict[str, Any]:
    return {"require_signed": case.require_signed}


def _refusal(make: Callable[[], object]) -> str:
    with pytest.raises(PolicyError) as caught:
        make()
    [problem] = caught.value.problems
    return problem.message


def _new_node(setting: Setting, source: Path | str, case: Case) -> Node:
    return Node(
        source, identity="dashboard", keystore=setting.world.keystore, watch=False, **_options(case)
    )


def test_refused_from_files_at_start_up(case):
    chosen, setting = case
    _new_node(setting, setting.path, chosen)  # runs, and the keystore records it
    chosen.spoil(setting)
    assert chosen.reason in _refusal(lambda: _new_node(setting, setting.path, chosen))


def test_refused_by_reload_keys(case):
    chosen, setting = case
    node = _new_node(setting, setting.path, chosen)
    chosen.spoil(setting)
    assert chosen.reason in _refusal(node.reload_keys)
    assert node.policy.version == 1


def test_refused_as_a_watched_file_update(case, caplog):
    chosen, setting = case
    node = watching(setting.path, "dashboard", setting.world.keystore, **_options(chosen))
    with caplog.at_level(logging.INFO, logger="nngsec"):
        chosen.spoil(setting)
        refused_update(node, caplog, chosen.reason)


@pytest.fixture
def store(etcd: Etcd) -> str:
    return etcd.url(f"refusals-{next(_prefixes)}")


def test_refused_from_etcd_at_start_up(case, store):
    chosen, setting = case
    publish(setting.path, store)
    _new_node(setting, store, chosen)  # runs, and the keystore records it
    chosen.spoil(setting)
    publish(setting.path, store)
    assert chosen.reason in _refusal(lambda: _new_node(setting, store, chosen))


def test_refused_as_a_watched_etcd_update(case, store, caplog):
    chosen, setting = case
    publish(setting.path, store)
    node = watching(store, "dashboard", setting.world.keystore, **_options(chosen))
    with caplog.at_level(logging.INFO, logger="nngsec"):
        chosen.spoil(setting)
        publish(setting.path, store)
        refused_update(node, caplog, chosen.reason)


def test_reported_by_the_checker_with_the_keystore_which_records_nothing(case):
    chosen, setting = case
    _new_node(setting, setting.path, chosen)
    chosen.spoil(setting)
    keystore = setting.world.keystore.directory
    records = {p.name: p.read_bytes() for p in keystore.glob("*-policies.json")}
    findings = run_check([setting.path], CheckOptions(keystore=keystore)).findings
    hits = [f for f in findings if f.rule == "bad-signature" and chosen.reason in f.message]
    assert {p.name: p.read_bytes() for p in keystore.glob("*-policies.json")} == records
    if not chosen.checker:  # require_signed is a node's option: the keystore alone allows it
        assert not hits, "\n".join(map(str, findings))
        return
    assert hits, "\n".join(map(str, findings))
    assert all(f.severity == "error" and f.hint for f in hits)
    assert {p.name: p.read_bytes() for p in keystore.glob("*-policies.json")} == records


def test_the_checker_records_nothing_of_a_set_its_keystore_would_accept(world_factory, tmp_path):
    """A newer signed set passes the check with --keystore, and the records still hold the
    older one (a node would have recorded version 2 and the new epoch)."""
    world = world_factory(TELEMETRY, ["sensor", "dashboard"])
    admin = Keystore(tmp_path / "admin")
    admin.generate("admin")
    setting = Setting(world, admin)
    _signed(setting)
    _new_node(setting, setting.path, CASES["format-1 signature"])
    setting.path.write_text(set_version(setting.path.read_text(), str(setting.path), 2))
    rotate(setting.path, ["telemetry"])
    setting.sign()
    keystore = world.keystore
    before = keystore.accepted_versions(verified=True)
    findings = run_check([setting.path], CheckOptions(keystore=keystore.directory)).findings
    assert not [f for f in findings if f.severity == "error"], "\n".join(map(str, findings))
    assert keystore.accepted_versions(verified=True) == before == {recorded_as(setting.path): 1}
    assert _new_node(setting, setting.path, CASES["format-1 signature"]).policy.version == 2
    assert keystore.accepted_versions(verified=True) == {recorded_as(setting.path): 2}


def test_publish_uploads_the_format_2_signature_that_nodes_of_the_store_verify(
    world_factory, tmp_path, store
):
    world = world_factory(TELEMETRY, ["sensor", "dashboard"])
    admin = Keystore(tmp_path / "admin")
    admin.generate("admin")
    setting = Setting(world, admin)
    _signed(setting)
    publish(setting.path, store)
    address = StoreAddress.parse(store)
    _, kvs = address.client().range_prefix(address.range)
    [sig] = [kv.value for kv in kvs if kv.key == address.key("policy.sig")]
    assert sig == signature_path(setting.path).read_bytes()
    assert b"\nnngsec-sig-v2:" in sig
    node = Node(store, identity="dashboard", keystore=world.keystore, require_signed=True)
    assert node.policy.version == 1
    node.close()
