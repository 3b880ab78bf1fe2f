"""The two routes to libsodium (``_runtime/_schemes/_crypto.py``): PyNaCl's own cffi module
called directly, and PyNaCl's public bindings as the fallback.

Both must give the published known answers and the same bytes and verdicts as each other
on any input; the direct route must be refused (and the public one used) whenever the
private module is missing, lacks a function or answers wrongly; and the codec must work,
byte for byte, on the fallback. The schemes' large temporaries are gone: opening a 64 KiB
frame allocates about one payload (the result), not five.
"""

from __future__ import annotations

import json
import os
import sys
import tracemalloc
import types
from collections.abc import Iterator

import nacl._sodium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl import bindings as public

from nngsec._runtime._schemes import _crypto
from tests.support import examples
from tests.vectors import generate

ROUTES = {"direct": _crypto._DirectRoute(), "pynacl": _crypto._PublicRoute()}
DIRECT, PUBLIC = ROUTES["direct"], ROUTES["pynacl"]

keys = st.binary(min_size=32, max_size=32)
nonces = st.binary(min_size=24, max_size=24)
messages = st.binary(max_size=2048)
ads = st.binary(max_size=200)


@pytest.fixture
def restore_route() -> Iterator[None]:
    """Tests that force a route put the default back (the direct route) afterwards.
    (Used as a mark: set up before ``monkeypatch``, it runs after the patches are undone.)"""
    yield
    assert _crypto.use_route() == "direct"


def test_the_direct_route_is_in_use_here():
    """With the PyNaCl this project pins, the private module is there and right."""
    assert _crypto.route() == "direct"
    assert _crypto.fallback_reason is None


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_each_route_gives_the_published_known_answers(name):
    assert _crypto.known_answers(ROUTES[name]) == []


def _split(data: bytes, cuts: list[int]) -> tuple[bytes | memoryview, ...]:
    """``data`` in pieces (some as memoryviews): how the schemes pass frame slices."""
    points = sorted({min(c, len(data)) for c in cuts})
    pieces, start = [], 0
    for index, point in enumerate([*points, len(data)]):
        piece = data[start:point]
        pieces.append(memoryview(piece) if index % 2 else piece)
        start = point
    return tuple(pieces)


@settings(max_examples=examples(100))
@given(key=keys, nonce=nonces, message=messages, ad=ads, flip=st.integers(min_value=0))
def test_aead_is_the_same_on_both_routes(key, nonce, message, ad, flip):
    sealed = DIRECT.aead_seal(key, nonce, memoryview(message), ad)
    assert sealed == PUBLIC.aead_seal(key, nonce, message, ad)
    assert sealed == bytes(
        public.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, nonce, key)
    )
    for route in ROUTES.values():
        assert route.aead_open(key, nonce, memoryview(sealed), memoryview(ad)) == message
    tampered = bytearray(sealed)
    tampered[flip % len(tampered)] ^= 1 << (flip % 8)
    for route in ROUTES.values():
        assert route.aead_open(key, nonce, tampered, ad) is None
        assert route.aead_open(key, nonce, sealed[: flip % len(sealed)], ad) is None


@settings(max_examples=examples(100))
@given(
    key=keys,
    nonce=nonces,
    message=st.binary(max_size=6000),  # either side of SLICE_BELOW
    label=ads,
    lead=st.binary(max_size=40),
    skipped=st.binary(max_size=100),
    trailer=st.binary(max_size=80),
    flip=st.integers(min_value=0),
)
def test_frame_sealers_and_openers_are_the_same_on_both_routes(
    key, nonce, message, label, lead, skipped, trailer, flip
):
    """A frame as the schemes build one: a head carrying the nonce, bytes after ``start``
    that are associated data too (``skip``), the AEAD, and bytes after it (``tail``)."""
    head = lead + nonce + skipped
    start, nonce_at = len(head) - len(skipped), len(lead)
    frames = {name: r.frame_sealer(key, label)(head, nonce, message) for name, r in ROUTES.items()}
    assert (
        frames["direct"]
        == frames["pynacl"]
        == head + PUBLIC.aead_seal(key, nonce, message, label + head)
    )
    frame = frames["direct"] + trailer
    tampered = bytearray(frame)
    tampered[flip % (len(frame) - len(trailer))] ^= 1 << (flip % 8)  # anything but the tail
    for route in ROUTES.values():
        opener = route.frame_opener(key, label, skip=len(skipped), tail=len(trailer))
        assert opener(frame, start, nonce_at) == message
        assert opener(bytes(tampered), start, nonce_at) is None
        assert opener(frame[: start + len(skipped) + 15 + len(trailer)], start, nonce_at) is None


def test_a_frame_opener_refuses_a_nonce_outside_the_head():
    """C reads 24 bytes at the nonce's offset: one that reaches into the ciphertext (or
    before the frame) is a programming error, refused before the call."""
    opener = DIRECT.frame_opener(bytes(32), b"label")
    frame = bytes(100)
    for nonce_at in (-1, 40 - 23):
        with pytest.raises(ValueError, match="nonce outside"):
            opener(frame, 40, nonce_at)
    with pytest.raises(ValueError, match="key size"):
        DIRECT.frame_opener(bytes(31), b"label")
    with pytest.raises(ValueError, match="key size"):
        DIRECT.frame_sealer(bytes(31), b"label")
    with pytest.raises(ValueError, match="nonce size"):
        DIRECT.frame_sealer(bytes(32), b"label")(b"head", bytes(23), b"x")


@settings(max_examples=examples(40))
@given(
    seed=keys,
    message=st.binary(max_size=4096),
    cuts=st.lists(st.integers(min_value=0, max_value=4096), max_size=4),
    flip=st.integers(min_value=0),
)
def test_signatures_are_the_same_on_both_routes(seed, message, cuts, flip):
    sign_public, secret = public.crypto_sign_seed_keypair(seed)
    parts = _split(message, cuts)
    signature = DIRECT.sign(secret, parts)
    assert signature == PUBLIC.sign(secret, parts) == public.crypto_sign(message, secret)[:64]
    for route in ROUTES.values():
        assert route.verify(sign_public, signature, parts)
        assert route.verify(sign_public, memoryview(signature), (message,))
    bad = bytearray(signature + message)
    bad[flip % len(bad)] ^= 1 << (flip % 8)
    for route in ROUTES.values():
        assert not route.verify(sign_public, bytes(bad[:64]), (bytes(bad[64:]),))
        # A signature of the wrong length is refused, not read into the message.
        assert not route.verify(sign_public, signature + b"\x00", (message,))
        assert not route.verify(sign_public, signature[:63], (message,))


@settings(max_examples=examples(40))
@given(
    seed=keys,
    prefix=st.binary(min_size=1, max_size=80),
    message=st.binary(max_size=4096),
    cuts=st.lists(st.integers(min_value=0, max_value=4096), max_size=4),
    flip=st.integers(min_value=0),
)
def test_a_frame_signature_is_ed25519_of_the_prefix_and_the_frames_blake2b_512(
    seed, prefix, message, cuts, flip
):
    """The spec's SIGMSG: pure Ed25519 over ``prefix || BLAKE2b-512(frame)``, however the
    frame is split into parts, on both routes; pure Ed25519 over the frame itself (the
    construction of wire format 1) is not a frame signature."""
    import hashlib

    sign_public, secret = public.crypto_sign_seed_keypair(seed)
    parts = _split(message, cuts)
    expected = public.crypto_sign(prefix + hashlib.blake2b(message).digest(), secret)[:64]
    for name in ROUTES:
        assert _crypto.use_route(name) == name
        try:
            _check_frame_signature(sign_public, secret, prefix, message, parts, expected, flip)
        finally:
            assert _crypto.use_route() == "direct"


def _check_frame_signature(sign_public, secret, prefix, message, parts, expected, flip):
    assert _crypto.sign_frame(secret, prefix, *parts) == expected
    assert _crypto.verify_frame(sign_public, expected, prefix, *parts)
    assert _crypto.verify_frame(sign_public, memoryview(expected), prefix, memoryview(message))
    unhashed = public.crypto_sign(prefix + message, secret)[:64]
    assert not _crypto.verify_frame(sign_public, unhashed, prefix, message)
    bad = bytearray(expected + prefix + message)
    bad[flip % len(bad)] ^= 1 << (flip % 8)
    signature, rest = bytes(bad[:64]), bytes(bad[64:])
    assert not _crypto.verify_frame(
        sign_public, signature, rest[: len(prefix)], rest[len(prefix) :]
    )
    # Moving bytes between the prefix and the frame changes what is signed.
    assert not _crypto.verify_frame(sign_public, expected, prefix[:-1], prefix[-1:], message)


LOW_ORDER = [  # points whose X25519 with any scalar is all zero
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
]


@settings(max_examples=examples(40))
@given(secret=keys, point=keys | st.sampled_from(LOW_ORDER))
def test_x25519_is_the_same_on_both_routes(secret, point):
    assert DIRECT.x25519(secret, point) == PUBLIC.x25519(secret, point)
    assert DIRECT.x25519_base(secret) == PUBLIC.x25519_base(secret)


@pytest.mark.parametrize("point", LOW_ORDER, ids=["zero", "one", "order-8"])
def test_low_order_points_give_no_shared_secret(point):
    for route in ROUTES.values():
        assert route.x25519(os.urandom(32), point) is None


def test_wrong_key_and_nonce_sizes_are_refused_before_any_c_call():
    """A short key or nonce would be read past its end by C: a programming error."""
    for key, nonce in ((bytes(31), bytes(24)), (bytes(32), bytes(23))):
        with pytest.raises(ValueError, match="key or nonce size"):
            DIRECT.aead_seal(key, nonce, b"x", b"")
        with pytest.raises(ValueError, match="key or nonce size"):
            DIRECT.aead_open(key, nonce, bytes(17), b"")
    with pytest.raises(ValueError, match="secret key size"):
        DIRECT.sign(bytes(32), (b"x",))
    with pytest.raises(ValueError, match="public key size"):
        DIRECT.verify(bytes(31), bytes(64), (b"x",))


def test_scratch_buffers_are_reused_and_never_shared_while_in_use():
    """A buffer in use is off the thread's list, so a call made in the middle of another
    (a signal handler sealing a frame) gets one of its own; one given back is reused, so
    a steady stream of frames allocates no fresh scratch memory."""
    route = _crypto._DirectRoute()
    first, second = route._take(SIZE), route._take(SIZE)
    assert first is not second
    route._give_back(first)
    route._give_back(second)
    assert {id(route._take(SIZE)), id(route._take(100))} == {id(first), id(second)}
    huge = route._take(_crypto.SCRATCH_KEEP + 1)
    route._give_back(huge)  # too large to keep for the thread
    assert route._take(_crypto.SCRATCH_KEEP + 1) is not huge


# -- forcing the fallback ----------------------------------------------------------------
def _fake_sodium(monkeypatch: pytest.MonkeyPatch, **overrides: object) -> None:
    """Put a stand-in for ``nacl._sodium`` in place: the real one with some of its
    ``lib`` functions replaced (``None``: missing)."""
    names = [n for n in dir(nacl._sodium.lib) if n.startswith("crypto_")]
    functions = {name: getattr(nacl._sodium.lib, name) for name in names}
    for name, value in overrides.items():
        if value is None:
            functions.pop(name)
        else:
            functions[name] = value
    fake = types.ModuleType("nacl._sodium")
    fake.ffi = nacl._sodium.ffi  # type: ignore[attr-defined]
    fake.lib = types.SimpleNamespace(**functions)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nacl._sodium", fake)


@pytest.mark.usefixtures("restore_route")
def test_fallback_when_the_private_module_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "nacl._sodium", None)  # import raises ImportError
    assert _crypto.use_route() == "pynacl"
    assert "nacl._sodium" in (_crypto.fallback_reason or "")


@pytest.mark.usefixtures("restore_route")
def test_fallback_when_a_function_is_missing(monkeypatch):
    _fake_sodium(monkeypatch, crypto_sign_open=None)
    assert _crypto.use_route() == "pynacl"
    assert "crypto_sign_open" in (_crypto.fallback_reason or "")


@pytest.mark.usefixtures("restore_route")
def test_fallback_when_a_function_answers_wrongly(monkeypatch):
    """A function that moved its arguments around (here: one that does nothing and
    reports success) fails the known answers at import, and is not used."""
    _fake_sodium(monkeypatch, crypto_aead_xchacha20poly1305_ietf_encrypt=lambda *_: 0)
    assert _crypto.use_route() == "pynacl"
    assert "XChaCha20-Poly1305 encryption" in (_crypto.fallback_reason or "")
    _fake_sodium(monkeypatch, crypto_sign_open=lambda *_: 0)  # accepts everything
    assert _crypto.use_route() == "pynacl"
    assert "Ed25519 accepts another message" in (_crypto.fallback_reason or "")


@pytest.mark.usefixtures("restore_route")
def test_an_unknown_route_is_a_usage_error():
    with pytest.raises(ValueError, match="no crypto route"):
        _crypto.use_route("fast")


VECTORS = [
    "secretbox_pair",
    "secretbox_bus",
    "sealed_pubsub",
    "sealed_mac_pubsub",
    "peerbox_reply",
    "signed_pubsub",
]


@pytest.mark.usefixtures("restore_route")
@pytest.mark.parametrize("name", VECTORS)
def test_the_codec_on_the_fallback_reproduces_the_vectors(name, tmp_path):
    """Every frame byte for byte and every outcome, through PyNaCl's public bindings."""
    assert _crypto.use_route("pynacl") == "pynacl"
    vector = json.loads((generate.HERE / f"{name}.json").read_text())
    result = generate.run(vector, tmp_path)
    assert result.frames == [step["frame"] for step in vector["steps"]]
    assert result.outcomes == [d["expect"] for d in vector["deliveries"]]


# -- no large temporaries ---------------------------------------------------------------
SIZE = 65536
LARGE = [
    ("pubsub-sealed", "alice", "carol"),
    ("bus-secretbox", "alice", "bob"),
    ("pubsub-signed", "alice", "carol"),
    ("pair-secretbox", "alice", "bob"),
    ("reqrep-peerbox", "alice", "carol"),
]


@pytest.mark.parametrize(("channel", "sender", "receiver"), LARGE)
def test_64_kib_frames_are_sealed_and_opened_without_large_temporaries(
    codec_world, channel, sender, receiver
):
    """The most memory Python holds at once (tracemalloc's peak) above what it held
    before: opening needs the payload it returns, sealing the body and the frame
    (the codec puts the header before the body). Before the direct route, sealed and
    signed-bus frames peaked at five payloads (the signed message, ``signature +
    message``, its copy by ``crypto_sign_open``, the ciphertext and plaintext copies),
    which is what made 64 KiB frames fault in fresh pages on every call."""
    topic = "t.x" if channel.startswith("pubsub") else None
    payload = os.urandom(SIZE)
    seal = codec_world.nodes[sender].sender(channel).seal
    opener = codec_world.nodes[receiver].receiver(channel)
    frames = [seal(payload, topic) for _ in range(3)]
    assert opener.open(frames[0]).payload == payload  # the session's first frame: caches
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        frame = seal(payload, topic)
        sealing = tracemalloc.get_traced_memory()[1] - base
        del frame
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        message = opener.open(frames[1])
        opening = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert message.payload == payload
    assert opening < 1.5 * SIZE, f"opening peaked at {opening / SIZE:.2f} payloads"
    assert sealing < 2.5 * SIZE, f"sealing peaked at {sealing / SIZE:.2f} payloads"
