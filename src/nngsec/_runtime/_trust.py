"""What a node checks before it uses a policy set: everything :func:`accept_policy` checks
(signature, anti-rollback, expiry: ``_policy/_verify.py``), then its own identity.

Every set a node uses, at start-up, on ``reload_keys`` and on every update a watched
source delivers (files or a store), goes through :func:`verify_set`, and nothing else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .._errors import PolicyError, Problem
from .._formats._units import format_utc
from .._keys._identity import IdentityKey
from .._keys._keystore import Keystore
from .._policy._policy import Policy
from .._policy._verify import AcceptedSet, CandidateSet, accept_policy, candidate_from_files

__all__ = [
    "AcceptedSet",
    "CandidateSet",
    "VerifiedSet",
    "accept_policy",
    "candidate_from_files",
    "load_identity",
    "verify_set",
]


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
