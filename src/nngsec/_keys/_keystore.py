"""A node's keystore directory.

::

    keys/
      sensor-1.key              private identity key (0600), loaded on demand
      sensor-1.pub              its public half
      trusted/admin.pub         pinned policy signers (``nngsec trust``)
      accepted-versions.json    highest policy version accepted per policy name
      accepted-epochs.json      newest channel-key epoch accepted per policy and channel

The version file is what makes anti-rollback survive restarts: a node refuses a policy
whose ``version`` is lower than one this keystore has accepted before.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .._errors import KeystoreError, Problem
from .._formats._atomic import write_atomic
from .._formats._names import NAME_HINT, is_name
from ._files import read_public_file, read_secret_file, render_public_file, write_identity_files
from ._identity import IdentityKey, PublicIdentity

__all__ = ["Keystore"]

T = TypeVar("T")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class _Record:
    """A small JSON record in the keystore that only ever moves forward."""

    file: str
    what: str
    shape: str
    protects: str
    valid: Callable[[object], bool]  # for each value of the top-level mapping


_VERSIONS = _Record(
    "accepted-versions.json",
    "accepted-versions record",
    "a mapping of policy name to version",
    "the highest policy version accepted",
    _is_count,
)
_EPOCHS = _Record(
    "accepted-epochs.json",
    "accepted-epochs record",
    "a mapping of policy to channel epochs",
    "the newest key epoch per channel",
    lambda channels: isinstance(channels, dict) and all(map(_is_count, channels.values())),
)


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

    def generate(
        self, name: str, *, random: Callable[[int], bytes] = os.urandom
    ) -> tuple[IdentityKey, Path, Path]:
        """Create a new identity; writes ``NAME.key`` (0600, never overwritten) and ``NAME.pub``."""
        _check_name(name)
        self._ensure_directory()
        key = IdentityKey.generate(random)
        secret_path, public_path = write_identity_files(self.directory, name, key)
        return key, secret_path, public_path

    # -- pinned signers -----------------------------------------------------------------
    def trusted_signers(self) -> dict[str, PublicIdentity]:
        """Pinned signer name -> public key."""
        folder = self.directory / self.TRUSTED_DIR
        if not folder.is_dir():
            return {}
        signers = {}
        for path in sorted(folder.glob("*.pub")):
            name, public = read_public_file(path)
            signers[name] = public
        return signers

    def trust(self, public_file: str | Path) -> tuple[str, PublicIdentity, bool]:
        """Pin the signer in ``public_file``; returns (name, key, newly pinned)."""
        name, public = read_public_file(Path(public_file))
        _check_name(name)
        existing = self.trusted_signers().get(name)
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
    def accepted_versions(self) -> Mapping[str, int]:
        """Highest policy version accepted, per policy name."""
        return self._read(_VERSIONS)

    def accept_version(self, policy_name: str, version: int) -> int:
        """Record ``version`` as accepted unless a higher one is; returns the highest before."""

        def change(versions: dict[str, Any]) -> int:
            before: int = versions.get(policy_name, 0)
            versions[policy_name] = max(before, version)
            return before

        return self._update(_VERSIONS, change)

    def accept_epochs(self, policy_name: str, epochs: Mapping[str, int]) -> dict[str, int]:
        """Record the current key epoch of each channel unless a higher one is recorded;
        return, per channel, the highest epoch recorded before.

        The policy version alone does not protect channel keys: ``nngsec rotate`` changes
        the channel-key file (and its signature) without changing the policy, so an older
        signed set of files would otherwise pass.
        """

        def change(record: dict[str, Any]) -> dict[str, int]:
            seen: dict[str, int] = dict(record.get(policy_name, {}))
            before = {channel: seen.get(channel, 0) for channel in epochs}
            record[policy_name] = {**seen, **{c: max(e, seen.get(c, 0)) for c, e in epochs.items()}}
            return before

        return self._update(_EPOCHS, change)

    def _read(self, record: _Record) -> dict[str, Any]:
        path = self.directory / record.file
        restore = (
            f"restore it from a backup; deleting it disables rollback protection of "
            f"{record.protects} until the next accepted one"
        )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise KeystoreError(
                Problem(f"cannot read the {record.what}: {error}", str(path), hint=restore)
            ) from None
        if not isinstance(data, dict) or not all(record.valid(v) for v in data.values()):
            raise KeystoreError(
                Problem(f"the {record.what} is not {record.shape}", str(path), hint=restore)
            )
        return data

    def _update(self, record: _Record, change: Callable[[dict[str, Any]], T]) -> T:
        """Apply ``change`` to the record under the keystore's lock (read, modify, write
        atomically), so that two nodes sharing a keystore never lose each other's update."""
        path = self.directory / record.file
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
