"""keys: what a policy's keys are, at a glance.

Each identity with its fingerprint (the key id its frames carry, so a log line or a frame
can be matched to a pasted key), and each channel's key epochs from the channel-key file:
when each was created, who holds an entry, and when the previous one retires. Nothing
secret is read: entries stay sealed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    keys = commands.add_parser(
        "keys",
        help="list identities, fingerprints and channel-key epochs",
        description="List the identities of POLICY with their fingerprints (the key id that "
        "frames and log lines name), and the key epochs of each channel in the channel-key "
        "file beside it (POLICY.keys.json): epoch, created, the identities holding an entry, "
        "and when a previous epoch retires. Reads no private key.",
    )
    keys.add_argument("policy", metavar="POLICY", type=Path)
    keys.add_argument("--format", choices=["text", "json"], default="text", help="default: text")
    keys.set_defaults(run=_keys)


@dataclass(frozen=True)
class EpochView:
    epoch: int
    created: str
    retire_at: str | None  # None: the current epoch
    retired: bool  # past its retire_at: no longer accepted
    holders: list[str]


@dataclass(frozen=True)
class ChannelView:
    channel: str
    pattern: str
    scheme: str
    kind: str | None  # the channel secret it needs; None: identity keys suffice
    entitled: list[str]  # the identities that should hold an entry of the current epoch
    epochs: list[EpochView]


@dataclass(frozen=True)
class KeysView:
    policy: str
    version: int
    path: str
    keys_file: str | None  # None: there is no channel-key file yet
    identities: list[dict[str, Any]]
    channels: list[ChannelView]


def inspect(policy_path: Path, now: float | None = None) -> KeysView:
    """What ``nngsec keys`` shows, as data."""
    from .._keys._channel_keys import ChannelKeyFile
    from .._policy._load import load_policy
    from .._policy._policy import channel_keys_path

    policy = load_policy(policy_path)
    keys_path = channel_keys_path(policy_path)
    keys = ChannelKeyFile.load(keys_path)
    moment = time.time() if now is None else now
    identities = [
        {"name": name, "fingerprint": key.fingerprint, "revoked": policy.is_revoked(name)}
        for name, key in sorted(policy.identities.items())
    ]
    channels = []
    for name, spec in policy.channels.items():
        kind = policy.channel_key_kind(name)
        epochs = []
        stored = keys.model.channels.get(name) if keys is not None else None
        for index, entry in enumerate(stored.epochs if stored is not None else ()):
            retired = entry.retire_at is not None and _seconds(entry.retire_at) < moment
            holders = sorted(keys.holders(name, index)) if keys is not None else []
            epochs.append(EpochView(entry.epoch, entry.created, entry.retire_at, retired, holders))
        channels.append(
            ChannelView(
                name,
                spec.pattern_name,
                spec.resolved_scheme,
                kind,
                sorted(policy.active(policy.key_holders(name))),
                epochs,
            )
        )
    return KeysView(
        policy.name,
        policy.version,
        str(policy_path),
        str(keys_path) if keys is not None else None,
        identities,
        channels,
    )


def _seconds(stamp: str) -> float:
    from datetime import UTC, datetime

    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _roughly(seconds: float) -> str:
    """A time left as people say it: 45s, 59m, 5h, 3d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size:.0f}{unit}"
    return f"{max(seconds, 1):.0f}s"


def render_text(view: KeysView, now: float | None = None) -> str:
    moment = time.time() if now is None else now
    lines = [f"policy {view.policy} version {view.version} ({view.path})", ""]
    width = max((len(i["name"]) for i in view.identities), default=0)
    lines.append(f"identities ({len(view.identities)}), by fingerprint (key id):")
    for identity in view.identities:
        mark = "  revoked" if identity["revoked"] else ""
        lines.append(f"  {identity['name']:<{width}}  {identity['fingerprint']}{mark}")
    lines.append("")
    lines.append(f"channel keys ({view.keys_file or 'no channel-key file yet'}):")
    width = max((len(c.channel) for c in view.channels), default=0)
    for channel in view.channels:
        head = f"  {channel.channel:<{width}}  {channel.pattern}, {channel.scheme}"
        if channel.kind is None:
            lines.append(f"{head}: no channel key (identity keys suffice)")
            continue
        if not channel.epochs:
            lines.append(f"{head}: needs {channel.kind} keys and has none (nngsec rotate)")
            continue
        lines.append(f"{head}, {channel.kind} key:")
        for epoch in channel.epochs:
            if epoch.retire_at is None:
                state = "current"
            elif epoch.retired:
                state = f"retired at {epoch.retire_at}"
            else:
                left = _roughly(_seconds(epoch.retire_at) - moment)
                state = f"retires at {epoch.retire_at} (in {left})"
            holders = ", ".join(epoch.holders) or "nobody"
            lines.append(
                f"  {'':<{width}}    epoch {epoch.epoch}  created {epoch.created}  {state}; "
                f"held by {holders}"
            )
        current = channel.epochs[0]
        missing = sorted(set(channel.entitled) - set(current.holders))
        if missing:
            lines.append(
                f"  {'':<{width}}    not held by {', '.join(missing)}: run nngsec rotate "
                f"{view.path} {channel.channel}"
            )
    return "\n".join(lines) + "\n"


def _keys(args: argparse.Namespace) -> int:
    view = inspect(args.policy)
    if args.format == "json":
        sys.stdout.write(json.dumps(asdict(view), indent=2) + "\n")
    else:
        sys.stdout.write(render_text(view))
    return 0
