"""Administrative operations behind ``nngsec sign``, ``rotate`` and ``revoke``.

Each is a function with explicit inputs (time and randomness injectable) returning what
it did, so the command line stays a thin layer and tests can drive the same code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import PolicyError, Problem, UsageError
from .._formats._atomic import write_atomic
from .._formats._deployment import new_deployment_id
from .._keys._channel_keys import ChannelKeyFile
from .._keys._files import read_secret_file
from .._patterns import ChannelKeyKind
from ._edit import add_deployment, add_revoked, set_version
from ._load import load_policy, parse_policy
from ._policy import Policy, channel_keys_path, signature_path
from ._signing import Signature, digest_of, read_signature, sign_files

__all__ = [
    "RevokeResult",
    "RotateResult",
    "SignResult",
    "revoke",
    "revoke_grace",
    "rotate",
    "sign",
]

DEFAULT_GRACE = 3600.0
# A new epoch from ``nngsec rotate`` is distributed this long before senders use it
# (zero-loss rotation): longer than a watching node's poll interval (1 s), with room for
# copying files. ``rotate()`` itself defaults to no lead (tests and scripts that rotate
# and restart).
DEFAULT_LEAD = 10.0
# Revocation gives the previous epoch a short grace where the epoch's secret lets its
# holder read but not forge (audience keys; bus group keys with ``origin: signed``): what
# the revoked identity can read depends only on when *senders* switch, so receivers may
# keep accepting honest frames still sealed under the old epoch. Where the secret lets
# its holder forge (a bus with ``origin: group``, a service key of several servers), the
# previous epoch retires at once: the revoked identity could otherwise pose as others.
REVOKE_GRACE = 60.0
REVOKE_GRACE_FORGEABLE = 0.0
MAX_GRACE = 365 * 86400.0
_OTHER_KEYS_HINT = "move the file away, or restore the policy's name: and deployment: lines"
MAX_LEAD = 7 * 86400.0


@dataclass(frozen=True)
class RotateResult:
    keys_path: Path
    rotated: dict[str, int] = field(default_factory=dict)  # channel -> new epoch
    sealed_to: dict[str, tuple[str, ...]] = field(default_factory=dict)
    signature_stale: bool = False
    deployment_added: str | None = None  # the id written into a policy that had none
    replaced_format_1: bool = False  # a channel-key file of nngsec 0.1 was replaced
    activate_at: dict[str, str] = field(default_factory=dict)  # channel -> UTC time, if later


@dataclass(frozen=True)
class RevokeResult:
    identity: str
    version: int
    rotation: RotateResult
    not_rotatable: tuple[str, ...]  # channels it could read whose keys are not channel keys
    deployment_added: str | None = None  # the id written into a policy that had none


def _channels_needing_keys(policy: Policy) -> dict[str, ChannelKeyKind]:
    kinds: dict[str, ChannelKeyKind] = {}
    for channel in policy.channels:
        kind = policy.channel_key_kind(channel)
        if kind is not None:
            kinds[channel] = kind
    return kinds


def _with_deployment(policy: Policy, random: Callable[[int], bytes]) -> tuple[Policy, str | None]:
    """``policy`` with a new deployment id if it has none (edited in memory: the text and a
    new ``Policy``; the caller writes it), and the id when one was added."""
    if policy.model.deployment is not None or policy.path is None:
        return policy, None
    deployment = new_deployment_id(random)
    text = add_deployment(policy.source.decode("utf-8"), str(policy.path), deployment)
    return parse_policy(text, str(policy.path), file=policy.path), deployment


def _check_keys_file(keys: ChannelKeyFile, policy: Policy, hint: str) -> None:
    """Refuse a channel-key file of another policy or deployment (before anything is
    written). A policy whose ``deployment:`` line went missing is told which id its keys
    have, rather than being given a new one that nothing else shares."""
    if policy.model.deployment is None and keys.model.policy == policy.name:
        raise PolicyError(
            Problem(
                f"the policy has no deployment: line, but its channel-key file belongs to "
                f"deployment {keys.model.deployment}",
                str(policy.path) if policy.path else None,
                field="deployment",
                hint=f"restore the line 'deployment: {keys.model.deployment}' under name:, "
                "or move the channel-key file away to start a new deployment",
            )
        )
    keys.check_policy(policy.name, policy.model.deployment, hint=hint)


def rotate(
    policy_path: str | Path,
    channels: Iterable[str] = (),
    *,
    grace: float | Mapping[str, float] = DEFAULT_GRACE,
    activate_in: float = 0.0,
    lifetime: float | None = None,
    now: float | None = None,
    random: Callable[[int], bytes] = os.urandom,
    _policy: Policy | None = None,
) -> RotateResult:
    """Start a new key epoch for ``channels`` (every channel that needs keys when empty).

    The new epoch is sealed to every entitled identity that is not revoked. Senders use
    it ``activate_in`` seconds from now (receivers hold it at once: zero-loss rotation);
    the previous epoch stays readable for ``grace`` seconds after that (one value, or one
    per channel). ``lifetime`` makes the new epoch expire. The file is written atomically.
    """
    for value in grace.values() if isinstance(grace, Mapping) else (grace,):
        if not 0 <= value <= MAX_GRACE:
            raise UsageError(
                Problem(
                    f"grace must be from 0 to {MAX_GRACE:.0f} seconds, got {value!r}",
                    field="grace",
                )
            )
    if not 0 <= activate_in <= MAX_LEAD:
        raise UsageError(
            Problem(
                f"activate_in must be from 0 to {MAX_LEAD:.0f} seconds, got {activate_in!r}",
                field="activate_in",
            )
        )
    if lifetime is not None and not 0 < lifetime <= MAX_GRACE:
        raise UsageError(
            Problem(
                f"lifetime must be over 0 and at most {MAX_GRACE:.0f} seconds, got {lifetime!r}",
                field="lifetime",
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
    legacy = ChannelKeyFile.legacy_epochs(keys_path, policy.name)
    existing = ChannelKeyFile.load(keys_path) if legacy is None else None
    if existing is not None:
        _check_keys_file(existing, policy, hint=_OTHER_KEYS_HINT)
    if legacy is not None:  # a format-1 file: every channel gets new, format-2 keys
        targets = list(kinds)
    # A policy without a deployment id gets one; the policy is written before the keys
    # that bind it. (revoke passes the policy it edits, which has one already.)
    policy, added = _with_deployment(policy, random)
    holders = {
        channel: [
            (name, policy.identities[name].box_key)
            for name in sorted(policy.key_holders(channel))
            if not policy.is_revoked(name)
        ]
        for channel in targets
    }
    if policy.model.deployment is None:  # _with_deployment gave it one (here or in revoke)
        raise RuntimeError("nngsec: channel keys for a policy without a deployment id")
    new = ChannelKeyFile.rotate(
        existing,
        policy_name=policy.name,
        deployment=policy.model.deployment,
        path=keys_path,
        kinds=kinds,
        holders=holders,
        rotate=targets,
        now=time.time() if now is None else now,
        grace=grace,
        activate_in=activate_in,
        lifetime=lifetime,
        random=random,
        after_epochs=legacy,
    )
    changed = existing is None or new.raw != existing.raw
    new.check_size(new.raw)  # before either file is written: nodes would refuse it
    if added is not None:  # the policy first: the keys bind its deployment id
        write_atomic(policy_path, policy.source, mode=_mode_of(policy_path))
    if changed and (targets or existing is not None):
        new.save()
    return RotateResult(
        keys_path=keys_path,
        rotated={c: new.model.channels[c].epochs[0].epoch for c in targets},
        sealed_to={c: tuple(n for n, _ in holders[c]) for c in targets},
        activate_at={
            c: stamp
            for c in targets
            if (stamp := new.model.channels[c].epochs[0].activate_at) is not None
        },
        signature_stale=(changed or added is not None) and signature_path(policy_path).exists(),
        deployment_added=added,
        replaced_format_1=legacy is not None,
    )


def revoke(
    policy_path: str | Path,
    identity: str,
    *,
    grace: float | None = None,
    now: float | None = None,
    random: Callable[[int], bytes] = os.urandom,
) -> RevokeResult:
    """List ``identity`` as revoked (raising ``version``) and rotate what it could read.

    The new epochs are active at once (no lead): senders stop sealing to keys the revoked
    identity holds as soon as they see the new set. ``grace`` (``None``: per channel, see
    ``REVOKE_GRACE``) is how long receivers still accept the previous epoch.

    The channel keys are rotated first and the policy written second: a crash in between
    leaves new keys the revoked identity cannot open and the old policy, never a policy
    that claims revocation while the keys still reach the revoked identity. A policy
    without a deployment id is first given one, written on its own, so that the keys can
    bind it whatever happens next.
    """
    policy_path = Path(policy_path)
    policy = load_policy(policy_path)
    policy.require_identity(identity)
    if policy.is_revoked(identity):
        raise PolicyError(
            policy.document.problem(
                ("revoked", policy.model.revoked.index(identity)),
                f"{identity!r} is already revoked",
                f"to cut it off again, rotate: nngsec rotate {policy_path}",
            )
        )
    keys_path = channel_keys_path(policy_path)
    keys = (
        ChannelKeyFile.load(keys_path) if ChannelKeyFile.legacy_epochs(keys_path) is None else None
    )
    if keys is not None:  # (a format-1 file is replaced by the rotation below)
        _check_keys_file(keys, policy, hint=_OTHER_KEYS_HINT)
    policy, added = _with_deployment(policy, random)
    if added is not None:
        write_atomic(policy_path, policy.source, mode=_mode_of(policy_path))
    text = policy.source.decode("utf-8")
    edited_text = add_revoked(text, str(policy_path), identity)
    edited = parse_policy(edited_text, str(policy_path), file=policy_path)
    readable = policy.readable_by(identity)
    to_rotate = [c for c in readable if identity in edited.key_holders(c)]
    graces = {
        channel: grace if grace is not None else revoke_grace(edited, channel)
        for channel in to_rotate
    }
    rotation = (
        rotate(policy_path, to_rotate, grace=graces, now=now, random=random, _policy=edited)
        if to_rotate
        else RotateResult(keys_path=channel_keys_path(policy_path))
    )
    write_atomic(policy_path, edited_text.encode("utf-8"), mode=_mode_of(policy_path))
    return RevokeResult(
        identity=identity,
        version=edited.version,
        rotation=rotation,
        not_rotatable=tuple(c for c in readable if c not in to_rotate),
        deployment_added=added,
    )


def revoke_grace(policy: Policy, channel: str) -> float:
    """The default grace of ``channel``'s previous epoch after a revocation: none where
    that epoch's secret lets its holder forge frames as someone else."""
    spec = policy.channels[channel]
    kind = policy.channel_key_kind(channel)
    forgeable = kind == "service" or (kind == "group" and spec.origin_mode == "group")
    return REVOKE_GRACE_FORGEABLE if forgeable else REVOKE_GRACE


def _mode_of(path: Path) -> int:
    return path.stat().st_mode & 0o777


@dataclass(frozen=True)
class SignResult:
    signature_path: Path
    key_id: str
    version: int
    keys_path: Path | None  # the channel-key file signed with the policy; None: there is none
    bumped_from: int | None = None  # the version before ``bump`` raised it
    deployment_added: str | None = None  # the id written into a policy that had none


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
    Signing the same policy again at its version (after ``nngsec rotate``) is fine. A
    policy without a ``deployment:`` id gets one first (that is a change too). The policy
    file is written once, after every check, or not at all.
    """
    policy_path = Path(policy_path)
    on_disk = load_policy(policy_path)  # never sign a policy that does not load
    key = read_secret_file(Path(key_file))  # before any edit: a bad key changes nothing
    keys_path = channel_keys_path(policy_path)
    keys_bytes = keys_path.read_bytes() if keys_path.exists() else None
    if keys_bytes is not None:
        keys = ChannelKeyFile.parse(keys_bytes.decode("utf-8", "replace"), keys_path)
        _check_keys_file(
            keys, on_disk, hint="run nngsec rotate for this policy, or move the file away"
        )
    # The signature covers the policy as nodes will load it: with a deployment id.
    policy, added = _with_deployment(on_disk, os.urandom)
    target = signature_path(policy_path)
    last = _last_signature(target)
    bumped_from = None
    if (
        last is not None
        and digest_of(policy.source) != last.policy_digest
        and policy.version <= last.version
    ):
        if not bump:
            written = "version" in on_disk.document.data  # else point where it would go
            raise PolicyError(
                on_disk.document.problem(
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
        policy = parse_policy(text, str(policy_path), file=policy_path)
    if added is not None or bumped_from is not None:
        write_atomic(policy_path, policy.source, mode=_mode_of(policy_path))
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
        added,
    )
