"""Rules about the topology: sockets, roles, addresses, links and relays."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from ..._patterns import PATTERNS
from .._findings import Issue
from .._links import End
from ._base import Context, rule

# A bus larger than this is not checked for a full mesh (the check is quadratic).
MESH_LIMIT = 2000


@rule("unknown-channel", "error", scope="topology")
def unknown_channel(ctx: Context) -> Iterator[Issue]:
    """A socket or relay on a channel that the policy does not define.

    **Why it matters.** A node refuses to attach a socket to an unknown channel, and a
    relay for it forwards traffic nobody can secure: the deployment fails where it starts.

    **Example.**

    ```yaml
    sockets:
      - {channel: telemtry, role: publisher, dial: "tcp://hub:5555"}   # unknown-channel
    ```

    **Fix.** Correct the channel name, or add the channel to the policy.
    """
    channels = list(ctx.policy.channels)
    for end in ctx.graph.ends:
        if end.channel in ctx.policy.channels or end.kind == "back":
            continue  # a relay is reported once, at its front
        close = difflib.get_close_matches(end.channel, channels, n=1)
        what = "socket" if end.kind == "socket" else "relay"
        yield Issue(
            ctx.at(end.topology, (*end.relay_loc, "channel")),
            f"{what} of node {end.node!r} is on channel {end.channel!r}, which the policy "
            "does not define",
            f"did you mean {close[0]!r}?"
            if close
            else f"channels are: {', '.join(channels) or 'none'}",
            subjects=(end.relay_key,),
        )


@rule("role-pattern-mismatch", "error", scope="topology")
def role_pattern_mismatch(ctx: Context) -> Iterator[Issue]:
    """A socket role that the channel's pattern does not have, such as `publisher` on a
    reqrep channel.

    **Why it matters.** The socket type follows from the role (a publisher opens a Pub0
    socket), and a Pub0 socket cannot talk to Req0/Rep0 peers: nothing would be
    delivered, and `attach` refuses the socket.

    **Example.**

    ```yaml
    # control is a reqrep channel (roles: client, server)
    sockets:
      - {channel: control, role: publisher, dial: "tcp://hub:6000"}   # role-pattern-mismatch
    ```

    **Fix.** Use one of the pattern's roles: `publisher`/`subscriber` (pubsub),
    `pusher`/`puller` (pipeline), `client`/`server` (reqrep), `surveyor`/`respondent`
    (survey), `member` (pair, bus).
    """
    for end in ctx.graph.sockets():
        if end.sound or end.pattern is None:
            continue
        roles = [role.name for role in end.pattern.roles]
        yield Issue(
            ctx.at(end.topology, (*end.loc, "role")),
            f"role {end.role!r} on channel {end.channel!r}, a {end.pattern.name} channel, "
            f"expected {' or '.join(roles)}",
            f"use role: {' or role: '.join(roles)}",
            subjects=(end.key,),
        )


@rule("relay-pattern-mismatch", "error", scope="topology")
def relay_pattern_mismatch(ctx: Context) -> Iterator[Issue]:
    """A relay whose `pattern` is not the pattern of the channel it relays.

    **Why it matters.** A relay opens raw sockets of its pattern; a pipeline relay in
    front of pubsub peers connects to nothing that speaks its protocol.

    **Example.**

    ```yaml
    relays:
      - {pattern: pipeline, channel: telemetry,              # telemetry is pubsub
         front: {listen: "tcp://*:5555"}, back: {listen: "tcp://*:5556"}}
    ```

    **Fix.** Set the relay's `pattern` to the channel's (`nngsec relay PATTERN` must be
    started with the same).
    """
    for end in ctx.graph.ends:
        if end.kind != "front" or end.sound:
            continue
        pattern = ctx.policy.pattern(end.channel)
        if pattern is None or end.pattern is None:
            continue  # unknown-channel
        yield Issue(
            ctx.at(end.topology, (*end.relay_loc, "pattern")),
            f"relay is a {end.pattern.name} relay, but channel {end.channel!r} is {pattern.name}",
            f"use pattern: {pattern.name}",
            subjects=(end.relay_key,),
        )


@rule("role-not-authorized", "error", scope="topology")
def role_not_authorized(ctx: Context) -> Iterator[Issue]:
    """A socket whose role on its channel is not granted to the node's identity.

    **Why it matters.** Peers reject every frame it sends (`unauthorized`), and a receiving
    socket gets no key to read with: the link looks wired but carries nothing. It also
    shows where the topology and the policy disagree about who does what.

    **Example.**

    ```yaml
    # policy: telemetry publishers: [sensors]; the topology's dashboard node:
    sockets:
      - {channel: telemetry, role: publisher, dial: "tcp://hub:5555"}   # role-not-authorized
    ```

    **Fix.** Add the identity (or a group holding it) to the role in the policy, or give
    the socket the role the identity has, or run it on a node with the right identity.
    """
    policy = ctx.policy
    for end in ctx.graph.sockets():
        identity = end.identity
        role, pattern = end.role_spec, end.pattern
        if not end.sound or identity is None or identity not in policy.identities:
            continue
        if role is None or pattern is None:  # sound sockets have both
            continue
        field = role.field
        if identity in policy.members(end.channel, field):
            continue
        held = [r.name for r in pattern.roles if identity in policy.members(end.channel, r.field)]
        yield Issue(
            ctx.at(end.topology, (*end.loc, "role")),
            f"node {end.node!r} opens a {end.role} socket on {end.channel!r}, but identity "
            f"{identity!r} is not in its {field}"
            + (f" (it is a {' and '.join(held)})" if held else ""),
            f"did you mean role: {held[0]}?"
            if held
            else f"add {identity} to {field} of channel {end.channel!r} in the policy",
            subjects=(end.key,),
        )


@rule("unpaired-endpoint", "error", scope="topology")
def unpaired_endpoint(ctx: Context) -> Iterator[Issue]:
    """A dial that no listen in the topology answers (error), or a listen that nobody
    dials (warning).

    **Why it matters.** NNG dials retry silently forever: a mistyped host or port shows
    up as a node that simply never receives anything. Addresses match as NNG would
    connect them: `tcp://*:P` and `tcp://0.0.0.0:P` on a node are reached by a dial to
    `tcp://<the node's host>:P` (the host defaults to the node's name), loopback only from
    the same host, `ipc://` paths from the same host, `inproc://` names within one node,
    and the transports must agree (`tls+tcp` does not reach `tcp`).

    **Example.**

    ```yaml
    hub:
      relays: [{pattern: pubsub, channel: telemetry,
                front: {listen: "tcp://*:5555"}, back: {listen: "tcp://*:5556"}}]
    sensor-1:
      sockets:
        - {channel: telemetry, role: publisher, dial: "tcp://hub:5565"}   # unpaired-endpoint
    ```

    **Fix.** Correct the address (the hint names the nearest listen), or add the missing
    listen. A listen used only by peers outside the topology can stay: it is a warning.
    """
    for port, hint in ctx.graph.unpaired:
        yield Issue(
            ctx.at(port.end.topology, port.loc),
            f"{port.end.describe()} dials {port.address.url}, but nothing in the topology "
            "listens there",
            hint,
            subjects=(port.end.key,),
        )
    for port in ctx.graph.unused:
        yield Issue(
            ctx.at(port.end.topology, port.loc),
            f"{port.end.describe()} listens on {port.address.url}, but nothing in the "
            "topology dials it",
            "dial it from the peers, or remove the listen if only peers outside the "
            "topology use it",
            severity="warning",
            subjects=(port.end.key,),
        )


@rule("duplicate-listen", "error", scope="topology")
def duplicate_listen(ctx: Context) -> Iterator[Issue]:
    """Two listens on the same address: the same port on one host (or one `ipc` path, one
    `inproc` name).

    **Why it matters.** Only the first process can bind the address; the second fails at
    start-up, or (with an `ipc` file) takes it over from the first.

    **Example.** Two nodes with `host: edge-a` both listening on `tcp://*:5555`.

    **Fix.** Give each listen its own port or path.
    """
    for ports in ctx.graph.duplicates:
        first = ports[0]
        where = ctx.at(first.end.topology, first.loc)
        for port in ports[1:]:
            yield Issue(
                ctx.at(port.end.topology, port.loc),
                f"{port.end.describe()} listens on {port.address.url} on host "
                f"{port.end.host}, already taken by {first.end.describe()} "
                f"({where.file}:{where.line})",
                "give each listen its own port (or ipc path)",
                subjects=(port.end.key, first.end.key),
            )


@rule("incompatible-peers", "error", scope="topology")
def incompatible_peers(ctx: Context) -> Iterator[Issue]:
    """The two ends of a link are not complementary roles of one channel, directly or
    through relays.

    **Why it matters.** NNG connects the sockets, but the protocols do not match (two
    subscribers, a subscriber on the front of a relay) or the channels differ, so every
    frame is dropped or rejected as `wrong-channel`. Relays are checked as the sockets they
    replace: a relay's `front` faces the initiating side (publishers, pushers, clients,
    surveyors) and acts as their peer; its `back` faces the receivers. A chain of relays
    links one relay's back to the next relay's front.

    **Example.**

    ```yaml
    hub:
      relays: [{pattern: pubsub, channel: telemetry,
                front: {listen: "tcp://*:5555"}, back: {listen: "tcp://*:5556"}}]
    dashboard:
      sockets:
        - {channel: telemetry, role: subscriber, dial: "tcp://hub:5555"}  # front: wrong side
    ```

    **Fix.** Dial the other side of the relay, or the socket of the right channel and role.
    """
    for link in ctx.graph.links:
        if link.mismatch is None:
            continue
        yield Issue(
            ctx.at(link.dialer.end.topology, link.dialer.loc),
            link.mismatch,
            "link complementary roles of one channel: publisher-subscriber, pusher-puller, "
            "client-server, surveyor-respondent, member-member",
            subjects=(link.dialer.end.key, link.listener.end.key),
        )


def _topic_ok(topic: str, allowed: tuple[str, ...], *, subscriber: bool) -> bool:
    if subscriber:  # a subscription must be able to match some allowed topic
        return any(topic.startswith(a) or a.startswith(topic) for a in allowed)
    return any(topic.startswith(a) for a in allowed)


@rule("topic-not-allowed", "error", scope="topology")
def topic_not_allowed(ctx: Context) -> Iterator[Issue]:
    """A socket topic outside the channel's allowed `topics`, or topics on a channel that
    is not pubsub.

    **Why it matters.** Receivers reject frames whose topic does not start with an allowed
    prefix, so a publisher with another topic is silently unheard; a subscription that
    no allowed topic can match receives nothing.

    **Example.**

    ```yaml
    # policy: telemetry topics: ["temp.", "hum."]
    sockets:
      - {channel: telemetry, role: publisher, dial: "tcp://hub:5555",
         topics: ["pres.line1"]}                       # topic-not-allowed
    ```

    **Fix.** Use a topic under one of the allowed prefixes, or add the prefix to the
    channel's `topics:` in the policy.
    """
    for end in ctx.graph.sockets():
        spec = ctx.policy.channels.get(end.channel)
        socket = end.topology.model.nodes[end.node].sockets[end.index]
        if spec is None or socket.topics is None:
            continue
        if not spec.pattern_spec.has_topic:
            with_topics = ", ".join(p.name for p in PATTERNS.values() if p.has_topic)
            yield Issue(
                ctx.at(end.topology, (*end.loc, "topics"), key=True),
                f"topics on channel {end.channel!r}, a {spec.pattern_name} channel; only "
                f"{with_topics} channels have topics",
                "remove topics:",
                subjects=(end.key,),
            )
            continue
        allowed = spec.topic_prefixes
        if allowed is None:
            continue
        subscriber = end.receives
        shown = ", ".join(repr(a) for a in allowed)
        for index, topic in enumerate(socket.topics):
            if _topic_ok(topic, allowed, subscriber=subscriber):
                continue
            what = "subscription" if subscriber else "topic"
            effect = "can never match" if subscriber else "is outside"
            yield Issue(
                ctx.at(end.topology, (*end.loc, "topics", index)),
                f"{end.role} {what} {topic!r} {effect} the allowed topics of channel "
                f"{end.channel!r} ({shown})",
                f"use a {what} starting with one of {shown}, or add its prefix to the "
                "channel's topics: in the policy",
                subjects=(end.key,),
            )


@rule("relay-holds-keys", "warning", scope="topology")
def relay_holds_keys(ctx: Context) -> Iterator[Issue]:
    """A node that runs a relay also runs an identity that can read the relayed channel.

    **Why it matters.** Relays are key-less by design: a compromised relay host should see
    only ciphertext. When the same node holds a reader's keys, compromising the relay
    host exposes the channel's plaintext after all.

    **Example.**

    ```yaml
    hub:
      identity: dashboard          # a telemetry subscriber
      relays: [{pattern: pubsub, channel: telemetry,
                front: {listen: "tcp://*:5555"}, back: {listen: "tcp://*:5556"}}]
    ```

    **Fix.** Run the relay in a node without an identity (a node with only `relays:`
    needs none), on a host that holds no readers' keys.
    """
    for end in ctx.graph.ends:
        if end.kind != "front":
            continue
        topology = end.topology
        identity = topology.identity_of(end.node)
        spec = ctx.policy.channels.get(end.channel)
        if identity is None or spec is None or spec.resolved_scheme in ("signed", "plaintext"):
            continue
        if end.channel in ctx.policy.readable_by(identity):
            yield Issue(
                ctx.at(topology, end.relay_loc),
                f"node {end.node!r} relays channel {end.channel!r} and runs identity "
                f"{identity!r}, which can read it: the relay's host holds the keys",
                "run the relay in a node without an identity, on a host without readers' keys",
                subjects=(end.relay_key,),
            )


@rule("isolated-socket", "warning", scope="topology")
def isolated_socket(ctx: Context) -> Iterator[Issue]:
    """A socket whose links, followed through relays, reach no socket of the
    complementary role.

    **Why it matters.** The socket connects (to a relay), so nothing looks wrong at run
    time, but no peer is behind the relays: a subscriber behind a relay that no publisher
    feeds receives nothing. Sockets with no link at all are `unpaired-endpoint`; channels
    with no receiving socket at all are `no-receivers`.

    **Example.** A subscriber dials the back of a relay whose front nobody dials.

    **Fix.** Connect the missing peers to the relay chain, or correct the relay's addresses.
    """
    graph = ctx.graph
    receivers: dict[str, int] = {}
    members: dict[str, int] = {}
    for end in graph.sockets():
        if end.sound:
            if end.symmetric:
                members[end.channel] = members.get(end.channel, 0) + 1
            elif end.receives:
                receivers[end.channel] = receivers.get(end.channel, 0) + 1
    for end in graph.sockets():
        complement = end.complement()
        if not end.sound or complement is None:
            continue
        if end.symmetric:
            if members.get(end.channel, 0) < 2:
                continue  # no-receivers
        elif end.initiates and not receivers.get(end.channel):
            continue  # no-receivers
        usable = [link for link in end.links if link.mismatch is None]
        if not usable or graph.served(end):
            continue
        want = complement.name
        yield Issue(
            ctx.at(end.topology, end.loc),
            f"{end.describe()} reaches no {want}: its links lead only to relays with no "
            f"{want} behind them",
            f"connect a {want} to the relay chain, or correct the relay addresses",
            subjects=(end.key,),
        )


@rule("bus-not-meshed", "warning", scope="topology")
def bus_not_meshed(ctx: Context) -> Iterator[Issue]:
    """Members of a bus channel that do not reach each other.

    **Why it matters.** An NNG bus socket delivers each message to its directly connected
    peers only; it does not forward. Three members dialing one listener form a star, not
    a bus: the two outer members never hear each other. (A bus relay forwards between its
    front and its back.)

    **Example.**

    ```yaml
    cell-1: {sockets: [{channel: cells, role: member, listen: "tcp://*:7000"}]}
    cell-2: {sockets: [{channel: cells, role: member, dial: "tcp://cell-1:7000"}]}
    cell-3: {sockets: [{channel: cells, role: member, dial: "tcp://cell-1:7000"}]}
    # bus-not-meshed: cell-2 and cell-3 do not reach each other
    ```

    **Fix.** Connect every pair of members (each member listens, and dials every member
    listed before it), or put a bus relay between them.
    """
    graph = ctx.graph
    by_channel: dict[str, list[End]] = {}
    for end in graph.sockets():
        if end.sound and end.pattern is not None and end.pattern.name == "bus":
            by_channel.setdefault(end.channel, []).append(end)
    cache: dict[tuple[str, str], frozenset[str]] = {}
    for ends in by_channel.values():
        if not 2 < len(ends) <= MESH_LIMIT:
            continue  # two members: unpaired-endpoint or isolated-socket say it
        reach = {end.key: graph.bus_reach(end, cache) for end in ends}
        for position, end in enumerate(ends):
            if not reach[end.key]:
                continue  # reaches nobody: unpaired-endpoint or isolated-socket say it
            # Each missing pair is reported once, at the member listed first.
            missing = [
                other.node
                for other in ends[position + 1 :]
                if reach[other.key] and other.key not in reach[end.key]
            ]
            if missing:
                more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                yield Issue(
                    ctx.at(end.topology, end.loc),
                    f"{end.describe()} does not reach the member socket(s) of "
                    f"{', '.join(missing[:5])}{more}: a bus delivers to directly connected "
                    "peers only",
                    f"connect {end.node} with {missing[0]} (or add a bus relay)",
                    subjects=(end.key,),
                )


@rule("replay-across-receivers", "warning", scope="topology")
def replay_across_receivers(ctx: Context) -> Iterator[Issue]:
    """Two or more receiving sockets on a load-balanced channel: pullers of a pipeline,
    servers of a reqrep channel.

    **Why it matters.** Each receiving socket keeps its own replay windows, and each job
    or request reaches only one of them. A frame recorded on its way to one receiver can
    be replayed to another one within the channel's `max_age`, and is accepted there once:
    a job runs twice, a request is executed twice (by another server). Replays to the same
    receiver, also across its restarts, are refused.

    **Example.**

    ```yaml
    worker-1: {sockets: [{channel: jobs, role: puller, dial: "tcp://hub:5561"}]}
    worker-2: {sockets: [{channel: jobs, role: puller, dial: "tcp://hub:5561"}]}
    # replay-across-receivers: a job meant for worker-1 can be run by worker-2 as well
    ```

    **Fix.** Make the jobs or requests idempotent (for example, an id in the payload that
    the application records before acting), shorten the channel's `max_age` to what the
    deployment needs (it bounds how long a recorded frame can be replayed), or run one
    receiver.
    """
    receiving: dict[str, list[End]] = {}
    for end in ctx.graph.sockets():
        if end.sound and end.receives and end.pattern is not None and end.pattern.load_balanced:
            receiving.setdefault(end.channel, []).append(end)
    for channel, ends in receiving.items():
        if len(ends) < 2:
            continue
        spec = ctx.policy.channels[channel]
        role = spec.pattern_spec.receiver
        nodes = list(dict.fromkeys(end.node for end in ends))
        shown = ", ".join(nodes[:5]) + (f" and {len(nodes) - 5} more" if len(nodes) > 5 else "")
        what = "job" if spec.pattern_spec.name == "pipeline" else "request"
        yield Issue(
            ctx.at(ends[1].topology, ends[1].loc),
            f"channel {channel!r} has {len(ends)} {role.field} ({shown}), each with its own "
            f"replay windows: a {what} recorded on its way to one can be replayed to another "
            f"within max_age ({spec.max_age:g}s) and is accepted there once",
            f"make each {what} idempotent, shorten max_age, or run one {role.name}",
        )  # no subjects: the graph flags broken links, and these links are as designed
