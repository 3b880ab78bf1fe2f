"""Key files on disk: ``NAME.key`` (private, mode 0600) and ``NAME.pub`` (public).

``NAME.key``::

    # nngsec identity secret key: sensor-1
    # Keep this file private (mode 0600). Its public half is in sensor-1.pub.
    # public: nngsec-id-v1:...
    nngsec-secret-v1:...

``NAME.pub`` is the very YAML entry to paste under ``identities:``::

    # nngsec identity public key: sensor-1
    sensor-1: nngsec-id-v1:...

Lines starting with ``#`` and blank lines are comments; exactly one key line is expected.
The typed prefix carries the format version, so a future ``-v2`` key is told apart.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from .._errors import KeystoreError, Problem
from .._formats._atomic import write_atomic
from .._formats._names import NAME_HINT, is_name
from .._formats._text import TextKeyError
from .._formats._yaml import read_text
from ._identity import PUBLIC_PREFIX, SECRET_PREFIX, IdentityKey, PublicIdentity

__all__ = [
    "read_public_file",
    "read_secret_file",
    "render_public_file",
    "render_secret_file",
    "write_identity_files",
]

_PUB_LINE = re.compile(r"^(?P<name>[^:\s]+)\s*:\s*(?P<key>\S+)\s*$")


def render_secret_file(name: str, key: IdentityKey) -> bytes:
    return (
        f"# nngsec identity secret key: {name}\n"
        f"# Keep this file private (mode 0600). Its public half is in {name}.pub.\n"
        f"# public: {key.public.to_text()}\n"
        f"{key.to_text()}\n"
    ).encode()


def render_public_file(name: str, public: PublicIdentity) -> bytes:
    return (
        f"# nngsec identity public key: {name} (paste the line below under identities:)\n"
        f"{name}: {public.to_text()}\n"
    ).encode()


def write_identity_files(directory: Path, name: str, key: IdentityKey) -> tuple[Path, Path]:
    """Write ``NAME.key`` (0600, never overwritten) and ``NAME.pub``; return both paths."""
    secret_path = directory / f"{name}.key"
    public_path = directory / f"{name}.pub"
    try:
        write_atomic(secret_path, render_secret_file(name, key), mode=0o600, overwrite=False)
    except FileExistsError:
        raise KeystoreError(
            Problem(
                "a key file with this name exists already; refusing to overwrite it",
                str(secret_path),
                hint="choose another name, or move the old key away first to replace it",
            )
        ) from None
    write_atomic(public_path, render_public_file(name, key.public), mode=0o644)
    return secret_path, public_path


def _key_lines(path: Path, what: str) -> list[tuple[int, int, str]]:
    """The key lines of a key file as (line number, column, text without blanks)."""
    text = read_text(
        path, what=what, error=KeystoreError, utf8_hint="is this really an nngsec key file?"
    )
    lines = [
        (number, len(line) - len(line.lstrip()) + 1, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise KeystoreError(
            Problem(
                f"{what} file holds no key (empty or only comments)",
                str(path),
                1,
                1,
                hint="the file may have been truncated; restore it from a backup",
            )
        )
    if len(lines) > 1:
        raise KeystoreError(
            Problem(
                f"{what} file holds {len(lines)} key lines, expected 1",
                str(path),
                lines[1][0],
                lines[1][1],
                hint="one identity per file; comment lines start with '#'",
            )
        )
    return lines


def check_private_permissions(path: Path) -> None:
    """Refuse a private key file that group or others can read or write (like ssh)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeystoreError(
            Problem("private key file not found", str(path), hint="check the path")
        ) from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeystoreError(
            Problem(
                f"private key file is accessible by others (mode {stat.S_IMODE(mode):04o}, "
                "expected 0600)",
                str(path),
                hint=f"chmod 600 {path}",
            )
        )


def _public_key_instead(path: Path, lines: list[tuple[int, int, str]]) -> KeystoreError | None:
    ((number, column, line),) = lines
    if line.startswith(PUBLIC_PREFIX) or (_PUB_LINE.match(line) and PUBLIC_PREFIX in line):
        return KeystoreError(
            Problem(
                "this is a public key file, expected a private key",
                str(path),
                number,
                column,
                hint="private keys are the NAME.key files written by nngsec keygen",
            )
        )
    return None


def read_secret_file(path: Path) -> IdentityKey:
    """Load a private identity key file (checks permissions first)."""
    try:
        check_private_permissions(path)
    except KeystoreError:
        # A public key file given where a private one belongs is readable by design: say
        # that, rather than advise making it private.
        try:
            wrong = _public_key_instead(path, _key_lines(path, "private key"))
        except KeystoreError:
            wrong = None
        if wrong is not None:
            raise wrong from None
        raise
    lines = _key_lines(path, "private key")
    ((number, column, line),) = lines
    wrong = _public_key_instead(path, lines)
    if wrong is not None:
        raise wrong
    try:
        return IdentityKey.from_text(line)
    except TextKeyError as error:
        raise KeystoreError(
            Problem(
                f"invalid private key: {error}",
                str(path),
                number,
                column,
                hint=f"a private key line starts with {SECRET_PREFIX!r}; restore the file from "
                "a backup",
            )
        ) from None


def read_public_file(path: Path) -> tuple[str, PublicIdentity]:
    """Load ``NAME.pub``: the identity name and its public key."""
    ((number, column, line),) = _key_lines(path, "public key")
    if line.lower().startswith(SECRET_PREFIX):
        raise KeystoreError(
            Problem(
                "this is a PRIVATE key, expected a public key file",
                str(path),
                number,
                column,
                hint="use the NAME.pub file; and since this secret was handled as public, "
                "consider it exposed",
            )
        )
    if line.startswith(PUBLIC_PREFIX):
        raise KeystoreError(
            Problem(
                f"found a public key without its name, expected a line 'NAME: {PUBLIC_PREFIX}...'",
                str(path),
                number,
                column,
                hint="put the identity's name and a colon before the key, as in the NAME.pub "
                "file written by nngsec keygen",
            )
        )
    match = _PUB_LINE.match(line)
    if match is None:
        raise KeystoreError(
            Problem(
                f"expected a line 'NAME: {PUBLIC_PREFIX}...'",
                str(path),
                number,
                column,
                hint="use the NAME.pub file written by nngsec keygen",
            )
        )
    if not is_name(match["name"]):
        raise KeystoreError(
            Problem(
                f"invalid identity name {match['name']!r}",
                str(path),
                number,
                column,
                hint=NAME_HINT,
            )
        )
    try:
        public = PublicIdentity.from_text(match["key"])
    except TextKeyError as error:
        raise KeystoreError(
            Problem(
                f"invalid public key: {error}",
                str(path),
                number,
                column + match.start("key"),
                hint="use the NAME.pub file written by nngsec keygen",
            )
        ) from None
    return match["name"], public
