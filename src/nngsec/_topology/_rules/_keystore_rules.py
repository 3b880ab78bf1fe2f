"""Rules that look into the keystore given with ``--keystore`` (private keys of the nodes)."""

from __future__ import annotations

from collections.abc import Iterator

from ..._errors import KeystoreError
from ..._keys._files import check_private_permissions, read_secret_file
from ..._keys._keystore import Keystore
from ..._keys._permissions import check_protected
from .._findings import Issue, Place
from .._links import node_key
from .._load import Topology
from ._base import Context, rule


def _keystore(ctx: Context) -> Keystore:
    """The keystore rules look at (they run only when ``--keystore`` gave one)."""
    if ctx.keystore is None:
        raise RuntimeError("a keystore rule ran without a keystore")
    return ctx.keystore


def _nodes_with_keys(ctx: Context) -> Iterator[tuple[Topology, str, str]]:
    """(topology, node, identity) for nodes running an identity the policy defines."""
    for topology in ctx.topologies:
        for node in topology.model.nodes:
            identity = topology.identity_of(node)
            if identity is not None and identity in ctx.policy.identities:
                yield topology, node, identity


@rule("missing-private-key", "error", scope="keystore")
def missing_private_key(ctx: Context) -> Iterator[Issue]:
    """With `--keystore DIR`: a node's identity has no private key file `DIR/NAME.key`.

    **Why it matters.** The node cannot start: it has nothing to sign, open or decrypt
    with.

    **Example.** The topology runs `sensor-2`, but `keys/sensor-2.key` does not exist.

    **Fix.** Copy the identity's key file into the keystore (mode 0600), or create it with
    `nngsec keygen NAME --keystore DIR` and paste the new public key into the policy.
    """
    keystore = _keystore(ctx)
    for topology, node, identity in _nodes_with_keys(ctx):
        path = keystore.key_path(identity)
        if not path.exists():
            loc, implied = topology.identity_loc(node)
            yield Issue(
                ctx.at(topology, loc, key=implied),
                f"node {node!r} runs {identity!r}, but {path} does not exist",
                f"nngsec keygen {identity} --keystore {keystore.directory}, or copy the key",
                subjects=(node_key(topology, node),),
            )


@rule("key-file-permissions", "error", scope="keystore")
def key_file_permissions(ctx: Context) -> Iterator[Issue]:
    """With `--keystore DIR`: a private key file that group or others can read or write.

    **Why it matters.** Anyone who can read the file holds the identity: they can read its
    channels and send as it. nngsec refuses to load such a file (like ssh), so the node
    does not start either.

    **Example.** `keys/dashboard.key` with mode 0644.

    **Fix.** `chmod 600 DIR/NAME.key`, and consider the key exposed if others could read
    it: replace it (`nngsec keygen`, then `nngsec revoke` the old identity).
    """
    keystore = _keystore(ctx)
    for topology, node, identity in _nodes_with_keys(ctx):
        path = keystore.key_path(identity)
        if not path.exists():
            continue  # missing-private-key
        try:
            check_private_permissions(path)
        except KeystoreError as error:
            loc, implied = topology.identity_loc(node)
            problem = error.problems[0]
            yield Issue(
                ctx.at(topology, loc, key=implied),
                f"node {node!r}: {path}: {problem.message}",
                problem.hint,
                subjects=(node_key(topology, node),),
            )


@rule("keystore-permissions", "error", scope="keystore")
def keystore_permissions(ctx: Context) -> Iterator[Issue]:
    """With `--keystore DIR`: the keystore directory, its `trusted/` folder, a pinned
    signer or an anti-rollback record that group or others can write, or that another
    user (not root) owns.

    **Why it matters.** The keystore decides what its nodes trust. Whoever can write it can
    pin their own signer (and then sign any policy the nodes will run) or reset the
    records that refuse older policies. Nodes refuse such a keystore, as ssh refuses a
    `~/.ssh` others can write, so they do not start either.

    **Example.** `keys/` with mode 0775 on a host where the group has other members.

    **Fix.** `chmod go-w DIR` (and the same for `trusted/` and its files), or `chown` them to
    the user the nodes run as.
    """
    keystore = _keystore(ctx)
    trusted = keystore.directory / keystore.TRUSTED_DIR
    paths = [
        (keystore.directory, "the keystore directory"),
        (trusted, "the keystore's trusted/ folder"),
        *((p, "a pinned signer's file") for p in sorted(trusted.glob("*.pub"))),
        *(
            (p, "an anti-rollback record")
            for p in sorted(keystore.directory.glob("*-policies.json"))
        ),
    ]
    for path, what in paths:
        try:
            check_protected(path, what)
        except KeystoreError as error:
            problem = error.problems[0]
            yield Issue(Place(str(path)), problem.message, problem.hint)


@rule("private-key-mismatch", "error", scope="keystore")
def private_key_mismatch(ctx: Context) -> Iterator[Issue]:
    """With `--keystore DIR`: a private key that is unreadable, malformed, or not the one
    whose public half the policy lists for the identity.

    **Why it matters.** The node refuses to start (its key does not match the policy), or,
    worse, an old key left in place after `nngsec keygen` made a new one.

    **Example.** `keys/sensor-1.key` from an earlier `nngsec keygen`, while the policy
    holds the public key of a later one.

    **Fix.** Paste the line from `DIR/NAME.pub` under `identities:`, or put the right key
    file in the keystore.
    """
    keystore = _keystore(ctx)
    for topology, node, identity in _nodes_with_keys(ctx):
        path = keystore.key_path(identity)
        if not path.exists():
            continue
        try:
            check_private_permissions(path)
        except KeystoreError:
            continue  # key-file-permissions
        loc, implied = topology.identity_loc(node)
        where = ctx.at(topology, loc, key=implied)
        try:
            key = read_secret_file(path)
        except KeystoreError as error:
            problem = error.problems[0]
            yield Issue(where, f"node {node!r}: {path}: {problem.message}", problem.hint)
            continue
        if key.public != ctx.policy.identities[identity]:
            yield Issue(
                where,
                f"node {node!r}: the private key in {path} does not match the public key "
                f"of {identity!r} in the policy (key id {key.public.fingerprint} vs "
                f"{ctx.policy.identities[identity].fingerprint})",
                f"paste the line from {path.with_suffix('.pub')} under identities:, or "
                "use the right key file",
                subjects=(node_key(topology, node),),
            )
