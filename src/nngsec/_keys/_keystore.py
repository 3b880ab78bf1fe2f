"""A node's keystore directory.

::

    keys/
      sensor-1.key              private identity key (0600), loaded on demand
      sensor-1.pub              its public half
      trusted/admin.pub         pinned policy signers (``nngsec trust``)
      verified-policies.json    per policy (deployment id and name): the newest version
                                verified against a pinned signer, its digest, and its
                                channel-key epochs
      unverified-policies.json  the same for policies used while no signer was pinned

The records are what make anti-rollback survive restarts: a node refuses a policy whose
``version`` is lower than one this keystore has accepted before, a signed policy that
differs from the one verified at the same version, and channel keys of an older epoch, or
other keys under an epoch number already seen. Policies used without a pinned signer are
kept apart: an unsigned file with a huge version, accepted before any signer was pinned,
must not make the admin's signed versions look old forever after. A policy is recorded
under its name and its ``deployment:`` id (``NAME@ID``; its name alone when it has no id),
so two deployments that share a policy name and a keystore never mix their records.

Nobody but the owner (or root) may be able to write the directory, its ``trusted/``
folder, a pinned signer or a record: whoever can would choose what this node trusts
(see ``_permissions.py``). Files of nngsec 0.2 (``accepted-versions.json``,
``accepted-epochs.json``) are no longer read; version 1 signatures are refused anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .._errors import KeystoreError, Problem
from .._formats._atomic import write_atomic
from .._formats._deployment import decode_deployment_id
from .._formats._names import NAME_HINT, is_name
from .._formats._yaml import read_text
from ._files import (
    read_public_file,
    read_secret_file,
    render_public_file,
    write_identity_files,
    write_public_file,
)
from ._identity import IdentityKey, PublicIdentity
from ._permissions import check_protected

__all__ = ["Keystore", "PolicyRecord", "record_key"]

T = TypeVar("T")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_digest(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch("[0-9a-f]{64}", value) is not None


def record_key(policy_name: str, deployment: str | None) -> str:
    """The key a policy is recorded under: ``NAME@DEPLOYMENT`` (its ``deployment:`` id as
    written), or ``NAME`` for a policy without one. A name never holds ``@``."""
    return policy_name if deployment is None else f"{policy_name}@{deployment}"


def _is_record_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    name, at, deployment = key.partition("@")
    if not is_name(name):
        return False
    if not at:
        return True
    try:
        decode_deployment_id(deployment)
    except ValueError:
        return False
    return True


def _is_policy_entry(value: object) -> bool:
    """``{"version": N, "digest": HEX, "epochs": {CHANNEL: {"epoch": N, "fingerprint": HEX}}}``"""
    if not isinstance(value, dict) or set(value) != {"version", "digest", "epochs"}:
        return False
    epochs = value["epochs"]
    return (
        _is_count(value["version"])
        and _is_digest(value["digest"])
        and isinstance(epochs, dict)
        and all(
            isinstance(e, dict)
            and set(e) == {"epoch", "fingerprint"}
            and _is_count(e["epoch"])
            and _is_digest(e["fingerprint"])
            for e in epochs.values()
        )
    )


@dataclass(frozen=True)
class _Record:
    """A small JSON record in the keystore that only ever moves forward."""

    file: str
    what: str
    shape: str
    protects: str
    valid: Callable[[object], bool]  # for each value of the top-level mapping


_SHAPE = (
    "a mapping of policy (NAME or NAME@DEPLOYMENT) to its version, digest and channel-key epochs"
)
_VERIFIED = _Record(
    "verified-policies.json",
    "verified-policies record",
    _SHAPE,
    "the newest policy version and key epochs verified against a pinned signer",
    _is_policy_entry,
)
_UNVERIFIED = _Record(
    "unverified-policies.json",
    "unverified-policies record",
    _SHAPE,
    "the newest policy version and key epochs used without a pinned signer",
    _is_policy_entry,
)


@dataclass(frozen=True)
class PolicyRecord:
    """What a keystore recorded of one policy: its newest version accepted, that version's
    digest (BLAKE2b-256 of the policy file, hex), and per channel the newest key epoch
    accepted with its fingerprint."""

    version: int
    digest: str | None
    epochs: Mapping[str, tuple[int, str]]


def _record_of(verified: bool) -> _Record:
    return _VERIFIED if verified else _UNVERIFIED


def _entry(record: dict[str, Any], key: str) -> dict[str, Any]:
    entry: dict[str, Any] = record.setdefault(key, {"version": 0, "digest": "0" * 64, "epochs": {}})
    return entry


def _digest(entry: dict[str, Any]) -> str | None:
    return entry["digest"] if entry["version"] else None


def _check_name(name: str) -> str:
    if not is_name(name):
        raise KeystoreError(
            Problem(
                f"invalid identity name {name!r}",
                field="name",
                hint=NAME_HINT,
            )
        )
    return name


class Keystore:
    """Private identity keys and pinned policy signers of one node, in one directory."""

    TRUSTED_DIR = "trusted"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._identities: dict[str, IdentityKey] = {}

    def check_modes(self) -> None:
        """Refuse a keystore that another user owns or that group or others can write
        (its directory and its ``trusted/`` folder), as ssh refuses such a ``~/.ssh``."""
        check_protected(self.directory, "the keystore directory")
        check_protected(self.directory / self.TRUSTED_DIR, "the keystore's trusted/ folder")

    def __repr__(self) -> str:
        return f"Keystore({str(self.directory)!r})"

    # -- identities ---------------------------------------------------------------------
    def key_path(self, name: str) -> Path:
        return self.directory / f"{_check_name(name)}.key"

    def has_identity(self, name: str) -> bool:
        return self.key_path(name).exists()

    def identity(self, name: str) -> IdentityKey:
        """The private key of ``name`` (checked: mode 0600, well-formed)."""
        if name not in self._identities:
            path = self.key_path(name)
            self.check_modes()
            if not path.exists():
                raise KeystoreError(
                    Problem(
                        f"no private key for identity {name!r} in this keystore",
                        str(path),
                        hint=f"create it with: nngsec keygen {name} --keystore {self.directory}",
                    )
                )
            self._identities[name] = read_secret_file(path)
        return self._identities[name]

    def public_path(self, name: str) -> Path:
        return self.directory / f"{_check_name(name)}.pub"

    def generate(
        self, name: str, *, random: Callable[[int], bytes] = os.urandom
    ) -> tuple[IdentityKey, Path, Path]:
        """Create a new identity; writes ``NAME.key`` (0600, never overwritten) and ``NAME.pub``."""
        _check_name(name)
        self._ensure_directory()
        key = IdentityKey.generate(random)
        secret_path, public_path = write_identity_files(self.directory, name, key)
        return key, secret_path, public_path

    def complete(self, name: str) -> tuple[IdentityKey, Path]:
        """Write the missing ``NAME.pub`` of an existing ``NAME.key`` (a keygen that was
        interrupted between the two files); returns the key and the public file."""
        key = self.identity(name)
        path = self.public_path(name)
        write_public_file(path, name, key.public)
        return key, path

    # -- pinned signers -----------------------------------------------------------------
    def trusted_signers(self) -> dict[str, PublicIdentity]:
        """Pinned signer name -> public key."""
        folder = self.directory / self.TRUSTED_DIR
        self.check_modes()
        if not folder.is_dir():
            return {}
        signers = {}
        for path in sorted(folder.glob("*.pub")):
            check_protected(path, "a pinned signer's file")
            name, public = read_public_file(path)
            signers[name] = public
        return signers

    def trust(self, public_file: str | Path) -> tuple[str, PublicIdentity, bool]:
        """Pin the signer in ``public_file``; returns (name, key, newly pinned)."""
        name, public = read_public_file(Path(public_file))
        _check_name(name)
        existing = self.trusted_signers().get(name)  # checks the keystore's modes first
        if existing is not None:
            if existing == public:
                return name, public, False
            raise KeystoreError(
                Problem(
                    f"this keystore already trusts a different key named {name!r}",
                    str(public_file),
                    hint="remove the old one from the trusted/ folder first if it was replaced",
                )
            )
        self._ensure_directory()
        folder = self.directory / self.TRUSTED_DIR
        folder.mkdir(mode=0o700, exist_ok=True)
        write_atomic(folder / f"{name}.pub", render_public_file(name, public))
        return name, public, True

    # -- anti-rollback ------------------------------------------------------------------
    def policy_record(
        self, policy_name: str, *, verified: bool, deployment: str | None = None
    ) -> PolicyRecord | None:
        """What this keystore recorded of ``policy_name`` in ``deployment`` (verified against
        a pinned signer, or used without one), or ``None``."""
        entry = self._read(_record_of(verified)).get(record_key(policy_name, deployment))
        if entry is None:
            return None
        epochs = {c: (e["epoch"], e["fingerprint"]) for c, e in entry["epochs"].items()}
        return PolicyRecord(entry["version"], _digest(entry), epochs)

    def accepted_versions(self, *, verified: bool = False) -> Mapping[str, int]:
        """Highest policy version accepted, per recorded policy (:func:`record_key`: the
        name, with its deployment id if it has one), of those verified against a pinned
        signer or of those used without one."""
        return {name: e["version"] for name, e in self._read(_record_of(verified)).items()}

    def accept_version(
        self,
        policy_name: str,
        version: int,
        digest: str,
        *,
        verified: bool,
        deployment: str | None = None,
        write: bool = True,
    ) -> tuple[int, str | None]:
        """Record ``version`` with the policy's ``digest`` unless a higher version is
        recorded; return the (version, digest) recorded before ((0, None) when none).
        ``write=False`` records nothing (``nngsec check`` asks what a node would find).

        At the recorded version, a verified policy with another digest is not recorded (the
        caller refuses it: a changed policy must raise its version); an unverified one
        replaces the digest (without a signer, versions are only a guard against mistakes).
        """

        key = record_key(policy_name, deployment)

        def change(record: dict[str, Any]) -> tuple[int, str | None]:
            entry = _entry(record, key)
            before = entry["version"], _digest(entry)
            if version > entry["version"] or (version == entry["version"] and not verified):
                entry["version"], entry["digest"] = version, digest
            return before

        return self._update(_record_of(verified), change, write=write)

    def accept_epochs(
        self,
        policy_name: str,
        epochs: Mapping[str, tuple[int, str]],
        *,
        verified: bool,
        deployment: str | None = None,
        write: bool = True,
    ) -> dict[str, tuple[int, str | None]]:
        """Record the current key epoch of each channel, with its fingerprint, unless a
        higher epoch is recorded; return, per channel, the (epoch, fingerprint) recorded
        before ((0, None) when none). An epoch already recorded with another fingerprint
        is not recorded (the caller refuses it: an epoch number is never reused).

        The policy version alone does not protect channel keys: ``nngsec rotate`` changes
        the channel-key file (and its signature) without changing the policy, so an older
        signed set of files would otherwise pass.
        """

        key = record_key(policy_name, deployment)

        def change(record: dict[str, Any]) -> dict[str, tuple[int, str | None]]:
            seen: dict[str, dict[str, Any]] = _entry(record, key)["epochs"]
            before: dict[str, tuple[int, str | None]] = {}
            for channel, (epoch, fingerprint) in epochs.items():
                old = seen.get(channel)
                before[channel] = (old["epoch"], old["fingerprint"]) if old else (0, None)
                if old is None or epoch > old["epoch"]:
                    seen[channel] = {"epoch": epoch, "fingerprint": fingerprint}
            return before

        return self._update(_record_of(verified), change, write=write)

    def recorded_deployments(self, policy_name: str, *, verified: bool) -> frozenset[str]:
        """The deployment ids recorded with ``policy_name`` (a policy that has one)."""
        prefix = f"{policy_name}@"
        record = self._read(_record_of(verified))
        return frozenset(key[len(prefix) :] for key in record if key.startswith(prefix))

    def _read(self, record: _Record) -> dict[str, Any]:
        path = self.directory / record.file
        restore = (
            f"restore it from a backup; deleting it disables rollback protection of "
            f"{record.protects} until the next accepted one"
        )
        self.check_modes()
        check_protected(path, f"the {record.what}")
        if not path.exists():
            return {}
        text = read_text(path, what=record.what, error=KeystoreError, utf8_hint=restore)
        try:
            data = json.loads(text)
        except ValueError as error:
            raise KeystoreError(  # json's messages say where, never what
                Problem(f"cannot read the {record.what}: {error}", str(path), hint=restore)
            ) from None
        if not isinstance(data, dict) or not all(
            _is_record_key(k) and record.valid(v) for k, v in data.items()
        ):
            raise KeystoreError(
                Problem(f"the {record.what} is not {record.shape}", str(path), hint=restore)
            )
        return data

    def _update(
        self, record: _Record, change: Callable[[dict[str, Any]], T], *, write: bool = True
    ) -> T:
        """Apply ``change`` to the record under the keystore's lock (read, modify, write
        atomically), so that two nodes sharing a keystore never lose each other's update.
        With ``write=False``, ``change`` sees a copy and nothing is written or locked."""
        path = self.directory / record.file
        if not write:
            return change(json.loads(json.dumps(self._read(record))))
        try:
            self._ensure_directory()
            with self._locked():
                data = self._read(record)
                updated = json.loads(json.dumps(data))  # a deep copy to compare against
                result = change(updated)
                if updated != data:
                    text = json.dumps(updated, indent=2, sort_keys=True) + "\n"
                    write_atomic(path, text.encode(), mode=0o600)
                return result
        except OSError as error:
            raise KeystoreError(
                Problem(
                    f"cannot record in the {record.what}: {error.strerror or error}",
                    str(path),
                    hint=f"the keystore must be writable: it keeps {record.protects}, which is "
                    "what refuses older files (anti-rollback)",
                )
            ) from None

    # -- helpers ------------------------------------------------------------------------
    def _ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
