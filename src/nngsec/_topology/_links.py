"""The link graph of a deployment: which dial reaches which listen, followed through relays.

Every socket and every relay side is an :class:`End`. A relay side *acts* as the socket it
replaces: the front of a pubsub relay receives from publishers, so it acts as a subscriber;
its back acts as a publisher. With that, one rule covers direct links and relayed ones:
the two ends of every link must be complementary roles of one channel.

Whether a socket reaches a real peer is decided per relay, not per pair of sockets, so the
cost stays linear in the size of the topology: a relay is *fed* when a real initiator
(publisher, pusher, client, surveyor) reaches its front, directly or through relays
upstream, and *drained* when a real receiver reaches its back, directly or downstream.
A subscriber behind two relays is paired with its publisher because both relays are fed.
Bus and pair relays forward both ways, so for them the relays linked together form one
undirected cluster.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from .._formats._yaml import Loc, format_loc
from .._patterns import PatternSpec, RoleSpec, pattern_of
from ._addresses import Address, Key, dial_keys, listen_key, parse_address
from ._load import Topology

__all__ = ["End", "Graph", "Link", "Port", "build_graph", "node_key"]


def node_key(topology: Topology, node: str) -> str:
    """The subject key of a node (ends' keys start with it)."""
    return f"{topology.display}#nodes.{node}"


EndKind = Literal["socket", "front", "back"]


@dataclass(eq=False, slots=True)
class End:
    """A socket, or one side of a relay, with the role it plays on its channel.

    ``sound`` is true when the policy agrees with it (known channel; the socket's role is
    one of the channel's pattern, or the relay's pattern is the channel's): only sound ends
    are compared with each other, the rest is reported by their own rules.
    """

    key: str
    topology: Topology
    node: str
    host: str
    kind: EndKind
    index: int
    channel: str
    pattern: PatternSpec | None  # of the channel (sockets) or of the relay (relay sides)
    role: str  # as written for a socket (``publisher``); the part a relay side plays
    identity: str | None
    loc: Loc
    sound: bool
    links: list[Link] = field(default_factory=list)

    @property
    def is_relay(self) -> bool:
        return self.kind != "socket"

    @property
    def relay_key(self) -> str:
        """The same string for both sides of one relay."""
        return self.key.rsplit(".", 1)[0] if self.is_relay else self.key

    @property
    def relay_loc(self) -> Loc:
        return self.loc[:-1] if self.is_relay else self.loc

    def describe(self) -> str:
        if self.kind == "socket":
            return f"{self.node}'s {self.role} socket on {self.channel}"
        return f"the {self.kind} of relay {self.node}.relays[{self.index}] ({self.channel})"

    @property
    def role_spec(self) -> RoleSpec | None:
        return self.pattern.role(self.role) if self.pattern is not None else None

    @property
    def symmetric(self) -> bool:
        return self.pattern is not None and self.pattern.symmetric

    @property
    def initiates(self) -> bool:
        """Whether this end plays the pattern's initiating role (publisher, client, ...)."""
        return self.pattern is not None and self.role == self.pattern.initiator.name

    @property
    def receives(self) -> bool:
        """Whether this end plays the pattern's receiving role (subscriber, server, ...)."""
        return self.pattern is not None and self.role == self.pattern.receiver.name

    def complement(self) -> RoleSpec | None:
        """The role at the other end of a link from this one."""
        role = self.role_spec
        return self.pattern.complement(role) if self.pattern and role else None

    def faces(self) -> str:
        """Who a relay side faces, e.g. ``publishers`` for the front of a pubsub relay."""
        other = self.complement()
        return other.field if other is not None else self.role


@dataclass(frozen=True, slots=True, eq=False)
class Port:
    """One address of an end, listened on or dialed."""

    end: End
    mode: Literal["listen", "dial"]
    address: Address
    loc: Loc


@dataclass(frozen=True, slots=True, eq=False)
class Link:
    """A dial that reaches a listen. ``mismatch`` says why the two ends cannot talk."""

    dialer: Port
    listener: Port
    mismatch: str | None

    def other(self, end: End) -> End:
        return self.listener.end if self.dialer.end is end else self.dialer.end


@dataclass(eq=False)
class Graph:
    ends: list[End] = field(default_factory=list)
    ports: list[Port] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    unpaired: list[tuple[Port, str]] = field(default_factory=list)  # dial, hint
    unused: list[Port] = field(default_factory=list)  # listens nobody dials
    duplicates: list[list[Port]] = field(default_factory=list)  # listens sharing one address
    relay_sides: dict[tuple[str, str], End] = field(default_factory=dict)  # (relay, side)
    _fed: set[str] = field(default_factory=set)
    _drained: set[str] = field(default_factory=set)
    _cluster_members: dict[str, set[str]] = field(default_factory=dict)
    _cluster_of: dict[str, str] = field(default_factory=dict)

    def sockets(self) -> Iterator[End]:
        return (end for end in self.ends if end.kind == "socket")

    def served(self, end: End) -> bool:
        """Whether a sound socket reaches at least one real peer, directly or via relays."""
        for link in end.links:
            if link.mismatch is not None:
                continue
            other = link.other(end)
            if not other.sound:
                continue
            if not other.is_relay:
                return True
            if end.symmetric:
                members = self._cluster_members.get(self._cluster_of[other.relay_key], set())
                if len(members) > 1 or (members and end.key not in members):
                    return True
            elif (other.kind == "front" and other.relay_key in self._drained) or (
                other.kind == "back" and other.relay_key in self._fed
            ):
                return True
        return False

    def bus_reach(self, end: End, cache: dict[tuple[str, str], frozenset[str]]) -> set[str]:
        """Keys of the member sockets a bus member's frames reach.

        NNG bus sockets deliver to directly connected peers only. A bus relay is a
        reflector (one raw Bus0 socket listening on both URLs): it passes a frame to every
        connection but the one it came from, so members on either side hear each other.
        """
        reached: set[str] = set()
        for link in end.links:
            other = link.other(end)
            if link.mismatch is not None or not other.sound:
                continue
            if other.is_relay:
                reached |= self._exit(other.relay_key, cache, set())
            else:
                reached.add(other.key)
        reached.discard(end.key)
        return reached

    def _exit(
        self,
        relay: str,
        cache: dict[tuple[str, str], frozenset[str]],
        visiting: set[str],
    ) -> frozenset[str]:
        """Member sockets a frame entering bus relay ``relay`` reaches (both of its sides)."""
        token = (relay, "both")
        if token in cache:
            return cache[token]
        if relay in visiting:
            # A loop of bus relays (a broadcast storm in practice): stop here. What is cached
            # inside the loop may then miss members, so at worst a warning too many.
            return frozenset()
        visiting.add(relay)
        reached: set[str] = set()
        for side in ("front", "back"):
            relay_side = self.relay_sides.get((relay, side))
            if relay_side is None:
                continue
            for link in relay_side.links:
                other = link.other(relay_side)
                if link.mismatch is not None or not other.sound:
                    continue
                if other.is_relay:
                    reached |= self._exit(other.relay_key, cache, visiting)
                else:
                    reached.add(other.key)
        visiting.discard(relay)
        cache[token] = frozenset(reached)
        return cache[token]


def _mismatch(a: End, b: End) -> str | None:
    """Why two sound ends linked together cannot talk, or None."""
    if a.channel != b.channel:
        return (
            f"{a.describe()} is linked to {b.describe()}: channel {a.channel!r} meets "
            f"channel {b.channel!r}"
        )
    complement = a.complement()
    if complement is not None and complement.name == b.role:
        return None
    relay, other = (a, b) if a.is_relay else (b, a)
    if relay.is_relay and not other.is_relay:
        right = "back" if relay.kind == "front" else "front"
        return (
            f"{other.describe()} is linked to {relay.describe()}, which faces "
            f"{relay.faces()}; {_plural(other)} connect to its {right}"
        )
    if relay.is_relay:
        return (
            f"{a.describe()} is linked to {b.describe()}: both face {a.faces()}; "
            "link a relay's back to the next relay's front"
        )
    return (
        f"{a.describe()} is linked to {b.describe()}: two {_plural(a)} cannot talk, "
        f"expected a {complement.name if complement else '?'} on the other end"
    )


def _plural(end: End) -> str:
    """``publishers`` for a publisher socket: the policy field of its role."""
    role = end.role_spec
    return role.field if role is not None else end.role + "s"


def build_graph(
    topologies: Iterable[Topology], channel_pattern: Callable[[str], PatternSpec | None]
) -> Graph:
    """Ends, ports and links of all topologies together (addresses match across files)."""
    graph = Graph()
    for topology in topologies:
        _add_ends(graph, topology, channel_pattern)
    _connect(graph)
    _follow_relays(graph)
    return graph


def _add_ends(
    graph: Graph, topology: Topology, channel_pattern: Callable[[str], PatternSpec | None]
) -> None:
    prefix = topology.display + "#"
    for node, spec in topology.model.nodes.items():
        host = topology.host_of(node)
        identity = topology.identity_of(node)
        for index, socket in enumerate(spec.sockets):
            loc: Loc = ("nodes", node, "sockets", index)
            pattern = channel_pattern(socket.channel)
            sound = pattern is not None and pattern.role(socket.role) is not None
            end = End(
                prefix + format_loc(loc),
                topology,
                node,
                host,
                "socket",
                index,
                socket.channel,
                pattern,
                socket.role,
                identity,
                loc,
                sound,
            )
            graph.ends.append(end)
            for mode, urls in (("listen", socket.listen), ("dial", socket.dial)):
                for position, url in enumerate(urls):
                    url_loc = (*loc, mode, position)
                    if url_loc not in topology.document.values:
                        url_loc = (*loc, mode)  # written as a single address
                    graph.ports.append(_port(end, mode, url, url_loc))
        for index, relay in enumerate(spec.relays):
            relay_loc: Loc = ("nodes", node, "relays", index)
            relay_pattern = pattern_of(relay.pattern)
            if relay_pattern is None:  # the model admits relayable patterns only
                raise ValueError(f"unknown relay pattern {relay.pattern!r}")
            sound = channel_pattern(relay.channel) is relay_pattern
            for kind, side in (("front", relay.front), ("back", relay.back)):
                # A relay's front stands in for the receivers, its back for the initiators.
                part = relay_pattern.receiver if kind == "front" else relay_pattern.initiator
                role = part.name
                side_loc = (*relay_loc, kind)
                end = End(
                    prefix + format_loc(side_loc),
                    topology,
                    node,
                    host,
                    kind,  # type: ignore[arg-type]
                    index,
                    relay.channel,
                    relay_pattern,
                    role,
                    None,  # a relay holds no keys, whatever its node runs
                    side_loc,
                    sound,
                )
                graph.ends.append(end)
                graph.relay_sides[(end.relay_key, kind)] = end
                graph.ports.append(_port(end, side.mode, side.url, (*side_loc, side.mode)))


def _port(end: End, mode: str, url: str, loc: Loc) -> Port:
    # The model has parsed every address already; this cannot fail.
    address = parse_address(url, listen=mode == "listen")
    return Port(end, "listen" if mode == "listen" else "dial", address, loc)


def _connect(graph: Graph) -> None:
    listens: dict[Key, list[Port]] = defaultdict(list)
    for port in graph.ports:
        if port.mode == "listen":
            key = listen_key(port.address, host=port.end.host, node=port.end.node)
            listens[key].append(port)
    # Two listens conflict when they bind the same thing, whatever the scope they were
    # written with: tcp://*:P, tcp://localhost:P and tcp://HOST:P on host HOST all take
    # TCP port P there (tls+tcp too; ws and wss share a port between paths).
    binds: dict[tuple[object, ...], list[Port]] = defaultdict(list)
    for key, ports in listens.items():
        transport, _scope, where, number, path = key
        if transport in ("tcp", "tls+tcp"):
            binds[("tcp", where, number)].extend(ports)
        elif transport in ("ws", "wss"):
            binds[("ws", where, number, path)].extend(ports)
        else:
            binds[key].extend(ports)
    graph.duplicates = [ports for ports in binds.values() if len(ports) > 1]
    dialed: set[int] = set()
    hints = _Hints(graph, listens)
    for port in graph.ports:
        if port.mode != "dial":
            continue
        found = False
        for key in dial_keys(port.address, host=port.end.host, node=port.end.node):
            for listener in listens.get(key, ()):
                found = True
                dialed.add(id(listener))
                a, b = port.end, listener.end
                mismatch = _mismatch(a, b) if a.sound and b.sound else None
                link = Link(port, listener, mismatch)
                graph.links.append(link)
                a.links.append(link)
                if b is not a:
                    b.links.append(link)
        if not found:
            graph.unpaired.append((port, hints.for_dial(port)))
    graph.unused = [p for p in graph.ports if p.mode == "listen" and id(p) not in dialed]


class _Hints:
    """Near misses for a dial that reaches nothing: the usual typos, said plainly."""

    def __init__(self, graph: Graph, listens: dict[Key, list[Port]]) -> None:
        self.by_place: dict[tuple[str, int], list[Port]] = defaultdict(list)
        self.ports_of: dict[str, set[int]] = defaultdict(set)
        self.by_path: dict[str, list[Port]] = defaultdict(list)
        for key, ports in listens.items():
            if key[0] in ("ipc", "inproc"):
                self.by_path[key[4]].extend(ports)
            else:
                self.by_place[(key[2], key[3])].extend(ports)
                self.ports_of[key[2]].add(key[3])
        self.host_of_node: dict[str, str] = {}
        for end in graph.ends:
            self.host_of_node.setdefault(end.node.lower(), end.host)

    def for_dial(self, port: Port) -> str:
        address = port.address
        if not address.is_network:
            elsewhere = self.by_path.get(address.path, [])
            for other in elsewhere:
                if other.address.transport == address.transport:
                    where = (
                        f"node {other.end.node}"
                        if address.transport == "inproc"
                        else f"host {other.end.host}"
                    )
                    scope = "one process" if address.transport == "inproc" else "one host"
                    return (
                        f"{address.url} is listened on by {where}; "
                        f"{address.transport} connects within {scope} only"
                    )
            return f"add a listen on {address.url}, or correct the address"
        for key in dial_keys(address, host=port.end.host, node=port.end.node):
            for other in self.by_place.get((key[2], key[3]), ()):
                if other.address.transport != address.transport:
                    return (
                        f"{other.address.url} listens with {other.address.transport}://, "
                        f"not {address.transport}://"
                    )
                if other.address.path != address.path:
                    return f"{other.address.url} listens on path {other.address.path}"
        where = address.host if address.scope == "named" else port.end.host
        ports = sorted(self.ports_of.get(where, ()))
        if ports:
            shown = ", ".join(str(p) for p in ports[:5])
            return f"{where} listens on port {shown}, not {address.port}"
        host = self.host_of_node.get(address.host)
        if address.scope == "named" and host is not None and host != address.host:
            return (
                f"node {address.host} runs on host {host}; dial "
                f"{address.transport}://{host}:{address.port}"
            )
        return f"add a listen on {address.url}, or correct the address"


def _follow_relays(graph: Graph) -> None:
    """Mark relays fed/drained (directed patterns) and cluster them (bus, pair)."""
    downstream: dict[str, list[str]] = defaultdict(list)
    upstream: dict[str, list[str]] = defaultdict(list)
    fed: deque[str] = deque()
    drained: deque[str] = deque()
    parent: dict[str, str] = {}

    def find(relay: str) -> str:
        root = parent.setdefault(relay, relay)
        while root != parent[root]:
            parent[root] = parent[parent[root]]
            root = parent[root]
        return root

    for end in graph.ends:
        if end.is_relay and end.sound:
            find(end.relay_key)
    for link in graph.links:
        a, b = link.dialer.end, link.listener.end
        if link.mismatch is not None or not (a.sound and b.sound):
            continue
        for relay, other in ((a, b), (b, a)):
            if not relay.is_relay:
                continue
            if relay.symmetric:
                if other.is_relay:
                    parent[find(relay.relay_key)] = find(other.relay_key)
                continue
            if other.is_relay:
                if relay.kind == "back":  # relay -> other, in the direction frames flow
                    downstream[relay.relay_key].append(other.relay_key)
                    upstream[other.relay_key].append(relay.relay_key)
            elif relay.kind == "front":
                fed.append(relay.relay_key)
            else:
                drained.append(relay.relay_key)
    graph._fed = _spread(fed, downstream)
    graph._drained = _spread(drained, upstream)
    for relay_id in parent:
        graph._cluster_of[relay_id] = find(relay_id)
    for end in graph.sockets():
        if not end.sound or not end.symmetric:
            continue
        for link in end.links:
            other = link.other(end)
            if link.mismatch is None and other.is_relay and other.sound:
                cluster = graph._cluster_of[other.relay_key]
                graph._cluster_members.setdefault(cluster, set()).add(end.key)


def _spread(start: deque[str], edges: dict[str, list[str]]) -> set[str]:
    seen = set(start)
    while start:
        for following in edges.get(start.popleft(), ()):
            if following not in seen:
                seen.add(following)
                start.append(following)
    return seen
