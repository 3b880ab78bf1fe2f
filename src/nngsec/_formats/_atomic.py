"""Atomic file writes: a reader sees the old file or the new one, never a half-written one.

The new content goes to a temporary file in the same directory (same file system), is
flushed to disk, and then takes the final name in one ``rename``. If anything fails before
the rename, the temporary file is removed and the previous file is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(
    path: str | Path, data: bytes, *, mode: int = 0o644, overwrite: bool = True
) -> None:
    """Write ``data`` to ``path`` atomically with permission ``mode``.

    With ``overwrite=False`` an existing file is never replaced (``FileExistsError``): the
    final step is then a hard link, which fails atomically when the name exists.
    """
    path = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; chmod before any data is written so that a
        # private key is never readable by others, not even for a moment.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temp, path)
        else:
            os.link(temp, path)
            os.unlink(temp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
