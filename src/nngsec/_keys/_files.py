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

import re
from pathlib import Path

from .._errors import KeystoreError, Problem
from .._formats._atomic import write_atomic
from .._formats._echo import echo
from .._formats._names import NAME_HINT, is_name
from .._formats._text import TextKeyError
from .._formats._yaml import read_text
from ._identity import PUBLIC_PREFIX, SECRET_PREFIX, IdentityKey, PublicIdentity
from ._permissions import check_private_permissions

__all__ = [
    "check_private_permissions",
    "read_public_file",
    "read_secret_file",
    "render_public_file",
    "render_secret_file",
    "write_identity_files",
    "write_public_file",
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
    """Write ``NAME.key`` (0600, never overwritten) and ``NAME.pub``; return both paths.

    The private key takes its name complete or not at all (``write_atomic``), and before
    the public file: a crash in between leaves ``NAME.key`` alone, which ``nngsec keygen
    NAME`` then completes (it writes the public file from the private key).
    """
    secret_path = directory / f"{name}.key"
    public_path = directory / f"{name}.pub"
    try:
        write_atomic(secret_path, render_secret_file(name, key), mode=0o600, overwrite=False)
    except FileExistsError:
        raise KeystoreError(
            Problem(
                "a key file with this name exists already; refusing to overwrite it",
                str(secret_path),
                hint=f"to print its public entry: nngsec keygen {name} --public --keystore "
                f"{directory}; to replace it, move the old key away first",
            )
        ) from None
    write_public_file(public_path, name, key.public)
    return secret_path, public_path


def write_public_file(path: Path, name: str, public: PublicIdentity) -> None:
    """Write ``NAME.pub`` (0644, replacing any)."""
    write_atomic(path, render_public_file(name, public), mode=0o644)


def _key_lines(path: Path, what: str, *, secret: bool = False) -> list[tuple[int, int, str]]:
    """The key lines of a key file as (line number, column, text without blanks); only a
    private key file (``secret``) may hold private-key text."""
    text = read_text(
        path,
        what=what,
        error=KeystoreError,
        utf8_hint="is this really an nngsec key file?",
        secret=secret,
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
            wrong = _public_key_instead(path, _key_lines(path, "private key", secret=True))
        except KeystoreError:
            wrong = None
        if wrong is not None:
            raise wrong from None
        raise
    lines = _key_lines(path, "private key", secret=True)
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
    # A private key in it is refused (without being shown) as the file is read.
    ((number, column, line),) = _key_lines(path, "public key")
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
                f"invalid identity name {echo(match['name'])}",
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
