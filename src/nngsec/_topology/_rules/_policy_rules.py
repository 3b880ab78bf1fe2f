"""Rules about the policy itself, its channel keys and its signature (run on every check)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path

from ..._errors import KeystoreError, PolicyError
from ..._keys._identity import PublicIdentity
from ..._keys._keystore import Keystore
from ..._policy._checks import duplicate_keys, unknown_names
from ..._policy._policy import signature_path
from ..._policy._signing import read_signature, verify_signature
from ..._policy._verify import accept_policy, candidate_from_files
from .._findings import Issue, Place
from .._links import End, node_key
from .._load import Topology
from ._base import Context, rule


def _names(names: frozenset[str] | set[str], limit: int = 6) -> str:
    shown = sorted(names)
    text = ", ".join(shown[:limit])
    return text + (f" and {len(shown) - limit} more" if len(shown) > limit else "")


@rule("unknown-identity", "error", scope="policy")
def unknown_identity(ctx: Context) -> Iterator[Issue]:
    """A name that no identity or group defines: in a group, a channel role, `revoked:`, or
    as the identity a node runs.

    **Why it matters.** A misspelt name grants nothing and says nothing: the intended
    identity silently cannot send or read, and a node running an identity the policy does
    not define is refused by every peer. `nngsec check` reports these names instead of
    refusing the policy, so that every other rule still runs.

    **Example.**

    ```yaml
    channels:
      telemetry:
        pattern: pubsub
        publishers: [sensor-1]
        subscribers: [dashbaord]      # unknown-identity: no identity or group 'dashbaord'
    ```

    **Fix.** Correct the spelling, or add the identity under `identities:` (the line
    printed by `nngsec keygen NAME`), or define the group under `groups:`. For a node, set
    `identity:` to a defined identity (a node without `identity:` runs the identity named
    like the node).
    """
    policy = ctx.policy
    known = [*policy.identities, *policy.groups]
    for loc, name, where in unknown_names(policy.document.data):
        close = difflib.get_close_matches(name, known, n=1)
        yield Issue(
            ctx.at_policy(loc),
            f"unknown name {name!r} in {where}, expected an identity or group of the policy",
            f"did you mean {close[0]!r}?"
            if close
            else "define it under identities: (from `nngsec keygen NAME`) or groups:",
        )
    identities = list(policy.identities)
    for topology in ctx.topologies:
        for node in topology.model.nodes:
            identity = topology.identity_of(node)
            if identity is None or identity in policy.identities:
                continue
            loc, implied = topology.identity_loc(node)
            if identity in policy.groups:
                message = f"node {node!r} runs {identity!r}, which is a group, not an identity"
            elif implied:
                message = (
                    f"node {node!r} runs identity {identity!r} (its own name, as it sets no "
                    "identity:), which the policy does not define"
                )
            else:
                message = (
                    f"node {node!r} runs identity {identity!r}, which the policy does not define"
                )
            close = difflib.get_close_matches(identity, identities, n=1)
            yield Issue(
                ctx.at(topology, loc, key=implied),
                message,
                f"did you mean identity: {close[0]}?"
                if close
                else "set identity: to an identity of the policy",
                subjects=(node_key(topology, node),),
            )


@rule("duplicate-identity", "error", scope="policy")
def duplicate_identity(ctx: Context) -> Iterator[Issue]:
    """Two identities that share a key (the same public key, or only its Ed25519 or its
    X25519 half, or the same key id), or two nodes of the topology that run the same
    identity.

    **Why it matters.** Keys are what nodes trust, not names. One key under two names
    keeps running under the second name after `nngsec revoke` of the first: its frames
    are still accepted, and every rotated epoch is still sealed to it. Nodes refuse to load
    such a policy; this rule shows every pair at once. Two nodes running one identity
    hold the same secrets, so neither can be revoked without the other, and on a bus
    channel each drops the other's frames as its own, reflected back.

    **Example.**

    ```yaml
    identities:
      alice: nngsec-id-v1:4-MzAzl7_f67o0...
      alice-spare: nngsec-id-v1:4-MzAzl7_f67o0...   # duplicate-identity: alice's key
    ```

    **Fix.** Give every identity its own key (`nngsec keygen NAME`, and paste the line it
    prints), and every node its own identity; revoke an identity whose key was copied.
    """
    for name, shared_with, what in duplicate_keys(ctx.policy.identities):
        yield Issue(
            ctx.at_policy(("identities", name)),
            f"identity {name!r} has {what} as {shared_with!r}, so the two are one identity",
            "give every identity its own key: nngsec keygen NAME",
        )
    runs: dict[str, tuple[Topology, str]] = {}
    for topology in ctx.topologies:
        for node in topology.model.nodes:
            identity = topology.identity_of(node)
            if identity is None or identity not in ctx.policy.identities:
                continue  # no identity, or unknown-identity reports it
            first = runs.setdefault(identity, (topology, node))
            if first[1] == node:
                continue
            loc, implied = topology.identity_loc(node)
            line, _ = first[0].document.place(first[0].identity_loc(first[1])[0])
            yield Issue(
                ctx.at(topology, loc, key=implied),
                f"nodes {first[1]!r} ({first[0].display}:{line}) and {node!r} both run "
                f"identity {identity!r}",
                "give each node its own identity (nngsec keygen NAME, then add it to the "
                "roles of the policy)",
                subjects=(node_key(first[0], first[1]), node_key(topology, node)),
            )


@rule("revoked-in-use", "error", scope="policy")
def revoked_in_use(ctx: Context) -> Iterator[Issue]:
    """A revoked identity that is still listed in a channel role (directly or through a
    group), or still run by a node of the topology.

    **Why it matters.** Revocation is only as good as its clean-up. Nodes refuse frames from
    a revoked sender, but a role that still lists it shows a policy nobody finished editing,
    and a node still running it will be refused by its peers: the deployment is broken
    where it was meant to be contained.

    **Example.**

    ```yaml
    groups:
      sensors: [sensor-1, sensor-9]
    channels:
      telemetry: {pattern: pubsub, publishers: [sensors], subscribers: [dashboard]}
    revoked: [sensor-9]                  # revoked-in-use at publishers: [sensors]
    ```

    **Fix.** Remove the identity from the role or group, and give the node a new identity
    (`nngsec keygen`). Keep it under `revoked:` and `identities:` so its key stays known as
    refused.
    """
    policy = ctx.policy
    if policy.revoked:
        for channel, spec in policy.channels.items():
            for field in spec.pattern_spec.role_fields:
                for index, name in enumerate(spec.role_members(field)):
                    hit = {n for n in policy.expand([name]) if policy.is_revoked(n)}
                    if not hit:
                        continue
                    through = "" if hit == {name} else f" (through group {name!r})"
                    yield Issue(
                        ctx.at_policy(("channels", channel, field, index)),
                        f"{field} of channel {channel!r} still lists revoked "
                        f"{_names(hit)}{through}",
                        f"remove {_names(hit)} from "
                        + (f"group {name!r}" if through else f"{field}")
                        + "; revoked identities keep no role",
                    )
    for topology in ctx.topologies:
        for node in topology.model.nodes:
            identity = topology.identity_of(node)
            if identity is None or not policy.is_revoked(identity):
                continue
            loc, implied = topology.identity_loc(node)
            yield Issue(
                ctx.at(topology, loc, key=implied),
                f"node {node!r} runs revoked identity {identity!r}; its peers refuse it",
                "give the node a new identity (nngsec keygen) and add it to the policy",
                subjects=(node_key(topology, node),),
            )


@rule("plaintext-channel", "warning", scope="policy")
def plaintext_channel(ctx: Context) -> Iterator[Issue]:
    """A channel with `scheme: plaintext`: no secrecy, no authenticity, no replay protection.

    **Why it matters.** Anyone on the network path, or any relay, can read, forge, alter
    and replay its messages; the channel name only labels them.

    **Example.**

    ```yaml
    channels:
      debug: {pattern: pubsub, publishers: [sensor-1], subscribers: [dashboard],
              scheme: plaintext}      # plaintext-channel
    ```

    **Fix.** Remove `scheme:` (the default picks the pattern's secure scheme), or use
    `scheme: signed` when payloads must stay readable but must not be forged.
    """
    for channel, spec in ctx.policy.channels.items():
        if spec.resolved_scheme == "plaintext":
            yield Issue(
                ctx.at_policy(("channels", channel, "scheme")),
                f"channel {channel!r} is plaintext: anyone on the path can read, forge and "
                "replay its messages",
                "remove scheme: to use the pattern's default, or use scheme: signed",
            )


@rule("forgeable-group", "warning", scope="policy")
def forgeable_group(ctx: Context) -> Iterator[Issue]:
    """A bus channel with `origin: group` and more than two members: any member can pose as
    any other.

    **Why it matters.** With `origin: group` frames are authenticated only by the shared
    group key, not signed by their sender. With two members the sender is implied; with
    three or more, any member (or whoever steals one member's keys) can send messages
    that every other member accepts as coming from a third.

    **Example.**

    ```yaml
    channels:
      cells:
        pattern: bus
        members: [cell-1, cell-2, cell-3]
        origin: group                     # forgeable-group
    ```

    **Fix.** Remove `origin:` (the default, `signed`, signs each frame by its sender), or
    split the bus so that each group key is shared by two members only.
    """
    policy = ctx.policy
    for channel, spec in policy.channels.items():
        if spec.origin_mode != "group" or policy.channel_key_kind(channel) != "group":
            continue
        members = policy.active(policy.receivers(channel))
        if len(members) > 2:
            yield Issue(
                ctx.at_policy(("channels", channel, "origin")),
                f"channel {channel!r} has origin: group with {len(members)} members: each of "
                f"{_names(members, 4)} can send frames the others accept as from another",
                "remove origin: (default signed) so every frame names its true sender",
            )


@rule("forgeable-service", "warning", scope="policy")
def forgeable_service(ctx: Context) -> Iterator[Issue]:
    """A reqrep channel with several servers: they share one service key, so any server can
    pose as any client towards the others, and as any other server towards the clients.

    **Why it matters.** A request is authenticated by the key between its client and the
    *service*. With one server that key is the server's own; with several it is a shared
    service key that every server holds, so each of them (or whoever steals one server's
    keys) can read every client's requests, forge requests as any client to the other
    servers, and forge replies as another server. Origin authenticity then holds only
    between clients and "the service" as a whole.

    **Example.**

    ```yaml
    channels:
      control:
        pattern: reqrep
        clients: [dashboard]
        servers: [controller-a, controller-b]   # forgeable-service
    ```

    **Fix.** Accept it if the servers are one trust domain (replicas of one service). If not,
    give each server its own channel, or use `scheme: signed` where a clear payload is fine.
    """
    policy = ctx.policy
    for channel, spec in policy.channels.items():
        if policy.channel_key_kind(channel) != "service":
            continue
        servers = policy.active(policy.receivers(channel))
        if len(servers) > 1:
            yield Issue(
                ctx.at_policy(("channels", channel, spec.pattern_spec.receiver.field)),
                f"channel {channel!r} has {len(servers)} servers sharing one service key: each "
                f"of {_names(servers, 4)} can read every request and forge requests as any "
                "client and replies as any other server",
                "fine for replicas of one service; otherwise one channel per server",
            )


@rule("wide-secret", "warning", scope="policy")
def wide_secret(ctx: Context) -> Iterator[Issue]:
    """A channel secret (group, audience or service key) held by more identities than a
    threshold (16 by default, `--wide-secret-threshold N`).

    **Why it matters.** Every holder can read every message of the channel, and the
    secret is only as safe as the least protected of them. A wide secret also means that
    losing any one holder forces a rotation for all.

    **Example.** A telemetry channel whose `subscribers: [all-stations]` expands to 40
    identities: all 40 read everything.

    **Fix.** Split the channel by audience (e.g. per site), narrow the receiving role, or
    raise the threshold when the width is intended.
    """
    policy = ctx.policy
    limit = ctx.wide_secret_threshold
    for channel in policy.channels:
        kind = policy.channel_key_kind(channel)
        holders = policy.active(policy.key_holders(channel))
        if kind is not None and len(holders) > limit:
            yield Issue(
                ctx.at_policy(("channels", channel), key=True),
                f"the {kind} key of channel {channel!r} is held by {len(holders)} identities, "
                f"more than {limit}; each of them can read every message",
                "split the channel or narrow its receivers; raise --wide-secret-threshold "
                "if this is intended",
            )


@rule("large-mac-audience", "warning", scope="policy")
def large_mac_audience(ctx: Context) -> Iterator[Issue]:
    """An `origin: mac` channel with more receivers than a threshold (16 by default,
    `--mac-audience-threshold N`).

    **Why it matters.** With `origin: mac` every frame carries one 16-byte MAC per
    receiving identity, and the sender computes each of them: frames grow and sending
    slows with the audience, while signing (`origin: signed`, the default) costs the same
    for any number of receivers. MACs suit small, fixed audiences; they also give up what
    a signature proves to a third party.

    **Example.** A telemetry channel with `origin: mac` whose `subscribers: [all-stations]`
    expands to 40 identities: 640 bytes of MACs on every message.

    **Fix.** Remove `origin:` (signed), split the channel by audience, or raise the
    threshold when the width is intended.
    """
    policy = ctx.policy
    limit = ctx.mac_audience_threshold
    for channel, spec in policy.channels.items():
        if spec.origin_mode != "mac" or spec.resolved_scheme != spec.pattern_spec.default_scheme:
            continue
        receivers = policy.active(policy.receivers(channel))
        if len(receivers) > limit:
            yield Issue(
                ctx.at_policy(("channels", channel, "origin")),
                f"channel {channel!r} has origin: mac with {len(receivers)} receivers, more "
                f"than {limit}: every frame carries {16 * len(receivers)} bytes of MACs and "
                "costs its sender one MAC per receiver",
                "remove origin: (signed costs the same for any audience) or split the "
                "channel; raise --mac-audience-threshold if this is intended",
            )


@rule("no-receivers", "warning", scope="policy")
def no_receivers(ctx: Context) -> Iterator[Issue]:
    """A channel with senders but nobody to receive: none left in the policy (every
    receiver revoked), or no receiving socket in the topology.

    **Why it matters.** Messages sent on it go nowhere. Usually a socket was forgotten in
    the topology, or revocation removed the last receiver.

    **Example.**

    ```yaml
    nodes:
      sensor-1:
        sockets:
          - {channel: telemetry, role: publisher, listen: "tcp://*:5555"}
    # ... and no node opens a subscriber socket on telemetry: no-receivers
    ```

    **Fix.** Add the receiving sockets to the topology, or an active receiver to the
    policy; or remove the channel.
    """
    policy = ctx.policy
    for channel, spec in policy.channels.items():
        pattern = spec.pattern_spec
        senders = policy.active(policy.senders(channel))
        receivers = policy.active(policy.receivers(channel))
        # A member of a symmetric pattern does not receive its own frames: it needs another.
        needed = 2 if pattern.symmetric else 1
        if senders and len(receivers) < needed:
            field = pattern.receiver.field
            yield Issue(
                ctx.at_policy(("channels", channel, field)),
                f"channel {channel!r} has senders but {len(receivers)} active "
                f"{pattern.receiver.name if pattern.symmetric else field}"
                + (" (every other one is revoked)" if policy.receivers(channel) else ""),
                f"add an identity to {field}, or remove the channel",
            )
    if not ctx.topologies:
        return
    sending: dict[str, list[End]] = {}
    receiving: dict[str, int] = {}
    for end in ctx.graph.sockets():
        if not end.sound:
            continue
        if end.initiates:
            sending.setdefault(end.channel, []).append(end)
        elif end.receives:
            receiving[end.channel] = receiving.get(end.channel, 0) + 1
    for channel, ends in sending.items():
        kind = ends[0].pattern
        if kind is None:  # sound ends have a pattern
            continue
        if kind.symmetric:
            if len(ends) > 1:
                continue
            message = (
                f"channel {channel!r} has one {kind.initiator.name} socket in the topology "
                "and no other"
            )
        elif receiving.get(channel):
            continue
        else:
            message = (
                f"channel {channel!r} has {len(ends)} {kind.initiator.name} socket(s) "
                f"in the topology but no {kind.receiver.name} socket"
            )
        yield Issue(
            ctx.at(ends[0].topology, ends[0].loc),
            message,
            "add the receiving sockets to the topology, or remove the senders",
            subjects=tuple(e.key for e in ends),
        )


@rule("missing-channel-keys", "error", scope="policy")
def missing_channel_keys(ctx: Context) -> Iterator[Issue]:
    """A channel that needs channel keys has none, keys of the wrong kind, or an entitled
    identity without an entry in the current key epoch.

    **Why it matters.** Bus channels (group key), sealed channels (audience key) and reqrep
    channels with several servers (service key) cannot carry a single message without
    their per-epoch key, and a receiver missing from the current epoch cannot open
    anything sent under it. The error shows up only at run time, on the first message.

    **Example.** A subscriber added to `telemetry` after the last `nngsec rotate`:

    ```yaml
    telemetry: {pattern: pubsub, publishers: [sensor-1], subscribers: [dashboard, archiver]}
    # factory.keys.json, current epoch of telemetry: sealed to dashboard only
    ```

    **Fix.** Run `nngsec rotate POLICY CHANNEL` (or `nngsec rotate POLICY` for all), then
    sign and distribute the policy and its `.keys.json` file.
    """
    policy, keys = ctx.policy, ctx.keys
    keys_name = policy.keys_path.name if policy.keys_path else "the channel-key file"
    rotate = f"nngsec rotate {policy.document.path}"
    if keys is not None and keys.model.policy != policy.name:
        yield Issue(
            ctx.at_policy(("name",)),
            f"{keys_name} belongs to policy {keys.model.policy!r}, not {policy.name!r}",
            f"move it away and create this policy's keys: {rotate}",
        )
        return
    if keys is not None and keys.model.deployment != policy.model.deployment:
        has = policy.model.deployment
        yield Issue(
            ctx.at_policy(("deployment",) if has else ("name",), key=not has),
            f"{keys_name} belongs to deployment {keys.model.deployment}, and the policy has "
            + (f"deployment {has}" if has else "no deployment id")
            + ": nodes refuse it",
            f"restore the policy's deployment: line, or move the file away and run {rotate}",
        )
        return
    for channel in policy.channels:
        kind = policy.channel_key_kind(channel)
        if kind is None:
            continue
        where = ctx.at_policy(("channels", channel), key=True)
        spec = keys.model.channels.get(channel) if keys is not None else None
        if spec is None:
            missing = "there is no " + keys_name if keys is None else f"{keys_name} has none"
            yield Issue(
                where,
                f"channel {channel!r} needs {kind} keys, but {missing}",
                f"create them: {rotate} {channel}",
            )
            continue
        if spec.kind != kind:
            yield Issue(
                where,
                f"channel {channel!r} needs {kind} keys, but {keys_name} holds {spec.kind} "
                "keys for it (its pattern, scheme or servers changed)",
                f"{rotate} {channel}",
            )
            continue
        if keys is None:  # spec came from it
            continue
        lacking = policy.active(policy.key_holders(channel)) - keys.holders(channel)
        if lacking:
            epoch = spec.epochs[0].epoch
            yield Issue(
                where,
                f"{_names(lacking)} of channel {channel!r} "
                f"{'has' if len(lacking) == 1 else 'have'} no entry in its current key "
                f"epoch ({epoch}), so cannot read it",
                f"{rotate} {channel}",
            )


@rule("stale-key-holder", "error", scope="policy")
def stale_key_holder(ctx: Context) -> Iterator[Issue]:
    """An identity that still has an entry in the current key epoch of a channel although
    it is revoked or no longer one of the channel's receivers.

    **Why it matters.** Its keys still open every new message: the revocation (or the
    removal from the channel) was not followed by a key rotation, so it protects nothing
    yet.

    **Example.** `revoked: [archiver]` was added by hand, without `nngsec revoke`; the
    current epoch of `telemetry` is still sealed to `archiver`.

    **Fix.** `nngsec rotate POLICY CHANNEL` (`nngsec revoke POLICY IDENTITY` does both
    steps at once), then sign and distribute the new files.
    """
    policy, keys = ctx.policy, ctx.keys
    if keys is None or keys.model.policy != policy.name:
        return
    if keys.model.deployment != policy.model.deployment:
        return  # missing-channel-keys reports a file of another deployment
    rotate = f"nngsec rotate {policy.document.path}"
    for channel, spec in keys.model.channels.items():
        if channel not in policy.channels or policy.channel_key_kind(channel) != spec.kind:
            continue  # missing-channel-keys reports a kind that changed
        holders = keys.holders(channel)
        revoked = {n for n in holders if policy.is_revoked(n)}
        removed = holders - policy.key_holders(channel) - revoked
        epoch = spec.epochs[0].epoch
        where = ctx.at_policy(("channels", channel), key=True)
        if revoked:
            yield Issue(
                where,
                f"revoked {_names(revoked)} still {'has' if len(revoked) == 1 else 'have'} "
                f"an entry in the current key epoch ({epoch}) of channel {channel!r} and "
                "can read new messages",
                f"{rotate} {channel}",
            )
        if removed:
            yield Issue(
                where,
                f"{_names(removed)} {'is' if len(removed) == 1 else 'are'} no longer a "
                f"receiver of channel {channel!r} but still "
                f"{'has' if len(removed) == 1 else 'have'} an entry in its current key "
                f"epoch ({epoch})",
                f"{rotate} {channel}",
            )


@rule("no-deployment-id", "warning", scope="policy")
def no_deployment_id(ctx: Context) -> Iterator[Issue]:
    """The policy has no `deployment:` id.

    **Why it matters.** Every key a channel derives and every frame signature is bound to
    the deployment id, the policy name and the channel name. Without an id, two
    deployments that share a policy name (two plants both running `name: factory`) and
    an identity (one key in both, or a copied keystore) accept each other's frames on
    every channel whose keys come from identity keys (pair, single-server reqrep, survey
    responses) or that is only signed: a frame recorded in one plant is accepted in the
    other.

    **Example.**

    ```yaml
    nngsec: 1
    name: factory          # no-deployment-id: no deployment: line
    identities: ...
    ```

    **Fix.** `nngsec rotate POLICY` or `nngsec sign POLICY --key ADMIN.key` adds a random
    `deployment:` line to a policy that has none (keeping the rest of the file as
    written); distribute the policy, its channel-key file and its signature to every node.
    Copy a policy to start another deployment only with a new id (delete the line, then
    rotate).
    """
    if ctx.policy.model.deployment is None:
        yield Issue(
            ctx.at_policy(("name",), key=True),
            f"policy {ctx.policy.name!r} has no deployment: id, so another deployment with "
            "the same policy name and a shared identity accepts its frames",
            f"nngsec rotate {ctx.policy.document.path} adds one",
        )


def _pinned(ctx: Context) -> dict[str, PublicIdentity] | None:
    """The signers the ``--keystore`` pins (none without one), or ``None`` when it cannot
    be trusted: ``keystore-permissions`` reports that, and its nodes refuse to start."""
    if ctx.keystore is None:
        return {}
    try:
        return ctx.keystore.trusted_signers()
    except KeystoreError:
        return None


@rule("unsigned-policy", "warning", scope="policy")
def unsigned_policy(ctx: Context) -> Iterator[Issue]:
    """The policy has no valid signature: no signature file (`POLICY.sig`, written by
    `nngsec sign`), or one that nothing here can verify.

    **Why it matters.** Without a signature, a node cannot tell the policy an admin wrote
    from one an attacker edited: whoever can write the file can add an identity to any
    role, or replace the channel keys. Nodes whose keystore pins a signer refuse an
    unsigned policy (then this is reported as `bad-signature`, an error).

    Offline, a signature is verified only against a signer's public key given with
    `--trust ADMIN.pub` or pinned in the `--keystore`. Without either (and without a
    `--keystore`), a signature file is reported here too: present, but not shown to be
    valid (it may no longer match).

    **Example.** `factory.yaml` without `factory.yaml.sig` beside it.

    **Fix.** `nngsec sign POLICY --key ADMIN.key`, and pin the admin's key on every node
    with `nngsec trust ADMIN.pub --keystore DIR`.
    """
    path = ctx.policy.path
    if path is None:
        return
    pinned = _pinned(ctx) or {}
    if signature_path(path).exists():
        if not pinned and not ctx.trusted and ctx.keystore is None:
            yield Issue(
                Place(ctx.policy.document.path, 1, 1),
                f"the policy has a signature ({signature_path(path).name}) that nothing here "
                "can verify, so it may not match the policy or its channel keys",
                "give the signer's key: nngsec check ... --trust ADMIN.pub (or --keystore)",
            )
        return  # with signers, bad-signature reports a signature that does not verify
    if pinned:
        return  # bad-signature reports it as an error: those nodes refuse the policy
    yield Issue(
        Place(ctx.policy.document.path, 1, 1),
        f"the policy is not signed (no {signature_path(path).name}): nodes cannot tell it "
        "from a tampered copy",
        f"nngsec sign {ctx.policy.document.path} --key ADMIN.key",
    )


@rule("bad-signature", "error", scope="policy")
def bad_signature(ctx: Context) -> Iterator[Issue]:
    """The policy signature is malformed or of format 1, does not match the policy and its
    channel keys, is by a signer that is not trusted, is missing while the `--keystore`
    pins signers, or is present while the `--keystore` pins none; or, with `--keystore`,
    the set is one that keystore's anti-rollback records refuse: an older version, a
    policy changed at a version verified before, an older key epoch, or other keys under
    an epoch number seen before.

    **Why it matters.** A node that pins a signer refuses such a policy at start-up, so the
    deployment does not run; and a signature that no longer matches usually means the
    files were changed after signing (often: `nngsec rotate` without signing again), or
    tampered with. A node whose keystore pins no signer refuses a policy with a signature
    beside it too: the deployment is signed, and the node was set up without
    `nngsec trust`. With `--keystore`, the files are put through the very verification
    its nodes run (nothing is recorded), so what they would refuse is reported here.

    Signers are the public keys given with `--trust ADMIN.pub` and those pinned in the
    `--keystore` (`trusted/*.pub`). With neither, only the signature's form is checked.

    **Example.** `nngsec rotate factory.yaml` after `nngsec sign`: the signature covers the
    old `factory.keys.json`.

    **Fix.** Review the changes, then `nngsec sign POLICY --key ADMIN.key` again (with
    `--bump` when the policy changed at its version); pin the admin's key in every node's
    keystore (`nngsec trust ADMIN.pub --keystore DIR`).
    """
    issues = list(_signature_issues(ctx))
    yield from issues
    if not issues and ctx.keystore is not None and _pinned(ctx) is not None:
        yield from _refused_by_keystore(ctx, ctx.keystore)


def _signature_issues(ctx: Context) -> Iterator[Issue]:
    path = ctx.policy.path
    if path is None:
        return
    sig = signature_path(path)
    found_pins = _pinned(ctx)
    pinned = found_pins or {}
    known = {**ctx.trusted, **pinned}
    shown = str(signature_path(Path(ctx.policy.document.path)))
    if not sig.exists():
        if pinned:
            yield Issue(
                Place(ctx.policy.document.path, 1, 1),
                f"the policy is not signed, and the keystore pins {_names(set(pinned))}: "
                "its nodes refuse this policy",
                f"nngsec sign {ctx.policy.document.path} --key ADMIN.key",
            )
        return
    try:
        found = read_signature(sig)
    except PolicyError as error:
        for problem in error.problems:
            yield Issue(Place(shown, problem.line, problem.column), problem.message, problem.hint)
        return
    number = found.line
    if ctx.keystore is not None and found_pins == {}:
        yield Issue(
            Place(shown, number, 1),
            f"the policy is signed, but the keystore {ctx.keystore.directory} pins no signer: "
            "its nodes refuse this policy, which they cannot verify",
            f"nngsec trust ADMIN.pub --keystore {ctx.keystore.directory}",
        )
    if not known:
        return  # well-formed; nothing to verify it against (documented above)
    keys_bytes = ctx.keys.raw if ctx.keys is not None else None
    try:
        verify_signature(
            sig,
            version=ctx.policy.version,
            policy_bytes=ctx.policy.source,
            keys_bytes=keys_bytes,
            trusted=known,
        )
    except PolicyError as error:
        for problem in error.problems:
            yield Issue(
                Place(shown, problem.line or number, problem.column or 1),
                problem.message,
                problem.hint,
            )


def _refused_by_keystore(ctx: Context, keystore: Keystore) -> Iterator[Issue]:
    """What the keystore's nodes would refuse in these files, from the one verification
    they run (``accept_policy``), asked not to record anything."""
    policy, keys, path = ctx.policy, ctx.keys, ctx.policy.path
    if path is None:
        return
    if keys is not None and (
        keys.model.policy != policy.name or keys.model.deployment != policy.model.deployment
    ):
        return  # missing-channel-keys reports a channel-key file of another policy
    try:
        accept_policy(candidate_from_files(path, policy), keystore, record=False, expiry=False)
    except (PolicyError, KeystoreError) as error:
        for problem in error.problems:
            at_policy = problem.path == str(path) and problem.line is None and problem.field
            where = (
                ctx.at_policy((problem.field,), key=True)
                if at_policy and problem.field in policy.document.data
                else Place(problem.path or str(path), problem.line, problem.column)
            )
            yield Issue(where, problem.message, problem.hint)
