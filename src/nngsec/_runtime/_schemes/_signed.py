"""signed: the payload in the clear, with the sender's Ed25519 signature over the whole frame.

Authenticity and replay protection without secrecy, for payloads that must stay readable
(by relays, loggers, or anyone on the wire).
"""

from __future__ import annotations

from typing import Any

from ..._formats._labels import SIGNED_FRAME
from .._wire import Header
from ._base import SchemeCodec, SendState, forged
from ._crypto import SIGNATURE, verify


class Signed(SchemeCodec):
    overhead = SIGNATURE

    def seal(
        self, state: SendState, header: Header, hdr: bytes, payload: bytes, peer: str | None
    ) -> bytes:
        signature = self.ctx.key.sign(self.signed_message(SIGNED_FRAME, hdr, payload))
        return payload + signature

    def open_key(self, header: Header, sender: str, now: float) -> Any:
        return self.ctx.identities[sender].sign_key

    def open(self, key: Any, header: Header, frame: bytes, start: int, sender: str) -> bytes:
        end = len(frame) - SIGNATURE
        signed = self.signed_message(SIGNED_FRAME, bytes(frame[:end]))
        if not verify(key, signed, bytes(frame[end:])):
            raise forged("bad signature")
        return bytes(frame[start:end])
