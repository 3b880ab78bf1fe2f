"""peerbox: AEAD under a key only two parties can compute (reqrep, survey responses).

``peer_key = H(X25519(x.box_sk, y_pk), "nngsec/v2/peer-key" || x.box_pk || y_pk ||
binding || epoch)`` (the binding names the deployment, the policy and the channel), where
``x`` is the client (reqrep) or the respondent (survey) and ``y_pk`` is the service key
(reqrep: the epoch's service key with several servers, else the server's own box key) or
the surveyor's box key (survey).

A reply travels under the same key as its request, with kind 0x85 and the request's
(key id, session, seq) in its header, all in the associated data: it cannot be reflected
as a request nor passed off as the reply to another request.
"""

from __future__ import annotations

import math
import struct
import threading
from typing import Any, TypeVar

from ..._errors import PolicyError, Problem, Rejected
from ..._formats._labels import PEER_KEY, PEERBOX_FRAME
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
from ._crypto import AEAD_TAG, kdf

_AD = PEERBOX_FRAME + b"\x00"  # the associated data: this, then the header bytes

T = TypeVar("T")


def _required(value: T | None, what: str) -> T:
    """``value``, which the codec always passes for replies (an explicit check, not an
    ``assert``: it must hold under ``python -O`` too)."""
    if value is None:
        raise RuntimeError(f"nngsec: {what}")
    return value


class _PeerBox(SchemeCodec):
    """Shared AEAD framing and a cache of derived peer keys."""

    overhead = AEAD_TAG

    def __init__(self, ctx: ChannelContext, kind: int) -> None:
        super().__init__(ctx, kind)
        # (side, peer, epoch) -> key. The side matters: an identity that is both client and
        # server (or surveyor and respondent) derives different keys with the same peer.
        self._keys: dict[tuple[str, str, int], bytes] = {}
        self._lock = threading.Lock()

    def _derive(self, secret: bytes, other: bytes, x_pk: bytes, y_pk: bytes, epoch: int) -> bytes:
        shared = _crypto.x25519(secret, other)
        if shared is None:
            raise forged("peer key agreement failed")
        return kdf(shared, PEER_KEY, x_pk, y_pk, self.ctx.binding, struct.pack(">I", epoch))

    def _cached(self, side: str, peer: str, epoch: int, derive: Any) -> bytes:
        key = self._keys.get((side, peer, epoch))
        if key is None:
            key = derive()
            with self._lock:
                self._keys[(side, peer, epoch)] = key
        return key

    def seal(
        self, state: SendState, header: Header, hdr: bytes, payload: bytes, peer: str | None
    ) -> bytes:
        try:
            key = self.send_key(peer, header.epoch)
        except Rejected:  # no usable key on our side: a configuration problem, not an attack
            raise PolicyError(
                Problem(
                    f"cannot derive a peer key for {peer or 'the service'!r} on channel "
                    f"{self.ctx.channel!r}",
                    hint="check the channel keys (nngsec rotate) and the peer's public key",
                )
            ) from None
        return _crypto.aead_seal(key, nonce_of(header), payload, _AD + hdr)

    def open(self, key: Any, header: Header, frame: bytes, start: int, sender: str) -> bytes:
        view = memoryview(frame)
        payload = _crypto.aead_open(key, nonce_of(header), view[start:], _AD + view[:start])
        if payload is None:
            raise forged("AEAD does not open")
        return payload

    def sealer(self, state: SendState, epoch: int, peer: str | None) -> Sealer | None:
        try:
            key = self.send_key(peer, epoch)
        except Rejected:
            return None  # seal() says why
        return _crypto.frame_sealer(key, _AD)

    def fast_open(
        self, key: Any, header: Header, frame: bytes, start: int, sender: str
    ) -> FastOpen | None:
        # With several servers a key belongs to an epoch of the service key, which retires.
        until = self.ctx.usable_until(header.epoch) if len(self.ctx.servers) > 1 else math.inf
        return FastOpen(_crypto.frame_opener(key, _AD), b"", AEAD_TAG, until)

    def send_key(self, peer: str | None, epoch: int) -> bytes:
        raise NotImplementedError


class Request(_PeerBox):
    """reqrep requests: client -> service."""

    def _service_public(self, epoch: int, now: float | None) -> bytes:
        if len(self.ctx.servers) > 1:  # several servers: the epoch's service key
            keys = self.ctx.keys.get(epoch, now) if self.ctx.keys is not None else None
            if keys is None or keys.public is None:
                raise no_key(f"service epoch {epoch} unknown or retired")
            return keys.public
        if epoch != 0:
            raise no_key(f"single-server service has no epoch {epoch}")
        (server,) = self.ctx.servers
        return self.ctx.identities[server].box_key

    def _client_key(self, epoch: int, now: float | None) -> bytes:
        """At a client: the key it shares with the service in ``epoch``."""
        own = self.ctx.key
        service = self._service_public(epoch, now)
        return self._cached(
            "client",
            "",
            epoch,
            lambda: self._derive(own.box_secret, service, own.public.box_key, service, epoch),
        )

    def _server_key(self, client: str, epoch: int, now: float | None) -> bytes:
        """At a server: the key it shares with ``client`` in ``epoch``."""
        if len(self.ctx.servers) > 1:
            keys = self.ctx.epoch_for_receiving(epoch, now)  # refuses an epoch not held
            if keys.secret is None or keys.public is None:
                raise no_key(f"service epoch {epoch} has no key pair here")
            secret, service = keys.secret, keys.public
        else:
            if epoch != 0:
                raise no_key(f"single-server service has no epoch {epoch}")
            secret, service = self.ctx.key.box_secret, self.ctx.key.public.box_key
        client_pk = self.ctx.identities[client].box_key
        return self._cached(
            "server",
            client,
            epoch,
            lambda: self._derive(secret, client_pk, client_pk, service, epoch),
        )

    def send_epoch(self, peer: str | None, reply_epoch: int | None) -> int:
        if len(self.ctx.servers) > 1:
            return self.ctx.epoch_for_sending().epoch
        return 0

    def send_key(self, peer: str | None, epoch: int) -> bytes:
        return self._client_key(epoch, None)

    def open_key(self, header: Header, sender: str, now: float) -> Any:
        return self._server_key(sender, header.epoch, now)


class Reply(Request):
    """reqrep replies: server -> client, under the request's peer key and epoch."""

    def send_epoch(self, peer: str | None, reply_epoch: int | None) -> int:
        return _required(reply_epoch, "a reply needs the epoch of its request")

    def send_key(self, peer: str | None, epoch: int) -> bytes:
        peer = _required(peer, "a reply needs its client")
        # The request was accepted under this epoch moments ago; a reply is allowed even
        # if the epoch retired in between, so no retirement check here.
        return self._server_key(peer, epoch, None)

    def open_key(self, header: Header, sender: str, now: float) -> Any:
        return self._client_key(header.epoch, now)


class SurveyResponse(_PeerBox):
    """survey responses: respondent -> the surveyor that asked."""

    def send_key(self, peer: str | None, epoch: int) -> bytes:
        peer = _required(peer, "a survey response needs its surveyor")
        own = self.ctx.key
        surveyor = self.ctx.identities[peer].box_key
        return self._cached(
            "respondent",
            peer,
            0,
            lambda: self._derive(own.box_secret, surveyor, own.public.box_key, surveyor, 0),
        )

    def open_key(self, header: Header, sender: str, now: float) -> Any:
        """At the surveyor: the key shared with the responding respondent."""
        if header.epoch != 0:
            raise no_key(f"survey responses have no epoch {header.epoch}")
        own = self.ctx.key
        respondent = self.ctx.identities[sender].box_key
        return self._cached(
            "surveyor",
            sender,
            0,
            lambda: self._derive(own.box_secret, respondent, respondent, own.public.box_key, 0),
        )
