"""The libsodium calls nngsec makes: the one place they are made.

Failures come back as ``None``/``False`` rather than as exceptions, so every caller turns
them into one opaque ``Rejected("forged")`` and nothing about which check failed leaks
into a message or a log.

Two routes lead to the same C functions of the same libsodium (the one PyNaCl ships):

- **direct** (preferred): PyNaCl's own compiled cffi module, ``nacl._sodium`` (its
  ``lib`` and ``ffi``), called with buffers prepared here. PyNaCl's public wrappers spend
  about 4.5 µs per AEAD call above libsodium's 1.8 µs (1 KiB) on argument checks with
  eagerly formatted messages, a zero-filled output buffer and a copy; the signature
  calls also build ``signature + message`` and a second copy of it. The module is
  private, but it is what every public binding calls, it has kept its name and layout
  since PyNaCl 1.0 (2015, the move to cffi 1.0), and its functions are libsodium's own C
  names and signatures (``src/bindings/*.h`` in PyNaCl), which libsodium keeps stable.
  PyNaCl declares no detached signature functions (``crypto_sign_detached`` /
  ``crypto_sign_verify_detached``; a pull request adding them, pyca/pynacl#498, was
  closed). So a signature is checked with ``crypto_sign_open``, which in libsodium *is*
  the detached check of the message that follows the signature in one buffer: we build
  ``signature || message`` once, in a reused buffer, and let it write its copy of the
  message into another reused buffer. Signing likewise builds the message once, at
  offset 64 of a reused buffer, for ``crypto_sign``.
- **pynacl** (fallback): PyNaCl's public bindings (``nacl.bindings``), as before.

The direct route is taken only if ``nacl._sodium`` imports, has every function used here,
and reproduces published known answers at import (XChaCha20-Poly1305 from
draft-irtf-cfrg-xchacha-03 A.3.1, Ed25519 from RFC 8032 7.1, X25519 from RFC 7748 5.2,
and the refusals that go with them). Anything else, including a PyNaCl that moved or
changed the module, falls back to the public bindings, which give the same bytes; the
tests check both routes against each other and against the same known answers.

Buffers: arguments may be ``bytes``, ``bytearray`` or ``memoryview`` (slices of a frame,
without copies). Every output is a fresh ``bytes``; the scratch buffers behind it are
reused and never handed out, so a 64 KiB frame costs no fresh pages.

The per-frame paths of the schemes take the AEAD as a *frame sealer* or *frame opener*
(:func:`frame_sealer`, :func:`frame_opener`): a function made once per session and key,
with the key checked, the label bound and every C function looked up, so that sealing or
opening one frame is one Python call around the C call.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Any

from nacl import bindings as _public
from nacl import exceptions as _nacl_errors

__all__ = [
    "AEAD_TAG",
    "MAC_SIZE",
    "SIGNATURE",
    "ZERO_NONCE",
    "Buffer",
    "FrameOpener",
    "FrameSealer",
    "aead_open",
    "aead_seal",
    "digest",
    "frame_opener",
    "frame_sealer",
    "kdf",
    "mac",
    "mac_matches",
    "route",
    "sign_frame",
    "signed_after",
    "use_route",
    "verify_frame",
    "x25519",
    "x25519_base",
]

logger = logging.getLogger(__name__)  # under "nngsec", like every logger of nngsec

Buffer = bytes | bytearray | memoryview
FrameSealer = Callable[[bytes, bytes, Buffer], bytes]
"""``seal(head, nonce, message)``: ``head`` followed by the AEAD of ``message`` with
``label || head`` as the associated data: a whole frame, assembled once."""
FrameOpener = Callable[[bytes, int, int], "bytes | None"]
"""``open(frame, start, nonce_at)``: the AEAD opening of ``frame[start + skip : len(frame)
- tail]`` (read in place) with the 24-byte nonce at ``nonce_at`` and ``label ||
frame[:start + skip]`` as the associated data; ``None`` if the tag does not verify."""

AEAD_TAG = 16
SIGNATURE = 64
MAC_SIZE = 16
ZERO_NONCE = bytes(24)
KEY_SIZE = 32
NONCE_SIZE = 24
SIGN_SECRET = 64  # libsodium's Ed25519 secret key: seed || public key
SCRATCH_KEEP = 2 << 20  # larger scratch buffers are used once, not kept
SCRATCH_POOL = 4  # scratch buffers kept for reuse (one per thread in use, and a spare)
SLICE_BELOW = 4096  # a shorter ciphertext is copied out of its frame: cheaper than a pointer


def _check(condition: bool, what: str) -> None:
    """Lengths the C functions rely on: a short buffer would be read past its end. Every
    caller passes fixed-size keys and nonces (a programming error otherwise, never
    hostile input), so this is a ValueError, not a rejection."""
    if not condition:
        raise ValueError(f"nngsec: {what}")


class _Route:
    """One way to the libsodium functions; the same answers either way."""

    name: str

    def aead_seal(self, key: bytes, nonce: bytes, message: Buffer, ad: Buffer) -> bytes:
        raise NotImplementedError

    def aead_open(self, key: bytes, nonce: bytes, ciphertext: Buffer, ad: Buffer) -> bytes | None:
        raise NotImplementedError

    def frame_sealer(self, key: bytes, label: bytes) -> FrameSealer:
        """See :data:`FrameSealer`."""
        seal = self.aead_seal

        def seal_frame(head: bytes, nonce: bytes, message: Buffer) -> bytes:
            return head + seal(key, nonce, message, label + head)

        return seal_frame

    def frame_opener(self, key: bytes, label: bytes, skip: int = 0, tail: int = 0) -> FrameOpener:
        """See :data:`FrameOpener`."""
        open_ = self.aead_open

        def open_frame(frame: bytes, start: int, nonce_at: int) -> bytes | None:
            begin = start + skip
            return open_(
                key,
                frame[nonce_at : nonce_at + NONCE_SIZE],
                memoryview(frame)[begin : len(frame) - tail],
                label + frame[:begin],
            )

        return open_frame

    def sign(self, secret: bytes, parts: tuple[Buffer, ...]) -> bytes:
        raise NotImplementedError

    def verify(self, public: bytes, signature: Buffer, parts: tuple[Buffer, ...]) -> bool:
        raise NotImplementedError

    def x25519(self, secret: bytes, public: bytes) -> bytes | None:
        raise NotImplementedError

    def x25519_base(self, secret: bytes) -> bytes:
        raise NotImplementedError


class _PublicRoute(_Route):
    """PyNaCl's public bindings: they take ``bytes`` only, and allocate per call."""

    name = "pynacl"

    def aead_seal(self, key: bytes, nonce: bytes, message: Buffer, ad: Buffer) -> bytes:
        return bytes(
            _public.crypto_aead_xchacha20poly1305_ietf_encrypt(
                bytes(message), bytes(ad), nonce, key
            )
        )

    def aead_open(self, key: bytes, nonce: bytes, ciphertext: Buffer, ad: Buffer) -> bytes | None:
        if len(ciphertext) < AEAD_TAG:  # PyNaCl raises ValueError on these
            return None
        try:
            return bytes(
                _public.crypto_aead_xchacha20poly1305_ietf_decrypt(
                    bytes(ciphertext), bytes(ad), nonce, key
                )
            )
        except _nacl_errors.CryptoError:
            return None

    def sign(self, secret: bytes, parts: tuple[Buffer, ...]) -> bytes:
        return bytes(_public.crypto_sign(b"".join(parts), secret)[:SIGNATURE])

    def verify(self, public: bytes, signature: Buffer, parts: tuple[Buffer, ...]) -> bool:
        if len(signature) != SIGNATURE:  # else a longer "signature" eats into the message
            return False
        try:
            _public.crypto_sign_open(bytes(signature) + b"".join(parts), public)
        except (_nacl_errors.BadSignatureError, _nacl_errors.ValueError, _nacl_errors.TypeError):
            return False
        return True

    def x25519(self, secret: bytes, public: bytes) -> bytes | None:
        try:
            return bytes(_public.crypto_scalarmult(secret, public))
        except _nacl_errors.RuntimeError:  # an all-zero result: a low-order public key
            return None

    def x25519_base(self, secret: bytes) -> bytes:
        return bytes(_public.crypto_scalarmult_base(secret))


class _DirectRoute(_Route):
    """PyNaCl's cffi module, called with buffers prepared here.

    Scratch buffers come from a pool shared by the threads (``list.pop`` and ``append``
    are single steps under the GIL) and are off it while in use, so a call that
    interrupts another (a signal handler sealing a frame) or runs beside it in another
    thread gets a buffer of its own instead of overwriting a message being verified.
    """

    name = "direct"

    def __init__(self) -> None:
        from nacl._sodium import ffi, lib  # private: anything wrong here means fallback

        self._null = ffi.NULL
        self._new = ffi.new
        self._from_buffer = ffi.from_buffer
        self._memmove = ffi.memmove
        self._buffer = ffi.buffer
        self._unpack = ffi.unpack  # of a char[]: bytes
        self._encrypt = lib.crypto_aead_xchacha20poly1305_ietf_encrypt
        self._decrypt = lib.crypto_aead_xchacha20poly1305_ietf_decrypt
        self._sign = lib.crypto_sign
        self._sign_open = lib.crypto_sign_open
        self._scalarmult = lib.crypto_scalarmult
        self._scalarmult_base = lib.crypto_scalarmult_base
        self._pool: list[Any] = []

    # -- buffers ----------------------------------------------------------------------
    def _fresh(self, size: int) -> Any:
        return self._new("char[]", max(4096, 1 << (size - 1).bit_length()))

    def _take(self, size: int) -> Any:
        """A scratch buffer of at least ``size`` bytes, the caller's own until given back."""
        try:
            buffer = self._pool.pop()
        except IndexError:
            return self._fresh(size)
        return buffer if len(buffer) >= size else self._fresh(size)

    def _give_back(self, buffer: Any) -> None:
        if len(buffer) <= SCRATCH_KEEP and len(self._pool) < SCRATCH_POOL:
            self._pool.append(buffer)

    def _pointer(self, data: Buffer) -> Any:
        """``bytes`` go to C as they are; other buffers through ``ffi.from_buffer``."""
        return data if type(data) is bytes else self._from_buffer(data)

    def _assemble(self, target: Any, offset: int, parts: tuple[Buffer, ...]) -> int:
        """Copy ``parts`` one after the other into ``target`` from ``offset``; their length."""
        memmove = self._memmove
        at = offset
        for part in parts:
            size = len(part)
            memmove(target + at, part, size)
            at += size
        return at - offset

    # -- the calls ----------------------------------------------------------------------
    def aead_seal(self, key: bytes, nonce: bytes, message: Buffer, ad: Buffer) -> bytes:
        _check(len(key) == KEY_SIZE and len(nonce) == NONCE_SIZE, "AEAD key or nonce size")
        size = len(message) + AEAD_TAG
        out = self._take(size)
        self._encrypt(
            out,
            self._null,
            self._pointer(message),
            len(message),
            self._pointer(ad),
            len(ad),
            self._null,
            nonce,
            key,
        )
        sealed: bytes = self._unpack(out, size)
        self._give_back(out)
        return sealed

    def aead_open(self, key: bytes, nonce: bytes, ciphertext: Buffer, ad: Buffer) -> bytes | None:
        _check(len(key) == KEY_SIZE and len(nonce) == NONCE_SIZE, "AEAD key or nonce size")
        size = len(ciphertext) - AEAD_TAG
        if size < 0:
            return None
        out = self._take(size or 1)
        failed = self._decrypt(
            out,
            self._null,
            self._null,
            self._pointer(ciphertext),
            len(ciphertext),
            self._pointer(ad),
            len(ad),
            nonce,
            key,
        )
        # On failure libsodium writes nothing into ``out`` (it checks the tag before it
        # decrypts), and nothing of it is returned.
        opened: bytes | None = None if failed else self._unpack(out, size)
        self._give_back(out)
        return opened

    # -- the frame paths: one Python call around the C call ------------------------------
    # Everything that is the same for each frame of a session (the key and its check,
    # the label, the C functions, the pool) is bound once, in the closure; per frame there
    # remain the bounds the C call relies on, a pooled buffer, and one copy out.
    def frame_sealer(self, key: bytes, label: bytes) -> FrameSealer:
        _check(len(key) == KEY_SIZE, "AEAD key size")
        encrypt, null, memmove, unpack = self._encrypt, self._null, self._memmove, self._unpack
        pointer, fresh, pool = self._pointer, self._fresh, self._pool

        def seal_frame(head: bytes, nonce: bytes, message: Buffer) -> bytes:
            # head || ciphertext || tag in one buffer, copied out once; label || head is
            # the associated data. (_take and _give_back, inline.)
            if len(nonce) != NONCE_SIZE:
                raise ValueError("nngsec: AEAD nonce size")
            at, size = len(head), len(message)
            total = at + size + AEAD_TAG
            try:
                out = pool.pop()
            except IndexError:
                out = fresh(total)
            if len(out) < total:
                out = fresh(total)
            memmove(out, head, at)
            ad = label + head
            encrypt(out + at, null, pointer(message), size, ad, len(ad), null, nonce, key)
            framed: bytes = unpack(out, total)
            if len(pool) < SCRATCH_POOL and len(out) <= SCRATCH_KEEP:
                pool.append(out)
            return framed

        return seal_frame

    def frame_opener(self, key: bytes, label: bytes, skip: int = 0, tail: int = 0) -> FrameOpener:
        _check(len(key) == KEY_SIZE and skip >= 0 and tail >= 0, "AEAD key size or frame layout")
        decrypt, null, unpack = self._decrypt, self._null, self._unpack
        from_buffer, fresh, pool = self._from_buffer, self._fresh, self._pool

        def open_frame(frame: bytes, start: int, nonce_at: int) -> bytes | None:
            begin, end = start + skip, len(frame) - tail
            size = end - begin - AEAD_TAG
            # The nonce lies in the header, before the ciphertext: C reads 24 bytes there.
            if nonce_at < 0 or nonce_at > begin - NONCE_SIZE:
                raise ValueError("nngsec: AEAD nonce outside the frame's head")
            if size < 0:
                return None
            # A short ciphertext is sliced out (a small copy); a long one is read in place.
            ciphertext = frame[begin:end] if size < SLICE_BELOW else from_buffer(frame) + begin
            ad = label + frame[:begin]
            # A buffer off the shared pool (pop is one step under the GIL: no other call
            # can hold it meanwhile), or a fresh one. (_take and _give_back, inline.)
            try:
                out = pool.pop()
            except IndexError:
                out = fresh(size or 1)
            if len(out) < size:
                out = fresh(size)
            failed = decrypt(
                out,
                null,
                null,
                ciphertext,
                end - begin,
                ad,
                len(ad),
                frame[nonce_at : nonce_at + NONCE_SIZE],
                key,
            )
            # On failure libsodium writes nothing into ``out`` (it checks the tag before it
            # decrypts), and nothing of it is returned.
            opened: bytes | None = None if failed else unpack(out, size)
            if len(pool) < SCRATCH_POOL and len(out) <= SCRATCH_KEEP:
                pool.append(out)
            return opened

        return open_frame

    def sign(self, secret: bytes, parts: tuple[Buffer, ...]) -> bytes:
        _check(len(secret) == SIGN_SECRET, "Ed25519 secret key size")
        size = sum(map(len, parts))
        signed = self._take(SIGNATURE + size)
        self._assemble(signed, SIGNATURE, parts)
        # crypto_sign moves the message to offset 64 (it is already there: memmove of a
        # buffer onto itself) and writes the signature before it.
        length = self._new("unsigned long long *")
        self._sign(signed, length, signed + SIGNATURE, size, secret)
        signature = self._buffer(signed, SIGNATURE)[:]
        self._give_back(signed)
        return signature  # type: ignore[no-any-return]

    def verify(self, public: bytes, signature: Buffer, parts: tuple[Buffer, ...]) -> bool:
        _check(len(public) == KEY_SIZE, "Ed25519 public key size")
        if len(signature) != SIGNATURE:
            return False
        size = sum(map(len, parts))
        signed = self._take(SIGNATURE + size)
        self._memmove(signed, signature, SIGNATURE)
        self._assemble(signed, SIGNATURE, parts)
        out = self._take(size or 1)
        length = self._new("unsigned long long *")
        good: bool = self._sign_open(out, length, signed, SIGNATURE + size, public) == 0
        self._give_back(out)
        self._give_back(signed)
        return good

    def x25519(self, secret: bytes, public: bytes) -> bytes | None:
        _check(len(secret) == KEY_SIZE and len(public) == KEY_SIZE, "X25519 key size")
        out = self._new("unsigned char[]", KEY_SIZE)
        if self._scalarmult(out, secret, public) != 0:  # all-zero: a low-order point
            return None
        return self._buffer(out, KEY_SIZE)[:]  # type: ignore[no-any-return]

    def x25519_base(self, secret: bytes) -> bytes:
        _check(len(secret) == KEY_SIZE, "X25519 key size")
        out = self._new("unsigned char[]", KEY_SIZE)
        self._scalarmult_base(out, secret)
        return self._buffer(out, KEY_SIZE)[:]  # type: ignore[no-any-return]


# -- known answers: a route must reproduce them before it is used ------------------------
# draft-irtf-cfrg-xchacha-03, A.3.1 (AEAD_XChaCha20_Poly1305)
_AEAD_KEY = bytes(range(0x80, 0xA0))
_AEAD_NONCE = bytes(range(0x40, 0x58))
_AEAD_AD = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
_AEAD_MESSAGE = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
    b"future, sunscreen would be it."
)
_AEAD_SEALED = bytes.fromhex(
    "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
    "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
    "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
    "21f9664c97637da9768812f615c68b13b52e"
    "c0875924c1c7987947deafd8780acf49"
)
# RFC 8032, 7.1, TEST 2 (one-byte message); the secret key is seed || public key
_SIGN_SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
_SIGN_PUBLIC = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
_SIGN_MESSAGE = bytes.fromhex("72")
_SIGNATURE = bytes.fromhex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
)
# RFC 7748, 5.2, the first X25519 test
_X_SCALAR = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
_X_POINT = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
_X_RESULT = bytes.fromhex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")


def known_answers(candidate: _Route) -> list[str]:
    """What ``candidate`` gets wrong of the published answers (empty: nothing)."""
    wrong = []
    sealed = candidate.aead_seal(_AEAD_KEY, _AEAD_NONCE, _AEAD_MESSAGE, _AEAD_AD)
    if sealed != _AEAD_SEALED:
        wrong.append("XChaCha20-Poly1305 encryption")
    if candidate.aead_open(_AEAD_KEY, _AEAD_NONCE, memoryview(_AEAD_SEALED), _AEAD_AD) != (
        _AEAD_MESSAGE
    ):
        wrong.append("XChaCha20-Poly1305 decryption")
    tampered = bytearray(_AEAD_SEALED)
    tampered[-1] ^= 1
    if candidate.aead_open(_AEAD_KEY, _AEAD_NONCE, tampered, _AEAD_AD) is not None:
        wrong.append("XChaCha20-Poly1305 accepts a bad tag")
    # The frame paths: the same answer with the associated data split in label and head.
    label, head = _AEAD_AD[:4], _AEAD_AD[4:]
    framed = candidate.frame_sealer(_AEAD_KEY, label)(head, _AEAD_NONCE, _AEAD_MESSAGE)
    if framed != head + _AEAD_SEALED:
        wrong.append("XChaCha20-Poly1305 framed encryption")
    # A frame that carries its nonce in its head, as nngsec's frames do, opened with the
    # opener's skip (bytes of the head after ``start``) and tail (bytes after the tag).
    head = b"hdr" + _AEAD_NONCE + b"sk"
    frame = candidate.frame_sealer(_AEAD_KEY, label)(head, _AEAD_NONCE, _AEAD_MESSAGE) + b"tl"
    start = len(head) - 2
    if frame[len(head) : -2] != candidate.aead_seal(
        _AEAD_KEY, _AEAD_NONCE, _AEAD_MESSAGE, label + head
    ):
        wrong.append("XChaCha20-Poly1305 framed encryption of a frame")
    opener = candidate.frame_opener(_AEAD_KEY, label, skip=2, tail=2)
    if opener(frame, start, 3) != _AEAD_MESSAGE:
        wrong.append("XChaCha20-Poly1305 decryption in place")
    for flipped in (0, start, len(head), len(frame) - 3):  # head, skipped, body, tag
        bad = bytearray(frame)
        bad[flipped] ^= 1
        if opener(bytes(bad), start, 3) is not None:
            wrong.append("XChaCha20-Poly1305 in place accepts a changed frame")
    secret = _SIGN_SEED + _SIGN_PUBLIC
    if candidate.sign(secret, (_SIGN_MESSAGE,)) != _SIGNATURE:
        wrong.append("Ed25519 signing")
    if not candidate.verify(_SIGN_PUBLIC, _SIGNATURE, (_SIGN_MESSAGE,)):
        wrong.append("Ed25519 verification")
    if candidate.verify(_SIGN_PUBLIC, _SIGNATURE, (b"\x73",)):
        wrong.append("Ed25519 accepts another message")
    if candidate.x25519(_X_SCALAR, _X_POINT) != _X_RESULT:
        wrong.append("X25519")
    if candidate.x25519(_X_SCALAR, bytes(32)) is not None:
        wrong.append("X25519 accepts a low-order point")
    if candidate.x25519_base(_SIGN_SEED) != _public.crypto_scalarmult_base(_SIGN_SEED):
        wrong.append("X25519 base point")
    return wrong


def _direct() -> _Route:
    """The direct route, or ``ImportError``/``AttributeError``/``RuntimeError`` saying why not."""
    candidate = _DirectRoute()
    wrong = known_answers(candidate)
    if wrong:
        raise RuntimeError("wrong known answers: " + ", ".join(wrong))
    return candidate


_PUBLIC_ROUTE = _PublicRoute()
_active: _Route = _PUBLIC_ROUTE
fallback_reason: str | None = None  # why the direct route is not in use, if it is not


def use_route(name: str = "direct") -> str:
    """Use route ``name`` ("direct" or "pynacl"), falling back to "pynacl" when the direct
    route cannot be built or gets a known answer wrong; the route now in use."""
    global _active, fallback_reason
    if name == _PUBLIC_ROUTE.name:
        _active, fallback_reason = _PUBLIC_ROUTE, "asked for"
        return _active.name
    if name != _DirectRoute.name:
        raise ValueError(f"nngsec: no crypto route {name!r}")
    try:
        _active, fallback_reason = _direct(), None
    except Exception as error:  # any failure of a private API means: use the public one
        _active, fallback_reason = _PUBLIC_ROUTE, f"{type(error).__name__}: {error}"
        logger.debug("libsodium through PyNaCl's public bindings (%s)", fallback_reason)
    return _active.name


def route() -> str:
    """The route in use: "direct" or "pynacl"."""
    return _active.name


use_route()


# -- what the schemes call ---------------------------------------------------------------
def aead_seal(key: bytes, nonce: bytes, message: Buffer, ad: Buffer) -> bytes:
    """XChaCha20-Poly1305-IETF: the ciphertext followed by its 16-byte tag."""
    return _active.aead_seal(key, nonce, message, ad)


def aead_open(key: bytes, nonce: bytes, ciphertext: Buffer, ad: Buffer) -> bytes | None:
    """The plaintext, or ``None`` if the tag does not verify (nothing is released then)."""
    return _active.aead_open(key, nonce, ciphertext, ad)


def frame_sealer(key: bytes, label: bytes) -> FrameSealer:
    """The sealer of the frames of one session under ``key`` (see :data:`FrameSealer`)."""
    return _active.frame_sealer(key, label)


def frame_opener(key: bytes, label: bytes, skip: int = 0, tail: int = 0) -> FrameOpener:
    """The opener of the frames of one session under ``key`` (see :data:`FrameOpener`):
    ``skip`` bytes after ``start`` are associated data too (a sealed frame's wrapped key),
    ``tail`` bytes at the end are not the AEAD's (a signature, MACs)."""
    return _active.frame_opener(key, label, skip, tail)


def sign_frame(secret: bytes, prefix: bytes, *parts: Buffer) -> bytes:
    """The 64-byte Ed25519 signature of ``prefix || BLAKE2b-512(parts...)``, with
    libsodium's 64-byte secret key (seed || public key).

    The frame's bytes (``parts``, read in place) are hashed once, and Ed25519 signs the
    short message that results. Pure Ed25519 over the frame itself would hash it twice
    with SHA-512 to sign and once more to verify, and copy it into a buffer each time. At
    64 KiB this signs about 3x and verifies about 1.4x as fast; at 1 KiB and below it makes
    no measurable difference (``benchmarks/codec.py``). This relies on BLAKE2b-512's
    collision resistance (256 bits, above Ed25519's 128), as minisign's prehashed
    signatures do; ``prefix`` (label, 0x00, binding) is outside the digest, so the signed
    message still starts with the label.
    """
    return _active.sign(secret, (prefix, _frame_digest(parts)))


def verify_frame(public: bytes, signature: Buffer, prefix: bytes, *parts: Buffer) -> bool:
    """Whether ``signature`` is ``public``'s :func:`sign_frame` of ``parts`` under
    ``prefix`` (libsodium rejects non-canonical signatures and small-order keys)."""
    return _active.verify(public, signature, (prefix, _frame_digest(parts)))


def signed_after(open_frame: FrameOpener, public: bytes, prefix: bytes) -> FrameOpener:
    """``open_frame`` (the AEAD, the cheaper check, first), then the frame signature of
    ``public`` over everything before the frame's last 64 bytes: the plaintext is released
    only when both pass, ``None`` otherwise."""

    def open_signed(frame: bytes, start: int, nonce_at: int) -> bytes | None:
        payload = open_frame(frame, start, nonce_at)
        if payload is None:
            return None
        view, end = memoryview(frame), len(frame) - SIGNATURE
        return payload if verify_frame(public, view[end:], prefix, view[:end]) else None

    return open_signed


def _frame_digest(parts: tuple[Buffer, ...]) -> bytes:
    """``BLAKE2b-512(parts...)``, unkeyed: 64 bytes. hashlib releases the GIL while it
    hashes a large part, so verify threads hash in parallel too."""
    if len(parts) == 1:
        return hashlib.blake2b(parts[0]).digest()
    state = hashlib.blake2b()
    for part in parts:
        state.update(part)
    return state.digest()


def x25519(secret: bytes, public: bytes) -> bytes | None:
    """X25519, or ``None`` when the result is all zero (a low-order public key)."""
    return _active.x25519(secret, public)


def x25519_base(secret: bytes) -> bytes:
    return _active.x25519_base(secret)


def kdf(secret: bytes, label: bytes, *parts: bytes) -> bytes:
    """``BLAKE2b-256(key=secret, label || 0x00 || parts...)`` (parts are fixed-length or
    0x00-terminated by the caller, so the encoding is unambiguous)."""
    return hashlib.blake2b(label + b"\x00" + b"".join(parts), digest_size=32, key=secret).digest()


def digest(label: bytes, *parts: Buffer) -> bytes:
    """``BLAKE2b-256(label || 0x00 || parts...)``, unkeyed, read in place (no copies)."""
    state = hashlib.blake2b(label, digest_size=32)
    state.update(b"\x00")
    for part in parts:
        state.update(part)
    return state.digest()


def mac(key: bytes, message: bytes) -> bytes:
    """``BLAKE2b-128(key=key, message)``: a 16-byte MAC (BLAKE2b keyed is a PRF)."""
    return hashlib.blake2b(message, digest_size=MAC_SIZE, key=key).digest()


def mac_matches(key: bytes, message: bytes, tag: Buffer) -> bool:
    """Whether ``tag`` is ``mac(key, message)``, compared in constant time."""
    return hmac.compare_digest(mac(key, message), bytes(tag))
