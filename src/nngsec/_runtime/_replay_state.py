"""Replay state that survives a restart: a slot per receiver, snapshots, a journal.

A receiver's replay windows live in memory (:mod:`._replay`). So that a receiver that
crashed and was started again does not accept once more what it accepted before, each
receiver persists, per sender session, the highest accepted sequence number and the newest
accepted time (not the bitmaps: a few dozen bytes per session), and starts from them: each
becomes a tombstone, so a frame at or below the mark is refused and one above it (sent
after the restart, or queued during it) passes.

Files, in ``STATE/<identity>/`` (mode 0700, files 0600)::

    <channel>.<n>.lock            flock'ed by the receiver that owns slot n
    <channel>.<n>.replay          the slot's snapshot, replaced atomically
    <channel>.<n>.journal         write-through records of an answering receiver
    <channel>.<n>.journal.prev    the journal being folded into the next snapshot

``n`` is the lowest slot whose lock this receiver can take, so two receivers (in one
process, or in two processes sharing a keystore) never write the same files, and a
restarted process takes its old slot back. A new receiver starts from the files of every
slot of its identity and channel (not only its own), so it does not matter which slot it
gets; the marks of other receivers only refuse frames at or below what the channel's
senders had already sent, which an honest sender does not send again.

Writing: a background thread (one per :class:`ReplayState`, that is per ``Node``; started
with the first slot and ended with the last) writes a snapshot of each slot that changed
every ``checkpoint_interval`` seconds: temporary file, fsync, rename. It also closes,
within a second, the slots of receivers that were garbage collected without being closed
(the collector only flags them), and an exit handler writes the final snapshot of those
still open. A frame delivered to
an answering role (a reqrep server, a survey respondent) is also appended to the journal
with one ``os.write`` before ``recv`` returns it: no fsync, but in the page cache, which
survives the crash of the process. Hence, after a process crash no request is executed
twice and no other frame accepted more than one checkpoint interval (plus the time a
snapshot takes to write) before the crash is accepted again; after a power loss the bound
is the same for every frame.

A file that cannot be read (truncated, corrupted, another identity's or channel's, or of
another format) never produces a traceback: the receiver logs a warning naming the file
and starts *conservatively*, refusing every frame stamped before its start (plus the clock
skew allowance): as ``Node(not_before=...)``, which can refuse honest queued frames, but
never accepts a replay. The new floor is written to the slot at once.

After ``fork()`` the child's receivers keep their windows in memory only: the locks it
inherited are the parent's, and its writes would mix with the parent's in one file.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import hashlib
import logging
import math
import os
import re
import stat
import struct
import threading
import time
import weakref
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .._errors import KeystoreError, Problem
from .._formats._atomic import write_atomic
from ._replay import Mark, ReplayGuard

__all__ = [
    "DEFAULT_CHECKPOINT_INTERVAL",
    "STATE_DIRECTORY",
    "ReplaySlot",
    "ReplayState",
    "StateDamaged",
    "decode_journal",
    "decode_snapshot",
    "encode_journal_header",
    "encode_journal_record",
    "encode_snapshot",
]

logger = logging.getLogger(__name__)

STATE_DIRECTORY = "state"  # the default: <keystore directory>/state/
DEFAULT_CHECKPOINT_INTERVAL = 0.25
ABANDONED_POLL = 1.0  # seconds: how soon the slot of a collected receiver is given back
MAX_SLOTS = 1024  # receivers of one identity and channel sharing one state directory
MAX_FILE = 64 << 20  # larger than any state nngsec writes (about 2.7 MiB at the bounds)
MAX_ID = 64  # key ids and sessions are opaque bytes of at most this many

MAGIC = b"nngsec-replay-v1\n"
SNAPSHOT, JOURNAL = 1, 2
_DIGEST = 16
_U8, _U32, _U64, _F64 = (struct.Struct(f">{c}") for c in "BIQd")
_MARK_RECORDS: dict[tuple[int, int], struct.Struct] = {}  # at most MAX_ID ** 2


def _mark_record(key_length: int, session_length: int) -> struct.Struct:
    """blob(key_id) || blob(session) || u64(mark) || f64(newest): one C call per record."""
    found = _MARK_RECORDS.get((key_length, session_length))
    if found is None:
        found = struct.Struct(f">B{key_length}sB{session_length}sQd")
        _MARK_RECORDS[(key_length, session_length)] = found
    return found


_SLOT_FILE = re.compile(r"^(?P<slot>\d{1,4})\.(?P<kind>replay|journal|journal\.prev)$")


class StateDamaged(Exception):
    """A replay state file that cannot be used; the message says why (never raised out)."""


@dataclass
class StateContent:
    """What one or more state files say: marks (merged: the highest of each session),
    per-sender time floors, and the global floor."""

    marks: dict[tuple[bytes, bytes], Mark] = field(default_factory=dict)
    sender_floors: dict[bytes, float] = field(default_factory=dict)
    floor: float = float("-inf")

    def add(self, mark: Mark) -> None:
        key = (mark[0], mark[1])
        known = self.marks.get(key)
        if known is None:
            self.marks[key] = mark
        else:
            self.marks[key] = (*key, max(known[2], mark[2]), max(known[3], mark[3]))

    def merge(self, other: StateContent) -> None:
        for mark in other.marks.values():
            self.add(mark)
        for key_id, value in other.sender_floors.items():
            self.sender_floors[key_id] = max(self.sender_floors.get(key_id, value), value)
        self.floor = max(self.floor, other.floor)


# -- the file formats (docs/spec/wire-format.md, "Replay window") -------------------------
def _blob(data: bytes) -> bytes:
    if not 0 < len(data) <= MAX_ID:
        raise ValueError(f"a key id or session of {len(data)} bytes")
    return _U8.pack(len(data)) + data


def _binding(key_id: bytes, channel: str) -> bytes:
    return _blob(key_id) + _blob(channel.encode())


def encode_snapshot(
    key_id: bytes,
    channel: str,
    floor: float,
    sender_floors: dict[bytes, float],
    marks: Iterable[Mark],
) -> bytes:
    """A snapshot file: header, floors, one record per session, a BLAKE2b digest."""
    parts = [MAGIC, _U8.pack(SNAPSHOT), _binding(key_id, channel), _F64.pack(floor)]
    parts.append(_U32.pack(len(sender_floors)))
    for sender, value in sender_floors.items():
        parts += (_blob(sender), _F64.pack(value))
    records = []
    for k, s, highest, newest in marks:
        if not (0 < len(k) <= MAX_ID and 0 < len(s) <= MAX_ID):
            raise ValueError(f"a key id of {len(k)} or session of {len(s)} bytes")
        records.append(_mark_record(len(k), len(s)).pack(len(k), k, len(s), s, highest, newest))
    parts.append(_U32.pack(len(records)))
    parts += records
    data = b"".join(parts)
    return data + hashlib.blake2b(data, digest_size=_DIGEST).digest()


def encode_journal_header(key_id: bytes, channel: str) -> bytes:
    return MAGIC + _U8.pack(JOURNAL) + _binding(key_id, channel)


def encode_journal_record(key_id: bytes, session: bytes, seq: int, sent_at: float) -> bytes:
    """One accepted frame: length, body, CRC-32 of the body (catches a damaged record)."""
    body = _blob(key_id) + _blob(session) + _U64.pack(seq) + _F64.pack(sent_at)
    return _U8.pack(len(body)) + body + _U32.pack(zlib.crc32(body))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.at

    def take(self, count: int) -> bytes:
        if count > self.left:
            raise StateDamaged(f"truncated at byte {self.at}")
        chunk = self.data[self.at : self.at + count]
        self.at += count
        return chunk

    def u8(self) -> int:
        value: int = _U8.unpack(self.take(1))[0]
        return value

    def u32(self) -> int:
        value: int = _U32.unpack(self.take(4))[0]
        return value

    def u64(self) -> int:
        value: int = _U64.unpack(self.take(8))[0]
        return value

    def time(self, *, floor: bool = False) -> float:
        value: float = _F64.unpack(self.take(8))[0]
        if not (math.isfinite(value) or (floor and value == float("-inf"))):
            raise StateDamaged(f"a time that is not a number at byte {self.at - 8}")
        return value

    def blob(self) -> bytes:
        length = self.u8()
        if not 0 < length <= MAX_ID:
            raise StateDamaged(f"a key id or session of {length} bytes at byte {self.at - 1}")
        return self.take(length)


def _header(reader: _Reader, kind: int, key_id: bytes, channel: str) -> None:
    if reader.take(len(MAGIC)) != MAGIC:
        raise StateDamaged("not an nngsec replay state file (format 1)")
    found = reader.u8()
    if found != kind:
        raise StateDamaged(f"a file of kind {found} where kind {kind} belongs")
    owner, name = reader.blob(), reader.blob()
    if owner != key_id or name != channel.encode():
        raise StateDamaged(
            "written for another identity or channel "
            f"(key id {owner.hex()}, channel {name.decode('utf-8', 'replace')!r})"
        )


def decode_snapshot(data: bytes, key_id: bytes, channel: str) -> StateContent:
    """The content of a snapshot written for (``key_id``, ``channel``), or StateDamaged."""
    if len(data) < len(MAGIC) + _DIGEST:
        raise StateDamaged(f"truncated ({len(data)} bytes)")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    reader = _Reader(body)
    _header(reader, SNAPSHOT, key_id, channel)  # before the digest: names a foreign file
    if hashlib.blake2b(body, digest_size=_DIGEST).digest() != digest:
        raise StateDamaged("its checksum does not match (truncated or corrupted)")
    content = StateContent(floor=reader.time(floor=True))
    for _ in range(reader.u32()):
        sender = reader.blob()
        content.sender_floors[sender] = reader.time()
    count = reader.u32()
    reader.at = _read_marks(body, reader.at, count, content.marks)
    if reader.left:
        raise StateDamaged(f"{reader.left} bytes after the last record")
    return content


def _read_marks(data: bytes, at: int, count: int, marks: dict[tuple[bytes, bytes], Mark]) -> int:
    """``count`` mark records from ``at`` into ``marks``; the offset after them. (The hot
    loop of a start: 65,792 records, the most nngsec writes, in well under a second.)"""
    end = len(data)
    for _ in range(count):
        key_length = data[at] if at < end else 0
        if not 0 < key_length <= MAX_ID or at + key_length + 1 >= end:
            raise StateDamaged(f"a bad or truncated record at byte {at}")
        session_length = data[at + key_length + 1]
        record = _mark_record(key_length, session_length)
        if not 0 < session_length <= MAX_ID or at + record.size > end:
            raise StateDamaged(f"a bad or truncated record at byte {at}")
        _, key_id, _, session, highest, newest = record.unpack_from(data, at)
        if not math.isfinite(newest):
            raise StateDamaged(f"a time that is not a number in the record at byte {at}")
        at += record.size
        known = marks.get((key_id, session))
        if known is not None:  # one session twice: keep the higher facts
            highest, newest = max(highest, known[2]), max(newest, known[3])
        marks[(key_id, session)] = (key_id, session, highest, newest)
    return at


def decode_journal(data: bytes, key_id: bytes, channel: str) -> StateContent:
    """The records of a journal. An incomplete last record is ignored: only a power loss
    in the middle of its write leaves one, and its frame is within that bound."""
    content = StateContent()
    if not data:
        return content  # created, nothing written yet
    reader = _Reader(data)
    _header(reader, JOURNAL, key_id, channel)
    while reader.left:
        length = reader.u8()
        if length == 0:
            raise StateDamaged(f"an empty record at byte {reader.at - 1}")
        if reader.left < length + _U32.size:
            break  # torn by a power loss while being written
        body = reader.take(length)
        if reader.u32() != zlib.crc32(body):
            raise StateDamaged(f"a record whose checksum does not match at byte {reader.at}")
        record = _Reader(body)
        mark = (record.blob(), record.blob(), record.u64(), record.time())
        if record.left:
            raise StateDamaged(f"a record with {record.left} stray bytes at byte {reader.at}")
        content.add(mark)
    return content


# -- a slot ---------------------------------------------------------------------------------
class ReplaySlot:
    """One receiver's state files: it loads them (with every other slot of its identity
    and channel), writes snapshots of its guard, and appends write-through records."""

    def __init__(
        self,
        state: ReplayState,
        directory: Path,
        channel: str,
        number: int,
        lock_fd: int,
        key_id: bytes,
        guard: ReplayGuard,
        lock: threading.Lock,
    ) -> None:
        self.state = state
        self.directory = directory
        self.channel = channel
        self.number = number
        self.key_id = key_id
        self.guard = guard
        self.lock = lock  # the receiver's lock: the guard is read and changed under it
        stem = directory / f"{channel}.{number}"
        self.snapshot_path = stem.with_name(f"{stem.name}.replay")
        self.journal_path = stem.with_name(f"{stem.name}.journal")
        self.prev_path = stem.with_name(f"{stem.name}.journal.prev")
        self._lock_fd: int | None = lock_fd
        self._journal_fd: int | None = None
        self._journal_exists = False
        self._prev_pending = False
        self._saved = -1  # guard.changes at the last snapshot
        self._writing = threading.Lock()  # one writer: the thread, close(), exit
        self._failing = False  # a warning was logged; logged again only after a success
        self.closed = False
        self.detached = False  # in a forked child: memory only
        self.abandoned = False  # its receiver was collected: the thread closes the slot

    # -- start ------------------------------------------------------------------------
    def load(self, now: float, clock_skew: float, max_age: float) -> None:
        """Restore the guard from every slot's files; clean this slot's leftovers."""
        try:
            for temp in self.directory.glob(f".{self.snapshot_path.name}.*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()  # a snapshot write that a crash interrupted
            files = self._slot_files()
        except OSError as error:
            raise _unusable(self.directory, error.strerror or str(error)) from None
        content = StateContent()
        damaged: list[Problem] = []
        for path in files:
            try:
                content.merge(self._read(path, max_age))
            except StateDamaged as error:
                damaged.append(Problem(f"cannot use this replay state: {error}", str(path)))
        self._journal_exists = self.journal_path.exists()
        self._prev_pending = self.prev_path.exists()
        with self.lock:
            self.guard.restore(
                content.marks.values(),
                sender_floors=content.sender_floors,
                floor=content.floor,
                now=now,
            )
            if damaged:
                # Nothing tells which frames the damaged file had accepted: refuse every
                # frame that an earlier receiver could have accepted (stamped before now,
                # or within the allowance for clocks ahead).
                start = math.ceil((now + clock_skew) * 1000) / 1000
                self.guard.floor = max(self.guard.floor, start)
        for problem in damaged:
            floor = datetime.fromtimestamp(self.guard.floor, UTC).isoformat(timespec="milliseconds")
            logger.warning(
                "%s; so this receiver of channel %s refuses every frame stamped before %s "
                "(frames queued for it before this start are lost; the file is replaced by "
                "this receiver's state, or expires after max_age)",
                problem,
                self.channel,
                floor,
            )
        if damaged or self._journal_exists or self._prev_pending:
            self.checkpoint()  # fold the journals (and a new floor) into a snapshot now
        else:
            # The files it came from stay until their owners replace them, and owners never
            # drop a mark younger than max_age: nothing to write until a frame is accepted.
            self._saved = self.guard.changes

    def _slot_files(self) -> list[Path]:
        prefix = f"{self.channel}."
        found = []
        for entry in os.scandir(self.directory):
            name = entry.name
            if name.startswith(prefix) and _SLOT_FILE.match(name[len(prefix) :]):
                found.append(Path(entry.path))
        return sorted(found)

    def _read(self, path: Path, max_age: float) -> StateContent:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return StateContent()  # another receiver renamed it meanwhile
        except OSError as error:
            raise StateDamaged(f"cannot open it ({error.strerror or error})") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise StateDamaged("not a regular file")
            if time.time() - info.st_mtime > max_age + 60:
                # Written long before any frame that could still be replayed: everything in
                # it is older than max_age (a minute allows for the clocks of the marks).
                return StateContent()
            if info.st_size > MAX_FILE:
                raise StateDamaged(f"{info.st_size} bytes, larger than nngsec writes")
            with os.fdopen(os.dup(fd), "rb") as handle:
                data = handle.read(MAX_FILE + 1)
        except OSError as error:
            raise StateDamaged(f"cannot read it ({error.strerror or error})") from None
        finally:
            os.close(fd)
        if path.name.endswith(".replay"):
            return decode_snapshot(data, self.key_id, self.channel)
        return decode_journal(data, self.key_id, self.channel)

    # -- running ----------------------------------------------------------------------
    def write_through(self, key_id: bytes, session: bytes, seq: int, sent_at: float) -> None:
        """Append an accepted frame to the journal (call under the receiver's lock, before
        the frame is recorded and returned). Raises KeystoreError if it cannot: a request
        that could not be recorded must not be executed."""
        if self.detached or self.closed:
            return
        record = encode_journal_record(key_id, session, seq, sent_at)
        try:
            if self._journal_fd is None:
                fd = os.open(
                    self.journal_path,
                    os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o600,
                )
                if os.fstat(fd).st_size == 0:
                    record = encode_journal_header(self.key_id, self.channel) + record
                self._journal_fd = fd
                self._journal_exists = True
            os.write(self._journal_fd, record)
        except OSError as error:
            raise KeystoreError(
                Problem(
                    f"cannot write the replay journal: {error.strerror or error}",
                    str(self.journal_path),
                    hint="the state directory must be writable (Node(state_dir=...)); the "
                    "request was not delivered, so it is not executed without a record",
                )
            ) from None

    def checkpoint(self) -> None:
        """Write a snapshot if the guard changed since the last one. Never raises: a
        failure is logged and retried at the next interval."""
        with self._writing:
            if self.detached or self.closed:
                return
            try:
                self._checkpoint()
            except OSError as error:
                if not self._failing:
                    logger.warning(
                        "%s",
                        Problem(
                            f"cannot write the replay state: {error.strerror or error}; "
                            "frames accepted since the last snapshot could be accepted "
                            "again after a restart",
                            str(self.snapshot_path),
                            hint="free space or fix the permissions of the state directory",
                        ),
                    )
                self._failing = True
            else:
                self._failing = False

    def _checkpoint(self) -> None:
        with self.lock:
            changes = self.guard.changes
            if changes == self._saved:
                return
            marks = self.guard.marks()
            sender_floors = self.guard.sender_floors()
            floor = self.guard.floor
            rotated = self._journal_exists and not self._prev_pending
            if rotated:
                # New records go to a new journal; the old one is removed once the snapshot
                # that contains its records is on disk.
                if self._journal_fd is not None:
                    os.close(self._journal_fd)
                    self._journal_fd = None
                self._journal_exists = False
                try:
                    os.replace(self.journal_path, self.prev_path)
                    self._prev_pending = True
                except FileNotFoundError:
                    pass  # removed by hand: its records are in memory, and in this snapshot
        data = encode_snapshot(self.key_id, self.channel, floor, sender_floors, marks)
        write_atomic(self.snapshot_path, data, mode=0o600)
        if self._prev_pending:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.prev_path)
            self._prev_pending = False
        self._saved = changes

    def close(self, *, final: bool = True) -> None:
        """Write the final snapshot (unless ``final`` is false: a slot that failed to load
        must not overwrite what it could not read) and give the slot back (idempotent)."""
        if self.detached:  # a forked child: nothing of the parent's to write or release,
            self.closed = True  # and locks a parent thread held at fork() stay held here
            self.state.forget(self)
            return
        if final:
            self.checkpoint()
        with self._writing, self.lock:  # no write-through can use a descriptor being closed
            if self.closed:
                return
            self.closed = True
            for fd in (self._journal_fd, self._lock_fd):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)  # closing the lock's only descriptor releases it
            self._journal_fd = self._lock_fd = None
        self.state.forget(self)

    def abandon(self) -> None:
        """Called by the garbage collector for a receiver that was not closed: only a flag,
        since a finalizer that writes files (releasing the GIL in the middle of a
        collection) is asking for trouble; the checkpoint thread closes the slot."""
        self.abandoned = True

    def detach_in_child(self) -> None:
        """After fork(), in the child: keep the guard in memory, never touch the parent's
        files. The descriptors are closed without unlocking: the lock is shared with the
        parent's descriptors and stays the parent's."""
        self.detached = True
        for fd in (self._journal_fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._journal_fd = self._lock_fd = None


# -- a node's replay state ------------------------------------------------------------------
class ReplayState:
    """Where one Node keeps its receivers' replay state, and the thread that writes it."""

    def __init__(self, directory: Path, *, checkpoint_interval: float) -> None:
        self.directory = directory
        self.checkpoint_interval = checkpoint_interval
        self._slots: dict[ReplaySlot, None] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        _STATES.add(self)

    def __repr__(self) -> str:
        return f"ReplayState({str(self.directory)!r})"

    def open_slot(
        self,
        identity: str,
        key_id: bytes,
        channel: str,
        guard: ReplayGuard,
        lock: threading.Lock,
        *,
        now: float,
        clock_skew: float,
    ) -> ReplaySlot:
        """Take the lowest free slot of (``identity``, ``channel``), restore ``guard`` from
        the state files, and have the thread checkpoint it. KeystoreError if the state
        directory is unusable."""
        directory = self.directory / identity
        self._prepare(self.directory)
        self._prepare(directory)
        number, lock_fd = self._take_slot(directory, channel)
        slot = ReplaySlot(self, directory, channel, number, lock_fd, key_id, guard, lock)
        _SLOTS.add(slot)
        try:
            slot.load(now, clock_skew, guard.max_age)
        except BaseException:
            slot.close(final=False)
            raise
        with self._wake:
            self._slots[slot] = None
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="nngsec-replay-checkpoint", daemon=True
                )
                self._thread.start()
        return slot

    def _prepare(self, directory: Path) -> None:
        """Create ``directory`` (0700) or check that only its owner, this user, can change it."""
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.lstat(directory)
        except OSError as error:
            raise _unusable(directory, error.strerror or str(error)) from None
        if not stat.S_ISDIR(info.st_mode):
            raise _unusable(directory, "it is not a directory")
        if info.st_uid != os.geteuid():
            raise _unusable(directory, "it belongs to another user")
        if info.st_mode & 0o022:
            raise _unusable(
                directory,
                f"group or others can write it (mode {stat.S_IMODE(info.st_mode):04o}): "
                "they could erase what it remembers",
            )

    def _take_slot(self, directory: Path, channel: str) -> tuple[int, int]:
        for number in range(MAX_SLOTS):
            path = directory / f"{channel}.{number}.lock"
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except OSError as error:
                raise _unusable(path, error.strerror or str(error)) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    continue  # another receiver holds this slot
                raise _unusable(path, error.strerror or str(error)) from None
            return number, fd
        raise _unusable(
            directory,
            f"{MAX_SLOTS} receivers of channel {channel!r} already use it",
        )

    def forget(self, slot: ReplaySlot) -> None:
        with self._wake:
            self._slots.pop(slot, None)
            if not self._slots:
                self._wake.notify_all()  # let the thread end now

    def close(self) -> None:
        """Write every slot's final snapshot, give the slots back, end the thread."""
        with self._wake:
            slots = list(self._slots)
        for slot in slots:
            slot.close()
        with self._wake:  # (a receiver opened meanwhile keeps the thread running)
            thread = self._thread if not self._slots else None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        due = time.monotonic() + self.checkpoint_interval
        while True:
            with self._wake:
                if self._slots:
                    # Awake at least every ABANDONED_POLL seconds: the collector cannot wake
                    # the thread (only flag a slot), and a slot must not stay taken an hour.
                    wait = min(due - time.monotonic(), ABANDONED_POLL)
                    self._wake.wait(max(wait, 0.0))
                slots = list(self._slots)
                if not slots:
                    self._thread = None
                    return
            checkpoint = time.monotonic() >= due
            if checkpoint:
                due = time.monotonic() + self.checkpoint_interval
            for slot in slots:
                if slot.abandoned:
                    slot.close()
                elif checkpoint:
                    slot.checkpoint()

    def reset_in_child(self) -> None:
        self._slots.clear()
        self._wake = threading.Condition()
        self._thread = None


def _unusable(path: Path, why: str) -> KeystoreError:
    return KeystoreError(
        Problem(
            f"cannot keep replay state here: {why}",
            str(path),
            hint="give the node a private, writable state directory (Node(state_dir=...)), "
            "or state_dir=False to keep replay state in memory only",
        )
    )


# Every live slot and state, so that a forked child can let go of its parent's files.
_SLOTS: weakref.WeakSet[ReplaySlot] = weakref.WeakSet()
_STATES: weakref.WeakSet[ReplayState] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for slot in list(_SLOTS):
        slot.detach_in_child()
    for state in list(_STATES):
        state.reset_in_child()


def _close_at_exit() -> None:
    """The final snapshot of every receiver still open when the interpreter exits."""
    for slot in list(_SLOTS):
        slot.close()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_at_exit)
