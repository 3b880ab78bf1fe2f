"""Property-based tests: the parsers refuse bad input only with their own errors."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nngsec import KeystoreError, PolicyError
from nngsec._formats._text import TextKeyError, decode_text, encode_text
from nngsec._formats._yaml import parse_yaml
from nngsec._keys._channel_keys import ChannelKeyFile
from nngsec._keys._files import read_public_file, read_secret_file
from nngsec._keys._identity import PublicIdentity
from nngsec._policy._edit import add_revoked
from nngsec._policy._load import parse_policy
from tests.support import K1, K2, examples

FAST = settings(
    deadline=None,
    max_examples=examples(150),
    suppress_health_check=[HealthCheck.too_slow],
)

# Text that looks like YAML: structure characters, indentation, anchors, tags, names.
YAMLISH = st.lists(
    st.sampled_from(
        [
            ": ",
            ":",
            "- ",
            "-",
            "[",
            "]",
            "{",
            "}",
            ", ",
            "&a ",
            "*a",
            "!!str ",
            "!x ",
            "'",
            '"',
            "\n",
            "\n  ",
            "\n    ",
            " ",
            "\t",
            "# c",
            "? ",
            "| ",
            "> ",
            "---\n",
            "...\n",
            "nngsec",
            "name",
            "channels",
            "pattern",
            "pubsub",
            "identities",
            "revoked",
            "version",
            "1",
            "0x1",
            ".nan",
            "~",
            "null",
            "true",
            "a",
            "é",
            "\x00",
            "\ufeff",
            "\\",
            "%YAML 1.2\n",
            "<<",
        ]
    ),
    max_size=40,
).map("".join)


@FAST
@given(st.text(max_size=200))
@example("nngsec-id-v1:" + "A" * 91)
@example("nngsec-id-v1:" + "=" * 91)
@example("nngsec-id-v1:" + "é" * 91)
def test_decode_text_raises_only_text_key_error(text):
    for prefix, size, checksum in (
        ("nngsec-id-v1:", 64, True),
        ("nngsec-secret-v1:", 32, True),
        ("nngsec-sig-v1:", 72, False),
    ):
        for candidate in (text, prefix + text):
            try:
                raw = decode_text(candidate, prefix, size, checksum=checksum)
            except TextKeyError:
                continue
            assert len(raw) == size


@FAST
@given(st.text(max_size=120))
def test_public_identity_from_text_raises_only_text_key_error(text):
    with contextlib.suppress(TextKeyError):
        PublicIdentity.from_text("nngsec-id-v1:" + text)


@FAST
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_public_identities_round_trip(sign_key, box_key):
    identity = PublicIdentity(sign_key, box_key)
    assert PublicIdentity.from_text(identity.to_text()) == identity


@FAST
@given(st.binary(max_size=80), st.booleans(), st.data())
def test_encoded_text_round_trips_and_any_one_character_change_is_caught(raw, checksum, data):
    text = encode_text("p:", raw, checksum=checksum)
    assert decode_text(text, "p:", len(raw), checksum=checksum) == raw
    if checksum:
        index = data.draw(st.integers(min_value=2, max_value=len(text) - 1))
        replacement = data.draw(st.sampled_from("AZaz09-_"))
        changed = text[:index] + replacement + text[index + 1 :]
        if changed != text:
            # Strict decoding: not even the unused low bits of the last character may
            # change (another spelling of the same bytes is another key text).
            with pytest.raises(TextKeyError):
                decode_text(changed, "p:", len(raw))


@FAST
@given(st.one_of(st.text(max_size=300), YAMLISH))
def test_parse_yaml_raises_only_policy_error(text):
    try:
        doc = parse_yaml(text, "f.yaml")
    except PolicyError as error:
        for problem in error.problems:
            assert "\n" not in str(problem)
            assert problem.path == "f.yaml"
    else:
        assert isinstance(doc.data, dict)


@FAST
@given(st.one_of(st.text(max_size=300), YAMLISH))
def test_parse_policy_and_channel_keys_raise_only_policy_error(text):
    for parse in (lambda t: parse_policy(t, "p.yaml"), lambda t: ChannelKeyFile.parse(t, None)):
        with contextlib.suppress(PolicyError):
            parse(text)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["30s", "1MiB", "auto", "pubsub", "bus", "pair", "sealed", K1, "a", "b"]),
)
KEYS = st.sampled_from(
    [
        "nngsec",
        "name",
        "version",
        "identities",
        "groups",
        "channels",
        "revoked",
        "pattern",
        "members",
        "publishers",
        "subscribers",
        "scheme",
        "max_age",
        "max_message_size",
        "replay_window",
        "topics",
        "origin",
        "a",
        "b",
        "c",
    ]
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)
    ),
    max_leaves=25,
)


@FAST
@given(st.dictionaries(KEYS, DOCUMENTS, max_size=8))
def test_any_policy_shaped_document_is_loaded_or_refused_with_places(document):
    document = {"nngsec": 1, "name": "p", **document}
    text = yaml.safe_dump(document, allow_unicode=True)
    try:
        parse_policy(text, "p.yaml")
    except PolicyError as error:
        for problem in error.problems:
            assert problem.line is not None, problem
            assert problem.column is not None, problem
            assert problem.hint, problem


@FAST
@given(st.binary(max_size=200))
def test_key_file_readers_raise_only_keystore_error(tmp_path_factory, content):
    directory = tmp_path_factory.mktemp("keys", numbered=True)
    path = Path(directory) / "k"
    path.write_bytes(content)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    for read in (read_secret_file, read_public_file):
        try:
            read(path)
        except KeystoreError as error:
            assert error.problems[0].path == str(path)


# -- revoke's text edit -----------------------------------------------------------------

REVOKED_FORMS = st.sampled_from(
    [
        "",
        "revoked: []\n",
        "revoked: []  # none\n",
        "revoked: [a]\n",
        "revoked: [a,]\n",
        "revoked: [\n  a,\n]\n",
        "revoked:\n  - a\n",
        "revoked:\n- a  # why\n",
        "revoked:\n",
        "revoked:   # later\n",
        "revoked: ~\n",
        "revoked: null\n",
    ]
)
VERSIONS = st.sampled_from(["", "version: 3\n", "version: 3  # three\n", "version: 0x10\n"])
COMMENTS = st.sampled_from(["", "# top\n", "\n", "# a\n\n# b\n"])


@FAST
@given(VERSIONS, REVOKED_FORMS, COMMENTS, COMMENTS, st.booleans(), st.booleans())
def test_add_revoked_changes_only_revoked_and_version(
    version, revoked, before, after, revoked_first, crlf
):
    body = f"identities:\n  a: {K1}\n  b: {K2}\n{after}"
    parts = [before, "nngsec: 1\nname: p\n", version]
    parts += [revoked, body] if revoked_first else [body, revoked]
    text = "".join(parts)
    if crlf:
        text = text.replace("\n", "\r\n")
    policy = parse_policy(text, "p.yaml")
    edited_text = add_revoked(text, "p.yaml", "b")
    edited = parse_policy(edited_text, "p.yaml")
    assert edited.revoked == policy.revoked | {"b"}
    assert edited.version == policy.version + 1
    assert dict(edited.identities) == dict(policy.identities)

    # Every comment is kept, in order, and every line not about revoked or version is
    # unchanged, in order.
    def comments(lines: list[str]) -> list[str]:
        return [line[line.index("#") :] for line in lines if "#" in line]

    def others(lines: list[str]) -> list[str]:
        return [line for line in lines if "revoked" not in line and "version" not in line]

    old_lines = text.splitlines()
    new_lines = edited_text.splitlines()
    assert comments(new_lines) == comments(old_lines)
    added = [line.replace(", b", "") for line in others(new_lines) if line.strip() != "- b"]
    assert added == others(old_lines)
    if crlf:
        assert "\n" not in edited_text.replace("\r\n", "")
