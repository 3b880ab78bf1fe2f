"""Wire format v2: pure encoding and decoding of frame headers (no keys, no I/O).

See ``docs/spec/wire-format.md``. Everything here is bytes in, bytes or a
:class:`Header` out; a frame that does not parse raises ``Rejected("malformed")``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from .._errors import Rejected

__all__ = [
    "KEY_ID_SIZE",
    "MAX_HEADER",
    "MAX_TOPIC",
    "REPLY_TO",
    "SEQ_TIME",
    "SESSION_SIZE",
    "VERSION",
    "FrameKind",
    "FrameRef",
    "Header",
    "encode_header",
    "header_head",
    "parse_frame",
]

VERSION = 2
LEGACY_VERSION = 1  # nngsec 0.1: 8-byte sessions, refused with an upgrade hint
KEY_ID_SIZE = 8
SESSION_SIZE = 16  # random per sending session: the nonce is session || seq
MAX_TOPIC = 255
MAX_CHANNEL = 64
REPLY_BIT = 0x80

# version, kind, flags, channel length
_PREFIX = struct.Struct(">BBBB")
# key_id, epoch, session, seq, time (ms)
_FIXED = struct.Struct(">8sI16sQQ")
# The last two of them: what changes from one frame of a sending session to the next (the
# session id and the sequence number are adjacent: together they are the 24-byte nonce).
SEQ_TIME = struct.Struct(">QQ")
_EPOCH = struct.Struct(">I")
# reply_to: key_id, session, seq of the request
_REPLY_TO = REPLY_TO = struct.Struct(">8s16sQ")
MAX_HEADER = MAX_TOPIC + 1 + _PREFIX.size + MAX_CHANNEL + _FIXED.size + _REPLY_TO.size


class FrameKind:
    """Frame kind byte values: direction bit | scheme id (not the kind of a channel key)."""

    PLAINTEXT = 0x01
    SIGNED = 0x02
    SECRETBOX = 0x03
    SEALED = 0x04
    PEERBOX = 0x05
    REPLY = REPLY_BIT

    KNOWN = frozenset({0x01, 0x02, 0x03, 0x04, 0x05, 0x81, 0x82, 0x85})


class FrameRef(NamedTuple):
    """Names one frame: its sender's key id, session and sequence number. (A named tuple,
    not a dataclass: every received message carries one, and a tuple is made in one
    step.)"""

    key_id: bytes
    session: bytes
    seq: int


@dataclass(frozen=True, slots=True)
class Header:
    kind: int
    channel: str
    key_id: bytes
    epoch: int
    session: bytes
    seq: int
    time_ms: int
    topic: bytes | None = None
    reply_to: FrameRef | None = None

    @property
    def is_reply(self) -> bool:
        return bool(self.kind & REPLY_BIT)

    @property
    def ref(self) -> FrameRef:
        return FrameRef(self.key_id, self.session, self.seq)


def header_head(
    kind: int, channel: str, key_id: bytes, epoch: int, session: bytes, topic: bytes | None
) -> bytes:
    """The bytes of a header up to its sequence number (``[topic || 0x00] || prefix ||
    channel || key_id || epoch || session``): the same for every frame a sending session
    seals under one epoch, so a sender computes them once."""
    raw = channel.encode("ascii")
    if not 1 <= len(raw) <= MAX_CHANNEL:
        raise ValueError("channel name must be 1..64 ASCII bytes")
    if len(key_id) != KEY_ID_SIZE or len(session) != SESSION_SIZE:
        raise ValueError("key id must be 8 bytes and session 16")  # struct would pad them
    parts = []
    if topic is not None:
        if len(topic) > MAX_TOPIC or b"\x00" in topic:
            raise ValueError("topic must be at most 255 bytes without NUL")
        parts += [topic, b"\x00"]
    parts += [
        _PREFIX.pack(VERSION, kind, 0, len(raw)),
        raw,
        key_id,
        _EPOCH.pack(epoch),
        session,
    ]
    return b"".join(parts)


def encode_header(header: Header) -> bytes:
    """The bytes of ``header`` (including the pubsub topic prefix when it has a topic)."""
    head = header_head(
        header.kind, header.channel, header.key_id, header.epoch, header.session, header.topic
    )
    parts = [head, SEQ_TIME.pack(header.seq, header.time_ms)]
    if header.kind & REPLY_BIT:
        if header.reply_to is None:
            raise ValueError("a reply header needs reply_to")
        ref = header.reply_to
        if len(ref.key_id) != KEY_ID_SIZE or len(ref.session) != SESSION_SIZE:
            raise ValueError("reply_to key id must be 8 bytes and session 16")
        parts.append(_REPLY_TO.pack(ref.key_id, ref.session, ref.seq))
    return b"".join(parts)


def _malformed(detail: str) -> Rejected:
    return Rejected(Rejected.MALFORMED, detail)


def parse_frame(frame: bytes, *, has_topic: bool) -> tuple[Header, int]:
    """Parse the header of ``frame``; return it and the offset where the body starts.

    ``has_topic`` is true on pubsub channels, whose frames start with ``topic || 0x00``.
    """
    offset = 0
    topic = None
    if has_topic:
        end = frame.find(b"\x00", 0, MAX_TOPIC + 1)
        if end < 0:
            raise _malformed("no topic terminator")
        topic = bytes(frame[:end])
        offset = end + 1
    if len(frame) < offset + _PREFIX.size:
        raise _malformed("frame shorter than a header")
    version, kind, flags, channel_len = _PREFIX.unpack_from(frame, offset)
    if version != VERSION:
        if version == LEGACY_VERSION:
            raise _malformed(
                f"wire format version 1, of nngsec 0.1: upgrade the sender (this receiver "
                f"speaks version {VERSION})"
            )
        raise _malformed(f"unsupported wire format version {version}")
    if kind not in FrameKind.KNOWN:
        raise _malformed(f"unknown kind 0x{kind:02x}")
    if flags:
        raise _malformed("reserved flags set")
    if not 1 <= channel_len <= MAX_CHANNEL:
        raise _malformed("bad channel length")
    offset += _PREFIX.size
    fixed_end = offset + channel_len + _FIXED.size
    reply = bool(kind & REPLY_BIT)
    header_end = fixed_end + (_REPLY_TO.size if reply else 0)
    if len(frame) < header_end:
        raise _malformed("truncated header")
    try:
        channel = bytes(frame[offset : offset + channel_len]).decode("ascii")
    except UnicodeDecodeError:
        raise _malformed("channel name is not ASCII") from None
    key_id, epoch, session, seq, time_ms = _FIXED.unpack_from(frame, offset + channel_len)
    reply_to = None
    if reply:
        reply_to = FrameRef(*_REPLY_TO.unpack_from(frame, fixed_end))
    return (
        Header(kind, channel, key_id, epoch, session, seq, time_ms, topic, reply_to),
        header_end,
    )
