"""signed: the payload in the clear, with the sender's Ed25519 signature over the whole frame.

Authenticity and replay protection without secrecy, for payloads that must stay readable
(by relays, loggers, or anyone on the wire).
"""

from __future__ import annotations

import math
from typing import Any

from ..._formats._labels import SIGNED_FRAME
from .._wire import Header
from . import _crypto
from ._base import FastOpen, SchemeCodec, Sealer, SendState, forged
from ._crypto import SIGNATURE


class Signed(SchemeCodec):
    overhead = SIGNATURE

    def seal(
        self, state: SendState, header: Header, hdr: bytes, payload: bytes, peer: str | None
    ) -> bytes:
        signature = _crypto.sign_frame(
            self.ctx.key.signing_secret, self.signature_prefix(SIGNED_FRAME), hdr, payload
        )
        return payload + signature

    def open_key(self, header: Header, sender: str, now: float) -> Any:
        return self.ctx.identities[sender].sign_key

    def open(self, key: Any, header: Header, frame: bytes, start: int, sender: str) -> bytes:
        view = memoryview(frame)
        end = len(frame) - SIGNATURE
        if not _crypto.verify_frame(
            key, view[end:], self.signature_prefix(SIGNED_FRAME), view[:end]
        ):
            raise forged("bad signature")
        return bytes(view[start:end])

    def sealer(self, state: SendState, epoch: int, peer: str | None) -> Sealer | None:
        secret, label = self.ctx.key.signing_secret, self.signature_prefix(SIGNED_FRAME)

        def seal(hdr: bytes, nonce: bytes, payload: bytes) -> bytes:
            framed = hdr + payload
            return framed + _crypto.sign_frame(secret, label, framed)

        return seal

    def fast_open(
        self, key: Any, header: Header, frame: bytes, start: int, sender: str
    ) -> FastOpen | None:
        label = self.signature_prefix(SIGNED_FRAME)

        def open_(frame: bytes, start: int, nonce_at: int) -> bytes | None:
            end = len(frame) - SIGNATURE
            view = memoryview(frame)
            if not _crypto.verify_frame(key, view[end:], label, view[:end]):
                return None
            return frame[start:end]

        return FastOpen(open_, b"", SIGNATURE, math.inf)
