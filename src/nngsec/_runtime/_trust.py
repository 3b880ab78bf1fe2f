"""What a node checks before it uses a policy: signature, anti-rollback, expiry, its identity.

Every set a node uses, at start-up and on every update (from files or from a store), goes
through :func:`verify_set`: one candidate set of bytes (policy, signature, channel keys),
verified from memory exactly as it will be used, never re-read from disk in between.

Order matters: the signature is verified before the version and the key epochs are
recorded, so an attacker cannot poison the anti-rollback record with an unsigned policy
carrying a huge version.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from .._errors import PolicyError, Problem
from .._formats._units import format_utc
from .._keys._channel_keys import ChannelKeyFile
from .._keys._identity import IdentityKey
from .._keys._keystore import Keystore
from .._policy._load import parse_policy
from .._policy._policy import Policy, channel_keys_path, signature_path
from .._policy._signing import verify_signature_bytes

__all__ = [
    "AcceptedSet",
    "CandidateSet",
    "VerifiedSet",
    "accept_policy",
    "candidate_from_files",
    "load_identity",
    "verify_set",
]

logger = logging.getLogger(__name__)  # under "nngsec", like every logger of nngsec
_warned_unsigned: set[str] = set()


@dataclass(frozen=True)
class CandidateSet:
    """The bytes of one policy set as a source delivered them, not yet trusted.

    ``where`` names the policy in messages (a path, or ``etcd://host:port/prefix``);
    ``path`` is the policy file when the set came from files. ``policy`` is an already
    parsed :class:`Policy` of exactly ``policy_bytes`` (a caller's ``Node(policy)``).
    """

    policy_bytes: bytes
    signature: bytes | None
    channel_keys: bytes | None
    where: str
    path: Path | None = None
    policy: Policy | None = None

    @property
    def signature_where(self) -> str:
        return str(signature_path(self.path)) if self.path else f"{self.where} (signature)"

    @property
    def keys_where(self) -> Path | None:
        return channel_keys_path(self.path) if self.path else None


@dataclass(frozen=True)
class AcceptedSet:
    """A set that passed every check: the policy and its channel-key file."""

    policy: Policy
    keys: ChannelKeyFile | None
    signer: str | None


def _read_optional(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def candidate_from_files(policy_path: Path, policy: Policy | None = None) -> CandidateSet:
    """The set beside ``policy_path``: the policy (or the bytes ``policy`` was parsed from),
    ``POLICY.sig`` and ``POLICY.keys.json``, each read once."""
    policy_bytes = policy.source if policy is not None else policy_path.read_bytes()
    return CandidateSet(
        policy_bytes=policy_bytes,
        signature=_read_optional(signature_path(policy_path)),
        channel_keys=_read_optional(channel_keys_path(policy_path)),
        where=str(policy_path),
        path=policy_path,
        policy=policy,
    )


def _parse(candidate: CandidateSet) -> tuple[Policy, ChannelKeyFile | None]:
    policy = candidate.policy
    if policy is None or policy.source != candidate.policy_bytes:
        try:
            text = candidate.policy_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyError(
                Problem("the policy is not UTF-8 text", candidate.where, hint="restore it")
            ) from None
        policy = parse_policy(text, candidate.where, file=candidate.path)
    keys = None
    if candidate.channel_keys is not None:
        keys_path = candidate.keys_where
        try:
            keys_text = candidate.channel_keys.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyError(
                Problem(
                    "the channel-key file is not UTF-8 text",
                    str(keys_path) if keys_path else f"{candidate.where} (channel keys)",
                    hint="restore it from its signed source",
                )
            ) from None
        keys = ChannelKeyFile.parse(keys_text, keys_path)
        keys.check_policy(
            policy.name,
            policy.model.deployment,
            hint="use the channel-key file written for this policy (nngsec rotate writes it)",
        )
    return policy, keys


def accept_policy(
    candidate: CandidateSet,
    keystore: Keystore,
    *,
    require_signed: bool = False,
    now: float | None = None,
) -> AcceptedSet:
    """Verify ``candidate`` against the keystore's pinned signers, its anti-rollback
    records and the policy's expiry; return what was verified (the same bytes are used).
    """
    policy, keys = _parse(candidate)
    signers = keystore.trusted_signers()
    where = candidate.where
    signer = None
    if require_signed and not signers:
        raise PolicyError(
            Problem(
                "require_signed is set, but keystore "
                f"{keystore.directory} pins no signer to verify the policy with",
                where,
                hint="pin the admin's key: nngsec trust ADMIN.pub --keystore DIR",
            )
        )
    if signers:
        if candidate.path is None and candidate.policy is not None:
            # Node(parse_policy(text)): a policy without a file has no signature beside it.
            raise PolicyError(
                Problem(
                    "this keystore requires a signed policy, and a policy read from text "
                    "has no signature file",
                    where,
                    hint="load the policy from its file with nngsec.load_policy",
                )
            )
        signer = verify_signature_bytes(
            candidate.signature,
            candidate.signature_where,
            policy_bytes=candidate.policy_bytes,
            keys_bytes=candidate.channel_keys,
            trusted=signers,
        )
    elif where not in _warned_unsigned:
        _warned_unsigned.add(where)
        logger.warning(
            "policy %s is used without signature verification: keystore %s pins no signer "
            "(pin one with: nngsec trust ADMIN.pub --keystore DIR)",
            where,
            keystore.directory,
            extra={"policy": policy.name},
        )
    moment = time.time() if now is None else now
    if policy.expires_at is not None and moment > policy.expires_at:
        raise PolicyError(
            Problem(
                f"policy {policy.name!r} version {policy.version} expired at "
                f"{format_utc(policy.expires_at)}",
                where,
                field="expires",
                hint="distribute a policy with a later expires: (and sign it)",
            )
        )
    highest = keystore.accept_version(policy.name, policy.version)
    if policy.version < highest:
        raise PolicyError(
            Problem(
                f"policy {policy.name!r} version {policy.version} is older than version "
                f"{highest} already accepted by this keystore (rollback refused)",
                where,
                field="version",
                hint="deploy the current policy; a newer policy always has a higher version",
            )
        )
    if keys is not None:
        current = {channel: spec.epochs[0].epoch for channel, spec in keys.model.channels.items()}
        before = keystore.accept_epochs(policy.name, current)
        older = {c: (current[c], before[c]) for c in current if current[c] < before[c]}
        if older:
            channel, (epoch, seen) = sorted(older.items())[0]
            raise PolicyError(
                Problem(
                    f"channel {channel!r} has key epoch {epoch}, older than epoch {seen} already "
                    f"accepted by this keystore (channel-key rollback refused)",
                    str(keys.path) if keys.path else f"{where} (channel keys)",
                    field=f"channels.{channel}",
                    hint="deploy the current channel-key file (the one from the last rotate)",
                )
            )
    return AcceptedSet(policy, keys, signer)


def load_identity(
    policy: Policy, keystore: Keystore, identity: str, *, now: float | None = None
) -> IdentityKey:
    """The private key of ``identity``, checked against the policy."""
    where = str(policy.path) if policy.path else "<policy>"
    if identity not in policy.identities:
        raise PolicyError(
            Problem(
                f"identity {identity!r} is not defined in policy {policy.name!r}",
                where,
                field="identities",
                hint="add its public key (from nngsec keygen) under identities:",
            )
        )
    if policy.is_revoked(identity):
        raise PolicyError(
            Problem(
                f"identity {identity!r} is revoked in policy {policy.name!r}",
                where,
                field="revoked",
                hint="a revoked identity cannot run; give the node a new identity",
            )
        )
    expiry = policy.expiry_of(identity)
    if expiry is not None and (time.time() if now is None else now) > expiry:
        raise PolicyError(
            Problem(
                f"identity {identity!r} expired at {format_utc(expiry)} in policy {policy.name!r}",
                where,
                field=f"identities.{identity}",
                hint="give it a later expires: in the policy (and sign it), or a new identity",
            )
        )
    key = keystore.identity(identity)
    if key.public != policy.identities[identity]:
        raise PolicyError(
            Problem(
                f"the private key of {identity!r} in {keystore.directory} does not match its "
                "public key in the policy",
                where,
                field=f"identities.{identity}",
                hint=f"paste the line from {keystore.directory}/{identity}.pub into the policy",
            )
        )
    return key


@dataclass(frozen=True)
class VerifiedSet:
    """A candidate set that passed everything, with this node's private key."""

    accepted: AcceptedSet
    key: IdentityKey


def verify_set(
    candidate: CandidateSet,
    keystore: Keystore,
    identity: str,
    *,
    require_signed: bool = False,
    now: float | None = None,
) -> VerifiedSet:
    """The one verification of every set a node uses, at start-up and on every update."""
    accepted = accept_policy(candidate, keystore, require_signed=require_signed, now=now)
    key = load_identity(accepted.policy, keystore, identity, now=now)
    return VerifiedSet(accepted, key)
