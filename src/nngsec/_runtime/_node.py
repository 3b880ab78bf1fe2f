"""Node: one identity running under one policy, with its keys opened."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import pynng

from .._errors import PolicyError, Problem, UsageError
from .._keys._channel_keys import ChannelKeyFile, OpenedChannelKeys
from .._keys._identity import IdentityKey, PublicIdentity
from .._keys._keystore import Keystore
from .._policy._load import load_policy
from .._policy._policy import Policy
from ._codec import Accept, ChannelCodec, Received, Receiver, Sender, Topic
from ._replay_state import DEFAULT_CHECKPOINT_INTERVAL, STATE_DIRECTORY, ReplayState
from ._sockets import DEFAULT_BUFFER, OnReject, SecureSocket, socket_role
from ._trust import accept_policy, load_identity

__all__ = ["DEFAULT_CLOCK_SKEW", "Node"]

logger = logging.getLogger("nngsec")

DEFAULT_CLOCK_SKEW = 2.0
"""Seconds a frame may be stamped in the future and still be accepted (clocks differ)."""


class Node:
    """An identity's view of a policy: what it may send and receive, with which keys.

    Construction verifies the policy (pinned signature, anti-rollback), checks that the
    identity is defined, not revoked and has its private key in the keystore, and opens
    this identity's channel-key entries (current and previous epochs).

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
        policy: Policy | str | Path,
        *,
        identity: str,
        keystore: Keystore | str | Path,
        clock: Callable[[], float] = time.time,
        random: Callable[[int], bytes] = os.urandom,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        not_before: float | None = None,
        state_dir: str | Path | Literal[False] | None = None,
        checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL,
    ) -> None:
        self.policy = policy if isinstance(policy, Policy) else load_policy(policy)
        self.keystore = keystore if isinstance(keystore, Keystore) else Keystore(keystore)
        self.identity = identity
        self.clock = clock
        self.random = random
        self.clock_skew = clock_skew
        self.not_before = not_before
        self._replay_state = _replay_state(self.keystore, state_dir, checkpoint_interval)
        keys_file = accept_policy(self.policy, self.keystore)
        self._key: IdentityKey = load_identity(self.policy, self.keystore, identity)
        self._channel_keys = self._open_keys(keys_file)
        self._codecs: dict[str, ChannelCodec] = {}
        self._senders: dict[str, Sender] = {}
        self._receivers: dict[str, Receiver] = {}

    def _open_keys(self, keys_file: ChannelKeyFile | None) -> dict[str, OpenedChannelKeys]:
        """This identity's entries, for the channels it has a role on; warns about an
        entitled identity without an entry (it would then reject every frame as no-key)."""
        opened: dict[str, OpenedChannelKeys] = {}
        for channel in self.policy.channels:
            if self.policy.channel_key_kind(channel) is None:
                continue
            if not self.policy.roles_of(self.identity, channel):
                continue
            keys = keys_file.open_channel(channel, self.identity, self._key) if keys_file else None
            if keys is not None:
                wanted = self.policy.channel_key_kind(channel)
                if keys.kind != wanted:
                    # e.g. a channel turned from pubsub into bus without a rotation: its old
                    # audience secret must not become the group key of the bus.
                    raise PolicyError(
                        Problem(
                            f"channel {channel!r} has {keys.kind} keys in the channel-key file, "
                            f"but its pattern and scheme need {wanted} keys",
                            str(keys_file.path) if keys_file and keys_file.path else None,
                            field=f"channels.{channel}",
                            hint=f"run nngsec rotate {self.policy.path or 'POLICY'} {channel}",
                        )
                    )
                opened[channel] = keys
            if self.identity in self.policy.key_holders(channel) and (
                keys is None or keys.current.secret is None
            ):
                logger.warning(
                    "identity %s has no key in the current epoch of channel %s, so it cannot "
                    "read it: run nngsec rotate %s and distribute the channel-key file",
                    self.identity,
                    channel,
                    self.policy.path or "POLICY",
                )
        return opened

    def reload_keys(self) -> None:
        """Re-read the channel-key file (verified and rollback-checked as at start) and use
        its epochs from now on, in every socket of this node.

        Run it after ``nngsec rotate``: senders then encrypt to the new epoch. A changed
        policy file (a revocation, a new version) needs a new :class:`Node` instead; its
        signature does not cover the policy this node holds, so it is refused here.
        """
        self._channel_keys = self._open_keys(accept_policy(self.policy, self.keystore))
        for channel, codec in self._codecs.items():
            codec.set_keys(self._channel_keys.get(channel))

    @property
    def public_key(self) -> PublicIdentity:
        """This node's public identity (the private half never leaves the node's codecs)."""
        return self._key.public

    @property
    def channel_keys(self) -> Mapping[str, OpenedChannelKeys]:
        """Opened channel-key epochs, for the channels of this identity that have them."""
        return self._channel_keys

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

    def codec(self, channel: str) -> ChannelCodec:
        """The codec of ``channel`` for this identity (refuses channels it has no role on)."""
        codec = self._codecs.get(channel)
        if codec is None:
            self.channel(channel)
            if not self.policy.roles_of(self.identity, channel):
                raise PolicyError(
                    Problem(
                        f"identity {self.identity!r} has no role on channel {channel!r}",
                        str(self.policy.path) if self.policy.path else None,
                        field=f"channels.{channel}",
                        hint="list it in one of the channel's roles in the policy",
                    )
                )
            codec = ChannelCodec(
                self.policy,
                channel,
                identity=self.identity,
                identity_key=self._key,
                channel_keys=self._channel_keys.get(channel),
                clock=self.clock,
                random=self.random,
                clock_skew=self.clock_skew,
                not_before=self.not_before,
                replay_state=self._replay_state,
            )
            self._codecs[channel] = codec
        return codec

    def sender(self, channel: str) -> Sender:
        """A new sending session on ``channel`` (each socket uses its own)."""
        return self.codec(channel).sender()

    def receiver(self, channel: str, accept: Accept = "any") -> Receiver:
        """A new receiver on ``channel`` with its own replay windows (one per socket)."""
        return self.codec(channel).receiver(accept)

    # -- sockets ------------------------------------------------------------------------
    def attach(
        self,
        socket: pynng.Socket,
        channel: str,
        *,
        on_reject: OnReject = "drop",
        buffers: int | None = DEFAULT_BUFFER,
    ) -> SecureSocket:
        """Secure ``socket`` on ``channel``: every frame sent is sealed, every frame received
        is checked and opened. Refuses a socket whose protocol does not fit the channel's
        pattern, a role this identity does not hold, and raw sockets (``PolicyError``).

        ``on_reject="raise"`` makes ``recv`` raise :class:`nngsec.Rejected` instead of
        dropping and counting; ``buffers`` raises nng's send/receive buffers to at least
        that many messages (``None`` leaves them).
        """
        role = socket_role(self.policy, self.channel(channel), self.identity, socket)
        codec = self.codec(channel)
        return SecureSocket(socket, codec, role, on_reject=on_reject, buffers=buffers)

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
        """Write the final replay state of every receiver of this node, give their state
        slots back and stop the checkpoint thread. Sockets attached from this node keep
        working, with replay windows in memory only; close them first."""
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
