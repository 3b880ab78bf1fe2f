"""One key, one name (issue 9, finding 6).

The last base64url character of a 68-byte identity carries 2 bits nobody reads, so a
lenient decoder takes four spellings for one key; a loader that compares strings then lets
a revoked key run on under a second name. Texts are decoded strictly, and identities are
compared by their decoded keys.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nngsec import PolicyError, PublicIdentity, Rejected, load_policy
from nngsec._formats._text import TextKeyError, b64url_decode, b64url_encode
from nngsec._policy._admin import revoke
from nngsec._policy._load import parse_policy
from tests.support import NOW, at, examples

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def other_spellings(text: str, prefix: str = "") -> list[str]:
    """``text`` with its last character replaced by those that differ only in the bits a
    lenient base64 decoder ignores (2 bits for a 68-byte identity: 3 other spellings)."""
    unused = (len(text) - len(prefix)) * 6 % 8
    last = ALPHABET.index(text[-1])
    high = last >> unused << unused
    return [text[:-1] + ALPHABET[high | low] for low in range(1 << unused) if high | low != last]


@settings(max_examples=examples(100), deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_an_identity_has_exactly_one_text(sign_key, box_key):
    text = PublicIdentity(sign_key, box_key).to_text()
    spellings = other_spellings(text, "nngsec-id-v1:")
    assert len(spellings) == 3
    for spelling in spellings:
        with pytest.raises(TextKeyError, match="not the one nngsec writes"):
            PublicIdentity.from_text(spelling)


@settings(max_examples=examples(100), deadline=None)
@given(st.binary(max_size=70))
def test_base64url_decoding_accepts_only_the_canonical_text(raw):
    text = b64url_encode(raw)
    assert b64url_decode(text) == raw
    for spelling in other_spellings(text) if text else []:
        with pytest.raises(ValueError, match="not the canonical base64url"):
            b64url_decode(spelling)


def policy_text(entries: dict[str, str]) -> str:
    lines = ["nngsec: 1", "name: factory", "identities:"]
    lines += [f"  {name}: {key}" for name, key in entries.items()]
    lines += [
        "channels:",
        "  telemetry:",
        "    pattern: pubsub",
        "    publishers: [sensor]",
        f"    subscribers: [{', '.join(n for n in entries if n != 'sensor')}]",
    ]
    return "\n".join(lines) + "\n"


def test_another_spelling_of_a_key_is_refused_where_it_is_written(world_factory):
    """The red team's attack: after revoke alice, her key ran on as alice-spare."""
    world = world_factory(
        "channels:\n  telemetry:\n    pattern: pubsub\n    publishers: [sensor]\n"
        "    subscribers: [alice]\n",
        ["sensor", "alice"],
    )
    alice = load_policy(world.policy_path).identities["alice"].to_text()
    alias = other_spellings(alice, "nngsec-id-v1:")[0]
    text = world.policy_path.read_text().replace(
        f"  alice: {alice}\n", f"  alice: {alice}\n  alice-spare: {alias}\n"
    )
    world.policy_path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(world.policy_path)
    [problem] = caught.value.problems
    assert problem.field == "identities.alice-spare"
    assert "not the one nngsec writes" in problem.message
    assert at(text, problem) == alias
    # ... so revoke cannot leave the key running under the other name either.
    with pytest.raises(PolicyError):
        revoke(world.policy_path, "alice", now=NOW)


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ("both", "has the same public key as 'alice'"),
        ("sign", "has the same Ed25519 key as 'alice'"),
        ("box", "has the same X25519 key as 'alice'"),
    ],
)
def test_two_identities_with_one_decoded_key_are_refused(shares, message):
    alice = PublicIdentity(bytes(range(32)), bytes(range(32, 64)))
    other = PublicIdentity(
        alice.sign_key if shares in ("both", "sign") else bytes(range(64, 96)),
        alice.box_key if shares in ("both", "box") else bytes(range(96, 128)),
    )
    text = policy_text(
        {
            "sensor": PublicIdentity(bytes(32), bytes([9]) * 32).to_text(),
            "alice": alice.to_text(),
            "alice-spare": other.to_text(),
        }
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    [problem] = caught.value.problems
    assert problem.field == "identities.alice-spare"
    assert problem.message == f"identity 'alice-spare' {message}"
    assert at(text, problem) == other.to_text()
    assert "its own key" in problem.hint


def test_a_bus_frame_from_another_node_of_the_same_identity_says_so(world_factory):
    """Two nodes running one identity drop each other's bus frames; the detail must not
    claim the frame came from the receiving node itself."""
    world = world_factory(
        "channels:\n  cells:\n    pattern: bus\n    members: [a, b, c]\n", ["a", "b", "c"]
    )
    first, second = world.node("a"), world.node("a")
    frame = first.seal("cells", b"hello")
    with pytest.raises(Rejected) as caught:
        second.open("cells", frame)
    assert caught.value.reason == "unauthorized"
    assert "another node running the same identity" in caught.value.detail
    assert "'a'" in caught.value.detail
    assert world.node("b").open("cells", frame).payload == b"hello"
