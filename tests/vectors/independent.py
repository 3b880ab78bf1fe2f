"""An independent implementation of the v2 receive path and key material, for
cross-checking the vectors.

Nothing here imports nngsec: the header is parsed with ``struct`` from the spec's table,
BLAKE2b is CPython's ``hashlib`` (OpenSSL's, through pyca/cryptography, for the digest
of a frame signature), Ed25519/X25519/ChaCha20-Poly1305/Poly1305 are
pyca/cryptography, and what cryptography does not expose is written out here:
HChaCha20 from draft-irtf-cfrg-xchacha-03 section 2.2, and the Salsa20 core, HSalsa20
and XSalsa20 from "Extending the Salsa20 nonce" (Bernstein, 2008), for libsodium's
``crypto_box_seal`` (the channel-key entries); each is checked against a published test
value in tests/test_vectors.py. A mistake that nngsec makes consistently on both sides (a
wrong label, a swapped key order, the wrong bytes in the associated data, an entry
layout other than the spec's) makes these checks fail.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.poly1305 import Poly1305

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


def _salsa_quarter(s: list[int], a: int, b: int, c: int, d: int) -> None:
    s[b] ^= _rotl((s[a] + s[d]) & MASK, 7)
    s[c] ^= _rotl((s[b] + s[a]) & MASK, 9)
    s[d] ^= _rotl((s[c] + s[b]) & MASK, 13)
    s[a] ^= _rotl((s[d] + s[c]) & MASK, 18)


def _salsa_rounds(s: list[int]) -> list[int]:
    s = list(s)
    for _ in range(10):  # 20 rounds: a column round and a row round each time
        _salsa_quarter(s, 0, 4, 8, 12)
        _salsa_quarter(s, 5, 9, 13, 1)
        _salsa_quarter(s, 10, 14, 2, 6)
        _salsa_quarter(s, 15, 3, 7, 11)
        _salsa_quarter(s, 0, 1, 2, 3)
        _salsa_quarter(s, 5, 6, 7, 4)
        _salsa_quarter(s, 10, 11, 8, 9)
        _salsa_quarter(s, 15, 12, 13, 14)
    return s


def _salsa_state(key: bytes, block16: bytes) -> list[int]:
    k = struct.unpack("<8I", key)
    n = struct.unpack("<4I", block16)
    sigma = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)  # "expand 32-byte k"
    return [
        sigma[0], *k[0:4], sigma[1], *n, sigma[2], *k[4:8], sigma[3],
    ]  # fmt: skip


def hsalsa20(key: bytes, nonce16: bytes) -> bytes:
    s = _salsa_rounds(_salsa_state(key, nonce16))
    return struct.pack("<8I", *(s[i] for i in (0, 5, 10, 15, 6, 7, 8, 9)))


def salsa20_stream(key: bytes, nonce8: bytes, length: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < length:
        start = _salsa_state(key, nonce8 + struct.pack("<Q", counter))
        mixed = _salsa_rounds(start)
        out += struct.pack("<16I", *((x + y) & MASK for x, y in zip(mixed, start, strict=True)))
        counter += 1
    return out[:length]


def secretbox_open(key: bytes, nonce: bytes, box: bytes) -> bytes:
    """XSalsa20-Poly1305 (NaCl ``crypto_secretbox``, libsodium's "easy" layout: the tag
    first). Raises cryptography's InvalidSignature on a bad tag."""
    subkey = hsalsa20(key, nonce[:16])
    tag, ciphertext = box[:16], box[16:]
    stream = salsa20_stream(subkey, nonce[16:], 32 + len(ciphertext))
    Poly1305.verify_tag(stream[:32], ciphertext, tag)
    return bytes(c ^ k for c, k in zip(ciphertext, stream[32:], strict=True))


def box_seal_open(sealed: bytes, secret: bytes) -> bytes:
    """libsodium's ``crypto_box_seal_open``: the box is e_pk || crypto_box to ``pk`` with
    nonce BLAKE2b-192(e_pk || pk), and crypto_box's key is HSalsa20(X25519(sk, e_pk), 0)."""
    ephemeral = sealed[:32]
    public = x25519_public(secret)
    nonce = hashlib.blake2b(ephemeral + public, digest_size=24).digest()
    key = hsalsa20(x25519(secret, ephemeral), bytes(16))
    return secretbox_open(key, nonce, sealed[32:])


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
    def box_sk(self) -> bytes:
        return self.box.private_bytes_raw()

    @property
    def key_id(self) -> bytes:
        return hashlib.blake2b(
            self.sign_pk + self.box_pk, digest_size=8, key=b"nngsec/v1/key-id"
        ).digest()

    @property
    def text(self) -> str:
        """``nngsec-id-v1:`` || base64url(sign_pk || box_pk || checksum), the checksum being
        BLAKE2b-32 keyed with the text-checksum label over the prefix and the keys."""
        prefix = b"nngsec-id-v1:"
        raw = self.sign_pk + self.box_pk
        check = hashlib.blake2b(prefix + raw, digest_size=4, key=b"nngsec/v1/text-checksum")
        return (prefix + b64url(raw + check.digest())).decode()


def b64url(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


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
        return self.session + struct.pack(">Q", self.seq)


def parse(frame: bytes, pubsub: bool) -> Frame:
    topic = None
    at = 0
    if pubsub:
        at = frame.index(b"\x00") + 1
        topic = frame[: at - 1]
    version, kind, flags, length = frame[at], frame[at + 1], frame[at + 2], frame[at + 3]
    assert (version, flags) == (2, 0)
    at += 4
    channel = frame[at : at + length]
    at += length
    key_id, epoch, session, seq, _time = struct.unpack(">8sI16sQQ", frame[at : at + 44])
    at += 44
    if kind & 0x80:
        at += 32  # reply_to: key_id 8, session 16, seq 8
    return Frame(topic, kind, channel, key_id, epoch, session, seq, frame[:at], frame[at:])


def binding(deployment: bytes, policy: str, channel: bytes) -> bytes:
    return deployment + policy.encode() + b"\x00" + channel + b"\x00"


KIND_BYTE = {"group": b"g", "audience": b"a", "service": b"s"}


def open_channel_key_entry(
    sealed_text: str, me: Identity, deployment: bytes, policy: str, channel: str, epoch: int,
    kind: str,
) -> bytes:  # fmt: skip
    """The 32-byte secret in one channel-key entry, after checking every bound field."""
    plaintext = box_seal_open(unb64url(sealed_text), me.box_sk)
    expected = (
        b"nngsec/v2/channel-key\x00" + deployment + policy.encode() + b"\x00"
        + channel.encode() + b"\x00" + struct.pack(">I", epoch) + KIND_BYTE[kind]
    )  # fmt: skip
    assert plaintext[: len(expected)] == expected
    assert len(plaintext) == len(expected) + 32
    return plaintext[len(expected) :]


def kdf(secret: bytes, label: bytes, *parts: bytes) -> bytes:
    return h(secret, label + b"\x00" + b"".join(parts))


def verify_signature(public: bytes, message: bytes, signature: bytes) -> None:
    Ed25519PublicKey.from_public_bytes(public).verify(signature, message)


def sigmsg(label: bytes, bind: bytes, signed: bytes) -> bytes:
    """What a frame signature signs: ``label || 0x00 || BIND || BLAKE2b-512(signed)``. The
    digest is OpenSSL's BLAKE2b (through pyca/cryptography), not the ``hashlib`` one that
    nngsec hashes frames with."""
    digest = hashes.Hash(hashes.BLAKE2b(64))
    digest.update(signed)
    return label + b"\x00" + bind + digest.finalize()


def x25519(secret: X25519PrivateKey | bytes, public: bytes) -> bytes:
    if isinstance(secret, bytes):
        secret = X25519PrivateKey.from_private_bytes(secret)
    return secret.exchange(X25519PublicKey.from_public_bytes(public))


def x25519_public(secret: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()
