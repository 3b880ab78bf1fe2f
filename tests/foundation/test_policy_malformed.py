"""A corpus of malformed policy files (``tests/data/bad_policies``).

Each file is loaded with :func:`nngsec.load_policy`; every reported problem is checked for
its exact line, column and field path, for the text found at that place, and for a message
that says what was found and what was expected. All problems of a file are reported
together, in file order, each with a hint.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from nngsec import PolicyError, load_policy

DATA = Path(__file__).parents[1] / "data" / "bad_policies"


class Expect(NamedTuple):
    line: int
    column: int
    field: str
    at: str  # the source text that starts at line:column
    message: str  # a fragment of the message


CASES: dict[str, list[Expect]] = {
    # --- YAML level ---------------------------------------------------------------------
    "yaml-unclosed-flow": [Expect(11, 16, "", ": [dashboard]", "did not find expected ',' or ']'")],
    "yaml-bad-indent": [Expect(10, 4, "", "publishers:", "did not find expected key")],
    "yaml-duplicate-key": [
        Expect(
            12,
            5,
            "channels.telemetry.publishers",
            "publishers: [archiver]",
            "duplicate key 'publishers' (first defined at line 10)",
        )
    ],
    "yaml-tab-indent": [Expect(9, 1, "", "\tpattern", "tab character in indentation")],
    "yaml-empty": [Expect(1, 1, "", "# nothing", "the policy file is empty")],
    "yaml-two-documents": [Expect(8, 1, "", "nngsec: 1", "one YAML document, found 2")],
    "yaml-root-list": [Expect(1, 1, "", "- nngsec", "must be a mapping of fields, got a list")],
    "yaml-root-scalar": [Expect(1, 1, "", "nngsec 1", "must be a mapping of fields, got a single")],
    "yaml-control-char": [Expect(8, 14, "", "\x07here", "character U+0007 is not allowed")],
    "not-utf8": [Expect(7, 17, "", "", "not valid UTF-8 (byte 0xe9)")],
    # --- format version -----------------------------------------------------------------
    "format-version-2": [Expect(1, 9, "nngsec", "2", "unsupported policy format version 2")],
    "format-version-missing": [
        Expect(2, 1, "", "name: bad", "missing the format version field 'nngsec'")
    ],
    "format-version-string": [
        Expect(1, 9, "nngsec", "'1'", "unsupported policy format version '1'")
    ],
    "format-version-float": [
        Expect(1, 9, "nngsec", "1.0", "unsupported policy format version 1.0")
    ],
    # --- fields -------------------------------------------------------------------------
    "unknown-top-field": [Expect(7, 1, "chanels", "chanels:", "unknown field 'chanels'")],
    "unknown-channel-field": [
        Expect(
            8,
            3,
            "channels.telemetry.subscribers",
            "telemetry:",
            "missing required field 'subscribers'",
        ),
        Expect(
            11,
            5,
            "channels.telemetry.subscriber",
            "subscriber:",
            "unknown field 'subscriber' for a pubsub channel",
        ),
    ],
    "role-of-other-pattern": [
        Expect(
            12,
            5,
            "channels.telemetry.clients",
            "clients:",
            "unknown field 'clients' for a pubsub channel (its roles are publishers, subscribers)",
        )
    ],
    "missing-role": [
        Expect(8, 3, "channels.telemetry.subscribers", "telemetry:", "missing required field")
    ],
    "missing-pattern": [
        Expect(8, 3, "channels.telemetry.pattern", "telemetry:", "missing required field 'pattern'")
    ],
    "unknown-pattern": [
        Expect(
            9,
            14,
            "channels.telemetry.pattern",
            "pubsubb",
            "unknown pattern 'pubsubb', expected one of pair, bus, pubsub, pipeline, reqrep, "
            "survey",
        )
    ],
    "unknown-scheme": [
        Expect(12, 13, "channels.telemetry.scheme", "aes", "got 'aes', expected 'auto', ")
    ],
    "scheme-peerbox-on-pubsub": [
        Expect(
            12,
            13,
            "channels.telemetry.scheme",
            "peerbox",
            "scheme 'peerbox' does not fit pattern 'pubsub', expected one of sealed, signed, "
            "plaintext",
        )
    ],
    "scheme-sealed-on-reqrep": [
        Expect(12, 13, "channels.control.scheme", "sealed", "does not fit pattern 'reqrep'")
    ],
    "scheme-secretbox-on-pipeline": [
        Expect(12, 13, "channels.jobs.scheme", "secretbox", "does not fit pattern 'pipeline'")
    ],
    "origin-group-with-signed-scheme": [
        Expect(
            12,
            13,
            "channels.cells.origin",
            "group",
            "origin: group applies to scheme secretbox only, got scheme 'signed'",
        )
    ],
    "origin-mac-with-signed-scheme": [
        Expect(
            12,
            13,
            "channels.telemetry.origin",
            "mac",
            "origin: mac applies to scheme sealed only, got scheme 'signed'",
        )
    ],
    "origin-on-reqrep": [
        Expect(14, 5, "channels.control.origin", "origin:", "unknown field 'origin'")
    ],
    "identities-as-list": [
        Expect(4, 3, "identities", "- sensor", "got ['sensor'], expected a mapping")
    ],
    "channel-empty": [
        Expect(8, 3, "channels.telemetry", "telemetry:", "got None, expected a mapping")
    ],
    "name-missing": [Expect(1, 1, "name", "nngsec: 1", "missing required field 'name'")],
    "name-not-string": [Expect(2, 7, "name", "[bad]", "got ['bad'], expected a string")],
    "version-zero": [Expect(3, 10, "version", "0", "got 0, expected a whole number of at least 1")],
    "version-quoted": [Expect(3, 10, "version", "'3'", "got '3', expected a whole number")],
    "version-float": [Expect(3, 10, "version", "2.5", "got 2.5, expected a whole number")],
    "replay-window-too-small": [
        Expect(
            12,
            20,
            "channels.telemetry.replay_window",
            "10",
            "got 10, expected a whole number of at least 64",
        )
    ],
    "topic-with-nul": [
        Expect(12, 23, "channels.telemetry.topics[1]", '"bad\\0topic"', "the NUL character")
    ],
    # --- durations and sizes -----------------------------------------------------------
    "duration-no-unit": [
        Expect(
            12,
            14,
            "channels.telemetry.max_age",
            "30",
            "got 30 (no unit), expected a duration with a unit",
        )
    ],
    "duration-bad-unit": [
        Expect(12, 14, "channels.telemetry.max_age", "30y", "unknown unit 'y' in '30y'")
    ],
    "duration-too-long": [
        Expect(
            12,
            14,
            "channels.telemetry.max_age",
            "8d",
            "got '8d', expected a duration between 1ms and 7d",
        )
    ],
    "duration-nan": [Expect(12, 14, "channels.telemetry.max_age", ".nan", "got nan (no unit)")],
    "size-bad-unit": [
        Expect(
            12,
            23,
            "channels.telemetry.max_message_size",
            "1Mib",
            "unknown unit 'Mib' in '1Mib', expected a size with a unit",
        )
    ],
    "size-fraction-of-byte": [
        Expect(
            12,
            23,
            "channels.telemetry.max_message_size",
            "1.5B",
            "got '1.5B', which is not a whole number of bytes",
        )
    ],
    "size-no-unit": [
        Expect(
            12,
            23,
            "channels.telemetry.max_message_size",
            "1048576",
            "got 1048576 (no unit), expected a size with a unit",
        )
    ],
    # --- names --------------------------------------------------------------------------
    "name-uppercase": [
        Expect(6, 3, "identities.Archiver", "Archiver:", "invalid name 'Archiver', expected")
    ],
    "name-bad-in-role": [
        Expect(
            11,
            30,
            "channels.telemetry.subscribers[1]",
            "-archiver",
            "invalid name '-archiver', expected lowercase letters",
        )
    ],
    "name-bad-channel": [
        Expect(8, 3, "channels.Telemetry", "Telemetry:", "invalid name 'Telemetry'")
    ],
    # --- cross-references ---------------------------------------------------------------
    "unknown-name-in-role": [
        Expect(
            10,
            18,
            "channels.telemetry.publishers[0]",
            "sensors",
            "unknown name 'sensors' in publishers of channel 'telemetry'",
        )
    ],
    "unknown-name-in-group": [
        Expect(8, 24, "groups.readers[1]", "archivr", "unknown name 'archivr' in group 'readers'")
    ],
    "group-cycle": [
        Expect(8, 3, "groups.a", "a:", "groups contain each other in a cycle: a -> b -> c -> a")
    ],
    "group-not-a-list": [
        Expect(8, 12, "groups.readers", "dashboard", "got 'dashboard', expected a list")
    ],
    "identity-and-group": [
        Expect(8, 3, "groups.sensor", "sensor:", "'sensor' is both an identity and a group")
    ],
    "pair-three-members": [
        Expect(
            12,
            14,
            "channels.sync.members",
            "[sensor, readers]",
            "a pair channel has exactly 2 members, got 3 (archiver, dashboard, sensor)",
        )
    ],
    "pair-one-member": [
        Expect(
            10,
            14,
            "channels.sync.members",
            "[sensor, sensor]",
            "a pair channel has exactly 2 members, got 1 (sensor)",
        )
    ],
    "empty-role": [
        Expect(
            10,
            17,
            "channels.telemetry.publishers",
            "[]",
            "publishers of channel 'telemetry' names no identity",
        )
    ],
    "role-with-empty-group": [
        Expect(12, 14, "channels.cells.members", "[nobody]", "members of channel 'cells' names no")
    ],
    "role-not-a-list": [
        Expect(10, 14, "channels.cells.members", "sensor", "got 'sensor', expected a list")
    ],
    "revoked-group": [
        Expect(9, 11, "revoked[0]", "readers", "'readers' is a group; only identities can be")
    ],
    "revoked-unknown": [
        Expect(9, 5, "revoked[1]", "printer", "unknown identity 'printer' in revoked")
    ],
    "revoked-twice": [Expect(7, 29, "revoked[2]", "sensor]", "'sensor' is listed twice")],
    # --- public keys --------------------------------------------------------------------
    "private-key-in-policy": [  # refused before it is parsed: placed, never shown
        Expect(6, 13, "", "nngsec-secret-v1:", "a private key is written here")
    ],
    "public-key-truncated": [
        Expect(
            6,
            13,
            "identities.archiver",
            "nngsec-id-v1:",
            "invalid public key: truncated: 85 characters after the prefix, expected 91",
        )
    ],
    "public-key-checksum": [
        Expect(6, 13, "identities.archiver", "nngsec-id-v1:", "checksum mismatch")
    ],
    "public-key-wrong-version": [
        Expect(
            6,
            13,
            "identities.archiver",
            "nngsec-id-v2:",
            "expected a string starting with 'nngsec-id-v1:'",
        )
    ],
    "public-key-not-base64": [
        Expect(6, 13, "identities.archiver", "nngsec-id-v1:", "not base64url")
    ],
    "public-key-missing": [
        Expect(6, 3, "identities.archiver", "archiver:", "got None, expected a public key string")
    ],
    "public-key-duplicate": [
        Expect(
            6,
            13,
            "identities.archiver",
            "nngsec-id-v1:",
            "identity 'archiver' has the same public key as 'sensor'",
        )
    ],
    # --- everything at once -------------------------------------------------------------
    "many-problems": [
        Expect(2, 7, "name", "Bad", "invalid name 'Bad'"),
        Expect(3, 10, "version", "0", "got 0, expected a whole number of at least 1"),
        Expect(9, 23, "channels.cells.members[1]", "ghost", "unknown name 'ghost'"),
        Expect(10, 14, "channels.cells.max_age", "5", "got 5 (no unit)"),
    ],
}

HINTS = {
    "unknown-top-field": "did you mean 'channels'?",
    "unknown-channel-field": "this pattern needs the role field 'subscribers'",
    "unknown-pattern": "did you mean 'pubsub'?",
    "unknown-scheme": "write one of those",
    "scheme-peerbox-on-pubsub": "use scheme: auto (sealed)",
    "duration-no-unit": "like 30s, 5m or 1h",
    "size-bad-unit": "like 512KiB or 1MiB",
    "private-key-in-policy": "treat this private key as exposed",
    "yaml-duplicate-key": "YAML would keep only the last",
    "yaml-tab-indent": "replace the tab with spaces",
    "format-version-2": "write 'nngsec: 1'",
    "version-quoted": "without quotes",
    "pair-three-members": "use pattern: bus",
    "group-cycle": "not itself through them",
}


def test_the_corpus_has_one_table_entry_per_file():
    assert sorted(p.stem for p in DATA.glob("*.yaml")) == sorted(CASES)
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_policy(name):
    path = DATA / f"{name}.yaml"
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    error = caught.value
    lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    got = [(p.line, p.column, p.field) for p in error.problems]
    assert got == [(e.line, e.column, e.field) for e in CASES[name]]
    for problem, expected in zip(error.problems, CASES[name], strict=True):
        assert expected.message in problem.message
        assert lines[expected.line - 1][expected.column - 1 :].startswith(expected.at)
        assert problem.path == str(path)
        assert problem.hint, f"no hint for {problem}"
        text = str(problem)
        assert "\n" not in text
        assert text.startswith(f"{path}:{expected.line}:{expected.column}: ")
        assert text.endswith(f" (hint: {problem.hint})")
    # The binding attributes are the first problem's place.
    assert (error.path, error.line, error.column) == (
        str(path),
        CASES[name][0].line,
        CASES[name][0].column,
    )
    if name in HINTS:
        assert HINTS[name] in error.problems[0].hint
