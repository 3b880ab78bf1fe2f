"""The one verification of a policy set from its bytes: signature, anti-rollback, expiry.

Every set a node uses, at start-up and on every update (from files or from a store), is
verified by :func:`accept_policy` (through ``_runtime/_trust.verify_set``, which adds the
node's identity); ``nngsec check --keystore`` asks the same function what those nodes
would refuse, without recording anything. A candidate set is bytes (policy, signature,
channel keys), verified from memory exactly as they will be used, never re-read from disk
in between.

Order matters, cheapest and most trusted first:

1. sizes: a part larger than its limit (``_formats/_limits.py``) is refused unparsed;
2. the signature, when the keystore pins a signer: over the raw bytes, before the policy
   or its channel-key file is parsed (the signature file names the version it signed), so
   whoever can write a store or a node's files cannot make it parse megabytes it will
   refuse; and when it must be signed and cannot be verified (below), refused unparsed;
3. parsing, and then the policy's ``version:`` against the version signed;
4. expiry, and the anti-rollback records: what was verified is recorded, and only after
   verification, so an attacker cannot poison the records with an unsigned policy carrying
   a huge version.

What was verified against a pinned signer is recorded apart from what was used without
one (``verified-policies.json`` and ``unverified-policies.json`` in the keystore): an
unsigned policy accepted before any signer was pinned cannot make the admin's signed
versions look old. Records are kept per
policy name and deployment id, so two deployments sharing a name never mix them; a
policy without an id is refused where its name was recorded with one (a copy from before
the id was added would otherwise slip past the records).

Fail closed: a set is refused unsigned when the keystore pins a signer, when the node is
created with ``require_signed=True``, and when a signature lies beside the policy (or was
published with it) but the keystore pins no signer to verify it with (the deployment is
signed; this node was set up without ``nngsec trust``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from .._errors import PolicyError, Problem
from .._formats._limits import (
    CHANNEL_KEYS_LIMIT,
    POLICY_LIMIT,
    SIGNATURE_LIMIT,
    SizeLimit,
    read_bounded,
)
from .._formats._units import format_utc
from .._formats._yaml import text_from_bytes
from .._keys._channel_keys import ChannelKeyFile
from .._keys._keystore import Keystore
from ._load import parse_policy
from ._policy import Policy, channel_keys_path, signature_path
from ._signing import SignedVersion, check_signed_version, digest_of, verify_signed_bytes

__all__ = ["AcceptedSet", "CandidateSet", "accept_policy", "candidate_from_files"]

logger = logging.getLogger(__name__)  # under "nngsec", like every logger of nngsec
_warned_unsigned: set[str] = set()


@dataclass(frozen=True)
class CandidateSet:
    """The bytes of one policy set as a source delivered them, not yet trusted.

    ``where`` names the policy in messages (a path, or ``etcd://host:port/prefix``);
    ``path`` is the policy file when the set came from files. ``policy`` is an already
    parsed :class:`Policy` of exactly ``policy_bytes`` (a caller's ``Node(policy)``).
    ``signature`` is the content of the signature file, or ``None`` when the source has
    none (no ``POLICY.sig`` beside the file, nothing published as ``policy.sig``).
    """

    policy_bytes: bytes
    signature: bytes | None
    channel_keys: bytes | None
    where: str
    path: Path | None = None
    policy: Policy | None = None

    @property
    def signature_where(self) -> str:
        return str(signature_path(self.path)) if self.path else f"{self.where}.sig"

    @property
    def keys_where(self) -> Path | None:
        return channel_keys_path(self.path) if self.path else None


@dataclass(frozen=True)
class AcceptedSet:
    """A set that passed every check: the policy and its channel-key file."""

    policy: Policy
    keys: ChannelKeyFile | None
    signer: str | None


def _read_optional(path: Path, limit: SizeLimit) -> bytes | None:
    try:
        return read_bounded(path, limit)
    except FileNotFoundError:
        return None


def candidate_from_files(policy_path: Path, policy: Policy | None = None) -> CandidateSet:
    """The set beside ``policy_path``: the policy (or the bytes ``policy`` was parsed from),
    ``POLICY.sig`` and ``POLICY.keys.json``, each read once, and no further than its size
    limit (a larger file is refused: ``PolicyError``)."""
    return CandidateSet(
        policy_bytes=read_bounded(policy_path, POLICY_LIMIT) if policy is None else policy.source,
        signature=_read_optional(signature_path(policy_path), SIGNATURE_LIMIT),
        channel_keys=_read_optional(channel_keys_path(policy_path), CHANNEL_KEYS_LIMIT),
        where=str(policy_path),
        path=policy_path,
        policy=policy,
    )


def _refuse_oversized(candidate: CandidateSet) -> None:
    """Step 1: each part within its limit (a set from a store, or made by a caller; one
    from files was read no further than the limits)."""
    POLICY_LIMIT.check(len(candidate.policy_bytes), candidate.where)
    if candidate.signature is not None:
        SIGNATURE_LIMIT.check(len(candidate.signature), candidate.signature_where)
    if candidate.channel_keys is not None:
        CHANNEL_KEYS_LIMIT.check(len(candidate.channel_keys), _keys_shown(candidate))


def _keys_shown(candidate: CandidateSet) -> str:
    keys_path = candidate.keys_where
    return str(keys_path) if keys_path else f"{candidate.where} (channel keys)"


def _parse(candidate: CandidateSet) -> tuple[Policy, ChannelKeyFile | None]:
    """Step 3: the policy and its channel-key file, parsed from the bytes (checked)."""
    policy = candidate.policy
    if policy is None or policy.source != candidate.policy_bytes:
        text = text_from_bytes(candidate.policy_bytes, candidate.where, what="policy")
        policy = parse_policy(text, candidate.where, file=candidate.path)
    keys = None
    if candidate.channel_keys is not None:
        keys_text = text_from_bytes(
            candidate.channel_keys,
            _keys_shown(candidate),
            what="channel-key",
            utf8_hint="restore it from its signed source",
        )
        keys = ChannelKeyFile.parse(keys_text, candidate.keys_where)
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
    record: bool = True,
    expiry: bool = True,
) -> AcceptedSet:
    """Verify ``candidate`` against the keystore's pinned signers, its anti-rollback
    records and the policy's expiry; return what was verified (the same bytes are used).

    ``record=False`` checks against the records without writing them (and logs nothing):
    what ``nngsec check --keystore`` asks. ``expiry=False`` leaves expiry to the caller
    (the checker's own rules about time).
    """
    _refuse_oversized(candidate)
    signed = _verify_bytes(candidate, keystore, require_signed=require_signed)
    policy, keys = _parse(candidate)
    if signed is not None:
        signer: str | None = check_signed_version(signed, policy.version)
    else:
        signer = None
        if record:
            _warn_unsigned(candidate.where, policy, keystore)
    verified = signer is not None
    where = candidate.where
    moment = time.time() if now is None else now
    if expiry and policy.expires_at is not None and moment > policy.expires_at:
        raise PolicyError(
            Problem(
                f"policy {policy.name!r} version {policy.version} expired at "
                f"{format_utc(policy.expires_at)}",
                where,
                field="expires",
                hint="distribute a policy with a later expires: (and sign it)",
            )
        )
    deployment = policy.model.deployment
    if deployment is None:
        _refuse_without_deployment(policy, where, keystore, verified=verified)
    digest = digest_of(candidate.policy_bytes).hex()
    highest, seen_digest = keystore.accept_version(
        policy.name, policy.version, digest, verified=verified, deployment=deployment, write=record
    )
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
    if verified and policy.version == highest and seen_digest not in (None, digest):
        raise PolicyError(
            Problem(
                f"policy {policy.name!r} version {policy.version} differs from the version "
                f"{highest} this keystore verified before: a changed policy must have a "
                "higher version (refused: it could bring back what was removed)",
                where,
                field="version",
                hint="raise version: and sign again (nngsec sign POLICY --key ADMIN.key "
                "--bump does both)",
            )
        )
    if keys is not None:
        _accept_epochs(candidate, policy, keys, keystore, verified=verified, record=record)
    return AcceptedSet(policy, keys, signer)


def _refuse_without_deployment(
    policy: Policy, where: str, keystore: Keystore, *, verified: bool
) -> None:
    """A policy without a ``deployment:`` id is recorded under its name alone. Where this
    keystore recorded the name with an id (``nngsec rotate`` or ``sign`` added one), such
    a policy is a copy from before: refused, or replaying it would pass every record."""
    recorded = keystore.recorded_deployments(policy.name, verified=verified)
    if recorded:
        raise PolicyError(
            Problem(
                f"policy {policy.name!r} has no deployment: id, and this keystore accepted "
                f"policy {policy.name!r} of deployment {sorted(recorded)[0]} before: a copy "
                "without the id is refused (it would bypass that deployment's anti-rollback "
                "records)",
                where,
                field="deployment",
                hint="deploy the current policy, with its deployment: line",
            )
        )


def _verify_bytes(
    candidate: CandidateSet, keystore: Keystore, *, require_signed: bool
) -> SignedVersion | None:
    """Step 2, before anything is parsed: the signature verified over the raw bytes (its
    version still to be compared with the policy's), or ``None`` when the set is used
    unverified; raises when it must be verified and cannot be."""
    signers = keystore.trusted_signers()
    where = candidate.where
    pin = f"pin the admin's key: nngsec trust ADMIN.pub --keystore {keystore.directory}"
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
        return verify_signed_bytes(
            candidate.signature,
            candidate.signature_where,
            policy_bytes=candidate.policy_bytes,
            keys_bytes=candidate.channel_keys,
            trusted=signers,
        )
    if require_signed:
        raise PolicyError(
            Problem(
                f"this node requires a signed policy (require_signed=True), and keystore "
                f"{keystore.directory} pins no signer to verify one with",
                where,
                hint=pin,
            )
        )
    if candidate.signature is not None:
        shown = signature_path(candidate.path).name if candidate.path else candidate.signature_where
        raise PolicyError(
            Problem(
                f"the policy is signed ({shown}), but keystore {keystore.directory} pins no "
                "signer, so this node cannot verify it (refused rather than run unverified)",
                where,
                hint=pin,
            )
        )
    return None


def _warn_unsigned(where: str, policy: Policy, keystore: Keystore) -> None:
    """Say once per place that its policy is used unverified."""
    if where not in _warned_unsigned:
        _warned_unsigned.add(where)
        logger.warning(
            "policy %s is used without signature verification: keystore %s pins no signer "
            "(pin one with: nngsec trust ADMIN.pub --keystore DIR)",
            where,
            keystore.directory,
            extra={"policy": policy.name},
        )


def _accept_epochs(
    candidate: CandidateSet,
    policy: Policy,
    keys: ChannelKeyFile,
    keystore: Keystore,
    *,
    verified: bool,
    record: bool,
) -> None:
    """Refuse channel keys older than, or different from, those this keystore accepted."""
    current = {
        channel: (spec.epochs[0].epoch, keys.fingerprint(channel))
        for channel, spec in keys.model.channels.items()
    }
    before = keystore.accept_epochs(
        policy.name, current, verified=verified, deployment=policy.model.deployment, write=record
    )
    for channel in sorted(current):
        (epoch, fingerprint), (seen, seen_fingerprint) = current[channel], before[channel]
        if epoch < seen:
            message = (
                f"channel {channel!r} has key epoch {epoch}, older than epoch {seen} already "
                "accepted by this keystore (channel-key rollback refused)"
            )
            hint = "deploy the current channel-key file (the one from the last rotate)"
        elif epoch == seen and seen_fingerprint not in (None, fingerprint):
            message = (
                f"channel {channel!r} has other keys under epoch {epoch} than this keystore "
                "accepted before (an epoch number is never reused: refused)"
            )
            hint = f"rotate the channel again: nngsec rotate {candidate.path or 'POLICY'} {channel}"
        else:
            continue
        raise PolicyError(
            Problem(
                message,
                str(keys.path) if keys.path else f"{candidate.where} (channel keys)",
                field=f"channels.{channel}",
                hint=hint,
            )
        )
