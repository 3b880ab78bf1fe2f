"""plaintext: the frame is the header and the payload, with no protection at all.

The sender named in the header is a claim anyone can make; the checker reports every
plaintext channel. It exists for payloads that are public and for debugging.
"""

from __future__ import annotations

from typing import Any

from .._wire import Header
from ._base import SchemeCodec, SendState


class Plaintext(SchemeCodec):
    overhead = 0

    def seal(
        self, state: SendState, header: Header, hdr: bytes, payload: bytes, peer: str | None
    ) -> bytes:
        return payload

    def open_key(self, header: Header, sender: str, now: float) -> Any:
        return None

    def open(self, key: Any, header: Header, frame: bytes, start: int, sender: str) -> bytes:
        return bytes(frame[start:])
