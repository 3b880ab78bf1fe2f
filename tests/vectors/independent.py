"""An independent implementation of the v1 receive path, for cross-checking the vectors.

Nothing here imports nngsec: the header is parsed with ``struct`` from the spec's table,
BLAKE2b is CPython's ``hashlib``, Ed25519/X25519/ChaCha20-Poly1305 are pyca/cryptography,
and HChaCha20 (which cryptography does not expose) is written out from
draft-irtf-cfrg-xchacha-03 section 2.2 and checked against its test vector. A mistake
that nngsec makes consistently on both sides (a wrong label, a swapped key order, the
wrong bytes in the associated data) makes these checks fail.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

MASK = 0xFFFFFFFF


def _rotl(value: int, count: int) -> int:
    return ((value << count) & MASK) | (value >> (32 - count))


def _quarter(s: list[int], a: int, b: int, c: int, d: int) -> None:
    s[a] = (s[a] + s[b]) & MASK
    s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & MASK
    s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & MASK
    s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & MASK
    s[b] = _rotl(s[b] ^ s[c], 7)


def hchacha20(key: bytes, nonce16: bytes) -> bytes:
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    s += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        _quarter(s, 0, 4, 8, 12)
        _quarter(s, 1, 5, 9, 13)
        _quarter(s, 2, 6, 10, 14)
        _quarter(s, 3, 7, 11, 15)
        _quarter(s, 0, 5, 10, 15)
        _quarter(s, 1, 6, 11, 12)
        _quarter(s, 2, 7, 8, 13)
        _quarter(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    """XChaCha20-Poly1305-IETF: raises cryptography's InvalidTag on a bad tag."""
    return ChaCha20Poly1305(hchacha20(key, nonce[:16])).decrypt(
        b"\x00" * 4 + nonce[16:], ciphertext, ad
    )


def h(key: bytes, message: bytes) -> bytes:
    return hashlib.blake2b(message, digest_size=32, key=key).digest()


@dataclass
class Identity:
    sign: Ed25519PrivateKey
    box: X25519PrivateKey

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        sign_seed = h(seed, b"nngsec/v1/identity/ed25519")
        box_secret = h(seed, b"nngsec/v1/identity/x25519")
        return cls(
            Ed25519PrivateKey.from_private_bytes(sign_seed),
            X25519PrivateKey.from_private_bytes(box_secret),
        )

    @property
    def sign_pk(self) -> bytes:
        return self.sign.public_key().public_bytes_raw()

    @property
    def box_pk(self) -> bytes:
        return self.box.public_key().public_bytes_raw()

    @property
    def key_id(self) -> bytes:
        return hashlib.blake2b(
            self.sign_pk + self.box_pk, digest_size=8, key=b"nngsec/v1/key-id"
        ).digest()


@dataclass
class Frame:
    topic: bytes | None
    kind: int
    channel: bytes
    key_id: bytes
    epoch: int
    session: bytes
    seq: int
    header: bytes  # every byte before the body
    body: bytes

    @property
    def nonce(self) -> bytes:
        return self.key_id + self.session + struct.pack(">Q", self.seq)


def parse(frame: bytes, pubsub: bool) -> Frame:
    topic = None
    at = 0
    if pubsub:
        at = frame.index(b"\x00") + 1
        topic = frame[: at - 1]
    version, kind, flags, length = frame[at], frame[at + 1], frame[at + 2], frame[at + 3]
    assert (version, flags) == (1, 0)
    at += 4
    channel = frame[at : at + length]
    at += length
    key_id, epoch, session, seq, _time = struct.unpack(">8sI8sQQ", frame[at : at + 36])
    at += 36
    if kind & 0x80:
        at += 24  # reply_to
    return Frame(topic, kind, channel, key_id, epoch, session, seq, frame[:at], frame[at:])


def binding(policy: str, channel: bytes) -> bytes:
    return policy.encode() + b"\x00" + channel + b"\x00"


def kdf(secret: bytes, label: bytes, *parts: bytes) -> bytes:
    return h(secret, label + b"\x00" + b"".join(parts))


def verify_signature(public: bytes, message: bytes, signature: bytes) -> None:
    Ed25519PublicKey.from_public_bytes(public).verify(signature, message)


def x25519(secret: X25519PrivateKey | bytes, public: bytes) -> bytes:
    if isinstance(secret, bytes):
        secret = X25519PrivateKey.from_private_bytes(secret)
    return secret.exchange(X25519PublicKey.from_public_bytes(public))


def x25519_public(secret: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()
