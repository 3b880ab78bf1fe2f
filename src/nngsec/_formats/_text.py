"""Typed, versioned text encoding of key material (pure: no keys are used, no I/O).

Every key or signature written as text is ``<prefix><base64url without padding>`` where the
prefix names the type and format version (``nngsec-id-v1:``) so a person can tell what a
string is, and a parser can refuse the wrong kind with a specific message. Identity
strings carry a 4-byte BLAKE2b checksum so a truncated or mistyped paste is reported as
such instead of as "invalid key".

Decoding is strict: a text decodes only if encoding its bytes gives the very same text.
Base64 of n bytes leaves 2 or 4 bits of its last character unused; a lenient decoder
ignores them, so four (or sixteen) spellings would decode to one key, and whatever
compares key strings (a revocation list, a duplicate check) would see different keys.
The format is specified in ``docs/spec/key-files.md``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from ._labels import TEXT_CHECKSUM

__all__ = [
    "NonCanonicalError",
    "TextKeyError",
    "b64url_decode",
    "b64url_encode",
    "decode_text",
    "encode_text",
    "has_checksum",
]

CHECKSUM_SIZE = 4


class TextKeyError(ValueError):
    """The text is not a well-formed key string of the expected type (message says why)."""


def b64url_encode(raw: bytes) -> str:
    """base64url without padding (RFC 4648 section 5), as every nngsec file writes it."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of unpadded base64url ``text``; ``ValueError`` for anything else
    (standard-alphabet ``+`` and ``/``, padding, whitespace, other characters), and for a
    text that is not the canonical encoding of its bytes (unused bits that are not zero)."""
    if "+" in text or "/" in text or "=" in text:
        raise ValueError("not base64url")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except binascii.Error:
        raise ValueError("not base64url") from None
    if b64url_encode(raw) != text:
        raise NonCanonicalError("not the canonical base64url of its bytes")
    return raw


class NonCanonicalError(ValueError):
    """Base64url whose last character carries bits that are not zero (another spelling
    of the same bytes): refused, so that one key has exactly one text."""


def has_checksum(prefix: str, raw: bytes, size: int) -> bool:
    """Whether ``raw`` is ``size`` bytes followed by their checksum under ``prefix``."""
    return len(raw) == size + CHECKSUM_SIZE and hmac.compare_digest(
        raw[size:], _checksum(prefix, raw[:size])
    )


def _checksum(prefix: str, raw: bytes) -> bytes:
    return hashlib.blake2b(
        prefix.encode() + raw, digest_size=CHECKSUM_SIZE, key=TEXT_CHECKSUM
    ).digest()


def encode_text(prefix: str, raw: bytes, *, checksum: bool = True) -> str:
    body = raw + (_checksum(prefix, raw) if checksum else b"")
    return prefix + b64url_encode(body)


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
        raw = b64url_decode(body)
    except NonCanonicalError:
        raise TextKeyError(
            "the last character is not the one nngsec writes for these bytes (the string was "
            "altered or mistyped)"
        ) from None
    except ValueError:
        raise TextKeyError("not base64url (characters A-Z a-z 0-9 - _)") from None
    if checksum:
        raw, check = raw[:size], raw[size:]
        if not hmac.compare_digest(check, _checksum(prefix, raw)):
            raise TextKeyError("checksum mismatch: the string was altered or mistyped")
    return raw
