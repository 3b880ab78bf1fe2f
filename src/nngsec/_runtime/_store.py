"""A policy set in etcd: where its parts live, reading them at one revision, publishing them
in one transaction that never replaces a newer set.

Under ``etcd://HOST:PORT/PREFIX`` the set is four keys::

    PREFIX/policy       the policy file's bytes
    PREFIX/policy.sig   its detached signature (absent for an unsigned policy)
    PREFIX/keys.json    the channel-key file (absent when no channel needs keys)
    PREFIX/serial       {"version": 7, "epochs": {"telemetry": 3}}: what publish compares

The store is trusted for availability only. Nodes verify what they read exactly as a set
read from files (signature, anti-rollback, epochs); ``serial`` only lets ``nngsec publish``
refuse to replace a newer set, and a node never believes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import PolicyError, Problem, UsageError
from .._keys._channel_keys import ChannelKeyFile
from .._policy._load import load_policy
from ._etcd import EtcdClient, KeyValue, StoreError
from ._trust import CandidateSet, candidate_from_files

__all__ = ["STORE_SCHEME", "PublishResult", "StoreAddress", "publish", "read_set"]

STORE_SCHEME = "etcd://"
_PARTS = ("policy", "policy.sig", "keys.json", "serial")
MAX_ATTEMPTS = 5  # compare-and-swap retries when another publish lands in between


@dataclass(frozen=True)
class StoreAddress:
    """``etcd://HOST:PORT/PREFIX``, parsed."""

    host: str
    port: int
    prefix: str  # starts with "/", no trailing "/"

    @classmethod
    def parse(cls, url: str) -> StoreAddress:
        hint = "write etcd://HOST:PORT/PREFIX, e.g. etcd://127.0.0.1:2379/factory"
        if not url.startswith(STORE_SCHEME):
            raise UsageError(Problem(f"{url!r} is not an etcd URL", hint=hint))
        rest = url[len(STORE_SCHEME) :]
        authority, slash, path = rest.partition("/")
        host, colon, port_text = authority.rpartition(":")
        prefix = "/" + path.strip("/")
        if not (slash and colon and host and port_text.isdigit() and prefix != "/"):
            raise UsageError(Problem(f"{url!r} needs a host, a port and a prefix", hint=hint))
        port = int(port_text)
        if not 0 < port < 65536:
            raise UsageError(Problem(f"{url!r}: port {port} is out of range", hint=hint))
        return cls(host.strip("[]"), port, prefix)

    def __str__(self) -> str:
        return f"{STORE_SCHEME}{self.host}:{self.port}{self.prefix}"

    def key(self, part: str) -> bytes:
        return f"{self.prefix}/{part}".encode()

    @property
    def range(self) -> bytes:
        """The prefix every part starts with (and nothing else)."""
        return f"{self.prefix}/".encode()

    def client(self, timeout: float = 5.0) -> EtcdClient:
        return EtcdClient(self.host, self.port, timeout=timeout)


def _parts(address: StoreAddress, kvs: list[KeyValue]) -> dict[str, KeyValue]:
    wanted = {address.key(part): part for part in _PARTS}
    return {wanted[kv.key]: kv for kv in kvs if kv.key in wanted}


def read_set(client: EtcdClient, address: StoreAddress) -> tuple[int, CandidateSet | None]:
    """The set under ``address`` at one revision: (revision, set), the set ``None`` when
    nothing was published there yet."""
    revision, kvs = client.range_prefix(address.range)
    parts = _parts(address, kvs)
    if "policy" not in parts:
        return revision, None
    signature = parts.get("policy.sig")
    keys = parts.get("keys.json")
    return revision, CandidateSet(
        policy_bytes=parts["policy"].value,
        signature=signature.value if signature is not None else None,
        channel_keys=keys.value if keys is not None else None,
        where=f"{address}/policy",
    )


@dataclass(frozen=True)
class PublishResult:
    address: StoreAddress
    version: int
    epochs: dict[str, int]
    revision: int
    changed: bool  # False: the store already held exactly this set
    signed: bool


def _serial(version: int, epochs: dict[str, int]) -> bytes:
    return json.dumps({"version": version, "epochs": epochs}, sort_keys=True).encode()


def _read_serial(kv: KeyValue | None, where: str) -> tuple[int, dict[str, int]] | None:
    if kv is None:
        return None
    try:
        data: Any = json.loads(kv.value)
        version = data["version"]
        epochs = data["epochs"]
        if not isinstance(version, int) or not isinstance(epochs, dict):
            raise TypeError
        return version, {str(c): int(e) for c, e in epochs.items()}
    except (ValueError, TypeError, KeyError):
        raise PolicyError(
            Problem(
                "the store's serial record is damaged",
                where,
                hint="inspect the prefix with etcdctl; publish refuses to guess what is newer",
            )
        ) from None


def publish(policy_path: str | Path, url: str, *, timeout: float = 5.0) -> PublishResult:
    """Upload the policy beside ``policy_path`` (policy, signature, channel keys) to the
    store at ``url`` as one transaction, unless the store holds a newer set.

    Newer means a higher policy version, or the same version with a later key epoch on
    some channel (an older channel-key file). The check and the writes are one
    compare-and-swap on the serial record's revision: a publish that lands in between is
    seen, and compared against, on the next attempt.
    """
    address = StoreAddress.parse(url)
    path = Path(policy_path)
    policy = load_policy(path)  # never publish a policy that does not load
    candidate = candidate_from_files(path, policy)
    epochs: dict[str, int] = {}
    if candidate.channel_keys is not None:
        keys = ChannelKeyFile.parse(candidate.channel_keys.decode("utf-8", "replace"), None)
        keys.check_policy(
            policy.name, policy.model.deployment, hint="run nngsec rotate for this policy"
        )
        epochs = {c: spec.epochs[0].epoch for c, spec in keys.model.channels.items()}
    client = address.client(timeout)
    mine = {
        "policy": candidate.policy_bytes,
        "policy.sig": candidate.signature,
        "keys.json": candidate.channel_keys,
    }
    where = str(address)
    signed = candidate.signature is not None
    try:
        for _ in range(MAX_ATTEMPTS):
            revision, kvs = client.range_prefix(address.range)
            parts = _parts(address, kvs)
            stored = _read_serial(parts.get("serial"), where)
            if stored is not None:
                _refuse_older(stored, policy.version, epochs, where, str(path))
            if stored is not None and all(
                (parts[p].value if p in parts else None) == value for p, value in mine.items()
            ):
                return PublishResult(
                    address,
                    policy.version,
                    epochs,
                    revision,
                    False,
                    signed,
                )
            serial_kv = parts.get("serial")
            operations = [
                EtcdClient.put(address.key(part), value)
                if value is not None
                else EtcdClient.delete(address.key(part))
                for part, value in mine.items()
            ]
            operations.append(
                EtcdClient.put(address.key("serial"), _serial(policy.version, epochs))
            )
            done, new_revision = client.txn(
                [
                    EtcdClient.compare_mod_revision(
                        address.key("serial"), serial_kv.mod_revision if serial_kv else 0
                    )
                ],
                operations,
            )
            if done:
                return PublishResult(
                    address,
                    policy.version,
                    epochs,
                    new_revision,
                    True,
                    signed,
                )
    except StoreError as error:
        raise PolicyError(
            Problem(
                str(error),
                where,
                hint="start etcd, or check the address (etcd://HOST:PORT/PREFIX)",
            )
        ) from None
    raise PolicyError(
        Problem(
            f"the store kept changing while publishing ({MAX_ATTEMPTS} attempts)",
            where,
            hint="another admin is publishing to the same prefix; try again",
        )
    )


def _refuse_older(
    stored: tuple[int, dict[str, int]],
    version: int,
    epochs: dict[str, int],
    where: str,
    path: str,
) -> None:
    stored_version, stored_epochs = stored
    if stored_version > version:
        raise PolicyError(
            Problem(
                f"the store holds policy version {stored_version}, newer than version {version} "
                f"in {path} (publishing would roll the fleet back)",
                where,
                hint="publish the current policy; raise version: for a new one",
            )
        )
    if stored_version == version:
        older = sorted(c for c, e in epochs.items() if e < stored_epochs.get(c, 0))
        if older:
            channel = older[0]
            raise PolicyError(
                Problem(
                    f"the store holds key epoch {stored_epochs[channel]} of channel {channel!r}, "
                    f"newer than epoch {epochs[channel]} in {path}'s channel-key file",
                    where,
                    hint="publish the channel-key file of the last rotate",
                )
            )
