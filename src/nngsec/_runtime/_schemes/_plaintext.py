"""plaintext: the frame is the header and the payload, with no protection at all.

The sender named in the header is a claim anyone can make; the checker reports every
plaintext channel. It exists for payloads that are public and for debugging.
"""

from __future__ import annotations

import math
from typing import Any

from .._wire import Header
from ._base import FastOpen, SchemeCodec, Sealer, SendState


def _seal(hdr: bytes, nonce: bytes, payload: bytes) -> bytes:
    return hdr + payload


def _open(frame: bytes, start: int, nonce_at: int) -> bytes:
    return frame[start:]


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

    def sealer(self, state: SendState, epoch: int, peer: str | None) -> Sealer | None:
        return _seal

    def fast_open(
        self, key: Any, header: Header, frame: bytes, start: int, sender: str
    ) -> FastOpen | None:
        return FastOpen(_open, b"", 0, math.inf)
