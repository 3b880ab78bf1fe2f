"""Identity key files (``NAME.key``, ``NAME.pub``): a corpus of malformed files, permissions.

The corpus in ``tests/data/bad_keys`` is copied to a temporary directory with mode 0600
(git does not keep file modes), so each file is refused for its content alone.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest

from nngsec import IdentityKey, KeystoreError
from nngsec._keys._files import (
    read_public_file,
    read_secret_file,
    render_public_file,
    render_secret_file,
)

DATA = Path(__file__).parents[1] / "data" / "bad_keys"


class Expect(NamedTuple):
    line: int
    column: int
    at: str  # the text that starts at line:column
    message: str  # a fragment of the message
    hint: str  # a fragment of the hint


SECRET_PREFIX = "nngsec-secret-v1:"
PUBLIC_PREFIX = "nngsec-id-v1:"
RESTORE = "restore the file from a backup"

CASES: dict[str, Expect] = {
    # private key files
    "empty.key": Expect(
        1, 1, "", "private key file holds no key (empty or only comments)", "truncated"
    ),
    "comments-only.key": Expect(1, 1, "# nngsec", "holds no key", "truncated"),
    "truncated.key": Expect(
        4, 1, SECRET_PREFIX, "truncated: 43 characters after the prefix, expected 48", RESTORE
    ),
    "too-long.key": Expect(
        4, 1, SECRET_PREFIX, "too long: 52 characters after the prefix, expected 48", RESTORE
    ),
    "checksum.key": Expect(4, 1, SECRET_PREFIX, "checksum mismatch", RESTORE),
    "wrong-prefix.key": Expect(
        4, 1, "nngsec-secrt-v1:", f"expected a string starting with {SECRET_PREFIX!r}", RESTORE
    ),
    "future-version.key": Expect(4, 1, "nngsec-secret-v2:", "expected a string starting", RESTORE),
    "not-base64.key": Expect(4, 1, SECRET_PREFIX, "not base64url", RESTORE),
    "two-keys.key": Expect(6, 1, SECRET_PREFIX, "holds 2 key lines, expected 1", "one identity"),
    "public-line.key": Expect(
        2,
        1,
        "sensor: nngsec-id-v1:",
        "this is a public key file, expected a private key",
        "NAME.key",
    ),
    "bare-public.key": Expect(2, 1, PUBLIC_PREFIX, "this is a public key file", "NAME.key"),
    "indented-truncated.key": Expect(4, 5, SECRET_PREFIX, "truncated: 47 characters", RESTORE),
    "not-utf8.key": Expect(
        4, 18, "", "the private key file is not valid UTF-8 (byte 0xff)", "nngsec key file"
    ),
    # public key files
    "empty.pub": Expect(1, 1, "", "public key file holds no key", "truncated"),
    # a private key in a public key file is refused where it starts, and never shown
    "private.pub": Expect(
        2, 1, SECRET_PREFIX, "a private key is written here; a public key file must", "exposed"
    ),
    "private-with-name.pub": Expect(2, 9, SECRET_PREFIX, "a private key is written", "exposed"),
    "truncated.pub": Expect(
        2, 9, PUBLIC_PREFIX, "truncated: 89 characters after the prefix, expected 91", "NAME.pub"
    ),
    "checksum.pub": Expect(2, 9, PUBLIC_PREFIX, "checksum mismatch", "NAME.pub"),
    "no-name.pub": Expect(
        2, 1, PUBLIC_PREFIX, "found a public key without its name", "name and a colon"
    ),
    "bad-name.pub": Expect(2, 1, "Sensor:", "invalid identity name 'Sensor'", "lowercase"),
    "two-keys.pub": Expect(3, 1, "other:", "holds 2 key lines, expected 1", "one identity"),
    "junk.pub": Expect(
        2, 1, "this is not", f"expected a line 'NAME: {PUBLIC_PREFIX}...'", "keygen"
    ),
    "indented-wrong-version.pub": Expect(
        2, 13, "nngsec-id-v9:", f"expected a string starting with {PUBLIC_PREFIX!r}", "NAME.pub"
    ),
    "not-utf8.pub": Expect(
        1, 3, "", "the public key file is not valid UTF-8 (byte 0xe9)", "nngsec key file"
    ),
}


def test_the_corpus_has_one_table_entry_per_file():
    assert sorted(p.name for p in DATA.iterdir()) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_key_file(name, tmp_path):
    path = tmp_path / name
    shutil.copy(DATA / name, path)
    os.chmod(path, 0o600)
    read = read_secret_file if name.endswith(".key") else read_public_file
    with pytest.raises(KeystoreError) as caught:
        read(path)
    [problem] = caught.value.problems
    expected = CASES[name]
    assert (problem.path, problem.line, problem.column, problem.field) == (
        str(path),
        expected.line,
        expected.column,
        "",
    )
    lines = (DATA / name).read_bytes().decode("utf-8", "replace").splitlines() or [""]
    assert lines[expected.line - 1][expected.column - 1 :].startswith(expected.at)
    assert expected.message in problem.message
    assert expected.hint in problem.hint
    assert str(problem).startswith(f"{path}:{expected.line}:{expected.column}: ")
    assert "\n" not in str(problem)


@pytest.fixture
def key() -> IdentityKey:
    return IdentityKey(bytes(range(32)))


def test_key_files_round_trip(tmp_path, key):
    secret = tmp_path / "sensor.key"
    secret.write_bytes(render_secret_file("sensor", key))
    secret.chmod(0o600)
    public = tmp_path / "sensor.pub"
    public.write_bytes(render_public_file("sensor", key.public))
    assert read_secret_file(secret).public == key.public
    assert read_public_file(public) == ("sensor", key.public)


@pytest.mark.parametrize("variant", ["crlf", "no-final-newline", "indented", "blank-lines"])
def test_harmless_layout_changes_still_read(tmp_path, key, variant):
    text = render_secret_file("sensor", key).decode()
    text = {
        "crlf": text.replace("\n", "\r\n"),
        "no-final-newline": text.rstrip("\n"),
        "indented": text.replace(SECRET_PREFIX, "  " + SECRET_PREFIX),
        "blank-lines": "\n\n" + text + "\n\n",
    }[variant]
    path = tmp_path / "sensor.key"
    path.write_text(text, newline="")
    path.chmod(0o600)
    assert read_secret_file(path).public == key.public


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o610, 0o601, 0o666])
def test_a_private_key_others_can_access_is_refused(tmp_path, key, mode):
    path = tmp_path / "sensor.key"
    path.write_bytes(render_secret_file("sensor", key))
    path.chmod(mode)
    with pytest.raises(KeystoreError) as caught:
        read_secret_file(path)
    [problem] = caught.value.problems
    assert problem.path == str(path)
    assert f"mode {mode:04o}, expected 0600" in problem.message
    assert problem.hint == f"chmod 600 {path}"


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_owner_only_modes_are_fine(tmp_path, key, mode):
    path = tmp_path / "sensor.key"
    path.write_bytes(render_secret_file("sensor", key))
    path.chmod(mode)
    assert read_secret_file(path).public == key.public


def test_a_public_key_given_as_private_key_says_so_rather_than_chmod(tmp_path, key):
    path = tmp_path / "sensor.pub"
    path.write_bytes(render_public_file("sensor", key.public))
    path.chmod(0o644)
    with pytest.raises(KeystoreError) as caught:
        read_secret_file(path)
    assert caught.value.problems[0].message == "this is a public key file, expected a private key"
    assert caught.value.line == 2
    assert "chmod" not in caught.value.hint


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(KeystoreError) as caught:
        read_public_file(tmp_path / "nobody.pub")
    assert caught.value.problems[0].message == "public key file not found"
    with pytest.raises(KeystoreError) as caught:
        read_public_file(tmp_path)
    assert caught.value.problems[0].message == "expected a public key file, found a directory"
    assert caught.value.hint
