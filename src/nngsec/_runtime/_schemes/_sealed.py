"""sealed: a sealed box to the channel's audience (pubsub, pipeline, surveys), with its
sender's proof of origin.

Per sending session and epoch the sender draws a content key and an ephemeral X25519
key, and wraps the content key to the epoch's audience public key. Every frame carries
the ephemeral key and the wrapped content key (so it opens alone), the payload under the
content key, and the proof of origin over everything before it:

- ``origin: signed`` (the default): the sender's Ed25519 signature. Any receiver, and
  anyone else with the policy, can check it; receivers cannot produce it.
- ``origin: mac``: one 16-byte MAC per identity of the epoch's audience, in the order of
  their names, each under a key derived from the X25519 keys of the sender and that
  receiver, over one digest of the frame. A receiver checks only its own. It cannot
  forge a frame to another receiver (it lacks their pairwise key), but it can make a
  frame that it alone would accept, so a MAC proves nothing to anyone else.

- Confidentiality: only holders of the audience secret (the receiving role) can unwrap.
  A sender that is not also a receiver holds only the public half.
- Origin: receivers can decrypt but neither sign nor MAC towards another receiver, so no
  receiver (and no other sender) can produce a frame accepted as this sender's.
- Cost: the receiver checks the origin on every frame (a signature: ~56 µs; its MAC: a
  BLAKE2b pass over the frame), then unwraps the content key once per (sender, session,
  epoch) and caches it; X25519 is not paid per message.
"""

from __future__ import annotations

import struct
import threading
from typing import Any

from ..._errors import PolicyError, Problem
from ..._formats._labels import SEALED_FRAME, SEALED_MAC, SEALED_MAC_KEY, SEALED_WRAP
from ..._keys._channel_keys import EpochKeys
from .._wire import Header
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
from ._crypto import AEAD_TAG, MAC_SIZE, SIGNATURE, ZERO_NONCE, kdf

EPHEMERAL = 32
WRAPPED = 32 + AEAD_TAG
FIXED = EPHEMERAL + WRAPPED + AEAD_TAG  # what every sealed body has besides the payload
CACHE_LIMIT = 4096
_AD = SEALED_FRAME + b"\x00"  # the associated data: this, the header, e_pk || wrapped
_NO_MAC = bytes(MAC_SIZE)  # the slot of a holder this policy has no usable key for


class Sealed(SchemeCodec):
    def __init__(self, ctx: ChannelContext, kind: int) -> None:
        super().__init__(ctx, kind)
        self.mac = ctx.origin == "mac"
        # The most a body can carry besides the payload (the socket's receive limit): on
        # origin: mac, a MAC per receiver of the policy or of an epoch held now.
        audience = max([len(ctx.receivers), *(len(e.holders) for e in self._epochs())])
        self.overhead = FIXED + (MAC_SIZE * audience if self.mac else SIGNATURE)
        self._content_keys: dict[tuple[bytes, bytes, int, bytes], bytes] = {}
        self._lock = threading.Lock()
        # origin: mac. Sender: the MAC keys of an epoch's audience, in its order (by the
        # audience's names; a key depends on sender and receiver only, not on the epoch).
        # Receiver: its position in an audience, and its MAC key with each sender.
        self._mac_keys_to: dict[tuple[str, ...], tuple[bytes | None, ...]] = {}
        self._positions: dict[tuple[str, ...], int] = {}
        self._mac_keys_from: dict[str, bytes] = {}

    def _epochs(self) -> tuple[EpochKeys, ...]:
        return self.ctx.keys.epochs if self.ctx.keys is not None else ()

    def overhead_for(self, header: Header) -> int:
        if not self.mac:
            return self.overhead
        keys = self.ctx.keys.get(header.epoch, None) if self.ctx.keys is not None else None
        # An epoch this node does not know has no audience here: the frame is refused as
        # no-key once the cheap checks pass.
        return FIXED + MAC_SIZE * (len(keys.holders) if keys is not None else 0)

    def _mac_key(self, shared: bytes | None, sender: bytes, receiver: bytes) -> bytes | None:
        """The key of MACs from ``sender`` to ``receiver`` (box public keys): directional,
        and bound to the deployment, policy and channel."""
        if shared is None:
            return None
        return kdf(shared, SEALED_MAC_KEY, sender, receiver, self.ctx.binding)

    def _wrap_key(
        self,
        shared: bytes,
        ephemeral: bytes,
        audience: bytes,
        epoch: int,
        key_id: bytes,
        session: bytes,
    ) -> bytes:
        return kdf(
            shared,
            SEALED_WRAP,
            ephemeral,
            audience,
            self.ctx.binding,
            struct.pack(">I", epoch),
            key_id,
            session,
        )

    def send_epoch(self, peer: str | None, reply_epoch: int | None) -> int:
        return self.ctx.epoch_for_sending().epoch

    def _session_material(
        self, state: SendState, key_id: bytes, session: bytes, epoch: int
    ) -> tuple[bytes, bytes]:
        """(ephemeral public || wrapped content key, content key) for this session+epoch."""
        keys = self.ctx.epoch_stamped(epoch)
        audience = keys.public
        # Keyed by the session (the wrap binds it, and a forked child restarts it) and by the
        # audience key, not only the epoch number: a session outlives policy switches (Node
        # watch), and material wrapped to another key under a re-made epoch must not be reused.
        cache_key = ("sealed", key_id, session, epoch, audience)
        cached: tuple[bytes, bytes] | None = state.cache.get(cache_key)
        if cached is not None:
            return cached
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
            self._wrap_key(shared, ephemeral, audience, epoch, key_id, session),
            ZERO_NONCE,
            content_key,
            b"",
        )
        material = (ephemeral + wrapped, content_key)
        state.cache[cache_key] = material
        return material

    def seal(
        self, state: SendState, header: Header, hdr: bytes, payload: bytes, peer: str | None
    ) -> bytes:
        prefix, content_key = self._session_material(
            state, header.key_id, header.session, header.epoch
        )
        ciphertext = _crypto.aead_seal(content_key, nonce_of(header), payload, _AD + hdr + prefix)
        if self.mac:
            proof = self._macs(header, hdr, prefix, ciphertext)
        else:
            # The header, prefix and ciphertext are hashed in place (SIGMSG: label, binding
            # and their BLAKE2b-512), not joined into a fresh concatenation first.
            secret, label = self.ctx.key.signing_secret, self.signature_prefix(SEALED_FRAME)
            proof = _crypto.sign_frame(secret, label, hdr, prefix, ciphertext)
        return b"".join((prefix, ciphertext, proof))

    def _macs(self, header: Header, hdr: bytes, prefix: bytes, ciphertext: bytes) -> bytes:
        """One MAC per holder of the frame's epoch, in their order, of one digest."""
        keys = self._keys_to(header.epoch)
        digest = _crypto.digest(SEALED_MAC, hdr, prefix, ciphertext)
        return b"".join(_NO_MAC if k is None else _crypto.mac(k, digest) for k in keys)

    def _keys_to(self, epoch: int) -> tuple[bytes | None, ...]:
        """The MAC keys towards the holders of ``epoch``, in their order."""
        holders = self.ctx.epoch_stamped(epoch).holders
        keys = self._mac_keys_to.get(holders)
        if keys is None:
            keys = self._mac_keys_to[holders] = tuple(map(self._key_to, holders))
        return keys

    def sealer(self, state: SendState, epoch: int, peer: str | None) -> Sealer | None:
        prefix, content_key = self._session_material(
            state, self.ctx.key.key_id, state.session, epoch
        )
        seal_frame = _crypto.frame_sealer(content_key, _AD)
        if self.mac:
            keys = self._keys_to(epoch)

            def seal_mac(hdr: bytes, nonce: bytes, payload: bytes) -> bytes:
                framed = seal_frame(hdr + prefix, nonce, payload)
                digest = _crypto.digest(SEALED_MAC, framed)
                macs = [_NO_MAC if k is None else _crypto.mac(k, digest) for k in keys]
                return b"".join((framed, *macs))

            return seal_mac
        secret, label = self.ctx.key.signing_secret, self.signature_prefix(SEALED_FRAME)

        def seal_signed(hdr: bytes, nonce: bytes, payload: bytes) -> bytes:
            framed = seal_frame(hdr + prefix, nonce, payload)
            return framed + _crypto.sign_frame(secret, label, framed)

        return seal_signed

    def fast_open(
        self, key: Any, header: Header, frame: bytes, start: int, sender: str
    ) -> FastOpen | None:
        body = start + EPHEMERAL + WRAPPED
        prefix = frame[start:body]
        content_key = self._content_keys.get((header.key_id, header.session, header.epoch, prefix))
        if content_key is None:
            return None
        until = self.ctx.usable_until(header.epoch)
        skip = EPHEMERAL + WRAPPED
        if self.mac:
            mac_key = self._mac_keys_from[sender]
            proof = MAC_SIZE * len(key.holders)
            mine = MAC_SIZE * self._positions[key.holders]
            open_macced = _crypto.frame_opener(content_key, _AD, skip=skip, tail=proof)

            def open_mac(frame: bytes, start: int, nonce_at: int) -> bytes | None:
                end = len(frame) - proof
                view = memoryview(frame)
                digest = _crypto.digest(SEALED_MAC, view[:end])
                if not _crypto.mac_matches(
                    mac_key, digest, view[end + mine : end + mine + MAC_SIZE]
                ):
                    return None
                return open_macced(frame, start, nonce_at)

            return FastOpen(open_mac, prefix, FIXED + proof, until)
        open_signed = _crypto.signed_after(  # a cached session: the AEAD first, as open()
            _crypto.frame_opener(content_key, _AD, skip=skip, tail=SIGNATURE),
            self.ctx.identities[sender].sign_key,
            self.signature_prefix(SEALED_FRAME),
        )
        return FastOpen(open_signed, prefix, self.overhead, until)

    def _key_to(self, holder: str) -> bytes | None:
        """The MAC key towards one holder; ``None`` for a name this policy has no usable
        key for (a holder it does not list, or a low-order key): its slot stays zero and
        that holder, if it exists, refuses the frame."""
        identity = self.ctx.identities.get(holder)
        if identity is None:
            return None
        own = self.ctx.key
        shared = _crypto.x25519(own.box_secret, identity.box_key)
        return self._mac_key(shared, own.public.box_key, identity.box_key)

    def open_key(self, header: Header, sender: str, now: float) -> Any:
        return self.ctx.epoch_for_receiving(header.epoch, now)

    def open(self, key: Any, header: Header, frame: bytes, start: int, sender: str) -> bytes:
        view = memoryview(frame)  # slices of it are read in place
        end = len(frame) - (MAC_SIZE * len(key.holders) if self.mac else SIGNATURE)
        body = start + EPHEMERAL + WRAPPED
        prefix = bytes(view[start:body])
        ciphertext = view[body:end]
        ad = _AD + view[:body]
        if self.mac:
            # Its MAC first, always: a few microseconds, and it refuses every frame that
            # this sender did not make for this receiver (outsiders, other senders, other
            # receivers) before any decryption or X25519 work.
            self._check_mac(key, view, end, sender)
        cache_key = (header.key_id, header.session, header.epoch, prefix)
        content_key = self._content_keys.get(cache_key)
        if content_key is not None:
            # The content key of this session is known: the AEAD tag is the cheapest
            # check, and nobody without the key can pass it. The signature still decides
            # who sent the frame before anything is released.
            payload = _crypto.aead_open(content_key, nonce_of(header), ciphertext, ad)
            if payload is None:
                raise forged("AEAD does not open")
            if not self.mac:
                self._verify(view, end, sender)
            return payload
        # A new session: the origin first (the MAC above, or the signature). It rejects
        # forgeries before any X25519 work, and it is what makes caching the unwrapped key
        # safe (only the true sender can have put these bytes there).
        if not self.mac:
            self._verify(view, end, sender)
        ephemeral = prefix[:EPHEMERAL]
        shared = _crypto.x25519(key.secret, ephemeral)
        if shared is None:
            raise forged("bad ephemeral key")
        wrap_key = self._wrap_key(
            shared, ephemeral, key.public, header.epoch, header.key_id, header.session
        )
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
        if not _crypto.verify_frame(
            self.ctx.identities[sender].sign_key,
            view[end:],
            self.signature_prefix(SEALED_FRAME),
            view[:end],
        ):
            raise forged("bad signature")

    def _check_mac(self, key: EpochKeys, view: memoryview, end: int, sender: str) -> None:
        """This receiver's MAC, at its place in the epoch's audience, under the key it
        shares with ``sender``."""
        holders = key.holders
        position = self._positions.get(holders)
        if position is None:
            if self.ctx.identity not in holders:  # an entry, but not listed: altered file
                raise no_key(f"{self.ctx.identity} is not in the audience of the frame's epoch")
            position = self._positions[holders] = holders.index(self.ctx.identity)
        mac_key = self._mac_keys_from.get(sender)
        if mac_key is None:
            own, other = self.ctx.key, self.ctx.identities[sender].box_key
            found = self._mac_key(_crypto.x25519(own.box_secret, other), other, own.public.box_key)
            if found is None:
                raise forged("no MAC key with this sender (a low-order key)")
            with self._lock:
                mac_key = self._mac_keys_from[sender] = found
        digest = _crypto.digest(SEALED_MAC, view[:end])
        at = end + MAC_SIZE * position
        if not _crypto.mac_matches(mac_key, digest, view[at : at + MAC_SIZE]):
            raise forged("bad MAC")
