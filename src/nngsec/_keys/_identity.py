"""Identity keys: one secret seed, an Ed25519 signing pair and an X25519 box pair.

The private half is a single 32-byte seed. Both key pairs are derived from it with keyed
BLAKE2b under distinct labels, so the signing key and the box key are independent (we never
convert an Ed25519 key to X25519) while a key file still holds one secret.

Text forms (see ``_text.py``)::

    nngsec-id-v1:<base64url(ed25519 public 32 || x25519 public 32 || checksum 4)>
    nngsec-secret-v1:<base64url(seed 32 || checksum 4)>

The key id is the first 8 bytes of BLAKE2b over both public keys: frames name their sender
by it, and the policy maps it back to an identity name.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from nacl.bindings import crypto_scalarmult_base
from nacl.signing import SigningKey

from .._formats._labels import IDENTITY_BOX_SECRET, IDENTITY_SIGN_SEED, KEY_ID
from .._formats._secrets import SECRET_MARKER, SECRET_PREFIX
from .._formats._text import TextKeyError, decode_text, encode_text

__all__ = [
    "KEY_ID_SIZE",
    "SECRET_PREFIX",
    "IdentityKey",
    "PublicIdentity",
    "TextKeyError",
    "key_id_of",
]

PUBLIC_PREFIX = "nngsec-id-v1:"
KEY_ID_SIZE = 8
SEED_SIZE = 32


def key_id_of(sign_key: bytes, box_key: bytes) -> bytes:
    return hashlib.blake2b(sign_key + box_key, digest_size=KEY_ID_SIZE, key=KEY_ID).digest()


@dataclass(frozen=True, slots=True)
class PublicIdentity:
    """The public half of an identity, as pasted into a policy."""

    sign_key: bytes
    box_key: bytes
    key_id: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.sign_key) != 32 or len(self.box_key) != 32:
            raise ValueError("public keys are 32 bytes each")
        object.__setattr__(self, "key_id", key_id_of(self.sign_key, self.box_key))

    @classmethod
    def from_text(cls, text: str) -> PublicIdentity:
        """Parse ``nngsec-id-v1:...``; :class:`TextKeyError` says precisely what is wrong."""
        if text.lower().startswith(SECRET_MARKER):
            raise TextKeyError("this is a PRIVATE key")
        raw = decode_text(text, PUBLIC_PREFIX, 64)
        return cls(raw[:32], raw[32:])

    def to_text(self) -> str:
        return encode_text(PUBLIC_PREFIX, self.sign_key + self.box_key)

    @property
    def fingerprint(self) -> str:
        """Short printable form of the key id (for logs and messages)."""
        return self.key_id.hex()


class IdentityKey:
    """A private identity: the seed and the two key pairs derived from it.

    ``repr()`` never shows key material.
    """

    __slots__ = ("_box_secret", "_seed", "_sign_secret", "_signing", "public")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_SIZE:
            raise ValueError("an identity seed is 32 bytes")
        self._seed = bytes(seed)
        sign_seed = hashlib.blake2b(IDENTITY_SIGN_SEED, digest_size=32, key=seed).digest()
        self._box_secret = hashlib.blake2b(IDENTITY_BOX_SECRET, digest_size=32, key=seed).digest()
        self._signing = SigningKey(sign_seed)
        self.public = PublicIdentity(
            bytes(self._signing.verify_key), crypto_scalarmult_base(self._box_secret)
        )
        self._sign_secret = sign_seed + self.public.sign_key

    @classmethod
    def generate(cls, random: Callable[[int], bytes] = os.urandom) -> IdentityKey:
        return cls(random(SEED_SIZE))

    @classmethod
    def from_text(cls, text: str) -> IdentityKey:
        return cls(decode_text(text, SECRET_PREFIX, SEED_SIZE))

    def to_text(self) -> str:
        return encode_text(SECRET_PREFIX, self._seed)

    @property
    def key_id(self) -> bytes:
        return self.public.key_id

    @property
    def box_secret(self) -> bytes:
        """The X25519 private key (for key agreement inside nngsec only)."""
        return self._box_secret

    @property
    def signing_secret(self) -> bytes:
        """libsodium's 64-byte Ed25519 secret key, ``seed || public key`` (for signing
        frames inside nngsec only: the schemes sign through ``_crypto``)."""
        return self._sign_secret

    def sign(self, message: bytes) -> bytes:
        """A detached 64-byte Ed25519 signature of ``message``."""
        return bytes(self._signing.sign(message).signature)

    def __repr__(self) -> str:
        return f"IdentityKey(key_id={self.public.fingerprint})"
