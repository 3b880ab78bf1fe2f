"""The channel-key file format (``nngsec._keys._channel_keys``): parsing and refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nngsec import PolicyError
from nngsec._keys._channel_keys import ChannelKeyFile
from tests.support import TELEMETRY

EXAMPLE = Path(__file__).parents[2] / "policies" / "factory.keys.json"


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


def parse_problems(data: dict[str, Any] | str) -> list[tuple[int | None, int | None, str, str]]:
    text = data if isinstance(data, str) else json.dumps(data, indent=2)
    with pytest.raises(PolicyError) as caught:
        ChannelKeyFile.parse(text, Path("f.keys.json"))
    return [(p.line, p.column, p.field, p.message) for p in caught.value.problems]


def test_the_example_file_parses():
    keys = ChannelKeyFile.parse(EXAMPLE.read_text(), EXAMPLE)
    assert keys.model.policy == "factory"
    assert keys.raw == EXAMPLE.read_bytes()


def test_a_bad_epoch_is_one_problem_not_also_an_empty_list():
    data = example()
    data["channels"]["telemetry"]["epochs"][0]["epoch"] = "1"
    [(line, column, field, message)] = parse_problems(data)
    assert field == "channels.telemetry.epochs[0].epoch"
    assert message == "got '1', expected a whole number"
    assert line is not None
    assert column is not None


def test_an_empty_epoch_list_says_so():
    data = example()
    data["channels"]["telemetry"]["epochs"] = []
    [(_, _, field, message)] = parse_problems(data)
    assert field == "channels.telemetry.epochs"
    assert message == "got 0 items, expected at least 1"


DATA = Path(__file__).parents[1] / "data" / "bad_channel_keys"
EPOCH0 = "channels.telemetry.epochs[0]"

# file -> (line, column, field, text at that place, message fragment)
CASES: dict[str, tuple[int, int, str, str, str]] = {
    "empty.json": (1, 1, "", "", "the channel-key file is empty"),
    "truncated.json": (11, 1, "", "", "invalid YAML: did not find expected node content"),
    "root-list.json": (
        1,
        1,
        "",
        "[",
        "the channel-key file must be a mapping of fields, got a list",
    ),
    "duplicate-key.json": (5, 3, "policy", '"policy": "other"', "duplicate key 'policy'"),
    "format-3.json": (
        2,
        26,
        "nngsec-channel-keys",
        "3",
        "unsupported channel-key format version 3",
    ),
    # nngsec 0.1's format: refused with what to do (below, its own hint).
    "format-1.json": (
        2,
        26,
        "nngsec-channel-keys",
        "1",
        "channel-key format 1 (nngsec 0.1): its entries do not bind the deployment id",
    ),
    # JSON's true equals 1 in a lax comparison; it is not a format version.
    "format-true.json": (
        2,
        26,
        "nngsec-channel-keys",
        "true",
        "unsupported channel-key format version true",
    ),
    "format-missing.json": (
        1,
        1,
        "",
        "{",
        "missing the format version field 'nngsec-channel-keys'",
    ),
    # One id, one spelling: the last character's unused bits must be zero.
    "deployment-bad-spelling.json": (
        4,
        17,
        "deployment",
        '"tNPqhcXefx3L0GCv6vs-tR"',
        "not the spelling nngsec writes",
    ),
    "unknown-field.json": (5, 3, "comment", '"comment"', "unknown field 'comment'"),
    "kind-unknown.json": (
        7,
        15,
        "channels.telemetry.kind",
        '"audiance"',
        "got 'audiance', expected 'group', 'audience' or 'service'",
    ),
    "epoch-zero.json": (10, 20, f"{EPOCH0}.epoch", "0", "expected a whole number of at least 1"),
    "epoch-string.json": (10, 20, f"{EPOCH0}.epoch", '"1"', "got '1', expected a whole number"),
    "created-not-a-time.json": (
        11,
        22,
        f"{EPOCH0}.created",
        '"yesterday"',
        "got 'yesterday', expected a UTC time like 2026-11-26T17:00:00Z",
    ),
    "retire-at-not-utc.json": (
        12,
        24,
        f"{EPOCH0}.retire_at",
        '"2026-11-26 18:00:00+01:00"',
        "expected a UTC time",
    ),
    "no-epochs.json": (
        8,
        17,
        "channels.telemetry.epochs",
        "[]",
        "got 0 items, expected at least 1",
    ),
    "three-epochs.json": (
        8,
        17,
        "channels.telemetry.epochs",
        "[",
        "got 3 items, expected at most 2",
    ),
    "sealed-not-text.json": (
        15,
        25,
        f"{EPOCH0}.sealed.archiver",
        "42",
        "got 42, expected a string",
    ),
}


HINTS = {
    "format-1.json": "re-run `nngsec rotate POLICY`: it writes format 2 with new keys for "
    "every channel"
}


def test_the_corpus_has_one_table_entry_per_file():
    assert sorted(p.name for p in DATA.iterdir()) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_channel_key_file(name):
    path = DATA / name
    line, column, field, at, message = CASES[name]
    with pytest.raises(PolicyError) as caught:
        ChannelKeyFile.load(path)
    [problem] = caught.value.problems
    assert (problem.path, problem.line, problem.column, problem.field) == (
        str(path),
        line,
        column,
        field,
    )
    lines = [*path.read_text().splitlines(), ""]
    assert lines[line - 1][column - 1 :].startswith(at)
    assert message in problem.message
    assert problem.hint == HINTS.get(
        name, "this file is written by `nngsec rotate`; re-run it rather than editing"
    )
    assert "\n" not in str(problem)


def test_a_bad_time_in_the_file_is_a_policy_error_for_rotate_and_node(world_factory):
    world = world_factory(TELEMETRY, ["sensor", "dashboard"])
    keys_path = world.policy_path.with_name("policy.keys.json")
    data = json.loads(keys_path.read_text())
    data["channels"]["telemetry"]["epochs"][0]["retire_at"] = "tomorrow"
    keys_path.write_text(json.dumps(data, indent=2))
    with pytest.raises(PolicyError) as caught:
        world.rotate()
    assert caught.value.field == "channels.telemetry.epochs[0].retire_at"
    with pytest.raises(PolicyError) as caught:
        world.node("dashboard")
    assert caught.value.field == "channels.telemetry.epochs[0].retire_at"


def test_entries_are_crypto_box_seal_boxes():
    """``seal_to`` is libsodium's sealed box, with the ephemeral key from the given source."""
    from nacl.bindings import crypto_box_keypair, crypto_box_seal_open

    from nngsec._keys._channel_keys import seal_to

    public, secret = crypto_box_keypair()
    box = seal_to(b"entry", public, lambda n: b"\x07" * n)
    assert crypto_box_seal_open(box, public, secret) == b"entry"
    assert seal_to(b"entry", public, lambda n: b"\x07" * n) == box  # reproducible
    assert len(box) == 32 + 16 + len(b"entry")
