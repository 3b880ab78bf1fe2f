"""The deployment id: 16 random bytes, written as 22 base64url characters.

A policy's ``deployment:`` and its channel-key file carry it, and every key a channel
derives and every frame signature binds it (``docs/spec/wire-format.md``, "Bindings").
It is not a secret: it tells apart two deployments that happen to share a policy name,
a channel name and an identity, so that neither accepts the other's frames.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ._text import NonCanonicalError, b64url_decode, b64url_encode
from ._yaml import parse_yaml

__all__ = ["DEPLOYMENT_ID_SIZE", "decode_deployment_id", "new_deployment_id"]

DEPLOYMENT_ID_SIZE = 16
TEXT_LENGTH = 22  # ceil(16 * 8 / 6): the last character carries 4 bits that must be zero


def new_deployment_id(random: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh deployment id, as text that YAML reads back as that text unquoted.

    A few spellings would read as numbers (``0x`` and hex digits, or digits only, with a
    chance below 2^-40 together): those are drawn again, so the line written into a policy
    is always ``deployment: ID``.
    """
    while True:
        text = b64url_encode(random(DEPLOYMENT_ID_SIZE))
        if parse_yaml(f"deployment: {text}\n", "<deployment id>").data["deployment"] == text:
            return text


def decode_deployment_id(text: str) -> bytes:
    """The 16 bytes of ``text``; ``ValueError`` unless it is exactly what
    :func:`new_deployment_id` writes (so one id has one spelling)."""
    problem = f"expected {TEXT_LENGTH} base64url characters (A-Z a-z 0-9 - _)"
    if len(text) != TEXT_LENGTH:
        raise ValueError(f"got {len(text)} characters, {problem}")
    try:
        return b64url_decode(text)  # strict: one id has one spelling
    except NonCanonicalError:  # the last character's 4 unused bits were not zero
        raise ValueError(
            f"not the spelling nngsec writes: {problem}, the last one of AQgw"
        ) from None
    except ValueError:
        raise ValueError(f"got other characters, {problem}") from None
