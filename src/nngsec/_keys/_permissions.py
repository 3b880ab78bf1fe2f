"""Who may read or change a key file or a keystore: ownership and modes, checked as ssh does.

A keystore decides what a node trusts: its private keys, the signers it pins, the records
that refuse older policies. Anyone who can write into it can pin their own signer or
reset those records, so nngsec refuses (with a ``chmod``/``chown`` hint):

- a keystore directory, its ``trusted/`` folder, a pinned signer or a record that group or
  others can write;
- any of those, and any private key file, owned by another user (root excepted: a
  keystore root provisioned for a service is fine, as ssh accepts root-owned files);
- a private key file that group or others can read, write or execute (mode 0600 expected).

These checks mean something on POSIX systems only; elsewhere they pass.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from .._errors import KeystoreError, Problem

__all__ = ["check_private_permissions", "check_protected"]

_POSIX = os.name == "posix"


def _user() -> str:
    """This process's user name for a ``chown`` hint (its uid when it has no name)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def _owner_problem(path: Path, info: os.stat_result, what: str) -> Problem | None:
    if info.st_uid in (os.getuid(), 0):
        return None
    return Problem(
        f"{what} is owned by another user (uid {info.st_uid}), who could change it",
        str(path),
        hint=f"chown {_user()} {path}, after checking that its content is yours",
    )


def check_protected(path: Path, what: str) -> None:
    """Refuse ``path`` (a directory or file of a keystore) if another user owns it or group
    or others can write it. A missing path passes: the caller decides what absence means."""
    if not _POSIX:
        return
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    except OSError as error:
        raise KeystoreError(
            Problem(f"cannot read {what}: {error.strerror}", str(path), hint="check its mode")
        ) from None
    problem = _owner_problem(path, info, what)
    if problem is None and info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = Problem(
            f"{what} can be written by group or others (mode {stat.S_IMODE(info.st_mode):04o})",
            str(path),
            hint=f"chmod go-w {path}",
        )
    if problem is not None:
        raise KeystoreError(problem)


def check_private_permissions(path: Path) -> None:
    """Refuse a private key file that another user owns, or that group or others can
    access (like ssh)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeystoreError(
            Problem("private key file not found", str(path), hint="check the path")
        ) from None
    if not _POSIX:
        return
    problem = _owner_problem(path, info, "private key file")
    if problem is not None:
        raise KeystoreError(problem)
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeystoreError(
            Problem(
                f"private key file is accessible by others (mode {stat.S_IMODE(info.st_mode):04o}, "
                "expected 0600)",
                str(path),
                hint=f"chmod 600 {path}",
            )
        )
