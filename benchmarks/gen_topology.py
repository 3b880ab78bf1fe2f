"""Generate a large deployment for timing ``nngsec check``: policy, channel keys, topology.

    python benchmarks/gen_topology.py OUT_DIR [--nodes 10000] [--channels 200]

writes ``OUT_DIR/policy.yaml`` (one identity per node), ``OUT_DIR/policy.keys.json`` (via
``nngsec rotate``) and ``OUT_DIR/topology.yaml``. Channels cycle through the patterns;
pubsub, pipeline and reqrep channels go through a relay node each, surveys and buses are
wired directly (buses as a full mesh), pairs use two nodes. The generated deployment is
clean: ``nngsec check`` reports only ``unsigned-policy`` and, for channels with many
receivers, ``wide-secret``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from nngsec._keys._identity import IdentityKey
from nngsec._policy._admin import rotate

PATTERNS = (
    "pubsub",
    "pipeline",
    "reqrep",
    "pubsub",
    "survey",
    "bus",
    "pubsub",
    "pipeline",
    "reqrep",
    "pair",
)
BUS_SIZE = 12  # members of a bus channel (full mesh: n*(n-1)/2 links)
RELAYED = ("pubsub", "pipeline", "reqrep")


@dataclass
class Channel:
    name: str
    pattern: str
    members: list[str]
    relay: str | None = None
    roles: dict[str, list[str]] = field(default_factory=dict)


def _split(pattern: str, members: list[str]) -> dict[str, list[str]]:
    """Role field -> members, e.g. a fifth of the nodes publish and the rest subscribe."""
    if pattern in ("pair", "bus"):
        return {"members": members}
    if pattern == "survey":
        return {"surveyors": members[:1], "respondents": members[1:]}
    first, second = {
        "pubsub": ("publishers", "subscribers"),
        "pipeline": ("pushers", "pullers"),
        "reqrep": ("clients", "servers"),
    }[pattern]
    cut = max(1, len(members) // 5)
    if pattern == "reqrep":  # many clients, a few servers
        return {first: members[cut:], second: members[:cut]}
    return {first: members[:cut], second: members[cut:]}


def plan(nodes: int, channels: int) -> list[Channel]:
    """Channels with their member nodes; the node names are n00000, n00001, ..."""
    patterns = [PATTERNS[i % len(PATTERNS)] for i in range(channels)]
    relays = sum(1 for p in patterns if p in RELAYED)
    fixed = sum(2 if p == "pair" else BUS_SIZE if p == "bus" else 0 for p in patterns)
    flexible = [i for i, p in enumerate(patterns) if p not in ("pair", "bus")]
    spare = nodes - relays - fixed
    if spare < 3 * len(flexible):
        raise SystemExit(f"{nodes} nodes are too few for {channels} channels")
    result, next_node = [], 0
    for index, pattern in enumerate(patterns):
        if pattern == "pair":
            size = 2
        elif pattern == "bus":
            size = BUS_SIZE
        else:
            position = flexible.index(index)
            size = spare // len(flexible) + (1 if position < spare % len(flexible) else 0)
        members = [f"n{n:05d}" for n in range(next_node, next_node + size)]
        next_node += size
        channel = Channel(f"c{index:03d}", pattern, members)
        channel.roles = _split(pattern, members)
        if pattern in RELAYED:
            channel.relay = f"relay-{index:03d}"
        result.append(channel)
    return result


def write_policy(path: Path, channels: list[Channel]) -> None:
    lines = ["nngsec: 1", "name: bench", "version: 1", "identities:"]
    for channel in channels:
        for member in channel.members:
            key = IdentityKey.generate()
            lines.append(f"  {member}: {key.public.to_text()}")
    lines.append("groups:")
    for channel in channels:
        for role, members in channel.roles.items():
            lines.append(f"  {channel.name}-{role}: [{', '.join(members)}]")
    lines.append("channels:")
    for channel in channels:
        lines.append(f"  {channel.name}:")
        lines.append(f"    pattern: {channel.pattern}")
        for role in channel.roles:
            lines.append(f"    {role}: [{channel.name}-{role}]")
        if channel.pattern == "pubsub":
            lines.append('    topics: ["t."]')
    path.write_text("\n".join(lines) + "\n")


def _socket(lines: list[str], channel: str, role: str, mode: str, url: str) -> None:
    lines += [f"      - channel: {channel}", f"        role: {role}", f'        {mode}: "{url}"']


def _node(name: str) -> list[str]:
    """A node entry: each node runs the identity of its name on a host of its own."""
    return [f"  {name}:", f"    identity: {name}", f"    host: h{name[1:]}", "    sockets:"]


def write_topology(path: Path, policy_name: str, channels: list[Channel]) -> None:
    lines = ["nngsec: 1", f"policy: {policy_name}", "nodes:"]
    singular = {
        "publishers": "publisher",
        "subscribers": "subscriber",
        "pushers": "pusher",
        "pullers": "puller",
        "clients": "client",
        "servers": "server",
        "surveyors": "surveyor",
        "respondents": "respondent",
        "members": "member",
    }
    for channel in channels:
        roles = list(channel.roles.items())
        if channel.relay is not None:
            lines += [
                f"  {channel.relay}:",
                "    relays:",
                f"      - pattern: {channel.pattern}",
                f"        channel: {channel.name}",
                '        front: {listen: "tcp://*:5000"}',
                '        back: {listen: "tcp://*:5001"}',
            ]
            for (role, members), port in zip(roles, (5000, 5001), strict=True):
                for member in members:
                    lines += _node(member)
                    url = f"tcp://{channel.relay}:{port}"
                    _socket(lines, channel.name, singular[role], "dial", url)
                    if channel.pattern == "pubsub":
                        lines.append('        topics: ["t."]')
        elif channel.pattern == "survey":
            (_, surveyors), (_, respondents) = roles
            lines += _node(surveyors[0])
            _socket(lines, channel.name, "surveyor", "listen", "tcp://*:6000")
            for member in respondents:
                lines += _node(member)
                url = f"tcp://h{surveyors[0][1:]}:6000"
                _socket(lines, channel.name, "respondent", "dial", url)
        else:  # pair and bus: each member dials every member before it, and listens
            members = channel.members  # for those after it (so the last one does not)
            for position, member in enumerate(members):
                lines += _node(member)
                lines += [f"      - channel: {channel.name}", "        role: member"]
                if position < len(members) - 1:
                    lines.append('        listen: "tcp://*:7000"')
                if position:
                    dials = ", ".join(f'"tcp://h{m[1:]}:7000"' for m in members[:position])
                    lines.append(f"        dial: [{dials}]")
    path.write_text("\n".join(lines) + "\n")


def generate(out: Path, nodes: int, channels: int) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    layout = plan(nodes, channels)
    policy_path, topology_path = out / "policy.yaml", out / "topology.yaml"
    write_policy(policy_path, layout)
    rotate(policy_path)
    write_topology(topology_path, policy_path.name, layout)
    return policy_path, topology_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("out", type=Path)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=200)
    args = parser.parse_args(argv)
    policy, topology = generate(args.out, args.nodes, args.channels)
    lines = topology.read_text().count("\n")
    print(f"wrote {policy}, {policy.with_suffix('.keys.json')} and {topology} ({lines} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
