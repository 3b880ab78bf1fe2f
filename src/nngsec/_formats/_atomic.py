"""Atomic file writes: a reader sees the old file or the new one, never a half-written one,
and a crash leaves no copy of the data under another name.

Where the OS allows it (Linux: ``O_TMPFILE``, on local file systems), the data goes to an
*unnamed* file in the target's directory, is flushed to disk, and only then gets a name:

- ``overwrite=False``: it is linked straight to the final name (``linkat``, which fails
  atomically when the name exists). It never has another name, so a crash at any moment
  leaves either nothing (the kernel frees an unnamed file with its last descriptor) or the
  complete file. This is how private keys are written.
- ``overwrite=True``: it is linked straight to the final name too when that name is free
  (a new file never has another name either); only when it exists is the file linked to a
  temporary name and renamed over it, and that name exists only between those two calls.

Elsewhere a named temporary file is written, flushed and renamed (or linked) instead.

Temporary names are ``.NAME.nngsec-XXXXXXXX.tmp``, and the writer holds a lock (``flock``)
on the file for as long as it has such a name; a crash (even ``kill -9``) releases it.
Every write first removes the stale ones in its directory: temporaries of nngsec's naming
that no live writer holds, and the private-key temporaries of nngsec 0.2
(``.NAME.key.XXXXXXXX.tmp``), which held whole keys. So no temporary copy outlives the next
write into its directory. If anything fails before the final rename or link, the previous
file is untouched.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
from pathlib import Path

__all__ = ["UNNAMED_FILES", "remove_stale_temporaries", "write_atomic"]

UNNAMED_FILES = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")
"""Whether this system can write through unnamed files (``O_TMPFILE`` and ``/proc``); a
file system without them still falls back, per write, to named temporaries."""

_TEMPORARY = re.compile(r"^\..+\.nngsec-[0-9a-f]{8}\.tmp$")
_OLD_KEY_TEMPORARY = re.compile(r"^\.[a-z0-9][a-z0-9._-]*\.key\.[a-z0-9_]{8}\.tmp$")
# Kernels or file systems without O_TMPFILE answer one of these.
_NO_UNNAMED = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL)


def write_atomic(
    path: str | Path, data: bytes, *, mode: int = 0o644, overwrite: bool = True
) -> None:
    """Write ``data`` to ``path`` atomically with permission ``mode``.

    With ``overwrite=False`` an existing file is never replaced (``FileExistsError``): the
    final step is then a link, which fails atomically when the name exists.
    """
    path = Path(path)
    remove_stale_temporaries(path.parent)
    fd = _unnamed(path.parent) if UNNAMED_FILES else None
    if fd is not None:
        try:
            _fill(fd, data, mode)
            if not overwrite:
                _link_fd(fd, path)
            elif not _linked_if_free(fd, path):
                temp = _link_temporary(fd, path)
                _replace(temp, path)
        finally:
            os.close(fd)
    else:
        fd, temp = _named_temporary(path)
        try:
            _fill(fd, data, mode)
            if overwrite:
                _replace(temp, path)
            else:
                try:
                    os.link(temp, path)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(temp)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        finally:
            os.close(fd)
    _fsync_directory(path.parent)


def remove_stale_temporaries(directory: Path) -> None:
    """Remove the temporaries in ``directory`` that a crashed write left (see above)."""
    try:
        names = [e.name for e in os.scandir(directory)]
    except OSError:
        return  # a missing directory has none; the write itself reports what is wrong
    for name in names:
        if _TEMPORARY.match(name) or _OLD_KEY_TEMPORARY.match(name):
            _remove_if_stale(directory / name)


def _remove_if_stale(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return  # gone already, or not ours to open
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Locked by us, so no live writer holds it; and it is still the file at that name.
        if _same_file(fd, path):
            os.unlink(path)
    except OSError:
        pass  # its writer is alive (the lock is taken), or it went away meanwhile
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    opened, named = os.fstat(fd), os.lstat(path)
    return (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.nngsec-{secrets.token_hex(4)}.tmp")


def _link_fd(fd: int, path: Path) -> None:
    """Give the unnamed file ``fd`` the name ``path`` (``linkat`` with AT_SYMLINK_FOLLOW on
    its ``/proc/self/fd`` entry, which Python's ``os.link`` uses only with a directory fd;
    a plain ``link`` would try to link the ``/proc`` symlink itself)."""
    fds = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(str(fd), path, src_dir_fd=fds, follow_symlinks=True)
    finally:
        os.close(fds)


def _linked_if_free(fd: int, path: Path) -> bool:
    """Link the unnamed file ``fd`` to ``path`` if no file has that name; ``False`` if one
    has. A new file (a public key beside a new private key, most of all) then never has a
    temporary name, so a crash at any moment leaves it complete or absent and nothing
    beside it; a file being replaced has one only between its link and its rename."""
    try:
        _link_fd(fd, path)
    except FileExistsError:
        return False
    except OSError as error:  # name the file being written, not the /proc entry
        raise OSError(error.errno, error.strerror, str(path)) from None
    return True


def _unnamed(directory: Path) -> int | None:
    """An unnamed file in ``directory``, locked, or ``None`` where there are none."""
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o600)
    except OSError as error:
        if error.errno in _NO_UNNAMED:
            return None
        raise
    fcntl.flock(fd, fcntl.LOCK_EX)  # before it has a name, so a named one is always held
    return fd


def _named_temporary(path: Path) -> tuple[int, Path]:
    """A new temporary file beside ``path``, locked by this process."""
    for _ in range(100):
        temp = _temporary_name(path)
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if _same_file(fd, temp):
                return fd, temp
        except FileNotFoundError:
            pass
        # Another write took it for stale in the moment before the lock: take a new name.
        os.close(fd)
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path))


def _link_temporary(fd: int, path: Path) -> Path:
    """Give the unnamed file ``fd`` a temporary name beside ``path``."""
    for _ in range(100):
        temp = _temporary_name(path)
        try:
            _link_fd(fd, temp)
            return temp
        except FileExistsError:
            continue
        except OSError as error:
            # Name the file being written: the temporary name means nothing to the user.
            raise OSError(error.errno, error.strerror, str(path)) from None
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path))


def _fill(fd: int, data: bytes, mode: int) -> None:
    # The file is created 0600; chmod before any data is written so that a private key
    # is never readable by others, not even for a moment.
    os.fchmod(fd, mode)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _replace(temp: Path, path: Path) -> None:
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
