"""Where a node's policy set comes from: a loaded policy, files beside a policy, or etcd.

Each source delivers *candidate* sets of bytes (:class:`CandidateSet`); the node verifies
every one with the same function (``_trust.verify_set``) before using it. A source never
decides what is trusted.

- :class:`FixedSource`: a :class:`Policy` loaded from text; it never changes.
- :class:`FileSource`: ``POLICY``, ``POLICY.sig`` and ``POLICY.keys.json``. It polls their
  mtime, size and inode, and offers a set once the three have stopped changing for one
  interval (an admin writes them one after the other); a set refused as half-updated is
  offered again when a file changes again.
- :class:`StoreSource`: ``etcd://HOST:PORT/PREFIX``. It reads the set at one revision and
  watches the prefix; when the store is unreachable it says so once, retries with a short
  backoff, and catches up (a fresh read) when the store returns.
"""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

from .._errors import PolicyError, Problem
from .._policy._policy import Policy, channel_keys_path, signature_path
from ._etcd import StoreError, Watch
from ._store import STORE_SCHEME, StoreAddress, read_set
from ._trust import CandidateSet, candidate_from_files

__all__ = ["FileSource", "FixedSource", "Source", "StoreSource", "open_source"]

logger = logging.getLogger(__name__)
MAX_BACKOFF = 5.0  # seconds between two attempts to reach a store that is down

Stamp = tuple[int, int, int] | None  # (mtime ns, size, inode) of one file, None if absent


class Source(ABC):
    """A place that delivers policy sets."""

    where: str

    @abstractmethod
    def read(self) -> CandidateSet:
        """The set as it is now (``PolicyError`` when there is none to read)."""

    def changes(self, stop: threading.Event, interval: float) -> Iterator[CandidateSet]:
        """Blocking: each new set as it appears, until ``stop`` is set."""
        stop.wait()
        yield from ()

    def interrupt(self) -> None:  # noqa: B027 - most sources have nothing to interrupt
        """Wake :meth:`changes` up after ``stop`` was set (a store's open watch)."""


class FixedSource(Source):
    """A policy object without a file (``parse_policy(text)``): the set never changes."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.where = str(policy.path) if policy.path else "<policy>"

    def read(self) -> CandidateSet:
        return CandidateSet(self.policy.source, None, None, self.where, None, self.policy)


class FileSource(Source):
    """A policy file and the signature and channel-key files beside it."""

    def __init__(self, path: Path, policy: Policy | None = None) -> None:
        self.path = path
        self.where = str(path)
        self._files = (path, signature_path(path), channel_keys_path(path))
        self._first: Policy | None = policy  # the caller's loaded policy, for the first read
        self._seen: tuple[Stamp, ...] | None = None

    def _stamps(self) -> tuple[Stamp, ...]:
        stamps: list[Stamp] = []
        for file in self._files:
            try:
                info = os.stat(file)
            except OSError:
                stamps.append(None)
            else:
                stamps.append((info.st_mtime_ns, info.st_size, info.st_ino))
        return tuple(stamps)

    def read(self) -> CandidateSet:
        stamps = self._stamps()  # before reading: a change during the read is seen next time
        policy, self._first = self._first, None
        try:
            candidate = candidate_from_files(self.path, policy)
        except OSError as error:
            raise PolicyError(
                Problem(
                    f"cannot read the policy: {error.strerror or error}",
                    self.where,
                    hint="check the path and its permissions",
                )
            ) from None
        self._seen = stamps
        return candidate

    def changes(self, stop: threading.Event, interval: float) -> Iterator[CandidateSet]:
        settling: tuple[Stamp, ...] | None = None
        while not stop.wait(interval):
            stamps = self._stamps()
            if stamps == self._seen:
                settling = None
                continue
            if stamps != settling:  # still being written: wait until it holds still
                settling = stamps
                continue
            settling = None
            try:
                candidate = self.read()
            except PolicyError as error:
                self._seen = stamps  # said once; a next change is tried again
                logger.error("%s (still running the last verified set)", error.problems[0])
                continue
            yield candidate


class StoreSource(Source):
    """A policy set published to etcd with ``nngsec publish``."""

    def __init__(self, address: StoreAddress, *, timeout: float = 5.0) -> None:
        self.address = address
        self.where = str(address)
        self._client = address.client(timeout)
        self._last: tuple[bytes | None, ...] | None = None
        self._watch: Watch | None = None
        self._stopping = False

    def _read(self) -> tuple[int, CandidateSet | None]:
        return read_set(self._client, self.address)

    def read(self) -> CandidateSet:
        try:
            _, candidate = self._read()
        except StoreError as error:
            raise PolicyError(
                Problem(str(error), self.where, hint="start etcd, or check the address")
            ) from None
        if candidate is None:
            raise PolicyError(
                Problem(
                    "nothing is published under this prefix",
                    self.where,
                    hint=f"publish a policy: nngsec publish POLICY {self.where}",
                )
            )
        self._last = _parts(candidate)
        return candidate

    def _new(self, candidate: CandidateSet | None) -> CandidateSet | None:
        """``candidate`` unless it is the set offered last (a change elsewhere in etcd)."""
        if candidate is None or _parts(candidate) == self._last:
            return None
        self._last = _parts(candidate)
        return candidate

    def changes(self, stop: threading.Event, interval: float) -> Iterator[CandidateSet]:
        failures = 0
        while not stop.is_set():
            try:
                if self._watch is None:
                    # Catch up first: whatever was published while nobody watched.
                    revision, candidate = self._read()
                    if failures:
                        logger.warning("store %s is reachable again", self.where)
                    failures = 0
                    fresh = self._new(candidate)
                    if fresh is not None:
                        yield fresh
                    self._watch = self._client.watch(self.address.range, revision + 1)
                    if stop.is_set() or self._stopping:  # interrupt() ran before it existed
                        break
                for _ in self._watch:
                    _, candidate = self._read()
                    fresh = self._new(candidate)
                    if fresh is not None:
                        yield fresh
                if not stop.is_set():
                    raise StoreError(f"etcd at {self._client.address} ended the watch")
            except StoreError as error:
                self._close_watch()
                if stop.is_set():
                    break
                if failures == 0:
                    logger.warning(
                        "store %s: %s; still running the last verified set, retrying",
                        self.where,
                        error,
                    )
                failures += 1
                stop.wait(min(interval * 2 ** min(failures - 1, 4), MAX_BACKOFF))
        self._close_watch()

    def _close_watch(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()

    def interrupt(self) -> None:
        self._stopping = True
        self._close_watch()


def _parts(candidate: CandidateSet) -> tuple[bytes | None, ...]:
    return (candidate.policy_bytes, candidate.signature, candidate.channel_keys)


def open_source(source: Policy | str | Path) -> Source:
    """The source ``Node(source, ...)`` was given."""
    if isinstance(source, Policy):
        return FileSource(source.path, source) if source.path else FixedSource(source)
    if isinstance(source, str) and source.startswith(STORE_SCHEME):
        return StoreSource(StoreAddress.parse(source))
    if isinstance(source, (str, Path)):
        return FileSource(Path(source))
    raise TypeError(
        f"a node's source is a Policy, a policy file path or an etcd:// URL, "
        f"got {type(source).__name__}"
    )
