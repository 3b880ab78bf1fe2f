"""``nngsec explain POLICY IDENTITY``: the blast radius of one compromised identity.

For each channel the identity has a role on, what an attacker holding its private key (and
the channel keys sealed to it) can read, whom it can pose as, and what it can only send as
itself; then which command contains it. Derived from the policy and the schemes of the
design brief (section 3):

- ``sealed`` (pubsub, pipeline, surveys): receivers hold the epoch's audience key and read
  everything; senders sign with their own key, so they cannot pose as each other, and
  cannot read what other senders send. With ``origin: mac`` senders MAC each frame to
  each receiver instead: still no one can pose as a sender towards another receiver, but
  a receiver can make frames "from" any sender that it alone accepts, so its word about
  who sent what convinces no one else (no non-repudiation, no third-party check).
- ``secretbox`` bus: every member holds the group key and reads everything; with
  ``origin: group`` frames are not signed, so any member can pose as any other.
- ``secretbox`` pair: the key is derived from the two identity keys.
- ``peerbox`` (reqrep, survey responses): a key derived from the client's and the
  service's keys; a server (or every server, sharing a service key) can derive the key of
  any client, so it reads every request and could forge requests as any client towards
  the other servers.
- ``signed``: no secrecy (anyone on the path reads); a sender can only sign as itself.
- ``plaintext``: no protection at all, keys or not.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass
from typing import Literal

from .._errors import PolicyError
from .._policy._policy import Policy

__all__ = ["ChannelExposure", "Exposure", "explain", "render_explain_json", "render_explain_text"]

Reads = Literal["all", "own", "none", "public"]


@dataclass(frozen=True)
class ChannelExposure:
    """What one channel exposes when the identity's keys are stolen."""

    channel: str
    pattern: str
    scheme: str
    roles: tuple[str, ...]
    reads: Reads
    reads_detail: str
    impersonates: tuple[str, ...]
    sends_as_itself: bool
    sends_detail: str


@dataclass(frozen=True)
class Exposure:
    identity: str
    policy: str
    policy_file: str
    revoked: bool
    groups: tuple[str, ...]
    channels: tuple[ChannelExposure, ...]
    contain: str
    rotates: tuple[str, ...]
    not_rotatable: tuple[str, ...]


def _others(names: frozenset[str], identity: str) -> tuple[str, ...]:
    return tuple(sorted(names - {identity}))


def _channel(policy: Policy, identity: str, channel: str) -> ChannelExposure:
    spec = policy.channels[channel]
    pattern, scheme = spec.pattern_spec, spec.resolved_scheme
    roles = tuple(
        role.name for role in pattern.roles if role.field in policy.roles_of(identity, channel)
    )
    senders, receivers = policy.senders(channel), policy.receivers(channel)
    is_sender, is_receiver = identity in senders, identity in receivers
    key_kind = policy.channel_key_kind(channel)
    impersonates: tuple[str, ...] = ()
    reads: Reads = "none"
    sends_detail = "cannot send on it (not a sender): peers reject its frames"
    # Servers reply and respondents respond: they send too, though not first.
    sends_as_itself = is_sender or (is_receiver and pattern.has_replies)

    if scheme == "plaintext":
        reads, read_detail = (
            "public",
            "everything: the channel is plaintext, anyone on the path reads it",
        )
        impersonates = _others(senders, identity)
        sends_detail = "anything as anyone: plaintext frames are not authenticated"
        sends_as_itself = False
    elif scheme == "signed":
        reads, read_detail = "public", "everything: signed frames are not encrypted"
        if is_sender:
            sends_detail = f"frames signed as {identity} only"
    elif scheme == "sealed" and not pattern.has_replies:  # publications, jobs
        if is_receiver:
            reads, read_detail = "all", "every message on the channel (it holds the audience key)"
            if spec.origin_mode == "mac":
                read_detail += (
                    "; with origin: mac it can also make frames from any sender that only it "
                    "accepts, so what it reports about who sent what proves nothing"
                )
        else:
            read_detail = "nothing: messages are sealed to the receivers, not to senders"
        if is_sender:
            sends_detail = (
                f"messages MAC'd as {identity} to each receiver only; it cannot pose as "
                "another sender"
                if spec.origin_mode == "mac"
                else f"messages signed as {identity} only; it cannot pose as another sender"
            )
    elif scheme == "secretbox" and key_kind == "group":  # a bus
        reads, read_detail = "all", "every message on the bus (it holds the group key)"
        if spec.origin_mode == "group":
            impersonates = _others(policy.active(receivers), identity)
            sends_detail = "messages as any member: origin: group frames are not signed"
            sends_as_itself = False
        else:
            sends_detail = f"messages signed as {identity} only"
    elif scheme == "secretbox":  # a pair: the key comes from the two identity keys
        peer = ", ".join(_others(receivers, identity)) or "its peer"
        reads, read_detail = "all", f"everything {peer} sends on the pair"
        sends_detail = f"messages as {identity} to {peer}"
    elif scheme == "peerbox":  # requests and replies under per-client keys
        if is_receiver:
            reads, read_detail = "all", "every request to the service, from every client"
            sends_detail = "replies to any client, as the service"
            if key_kind == "service":
                impersonates = _others(senders, identity)
                sends_detail += (
                    "; with the shared service key it can derive any client's key and forge "
                    "requests as that client to the other servers"
                )
        else:
            reads, read_detail = "own", "replies to its own requests only"
            sends_detail = f"requests as {identity} only"
    else:  # sealed surveys, answered by peerbox responses
        if is_receiver:
            reads, read_detail = "all", "every survey (it holds the respondents' audience key)"
            sends_detail = f"responses as {identity} only"
        if is_sender:
            reads, read_detail = "own", "responses to its own surveys only"
            how = "MAC'd to each respondent" if spec.origin_mode == "mac" else "signed"
            sends_detail = f"surveys {how} as {identity} only"
            if is_receiver:
                reads, read_detail = "all", "every survey, and the responses to its own"

    return ChannelExposure(
        channel,
        pattern.name,
        scheme,
        roles,
        reads,
        read_detail,
        impersonates,
        sends_as_itself,
        sends_detail,
    )


def explain(policy: Policy, identity: str) -> Exposure:
    """The blast radius of ``identity`` in ``policy``."""
    if identity not in policy.identities:
        close = difflib.get_close_matches(identity, list(policy.identities), n=1)
        raise PolicyError(
            policy.document.problem(
                ("identities",),
                f"no identity {identity!r} in policy {policy.name!r}",
                f"did you mean {close[0]!r}?"
                if close
                else f"identities are: {', '.join(policy.identities) or 'none'}",
                key=True,
            )
        )
    channels = tuple(
        _channel(policy, identity, channel)
        for channel in policy.channels
        if policy.roles_of(identity, channel)
    )
    groups = tuple(sorted(g for g in policy.groups if identity in policy.expand([g])))
    readable = set(policy.readable_by(identity))
    rotates = tuple(c.channel for c in channels if identity in policy.key_holders(c.channel))
    not_rotatable = tuple(
        c.channel
        for c in channels
        if c.channel in readable and c.channel not in rotates and c.reads == "all"
    )
    shown = policy.document.path
    if policy.is_revoked(identity):
        contain = (
            f"already revoked; if its keys are still in the current epochs: nngsec rotate {shown}"
        )
    else:
        contain = f"nngsec revoke {shown} {identity}"
    return Exposure(
        identity,
        policy.name,
        shown,
        policy.is_revoked(identity),
        groups,
        channels,
        contain,
        rotates,
        not_rotatable,
    )


def render_explain_json(exposure: Exposure) -> str:
    return json.dumps(asdict(exposure), indent=2) + "\n"


def render_explain_text(exposure: Exposure) -> str:
    e = exposure
    lines = [
        f"Blast radius of identity {e.identity!r} in policy {e.policy} ({e.policy_file})"
        + (" [revoked]" if e.revoked else ""),
        f"groups: {', '.join(e.groups) or 'none'}",
        "",
    ]
    if not e.channels:
        lines.append("It has no role on any channel: its keys open and send nothing.")
    else:
        lines.append("An attacker holding its private key (and its channel keys):")
    for c in e.channels:
        lines.append(f"  {c.channel} ({c.pattern}, {c.scheme}) as {', '.join(c.roles)}")
        lines.append(f"    reads:        {c.reads_detail}")
        lines.append(f"    sends:        {c.sends_detail}")
        if c.impersonates:
            lines.append(f"    poses as:     {', '.join(c.impersonates)}")
    reads_all = [c.channel for c in e.channels if c.reads == "all"]
    poses = sorted({n for c in e.channels for n in c.impersonates})
    lines += [
        "",
        f"Reads everything on: {', '.join(reads_all) or 'nothing'}",
        f"Can pose as: {', '.join(poses) or 'nobody but itself'}",
        "",
        f"Contain it: {e.contain}",
    ]
    if e.rotates and not e.revoked:
        lines.append(f"  rotates the keys of: {', '.join(e.rotates)}")
    for channel in e.not_rotatable:
        lines.append(
            f"  {channel}: its keys come from identity keys, so rotation cannot cut it off; "
            f"peers refuse it once revoked, but remove {e.identity} from {channel} (or replace "
            "its peers' keys) to stop it reading"
        )
    return "\n".join(lines) + "\n"
