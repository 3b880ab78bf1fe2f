"""What a node checks before it uses a policy: signature, anti-rollback, its own identity.

Order matters: the signature is verified before the version and the key epochs are
recorded, so an attacker cannot poison the anti-rollback record with an unsigned policy
carrying a huge version. And what was verified against a pinned signer is recorded apart
from what was used without one (``verified-policies.json`` and
``unverified-policies.json`` in the keystore): an unsigned policy accepted before any
signer was pinned cannot make the admin's signed versions look old.

Fail closed: a node refuses an unsigned policy when its keystore pins a signer, when it
is created with ``require_signed=True``, and when a signature file lies beside the
policy but its keystore pins no signer to verify it with (the deployment is signed; this
node was set up without ``nngsec trust``).
"""

from __future__ import annotations

import logging

from .._errors import PolicyError, Problem
from .._keys._channel_keys import ChannelKeyFile
from .._keys._identity import IdentityKey
from .._keys._keystore import Keystore
from .._policy._policy import Policy, signature_path
from .._policy._signing import digest_of, verify_signature

__all__ = ["accept_policy", "load_identity"]

logger = logging.getLogger("nngsec")
_warned_unsigned: set[str] = set()


def accept_policy(
    policy: Policy, keystore: Keystore, *, require_signed: bool = False
) -> ChannelKeyFile | None:
    """Verify ``policy`` (and its channel-key file) against the keystore's pinned signers
    and its anti-rollback records; return the channel-key file that was verified.

    The channel-key file is read once, and the same bytes are verified and used.
    """
    keys = ChannelKeyFile.load(policy.keys_path) if policy.keys_path else None
    if keys is not None:
        keys.check_policy(policy.name, hint="use the channel-key file written for this policy")
    verified = _verify(policy, keys, keystore, require_signed=require_signed)
    where = str(policy.path) if policy.path else "<policy>"
    digest = digest_of(policy.source).hex()
    highest, seen_digest = keystore.accept_version(
        policy.name, policy.version, digest, verified=verified
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
        _accept_epochs(policy, keys, keystore, verified=verified)
    return keys


def _verify(
    policy: Policy, keys: ChannelKeyFile | None, keystore: Keystore, *, require_signed: bool
) -> bool:
    """Whether the policy was verified against a pinned signer; raises when it must be
    and cannot be."""
    signers = keystore.trusted_signers()
    where = str(policy.path) if policy.path else "<policy>"
    pin = f"pin the admin's key: nngsec trust ADMIN.pub --keystore {keystore.directory}"
    if signers:
        if policy.path is None:
            raise PolicyError(
                Problem(
                    "this keystore requires a signed policy, and a policy read from text has "
                    "no signature file",
                    where,
                    hint="load the policy from its file with nngsec.load_policy",
                )
            )
        verify_signature(
            signature_path(policy.path),
            version=policy.version,
            policy_bytes=policy.source,
            keys_bytes=keys.raw if keys is not None else None,
            trusted=signers,
        )
        return True
    if require_signed:
        raise PolicyError(
            Problem(
                f"this node requires a signed policy (require_signed=True), and keystore "
                f"{keystore.directory} pins no signer to verify one with",
                where,
                hint=pin,
            )
        )
    if policy.path is not None and signature_path(policy.path).exists():
        raise PolicyError(
            Problem(
                f"the policy is signed ({signature_path(policy.path).name}), but keystore "
                f"{keystore.directory} pins no signer, so this node cannot verify it "
                "(refused rather than run unverified)",
                where,
                hint=pin,
            )
        )
    if where not in _warned_unsigned:
        _warned_unsigned.add(where)
        logger.warning(
            "policy %s is used without signature verification: keystore %s pins no signer "
            "(pin one with: nngsec trust ADMIN.pub --keystore DIR)",
            where,
            keystore.directory,
        )
    return False


def _accept_epochs(
    policy: Policy, keys: ChannelKeyFile, keystore: Keystore, *, verified: bool
) -> None:
    """Refuse channel keys older than, or different from, those this keystore accepted."""
    current = {
        channel: (spec.epochs[0].epoch, keys.fingerprint(channel))
        for channel, spec in keys.model.channels.items()
    }
    before = keystore.accept_epochs(policy.name, current, verified=verified)
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
            hint = f"rotate the channel again: nngsec rotate {policy.path or 'POLICY'} {channel}"
        else:
            continue
        raise PolicyError(Problem(message, str(keys.path), field=f"channels.{channel}", hint=hint))


def load_identity(policy: Policy, keystore: Keystore, identity: str) -> IdentityKey:
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
