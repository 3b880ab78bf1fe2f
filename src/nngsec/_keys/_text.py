"""Typed, versioned text encoding of key material (pure: no keys are used, no I/O).

Every key or signature written as text is ``<prefix><base64url without padding>`` where the
prefix names the type and format version (``nngsec-id-v1:``) so a person can tell what a
string is, and a parser can refuse the wrong kind with a specific message. Identity
strings carry a 4-byte BLAKE2b checksum so a truncated or mistyped paste is reported as
such instead of as "invalid key".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from .._labels import TEXT_CHECKSUM

__all__ = ["TextKeyError", "decode_text", "encode_text"]

CHECKSUM_SIZE = 4


class TextKeyError(ValueError):
    """The text is not a well-formed key string of the expected type (message says why)."""


def _checksum(prefix: str, raw: bytes) -> bytes:
    return hashlib.blake2b(
        prefix.encode() + raw, digest_size=CHECKSUM_SIZE, key=TEXT_CHECKSUM
    ).digest()


def encode_text(prefix: str, raw: bytes, *, checksum: bool = True) -> str:
    body = raw + (_checksum(prefix, raw) if checksum else b"")
    return prefix + base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii")


def decode_text(text: str, prefix: str, size: int, *, checksum: bool = True) -> bytes:
    """The ``size`` raw bytes in ``text``; :class:`TextKeyError` says what is wrong."""
    if not text.startswith(prefix):
        raise TextKeyError(f"expected a string starting with {prefix!r}")
    body = text[len(prefix) :]
    want = size + (CHECKSUM_SIZE if checksum else 0)
    want_chars = (want * 8 + 5) // 6
    if len(body) != want_chars:
        what = "truncated" if len(body) < want_chars else "too long"
        raise TextKeyError(
            f"{what}: {len(body)} characters after the prefix, expected {want_chars}"
        )
    try:
        if "+" in body or "/" in body:
            raise ValueError
        padded = body + "=" * (-len(body) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise TextKeyError("not base64url (characters A-Z a-z 0-9 - _)") from None
    if checksum:
        raw, check = raw[:size], raw[size:]
        if not hmac.compare_digest(check, _checksum(prefix, raw)):
            raise TextKeyError("checksum mismatch: the string was altered or mistyped")
    return raw
