"""Detached policy signatures: ``factory.yaml.sig`` covers the policy and its channel keys.

The signed message is::

    "nngsec/v1/policy-signature" || 0x00
      || BLAKE2b-256(policy file bytes)
      || 0x01 || BLAKE2b-256(channel-key file bytes)    (or 0x00 when there is none)

over the exact bytes on disk, so any change to either file, including rotating keys,
invalidates the signature until the admin signs again. The channel-key file must be
covered: whoever can replace it could make senders encrypt to a key of their choosing.

``factory.yaml.sig``::

    # nngsec policy signature
    # policy: factory (version 7); channel keys: factory.keys.json
    # signer: admin (key id 0f1e2d3c4b5a6978)
    nngsec-sig-v1:<base64url(signer key id 8 || Ed25519 signature 64)>
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from .._errors import PolicyError, Problem
from .._formats._atomic import write_atomic
from .._formats._labels import POLICY_SIGNATURE
from .._formats._text import TextKeyError, decode_text, encode_text
from .._keys._identity import KEY_ID_SIZE, IdentityKey, PublicIdentity

__all__ = [
    "SIGNATURE_PREFIX",
    "sign_files",
    "signed_message",
    "verify_signature",
    "verify_signature_bytes",
]

SIGNATURE_PREFIX = "nngsec-sig-v1:"


def signed_message(policy_bytes: bytes, keys_bytes: bytes | None) -> bytes:
    keys_part = (
        b"\x01" + hashlib.blake2b(keys_bytes, digest_size=32).digest()
        if keys_bytes is not None
        else b"\x00"
    )
    return (
        POLICY_SIGNATURE
        + b"\x00"
        + hashlib.blake2b(policy_bytes, digest_size=32).digest()
        + keys_part
    )


def sign_files(
    signature_path: Path,
    *,
    policy_bytes: bytes,
    keys_bytes: bytes | None,
    key: IdentityKey,
    comment: str,
) -> None:
    """Write the detached signature (atomically)."""
    signature = key.sign(signed_message(policy_bytes, keys_bytes))
    text = (
        "# nngsec policy signature\n"
        + "".join(f"# {line}\n" for line in comment.splitlines())
        + encode_text(SIGNATURE_PREFIX, key.key_id + signature, checksum=False)
        + "\n"
    )
    write_atomic(signature_path, text.encode())


def verify_signature(
    signature_path: Path,
    *,
    policy_bytes: bytes,
    keys_bytes: bytes | None,
    trusted: Mapping[str, PublicIdentity],
) -> str:
    """The name of the trusted signer whose valid signature in ``signature_path`` covers
    these bytes (see :func:`verify_signature_bytes`)."""
    where = str(signature_path)
    try:
        signature = signature_path.read_bytes()
    except FileNotFoundError:
        signature = None
    except OSError as error:
        raise PolicyError(Problem(f"cannot read the signature: {error}", where)) from None
    return verify_signature_bytes(
        signature, where, policy_bytes=policy_bytes, keys_bytes=keys_bytes, trusted=trusted
    )


def verify_signature_bytes(
    signature: bytes | None,
    where: str,
    *,
    policy_bytes: bytes,
    keys_bytes: bytes | None,
    trusted: Mapping[str, PublicIdentity],
) -> str:
    """The name of the trusted signer whose valid signature covers these bytes.

    ``signature`` is the content of the signature file (``None``: there is none), from a
    file or from a store; ``where`` names it in messages. Raises :class:`PolicyError` when
    the signature is missing, malformed, by an untrusted key, or does not match the files
    (modified after signing).
    """
    if signature is None:
        raise PolicyError(
            Problem(
                "the policy is not signed, and this keystore requires a trusted signature",
                where,
                hint="sign it: nngsec sign POLICY --key ADMIN.key",
            )
        )
    try:
        text = signature.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PolicyError(Problem(f"cannot read the signature: {error}", where)) from None
    lines = [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if len(lines) != 1:
        raise PolicyError(
            Problem(
                f"expected one signature line, found {len(lines)}",
                where,
                hint="re-create it with nngsec sign",
            )
        )
    number, line = lines[0]
    try:
        raw = decode_text(line, SIGNATURE_PREFIX, KEY_ID_SIZE + 64, checksum=False)
    except TextKeyError as error:
        raise PolicyError(
            Problem(f"malformed signature: {error}", where, number, 1, hint="re-sign the policy")
        ) from None
    key_id, signature = raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:]
    signer = next((n for n, k in trusted.items() if k.key_id == key_id), None)
    if signer is None:
        raise PolicyError(
            Problem(
                f"the policy is signed by key {key_id.hex()}, which this keystore does not trust",
                where,
                number,
                1,
                hint="pin the admin's key with nngsec trust ADMIN.pub --keystore DIR",
            )
        )
    try:
        VerifyKey(trusted[signer].sign_key).verify(
            signed_message(policy_bytes, keys_bytes), signature
        )
    except BadSignatureError:
        raise PolicyError(
            Problem(
                f"the signature by {signer!r} does not match the policy and its channel keys "
                "(modified after signing)",
                where,
                number,
                1,
                hint="restore the signed files, or have the admin review and sign again",
            )
        ) from None
    return signer
