"""Node: one identity running under one policy, with its keys opened, following its source."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import pynng

from .._errors import KeystoreError, PolicyError, Problem, UsageError
from .._keys._channel_keys import ChannelKeyFile, OpenedChannelKeys
from .._keys._identity import IdentityKey, PublicIdentity
from .._keys._keystore import Keystore
from .._policy._policy import Policy
from ._codec import Accept, ChannelCodec, ChannelSlot, Received, Receiver, Sender, Topic
from ._replay_state import DEFAULT_CHECKPOINT_INTERVAL, STATE_DIRECTORY, ReplayState
from ._sockets import DEFAULT_BUFFER, OnReject, SecureSocket, socket_role
from ._source import Source, open_source
from ._trust import CandidateSet, VerifiedSet, verify_set
from ._watch import DEFAULT_WATCH_INTERVAL, Watcher

__all__ = ["DEFAULT_CLOCK_SKEW", "Node"]

logger = logging.getLogger(__name__)  # under "nngsec", like every logger of nngsec

DEFAULT_CLOCK_SKEW = 2.0
"""Seconds a frame may be stamped in the future and still be accepted (clocks differ)."""


@dataclass(frozen=True)
class _InForce:
    """The verified set a node runs on: replaced as a whole, never modified."""

    policy: Policy
    key: IdentityKey
    channel_keys: dict[str, OpenedChannelKeys]
    parts: tuple[bytes | None, ...]  # the bytes it was verified from


class Node:
    """An identity's view of a policy: what it may send and receive, with which keys.

    ``source`` is a loaded :class:`Policy`, a policy file path (its ``.sig`` and
    ``.keys.json`` beside it) or ``etcd://HOST:PORT/PREFIX`` (published with ``nngsec
    publish``). Construction verifies the set (pinned signature, anti-rollback, expiry),
    checks that the identity is defined, not revoked or expired and has its private key in
    the keystore, and opens this identity's channel-key entries.

    ``watch`` makes the node follow its source: a new policy, signature or channel-key set
    is verified exactly as at start-up and switched to atomically under the attached
    sockets (no socket re-attached, no frame lost; each socket keeps its sending session
    and its replay windows); ``node.policy.version`` is the version in force. A set that
    fails any check is refused with one log line saying why, and the node keeps the last
    verified set. ``watch`` defaults to following a file path or a store, not a policy
    object. ``watch_interval`` is how often files are looked at (seconds). A watching node
    has one daemon thread: end it with :meth:`close` (or ``with Node(...) as node``).

    An unsigned policy is refused when the keystore pins a signer (``nngsec trust``; that
    is the keystore's setting for every node using it), when ``require_signed=True``
    (this node's setting), and when a signature file lies beside the policy while the
    keystore pins no signer to verify it with. Otherwise it runs, with one warning.

    ``clock`` (seconds since the epoch) and ``random`` (n -> n random bytes) are
    injectable for tests and test vectors.

    Replay state survives restarts: each receiver of this node (each receiving socket, and
    the one :meth:`open` uses) keeps, per sender session, the highest sequence number it
    accepted, in a slot under ``state_dir`` (default: ``<keystore directory>/state/``),
    checkpointed every ``checkpoint_interval`` seconds by a background thread; frames to a
    server or respondent are written through before ``recv`` returns them. After a crash,
    no request is executed twice and no frame accepted more than one checkpoint interval
    before it is accepted again, while frames sent after the restart (or queued during it)
    are accepted. ``state_dir=False`` keeps replay state in memory only: a restarted node
    then accepts once more what it accepted within ``max_age`` before. A state directory
    that cannot be used raises :class:`KeystoreError` when a receiver is created
    (``attach``, the first ``open``).

    ``not_before`` (seconds since the epoch) additionally makes every receiver refuse
    frames stamped earlier, including honest frames queued before the start.

    :meth:`close` (or ``with Node(...) as node``) writes the final replay state of every
    receiver of the node and stops its checkpoint thread.
    """

    def __init__(
        self,
        source: Policy | str | Path,
        *,
        identity: str,
        keystore: Keystore | str | Path,
        watch: bool | None = None,
        require_signed: bool = False,
        watch_interval: float = DEFAULT_WATCH_INTERVAL,
        clock: Callable[[], float] = time.time,
        random: Callable[[int], bytes] = os.urandom,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        not_before: float | None = None,
        state_dir: str | Path | Literal[False] | None = None,
        checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL,
    ) -> None:
        if not watch_interval > 0:
            raise ValueError(f"watch_interval must be positive, got {watch_interval!r}")
        self.keystore = keystore if isinstance(keystore, Keystore) else Keystore(keystore)
        self.identity = identity
        self.clock = clock
        self.random = random
        self.clock_skew = clock_skew
        self.not_before = not_before
        self.require_signed = require_signed
        self._source: Source = open_source(source)
        self._lock = threading.RLock()  # switches, and slots created while one runs
        self._slots: dict[str, ChannelSlot] = {}
        self._replay_state = _replay_state(self.keystore, state_dir, checkpoint_interval)
        self._senders: dict[str, Sender] = {}
        self._receivers: dict[str, Receiver] = {}
        self._refused: str | None = None
        self._in_force = self._prepare(self._verify(self._source.read()))
        self._watcher: Watcher | None = None
        # By default a node follows a path or a store, not a policy object it was handed.
        if watch if watch is not None else not isinstance(source, Policy):
            self._watcher = Watcher(self, self._source, watch_interval)
            self._watcher.start()

    # -- the set in force -------------------------------------------------------------------
    @property
    def policy(self) -> Policy:
        """The policy in force (it changes when a watched source delivers a verified set)."""
        return self._in_force.policy

    @property
    def _key(self) -> IdentityKey:
        return self._in_force.key

    @property
    def source(self) -> str:
        """Where this node's policy comes from (a path, an etcd URL, or ``<policy>``)."""
        return self._source.where

    @property
    def watching(self) -> bool:
        return self._watcher is not None and self._watcher.running

    def _verify(self, candidate: CandidateSet) -> VerifiedSet:
        return verify_set(
            candidate,
            self.keystore,
            self.identity,
            require_signed=self.require_signed,
            now=self.clock(),
        )

    def _prepare(self, verified: VerifiedSet) -> _InForce:
        policy = verified.accepted.policy
        keys = self._open_keys(policy, verified.key, verified.accepted.keys)
        keys_file = verified.accepted.keys
        parts = (policy.source, keys_file.raw if keys_file is not None else None)
        return _InForce(policy, verified.key, keys, parts)

    def _open_keys(
        self, policy: Policy, key: IdentityKey, keys_file: ChannelKeyFile | None
    ) -> dict[str, OpenedChannelKeys]:
        """This identity's entries, for the channels it has a role on; warns about an
        entitled identity without an entry (it would then reject every frame as no-key)."""
        opened: dict[str, OpenedChannelKeys] = {}
        for channel in policy.channels:
            if policy.channel_key_kind(channel) is None:
                continue
            if not policy.roles_of(self.identity, channel):
                continue
            keys = keys_file.open_channel(channel, self.identity, key) if keys_file else None
            if keys is not None:
                wanted = policy.channel_key_kind(channel)
                if keys.kind != wanted:
                    # e.g. a channel turned from pubsub into bus without a rotation: its old
                    # audience secret must not become the group key of the bus.
                    raise PolicyError(
                        Problem(
                            f"channel {channel!r} has {keys.kind} keys in the channel-key file, "
                            f"but its pattern and scheme need {wanted} keys",
                            str(keys_file.path) if keys_file and keys_file.path else None,
                            field=f"channels.{channel}",
                            hint=f"run nngsec rotate {policy.path or 'POLICY'} {channel}",
                        )
                    )
                opened[channel] = keys
            if self.identity in policy.key_holders(channel) and (
                keys is None or keys.current.secret is None
            ):
                logger.warning(
                    "identity %s has no key in the current epoch of channel %s, so it cannot "
                    "read it: run nngsec rotate %s and distribute the channel-key file",
                    self.identity,
                    channel,
                    policy.path or "POLICY",
                    extra={"channel": channel, "identity": self.identity},
                )
        return opened

    def _codec_for(self, state: _InForce, channel: str) -> ChannelCodec:
        return ChannelCodec(
            state.policy,
            channel,
            identity=self.identity,
            identity_key=state.key,
            channel_keys=state.channel_keys.get(channel),
            clock=self.clock,
            random=self.random,
            clock_skew=self.clock_skew,
            not_before=self.not_before,
            replay_state=self._replay_state,
        )

    def _switch(self, state: _InForce) -> None:
        """Put ``state`` in force: every channel's codec is built first (a failure leaves
        everything as it was), then each slot is replaced in one assignment."""
        with self._lock:
            replacements: dict[str, tuple[ChannelCodec | None, str]] = {}
            for channel, slot in self._slots.items():
                spec = state.policy.channels.get(channel)
                if spec is None:
                    why = f"channel {channel!r} is no longer in policy {state.policy.name!r}"
                    replacements[channel] = (None, why)
                elif spec.pattern_spec is not slot.pattern:  # its sockets are of another kind
                    why = f"channel {channel!r} is now {spec.pattern_spec.name}"
                    replacements[channel] = (None, why)
                elif not state.policy.roles_of(self.identity, channel):
                    why = f"identity {self.identity!r} has no role on channel {channel!r} any more"
                    replacements[channel] = (None, why)
                else:
                    replacements[channel] = (self._codec_for(state, channel), "")
            self._in_force = state
            for channel, (codec, why) in replacements.items():
                self._slots[channel].replace(codec, why)

    def offer(self, candidate: CandidateSet) -> bool:
        """Verify ``candidate`` and switch to it; a refusal is logged once (one line, the
        reason) and the node keeps the last verified set. Returns whether it switched."""
        try:
            state = self._prepare(self._verify(candidate))
        except (PolicyError, KeystoreError) as error:
            reason = "; ".join(str(problem) for problem in error.problems)
            if reason != self._refused:
                self._refused = reason
                logger.error(
                    "%s: refused an update: %s (still running version %d)",
                    self.identity,
                    reason,
                    self.policy.version,
                )
            return False
        self._refused = None
        if state.parts == self._in_force.parts:
            return False
        before = self.policy.version
        self._switch(state)
        logger.info(
            "%s: now running policy %s version %d (was %d) from %s",
            self.identity,
            state.policy.name,
            state.policy.version,
            before,
            self._source.where,
        )
        return True

    def reload_keys(self) -> None:
        """Read the source again (policy, signature and channel keys), verify the set as at
        start-up, and switch every socket of this node to it; raises the reason when it is
        refused (a watching node does this by itself).

        Run it after ``nngsec rotate`` or ``nngsec revoke`` and ``nngsec sign``: senders
        then seal under the new epochs, and a changed policy (a revocation, a new version)
        is in force too.
        """
        state = self._prepare(self._verify(self._source.read()))
        if state.parts != self._in_force.parts:
            self._switch(state)

    @property
    def public_key(self) -> PublicIdentity:
        """This node's public identity (the private half never leaves the node's codecs)."""
        return self._key.public

    @property
    def channel_keys(self) -> Mapping[str, OpenedChannelKeys]:
        """Opened channel-key epochs, for the channels of this identity that have them."""
        return self._in_force.channel_keys

    def channel(self, name: str) -> str:
        """Check that ``name`` is a channel of the policy this identity has a role on."""
        if name not in self.policy.channels:
            raise PolicyError(
                Problem(
                    f"no channel {name!r} in policy {self.policy.name!r}",
                    str(self.policy.path) if self.policy.path else None,
                    field="channels",
                    hint=f"channels are: {', '.join(self.policy.channels) or 'none'}",
                )
            )
        return name

    def _slot(self, channel: str) -> ChannelSlot:
        """The slot of ``channel`` (refuses channels this identity has no role on)."""
        slot = self._slots.get(channel)
        if slot is not None:
            return slot
        with self._lock:
            slot = self._slots.get(channel)
            if slot is None:
                self.channel(channel)
                policy = self.policy
                if not policy.roles_of(self.identity, channel):
                    raise PolicyError(
                        Problem(
                            f"identity {self.identity!r} has no role on channel {channel!r}",
                            str(policy.path) if policy.path else None,
                            field=f"channels.{channel}",
                            hint="list it in one of the channel's roles in the policy",
                        )
                    )
                slot = self._slots[channel] = ChannelSlot(self._codec_for(self._in_force, channel))
            return slot

    def codec(self, channel: str) -> ChannelCodec:
        """The codec of ``channel`` in force for this identity (refuses channels it has no
        role on)."""
        return self._slot(channel).current()

    def sender(self, channel: str) -> Sender:
        """A new sending session on ``channel`` (each socket uses its own)."""
        return self._slot(channel).sender()

    def receiver(self, channel: str, accept: Accept = "any") -> Receiver:
        """A new receiver on ``channel`` with its own replay windows (one per socket)."""
        return self._slot(channel).receiver(accept)

    # -- sockets ------------------------------------------------------------------------
    def attach(
        self,
        socket: pynng.Socket,
        channel: str,
        *,
        on_reject: OnReject = "drop",
        buffers: int | None = DEFAULT_BUFFER,
        verify_threads: int = 0,
    ) -> SecureSocket:
        """Secure ``socket`` on ``channel``: every frame sent is sealed, every frame received
        is checked and opened. Refuses a socket whose protocol does not fit the channel's
        pattern, a role this identity does not hold, and raw sockets (``PolicyError``).

        ``on_reject="raise"`` makes ``recv`` raise :class:`nngsec.Rejected` instead of
        dropping and counting; ``buffers`` raises nng's send/receive buffers to at least
        that many messages (``None`` leaves them). ``verify_threads=N`` (a socket that
        only takes messages in) opens the frames NNG holds on N threads, delivered in
        the order they came: Ed25519 verification (``origin: signed``) then runs on N
        cores, since libsodium releases the GIL. It pays only with cores to spare: each
        batch is a hand-off between threads, and on a 2-core host that also runs the sender
        it made a signed subscriber slower (``nngsec bench --verify-threads``).
        """
        role = socket_role(self.policy, self.channel(channel), self.identity, socket)
        slot = self._slot(channel)
        return SecureSocket(
            socket,
            slot,
            role,
            on_reject=on_reject,
            buffers=buffers,
            verify_threads=verify_threads,
        )

    # -- the socket-free codec ------------------------------------------------------------
    def seal(self, channel: str, payload: bytes, *, topic: Topic | None = None) -> bytes:
        """A frame carrying ``payload`` on ``channel``, usable over any transport."""
        sender = self._senders.get(channel)
        if sender is None:
            sender = self._senders[channel] = self.sender(channel)
        return sender.seal(payload, topic)

    def reply(self, request: Received, payload: bytes) -> bytes:
        """A frame answering ``request`` (a reqrep request or a survey) with ``payload``."""
        sender = self._senders.get(request.channel)
        if sender is None:
            sender = self._senders[request.channel] = self.sender(request.channel)
        return sender.reply(request, payload)

    def open(self, channel: str, frame: bytes) -> Received:
        """The message in ``frame``; raises :class:`nngsec.Rejected` with the reason."""
        receiver = self._receivers.get(channel)
        if receiver is None:
            receiver = self._receivers[channel] = self.receiver(channel)
        return receiver.open(frame)

    # -- lifetime -------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path | None:
        """Where this node keeps replay state (``None``: in memory only)."""
        return self._replay_state.directory if self._replay_state is not None else None

    def close(self) -> None:
        """Stop following the source (its thread ends), write the final replay state of
        every receiver of this node, give their state slots back and stop the checkpoint
        thread. Sockets attached from this node keep working, with the policy last in force
        and replay windows in memory only; close them first."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
        for receiver in self._receivers.values():
            receiver.close()
        self._receivers.clear()
        if self._replay_state is not None:
            self._replay_state.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Node {self.identity!r} policy={self.policy.name!r} v{self.policy.version}>"


def _replay_state(
    keystore: Keystore, state_dir: str | Path | bool | None, checkpoint_interval: float
) -> ReplayState | None:
    """The node's replay state: under the keystore by default, where it is told, or none."""
    if state_dir is True or not isinstance(state_dir, str | Path | bool | None):
        raise UsageError(
            Problem(
                f"state_dir is a directory, None (the keystore's) or False (memory only), "
                f"not {state_dir!r}",
                field="state_dir",
            )
        )
    interval = checkpoint_interval
    if isinstance(interval, bool) or not (
        isinstance(interval, int | float) and 0 < interval < math.inf
    ):
        raise UsageError(
            Problem(
                f"checkpoint_interval is a positive number of seconds, not {interval!r}",
                field="checkpoint_interval",
            )
        )
    if state_dir is False:
        return None
    directory = Path(state_dir) if state_dir is not None else keystore.directory / STATE_DIRECTORY
    return ReplayState(directory, checkpoint_interval=float(interval))
