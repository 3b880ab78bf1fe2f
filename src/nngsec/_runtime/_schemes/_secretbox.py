"""secretbox: AEAD under a key both ends hold.

- pair: the key is derived from the two members' X25519 keys (no channel keys needed).
  Only two identities can compute it, so the sender is implicit: it is the other member.
- bus: the key is the epoch's group key, sealed to every member by ``nngsec rotate``.
  Every member can compute a valid AEAD, so with ``origin: signed`` (the default) each
  frame also carries its sender's Ed25519 signature over the header and ciphertext,
  verified before decryption; a member cannot pose as another. ``origin: group`` drops
  the signature, deliberately trading origin authenticity for speed.
"""

from __future__ import annotations

import math
from typing import Any

from ..._errors import PolicyError, Problem
from ..._formats._labels import BUS_FRAME, PAIR_KEY, SECRETBOX_FRAME
from .._wire import FrameKind, Header
from . import _crypto
from ._base import (
    ChannelContext,
    FastOpen,
    SchemeCodec,
    Sealer,
    SendState,
    forged,
    no_key,
    nonce_of,
)
from ._crypto import AEAD_TAG, SIGNATURE, kdf

_PAIR_AD = SECRETBOX_FRAME + b"\x00"  # the associated data: this, then the header bytes
_BUS_AD = BUS_FRAME + b"\x00"


class PairBox(SchemeCodec):
    overhead = AEAD_TAG

    def __init__(self, ctx: ChannelContext, kind: int = FrameKind.SECRETBOX) -> None:
        super().__init__(ctx, kind)
        if ctx.peer is None:
            raise RuntimeError("nngsec: a pair codec needs the other member")
        own = ctx.key.public.box_key
        other = ctx.identities[ctx.peer].box_key
        shared = _crypto.x25519(ctx.key.box_secret, other)
        if shared is None:
            raise PolicyError(
                Problem(
                    f"the public key of {ctx.peer!r} is not usable for key agreement",
                    field=f"identities.{ctx.peer}",
                    hint="replace it with a key made by nngsec keygen",
                )
            )
        low, high = sorted((own, other))
        self._key = kdf(shared, PAIR_KEY, ctx.binding, low, high)

    def seal(
        self, state: SendState, header: Header, hdr: bytes, payload: bytes, peer: str | None
    ) -> bytes:
        return _crypto.aead_seal(self._key, nonce_of(header), payload, _PAIR_AD + hdr)

    def sealer(self, state: SendState, epoch: int, peer: str | None) -> Sealer | None:
        return _crypto.frame_sealer(self._key, _PAIR_AD)

    def fast_open(
        self, key: Any, header: Header, frame: bytes, start: int, sender: str
    ) -> FastOpen | None:
        return FastOpen(_crypto.frame_opener(key, _PAIR_AD), b"", AEAD_TAG, math.inf)

    def open_key(self, header: Header, sender: str, now: float) -> Any:
        if header.epoch != 0:
            raise no_key(f"pair channels have no epoch {header.epoch}")
        return self._key

    def open(self, key: Any, header: Header, frame: bytes, start: int, sender: str) -> bytes:
        view = memoryview(frame)
        payload = _crypto.aead_open(key, nonce_of(header), view[start:], _PAIR_AD + view[:start])
        if payload is None:
            raise forged("AEAD does not open")
        return payload


class BusBox(SchemeCodec):
    def __init__(self, ctx: ChannelContext, kind: int = FrameKind.SECRETBOX) -> None:
        super().__init__(ctx, kind)
        self.signed = ctx.origin == "signed"
        self.overhead = AEAD_TAG + (SIGNATURE if self.signed else 0)

    def send_epoch(self, peer: str | None, reply_epoch: int | None) -> int:
        return self.ctx.epoch_for_sending().epoch

    def seal(
        self, state: SendState, header: Header, hdr: bytes, payload: bytes, peer: str | None
    ) -> bytes:
        keys = self.ctx.epoch_for_sending()
        if keys.secret is None:
            raise PolicyError(
                Problem(
                    f"this identity holds no group key of channel {self.ctx.channel!r} "
                    f"(epoch {keys.epoch})",
                    hint="rotate the channel's keys so that every member gets an entry",
                )
            )
        ciphertext = _crypto.aead_seal(keys.secret, nonce_of(header), payload, _BUS_AD + hdr)
        if not self.signed:
            return ciphertext
        signature = _crypto.sign_frame(
            self.ctx.key.signing_secret, self.signature_prefix(BUS_FRAME), hdr, ciphertext
        )
        return ciphertext + signature

    def sealer(self, state: SendState, epoch: int, peer: str | None) -> Sealer | None:
        secret = self.ctx.epoch_stamped(epoch).secret
        if secret is None:
            return None  # seal() says why
        seal_frame = _crypto.frame_sealer(secret, _BUS_AD)
        if not self.signed:
            return seal_frame
        signing, label = self.ctx.key.signing_secret, self.signature_prefix(BUS_FRAME)

        def seal(hdr: bytes, nonce: bytes, payload: bytes) -> bytes:
            framed = seal_frame(hdr, nonce, payload)
            return framed + _crypto.sign_frame(signing, label, framed)

        return seal

    def fast_open(
        self, key: Any, header: Header, frame: bytes, start: int, sender: str
    ) -> FastOpen | None:
        until = self.ctx.usable_until(header.epoch)
        if not self.signed:
            return FastOpen(_crypto.frame_opener(key, _BUS_AD), b"", self.overhead, until)
        # The AEAD first, as open() does; the plaintext is not released until the
        # signature names the sender.
        open_signed = _crypto.signed_after(
            _crypto.frame_opener(key, _BUS_AD, tail=SIGNATURE),
            self.ctx.identities[sender].sign_key,
            self.signature_prefix(BUS_FRAME),
        )
        return FastOpen(open_signed, b"", self.overhead, until)

    def open_key(self, header: Header, sender: str, now: float) -> Any:
        return self.ctx.epoch_for_receiving(header.epoch, now).secret

    def open(self, key: Any, header: Header, frame: bytes, start: int, sender: str) -> bytes:
        view = memoryview(frame)
        end = len(frame) - (SIGNATURE if self.signed else 0)
        # The AEAD tag first: it costs microseconds and rejects everyone without the
        # group key. It cannot tell members apart, so with origin: signed the signature
        # must then name the sender; until both pass, the plaintext is not released.
        payload = _crypto.aead_open(key, nonce_of(header), view[start:end], _BUS_AD + view[:start])
        if payload is None:
            raise forged("AEAD does not open")
        if self.signed and not _crypto.verify_frame(
            self.ctx.identities[sender].sign_key,
            view[end:],
            self.signature_prefix(BUS_FRAME),
            view[:end],
        ):
            raise forged("bad signature")
        return payload
