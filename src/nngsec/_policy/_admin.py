"""Administrative operations behind ``nngsec sign``, ``rotate`` and ``revoke``.

Each is a function with explicit inputs (time and randomness injectable) returning what
it did, so the command line stays a thin layer and tests can drive the same code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import PolicyError, Problem, UsageError
from .._formats._atomic import write_atomic
from .._keys._channel_keys import ChannelKeyFile
from .._keys._files import read_secret_file
from .._patterns import ChannelKeyKind
from ._edit import add_revoked, set_version
from ._load import load_policy, parse_policy
from ._policy import Policy, channel_keys_path, signature_path
from ._signing import Signature, digest_of, read_signature, sign_files

__all__ = ["RevokeResult", "RotateResult", "SignResult", "revoke", "rotate", "sign"]

DEFAULT_GRACE = 3600.0
# Revocation retires the previous epoch at once by default: the revoked identity holds
# that epoch's secret, and on an ``origin: group`` bus it could forge other members'
# frames for as long as receivers still accept the epoch. Senders must load the new keys.
REVOKE_GRACE = 0.0
MAX_GRACE = 365 * 86400.0


@dataclass(frozen=True)
class RotateResult:
    keys_path: Path
    rotated: dict[str, int] = field(default_factory=dict)  # channel -> new epoch
    sealed_to: dict[str, tuple[str, ...]] = field(default_factory=dict)
    signature_stale: bool = False


@dataclass(frozen=True)
class RevokeResult:
    identity: str
    version: int
    rotation: RotateResult
    not_rotatable: tuple[str, ...]  # channels it could read whose keys are not channel keys


def _channels_needing_keys(policy: Policy) -> dict[str, ChannelKeyKind]:
    kinds: dict[str, ChannelKeyKind] = {}
    for channel in policy.channels:
        kind = policy.channel_key_kind(channel)
        if kind is not None:
            kinds[channel] = kind
    return kinds


def rotate(
    policy_path: str | Path,
    channels: Iterable[str] = (),
    *,
    grace: float = DEFAULT_GRACE,
    now: float | None = None,
    random: Callable[[int], bytes] = os.urandom,
    _policy: Policy | None = None,
) -> RotateResult:
    """Start a new key epoch for ``channels`` (every channel that needs keys when empty).

    The new epoch is sealed to every entitled identity that is not revoked; the previous
    epoch stays readable for ``grace`` seconds. The file is written atomically.
    """
    if not 0 <= grace <= MAX_GRACE:
        raise UsageError(
            Problem(
                f"grace must be from 0 to {MAX_GRACE:.0f} seconds, got {grace!r}", field="grace"
            )
        )
    policy_path = Path(policy_path)
    policy = _policy or load_policy(policy_path)
    kinds = _channels_needing_keys(policy)
    wanted = list(dict.fromkeys(channels))
    doc = policy.document
    for channel in wanted:
        if channel not in policy.channels:
            raise PolicyError(
                doc.problem(
                    ("channels",),
                    f"no channel {channel!r} in the policy",
                    f"channels are: {', '.join(policy.channels) or 'none'}",
                    key=True,
                )
            )
        if channel not in kinds:
            raise PolicyError(
                doc.problem(
                    ("channels", channel),
                    f"channel {channel!r} needs no channel keys "
                    "(its keys come from identity keys, or it has no secret)",
                    "to cut someone off such a channel, revoke or remove the identity",
                    key=True,
                )
            )
    targets = wanted or list(kinds)
    keys_path = channel_keys_path(policy_path)
    existing = ChannelKeyFile.load(keys_path)
    if existing is not None:
        existing.check_policy(policy.name, hint="move the file away, or rename the policy back")
    holders = {
        channel: [
            (name, policy.identities[name].box_key)
            for name in sorted(policy.key_holders(channel))
            if not policy.is_revoked(name)
        ]
        for channel in targets
    }
    new = ChannelKeyFile.rotate(
        existing,
        policy_name=policy.name,
        path=keys_path,
        kinds=kinds,
        holders=holders,
        rotate=targets,
        now=time.time() if now is None else now,
        grace=grace,
        random=random,
    )
    changed = existing is None or new.raw != existing.raw
    if changed and (targets or existing is not None):
        new.save()
    return RotateResult(
        keys_path=keys_path,
        rotated={c: new.model.channels[c].epochs[0].epoch for c in targets},
        sealed_to={c: tuple(n for n, _ in holders[c]) for c in targets},
        signature_stale=changed and signature_path(policy_path).exists(),
    )


def revoke(
    policy_path: str | Path,
    identity: str,
    *,
    grace: float = REVOKE_GRACE,
    now: float | None = None,
    random: Callable[[int], bytes] = os.urandom,
) -> RevokeResult:
    """List ``identity`` as revoked (raising ``version``) and rotate what it could read.

    The channel keys are rotated first and the policy written second: a crash in between
    leaves new keys the revoked identity cannot open and the old policy, never a policy
    that claims revocation while the keys still reach the revoked identity.
    """
    policy_path = Path(policy_path)
    policy = load_policy(policy_path)
    if identity not in policy.identities:
        raise PolicyError(
            policy.document.problem(
                ("identities",),
                f"no identity {identity!r} in the policy",
                f"identities are: {', '.join(policy.identities) or 'none'}",
                key=True,
            )
        )
    if policy.is_revoked(identity):
        raise PolicyError(
            policy.document.problem(
                ("revoked", policy.model.revoked.index(identity)),
                f"{identity!r} is already revoked",
                f"to cut it off again, rotate: nngsec rotate {policy_path}",
            )
        )
    text = policy.source.decode("utf-8")
    edited_text = add_revoked(text, str(policy_path), identity)
    edited = parse_policy(edited_text, str(policy_path), file=policy_path)
    readable = policy.readable_by(identity)
    to_rotate = [c for c in readable if identity in edited.key_holders(c)]
    rotation = (
        rotate(policy_path, to_rotate, grace=grace, now=now, random=random, _policy=edited)
        if to_rotate
        else RotateResult(keys_path=channel_keys_path(policy_path))
    )
    write_atomic(policy_path, edited_text.encode("utf-8"), mode=_mode_of(policy_path))
    return RevokeResult(
        identity=identity,
        version=edited.version,
        rotation=rotation,
        not_rotatable=tuple(c for c in readable if c not in to_rotate),
    )


def _mode_of(path: Path) -> int:
    return path.stat().st_mode & 0o777


@dataclass(frozen=True)
class SignResult:
    signature_path: Path
    key_id: str
    version: int
    keys_path: Path | None  # the channel-key file signed with the policy; None: there is none
    bumped_from: int | None = None  # the version before ``bump`` raised it


def _last_signature(path: Path) -> Signature | None:
    """The signature ``nngsec sign`` wrote last, or ``None`` when there is none it can
    read (missing, damaged, or of format 1, which records no version)."""
    try:
        return read_signature(path)
    except PolicyError:
        return None


def sign(policy_path: str | Path, key_file: str | Path, *, bump: bool = False) -> SignResult:
    """Sign the policy and its channel-key file.

    A policy whose content changed since it was last signed must have a higher version:
    nodes that accepted the signed version refuse another policy under the same number
    (and roll back to nothing older). So this refuses to sign such a policy, or with
    ``bump`` raises its ``version:`` in the file (keeping the rest as written) first.
    Signing the same policy again at its version (after ``nngsec rotate``) is fine.
    """
    policy_path = Path(policy_path)
    policy = load_policy(policy_path)  # never sign a policy that does not load
    key = read_secret_file(Path(key_file))
    keys_path = channel_keys_path(policy_path)
    keys_bytes = keys_path.read_bytes() if keys_path.exists() else None
    if keys_bytes is not None:
        keys = ChannelKeyFile.parse(keys_bytes.decode("utf-8", "replace"), keys_path)
        keys.check_policy(
            policy.name, hint="run nngsec rotate for this policy, or move the file away"
        )
    target = signature_path(policy_path)
    last = _last_signature(target)
    bumped_from = None
    if (
        last is not None
        and digest_of(policy.source) != last.policy_digest
        and policy.version <= last.version
    ):
        if not bump:
            written = "version" in policy.document.data  # else point where it would go
            raise PolicyError(
                policy.document.problem(
                    ("version",) if written else ("name",),
                    f"the policy changed since it was signed at version {last.version}, and "
                    f"its version is {policy.version}: nodes that accepted version "
                    f"{last.version} refuse a different policy at or below it",
                    f"raise version: to {last.version + 1}, or sign with --bump to do it",
                    key=True,
                )
            )
        bumped_from = policy.version
        text = set_version(policy.source.decode("utf-8"), str(policy_path), last.version + 1)
        write_atomic(policy_path, text.encode("utf-8"), mode=_mode_of(policy_path))
        policy = load_policy(policy_path)
    sign_files(
        target,
        version=policy.version,
        policy_bytes=policy.source,
        keys_bytes=keys_bytes,
        key=key,
        comment=(
            f"policy: {policy.name} (version {policy.version}); channel keys: "
            f"{keys_path.name if keys_bytes is not None else 'none'}\n"
            f"signer key id: {key.key_id.hex()}"
        ),
    )
    return SignResult(
        target,
        key.key_id.hex(),
        policy.version,
        keys_path if keys_bytes is not None else None,
        bumped_from,
    )
