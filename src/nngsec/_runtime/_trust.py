"""What a node checks before it uses a policy: signature, anti-rollback, its own identity.

Order matters: the signature is verified before the version and the key epochs are
recorded, so an attacker cannot poison the anti-rollback record with an unsigned policy
carrying a huge version.
"""

from __future__ import annotations

import logging

from .._errors import PolicyError, Problem
from .._keys._channel_keys import ChannelKeyFile
from .._keys._identity import IdentityKey
from .._keys._keystore import Keystore
from .._policy._policy import Policy, signature_path
from .._policy._signing import verify_signature

__all__ = ["accept_policy", "load_identity"]

logger = logging.getLogger(__name__)  # under "nngsec", like every logger of nngsec
_warned_unsigned: set[str] = set()


def accept_policy(policy: Policy, keystore: Keystore) -> ChannelKeyFile | None:
    """Verify ``policy`` (and its channel-key file) against the keystore's pinned signers
    and its anti-rollback record; return the channel-key file that was verified.

    The channel-key file is read once, and the same bytes are verified and used.
    """
    keys = ChannelKeyFile.load(policy.keys_path) if policy.keys_path else None
    if keys is not None:
        keys.check_policy(policy.name, hint="use the channel-key file written for this policy")
    signers = keystore.trusted_signers()
    where = str(policy.path) if policy.path else "<policy>"
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
            policy_bytes=policy.source,
            keys_bytes=keys.raw if keys is not None else None,
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
                    str(keys.path),
                    field=f"channels.{channel}",
                    hint="deploy the current channel-key file (the one from the last rotate)",
                )
            )
    return keys


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
