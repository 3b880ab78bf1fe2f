"""Thin wrappers over the libsodium calls nngsec makes (through PyNaCl's bindings).

Failures come back as ``None``/``False`` rather than as PyNaCl's exceptions, so every
caller turns them into one opaque ``Rejected("forged")`` and nothing about which check
failed leaks into a message or a log.
"""

from __future__ import annotations

import hashlib

from nacl import exceptions as nacl_errors
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_scalarmult,
    crypto_scalarmult_base,
    crypto_sign_open,
)

__all__ = [
    "AEAD_TAG",
    "SIGNATURE",
    "aead_open",
    "aead_seal",
    "kdf",
    "verify",
    "x25519",
    "x25519_base",
]

AEAD_TAG = 16
SIGNATURE = 64
ZERO_NONCE = bytes(24)


def aead_seal(key: bytes, nonce: bytes, message: bytes, ad: bytes) -> bytes:
    return bytes(crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, nonce, key))


def aead_open(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes | None:
    """The plaintext, or ``None`` if the tag does not verify (nothing is released then)."""
    try:
        return bytes(crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, ad, nonce, key))
    except nacl_errors.CryptoError:
        return None


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification (libsodium rejects non-canonical and small-order inputs)."""
    try:
        crypto_sign_open(signature + message, public_key)
    except (nacl_errors.BadSignatureError, nacl_errors.ValueError, nacl_errors.TypeError):
        return False
    return True


def x25519(secret: bytes, public: bytes) -> bytes | None:
    """X25519, or ``None`` when the result is all zero (a low-order public key)."""
    try:
        return bytes(crypto_scalarmult(secret, public))
    except nacl_errors.RuntimeError:
        return None


def x25519_base(secret: bytes) -> bytes:
    return bytes(crypto_scalarmult_base(secret))


def kdf(secret: bytes, label: bytes, *parts: bytes) -> bytes:
    """``BLAKE2b-256(key=secret, label || 0x00 || parts...)`` (parts are fixed-length or
    0x00-terminated by the caller, so the encoding is unambiguous)."""
    return hashlib.blake2b(label + b"\x00" + b"".join(parts), digest_size=32, key=secret).digest()
