"""Detached policy signatures: ``factory.yaml.sig`` covers the policy and its channel keys,
and says which version of the policy it signed (format 2; ``docs/spec/key-files.md``).

The signed message is::

    "nngsec/v2/policy-signature" || 0x00
      || version (u64)                              the policy's version:
      || BLAKE2b-256(policy file bytes)
      || 0x01 || BLAKE2b-256(channel-key file bytes)
         (or 0x00 || 32 zero bytes when there is none)

over the exact bytes on disk, so any change to either file, including rotating keys,
invalidates the signature until the admin signs again. The channel-key file must be
covered: whoever can replace it could make senders encrypt to a key of their choosing.
The version and both digests are also written in the signature file itself, so that
``nngsec sign`` knows what it signed last (and refuses a changed policy at an unchanged
version), a node can say which file changed after signing, and a node verifies a set
before it parses any of it: the signature over the version the file names and the
digests of the raw bytes (:func:`verify_signed_bytes`), then, once the policy is
parsed, that its ``version:`` is the one signed (:func:`check_signed_version`).

``factory.yaml.sig``::

    # nngsec policy signature
    # policy: factory (version 7); channel keys: factory.keys.json
    # signer key id: 0f1e2d3c4b5a6978
    nngsec-sig-v2:<base64url(key id 8 || version 8 || policy digest 32
                             || keys flag 1 || keys digest 32 || signature 64 || checksum 4)>

Format 1 (``nngsec-sig-v1:``) signed no version; it is refused with a hint to sign again.

The same file, as bytes, is what ``nngsec publish`` uploads to a store (``PREFIX/policy.sig``)
and what a node reading that store verifies (:func:`verify_signature_bytes`).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from .._errors import PolicyError, Problem
from .._formats._atomic import write_atomic
from .._formats._labels import POLICY_SIGNATURE
from .._formats._limits import SIGNATURE_LIMIT
from .._formats._text import TextKeyError, decode_text, encode_text
from .._formats._yaml import read_text, text_from_bytes
from .._keys._identity import KEY_ID_SIZE, IdentityKey, PublicIdentity

__all__ = [
    "SIGNATURE_PREFIX",
    "Signature",
    "SignedVersion",
    "check_signed_version",
    "digest_of",
    "parse_signature",
    "read_signature",
    "sign_files",
    "signed_message",
    "verify_signature",
    "verify_signature_bytes",
    "verify_signed_bytes",
]

SIGNATURE_PREFIX = "nngsec-sig-v2:"
OLD_PREFIXES = ("nngsec-sig-v1:",)
DIGEST_SIZE = 32
SIGNATURE_SIZE = 64
MAX_VERSION = (1 << 63) - 1
_BODY = struct.Struct(f">{KEY_ID_SIZE}sQ{DIGEST_SIZE}sB{DIGEST_SIZE}s{SIGNATURE_SIZE}s")
_NO_KEYS = bytes(DIGEST_SIZE)
RESIGN = "sign it again: nngsec sign POLICY --key ADMIN.key"


def digest_of(data: bytes) -> bytes:
    """BLAKE2b-256 of a file's bytes, as signatures and keystore records take it."""
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).digest()


@dataclass(frozen=True)
class Signature:
    """A parsed signature file: who signed which version, over which file digests."""

    key_id: bytes
    version: int
    policy_digest: bytes
    keys_digest: bytes | None  # None: signed without a channel-key file
    signature: bytes
    where: str  # the file, or the store's key, it was read from
    line: int

    @property
    def message(self) -> bytes:
        return _message(self.version, self.policy_digest, self.keys_digest)


def _message(version: int, policy_digest: bytes, keys_digest: bytes | None) -> bytes:
    flag, keys = (b"\x00", _NO_KEYS) if keys_digest is None else (b"\x01", keys_digest)
    return POLICY_SIGNATURE + b"\x00" + struct.pack(">Q", version) + policy_digest + flag + keys


def signed_message(version: int, policy_bytes: bytes, keys_bytes: bytes | None) -> bytes:
    """What a signature of this policy version and these files signs."""
    keys_digest = digest_of(keys_bytes) if keys_bytes is not None else None
    return _message(version, digest_of(policy_bytes), keys_digest)


def sign_files(
    signature_path: Path,
    *,
    version: int,
    policy_bytes: bytes,
    keys_bytes: bytes | None,
    key: IdentityKey,
    comment: str,
) -> None:
    """Write the detached signature (atomically)."""
    if not 1 <= version <= MAX_VERSION:
        raise ValueError("a policy version is from 1 to 2**63 - 1")
    keys_digest = digest_of(keys_bytes) if keys_bytes is not None else None
    policy_digest = digest_of(policy_bytes)
    signature = key.sign(_message(version, policy_digest, keys_digest))
    body = _BODY.pack(
        key.key_id,
        version,
        policy_digest,
        0 if keys_digest is None else 1,
        keys_digest or _NO_KEYS,
        signature,
    )
    text = (
        "# nngsec policy signature\n"
        + "".join(f"# {line}\n" for line in comment.splitlines())
        + encode_text(SIGNATURE_PREFIX, body)
        + "\n"
    )
    write_atomic(signature_path, text.encode())


def read_signature(path: Path) -> Signature:
    """The signature in ``path``: its form only, nothing verified. Raises a placed
    :class:`PolicyError` when it is missing, unreadable, malformed or of format 1."""
    where = str(path)
    if not path.exists():
        raise PolicyError(
            Problem("the policy is not signed (no signature file)", where, hint=RESIGN)
        )
    text = read_text(
        path, what="signature", utf8_hint="re-create it with nngsec sign", limit=SIGNATURE_LIMIT
    )
    return _parse_text(text, where)


def parse_signature(data: bytes, where: str) -> Signature:
    """The signature whose file content is ``data`` (from a file or from a store; ``where``
    names it): its form only, nothing verified. Raises a placed :class:`PolicyError` when it
    is larger than a signature file can be, not UTF-8, holds private-key text, is malformed
    or of format 1."""
    text = text_from_bytes(
        data,
        where,
        what="signature",
        utf8_hint="re-create it with nngsec sign",
        limit=SIGNATURE_LIMIT,
    )
    return _parse_text(text, where)


def _parse_text(text: str, where: str) -> Signature:
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
    if line.startswith(OLD_PREFIXES):
        raise PolicyError(
            Problem(
                "a signature of format 1, which signs no policy version; this nngsec reads "
                "format 2 only",
                where,
                number,
                1,
                hint=RESIGN,
            )
        )
    try:
        raw = decode_text(line, SIGNATURE_PREFIX, _BODY.size)
    except TextKeyError as error:
        raise PolicyError(
            Problem(f"malformed signature: {error}", where, number, 1, hint=RESIGN)
        ) from None
    key_id, version, policy_digest, flag, keys_digest, signature = _BODY.unpack(raw)
    if flag not in (0, 1) or (flag == 0 and keys_digest != _NO_KEYS) or version < 1:
        raise PolicyError(
            Problem("malformed signature: invalid fields", where, number, 1, hint=RESIGN)
        )
    return Signature(
        key_id,
        version,
        policy_digest,
        keys_digest if flag else None,
        signature,
        where,
        number,
    )


def verify_signature(
    signature_path: Path,
    *,
    version: int,
    policy_bytes: bytes,
    keys_bytes: bytes | None,
    trusted: Mapping[str, PublicIdentity],
) -> str:
    """The name of the trusted signer whose valid signature in ``signature_path`` covers
    this policy version and these bytes (see :func:`verify_signature_bytes`)."""
    found = read_signature(signature_path) if signature_path.exists() else None
    signed = _verify(
        found,
        str(signature_path),
        policy_bytes=policy_bytes,
        keys_bytes=keys_bytes,
        trusted=trusted,
    )
    return check_signed_version(signed, version)


def verify_signature_bytes(
    signature: bytes | None,
    where: str,
    *,
    version: int,
    policy_bytes: bytes,
    keys_bytes: bytes | None,
    trusted: Mapping[str, PublicIdentity],
) -> str:
    """The name of the trusted signer whose valid signature covers this policy version
    and these bytes.

    ``signature`` is the content of the signature file (``None``: there is none), from a
    file or from a store; ``where`` names it in messages. Raises :class:`PolicyError` when
    the signature is missing, malformed or of format 1, by an untrusted key, not valid, for
    another version, or does not match the files (modified after signing).
    """
    signed = verify_signed_bytes(
        signature, where, policy_bytes=policy_bytes, keys_bytes=keys_bytes, trusted=trusted
    )
    return check_signed_version(signed, version)


@dataclass(frozen=True)
class SignedVersion:
    """A signature that verified over the raw bytes: who signed, and the version it signed
    (read from the signature file; the policy's own ``version:`` is not known yet)."""

    signer: str
    version: int
    where: str
    line: int


def verify_signed_bytes(
    signature: bytes | None,
    where: str,
    *,
    policy_bytes: bytes,
    keys_bytes: bytes | None,
    trusted: Mapping[str, PublicIdentity],
) -> SignedVersion:
    """Steps 1 to 4 of verifying (``docs/spec/key-files.md``), over the raw bytes, before
    either file is parsed: the signature is by a trusted signer, valid over the version it
    says it signed, and both digests are those of these bytes. A node then parses the
    policy and compares its ``version:`` (:func:`check_signed_version`). Raises what
    :func:`verify_signature_bytes` raises, but for another version."""
    found = parse_signature(signature, where) if signature is not None else None
    return _verify(found, where, policy_bytes=policy_bytes, keys_bytes=keys_bytes, trusted=trusted)


def check_signed_version(signed: SignedVersion, version: int) -> str:
    """Step 5: the signer, when the parsed policy's ``version`` is the version signed."""
    if signed.version != version:
        raise PolicyError(
            Problem(
                f"the signature by {signed.signer!r} is for version {signed.version}, but the "
                f"policy says version {version}",
                signed.where,
                signed.line,
                1,
                hint="have the admin sign the policy again",
            )
        )
    return signed.signer


def _verify(
    found: Signature | None,
    where: str,
    *,
    policy_bytes: bytes,
    keys_bytes: bytes | None,
    trusted: Mapping[str, PublicIdentity],
) -> SignedVersion:
    """``found`` (parsed from ``where``) if it verifies over these bytes; raises otherwise."""
    if found is None:
        raise PolicyError(
            Problem(
                "the policy is not signed, and this keystore requires a trusted signature",
                where,
                hint="sign it: nngsec sign POLICY --key ADMIN.key",
            )
        )
    line = found.line

    def refuse(message: str, hint: str) -> PolicyError:
        return PolicyError(Problem(message, where, line, 1, hint=hint))

    signer = next((n for n, k in trusted.items() if k.key_id == found.key_id), None)
    if signer is None:
        raise refuse(
            f"the policy is signed by key {found.key_id.hex()}, which this keystore does not trust",
            "pin the admin's key with nngsec trust ADMIN.pub --keystore DIR",
        )
    try:
        # The message holds the version the signature file says it signed: verified here,
        # compared with the policy's version: once the policy is parsed.
        VerifyKey(trusted[signer].sign_key).verify(found.message, found.signature)
    except BadSignatureError:
        raise refuse(
            f"the signature by {signer!r} is not valid (the signature file was altered)",
            "restore the signed files, or have the admin review and sign again",
        ) from None
    changed = []
    if digest_of(policy_bytes) != found.policy_digest:
        changed.append("the policy")
    keys_digest = digest_of(keys_bytes) if keys_bytes is not None else None
    if keys_digest != found.keys_digest:
        if keys_bytes is None:
            changed.append("its channel keys (removed)")
        elif found.keys_digest is None:
            changed.append("its channel keys (added)")
        else:
            changed.append("its channel keys")
    if changed:
        raise refuse(
            f"the signature by {signer!r} does not match {' and '.join(changed)} "
            "(modified after signing)",
            "restore the signed files, or have the admin review and sign again",
        )
    return SignedVersion(signer, found.version, where, line)
