"""sealed: a signed sealed box to the channel's audience (pubsub, pipeline, surveys).

Per sending session and epoch the sender draws a content key and an ephemeral X25519
key, and wraps the content key to the epoch's audience public key. Every frame carries
the ephemeral key and the wrapped content key (so it opens alone), the payload under the
content key, and the sender's Ed25519 signature over everything before it.

- Confidentiality: only holders of the audience secret (the receiving role) can unwrap.
  A sender that is not also a receiver holds only the public half.
- Origin: receivers can decrypt but not sign, so no receiver (and no other sender) can
  produce a frame accepted as this sender's.
- Cost: the receiver verifies the signature on every frame, then unwraps the content key
  once per (sender, session, epoch) and caches it; X25519 is not paid per message.
"""

from __future__ import annotations

import struct
import threading
from typing import Any

from ..._errors import PolicyError, Problem
from ..._formats._labels import SEALED_FRAME, SEALED_WRAP
from .._wire import Header
from . import _crypto
from ._base import SchemeCodec, SendState, forged, nonce_of
from ._crypto import AEAD_TAG, SIGNATURE, ZERO_NONCE, kdf

EPHEMERAL = 32
WRAPPED = 32 + AEAD_TAG
CACHE_LIMIT = 4096
_AD = SEALED_FRAME + b"\x00"  # the associated data: this, the header, e_pk || wrapped


class Sealed(SchemeCodec):
    overhead = EPHEMERAL + WRAPPED + AEAD_TAG + SIGNATURE

    def __init__(self, ctx: Any, kind: int) -> None:
        super().__init__(ctx, kind)
        self._content_keys: dict[tuple[bytes, bytes, int, bytes], bytes] = {}
        self._lock = threading.Lock()

    def _wrap_key(self, shared: bytes, ephemeral: bytes, audience: bytes, header: Header) -> bytes:
        return kdf(
            shared,
            SEALED_WRAP,
            ephemeral,
            audience,
            self.ctx.binding,
            struct.pack(">I", header.epoch),
            header.key_id,
            header.session,
        )

    def send_epoch(self, peer: str | None, reply_epoch: int | None) -> int:
        return self.ctx.epoch_for_sending().epoch

    def _session_material(self, state: SendState, header: Header) -> tuple[bytes, bytes]:
        """(ephemeral public || wrapped content key, content key) for this session+epoch."""
        # Keyed by the session too: the wrap binds it, and a forked child restarts it.
        cache_key = ("sealed", header.session, header.epoch)
        cached: tuple[bytes, bytes] | None = state.cache.get(cache_key)
        if cached is not None:
            return cached
        keys = self.ctx.epoch_stamped(header.epoch)
        audience = keys.public
        ephemeral_secret = self.ctx.random(32)
        ephemeral = _crypto.x25519_base(ephemeral_secret)
        shared = _crypto.x25519(ephemeral_secret, audience) if audience is not None else None
        if audience is None or shared is None:
            raise PolicyError(
                Problem(
                    f"channel {self.ctx.channel!r} epoch {keys.epoch} has an unusable audience key",
                    hint="re-run nngsec rotate for this channel",
                )
            )
        content_key = self.ctx.random(32)
        wrapped = _crypto.aead_seal(
            self._wrap_key(shared, ephemeral, audience, header), ZERO_NONCE, content_key, b""
        )
        material = (ephemeral + wrapped, content_key)
        state.cache[cache_key] = material
        return material

    def seal(
        self, state: SendState, header: Header, hdr: bytes, payload: bytes, peer: str | None
    ) -> bytes:
        prefix, content_key = self._session_material(state, header)
        ciphertext = _crypto.aead_seal(content_key, nonce_of(header), payload, _AD + hdr + prefix)
        # The signed message (label, binding, header, prefix, ciphertext) is assembled
        # once, in _crypto's reused buffer, not as a fresh concatenation.
        signature = _crypto.sign(
            self.ctx.key.signing_secret,
            self.signature_prefix(SEALED_FRAME),
            hdr,
            prefix,
            ciphertext,
        )
        return b"".join((prefix, ciphertext, signature))

    def open_key(self, header: Header, sender: str, now: float) -> Any:
        return self.ctx.epoch_for_receiving(header.epoch, now)

    def open(self, key: Any, header: Header, frame: bytes, start: int, sender: str) -> bytes:
        view = memoryview(frame)  # slices of it are read in place
        end = len(frame) - SIGNATURE
        body = start + EPHEMERAL + WRAPPED
        prefix = bytes(view[start:body])
        ciphertext = view[body:end]
        ad = _AD + view[:body]
        cache_key = (header.key_id, header.session, header.epoch, prefix)
        content_key = self._content_keys.get(cache_key)
        if content_key is not None:
            # The content key of this session is known: the AEAD tag is the cheapest
            # check, and nobody without the key can pass it. The signature still decides
            # who sent the frame before anything is released.
            payload = _crypto.aead_open(content_key, nonce_of(header), ciphertext, ad)
            if payload is None:
                raise forged("AEAD does not open")
            self._verify(view, end, sender)
            return payload
        # A new session: the signature first. It rejects forgeries before any X25519 work,
        # and it is what makes caching the unwrapped key safe (only the true sender can
        # have put these bytes there).
        self._verify(view, end, sender)
        ephemeral = prefix[:EPHEMERAL]
        shared = _crypto.x25519(key.secret, ephemeral)
        if shared is None:
            raise forged("bad ephemeral key")
        wrap_key = self._wrap_key(shared, ephemeral, key.public, header)
        content_key = _crypto.aead_open(wrap_key, ZERO_NONCE, prefix[EPHEMERAL:], b"")
        if content_key is None:
            raise forged("content key does not unwrap")
        payload = _crypto.aead_open(content_key, nonce_of(header), ciphertext, ad)
        if payload is None:
            raise forged("AEAD does not open")
        with self._lock:
            if len(self._content_keys) >= CACHE_LIMIT:
                del self._content_keys[next(iter(self._content_keys))]
            self._content_keys[cache_key] = content_key
        return payload

    def _verify(self, view: memoryview, end: int, sender: str) -> None:
        if not _crypto.verify(
            self.ctx.identities[sender].sign_key,
            view[end:],
            self.signature_prefix(SEALED_FRAME),
            view[:end],
        ):
            raise forged("bad signature")
