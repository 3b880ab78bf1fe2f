"""Node: one identity running under one policy, with its keys opened."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pynng

from .._errors import PolicyError, Problem
from .._keys._channel_keys import ChannelKeyFile, OpenedChannelKeys
from .._keys._identity import IdentityKey, PublicIdentity
from .._keys._keystore import Keystore
from .._policy._load import load_policy
from .._policy._policy import Policy
from ._codec import Accept, ChannelCodec, Received, Receiver, Sender, Topic
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

    An unsigned policy is refused when the keystore pins a signer (``nngsec trust``; that
    is the keystore's setting for every node using it), when ``require_signed=True``
    (this node's setting), and when a signature file lies beside the policy while the
    keystore pins no signer to verify it with. Otherwise it runs, with one warning.

    ``clock`` (seconds since the epoch) and ``random`` (n -> n random bytes) are
    injectable for tests and test vectors.

    Replay windows live in memory, so after a restart a frame that the previous run
    accepted within ``max_age`` would be accepted once more. ``not_before`` (seconds since
    the epoch; e.g. ``time.time()`` at start-up) makes every receiver of this node refuse
    frames stamped earlier, which closes that gap but also refuses honest frames queued
    before the start (a request or a job waiting for its server or worker to come up).
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
        require_signed: bool = False,
    ) -> None:
        self.policy = policy if isinstance(policy, Policy) else load_policy(policy)
        self.keystore = keystore if isinstance(keystore, Keystore) else Keystore(keystore)
        self.identity = identity
        self.clock = clock
        self.random = random
        self.clock_skew = clock_skew
        self.not_before = not_before
        self.require_signed = require_signed
        keys_file = accept_policy(self.policy, self.keystore, require_signed=require_signed)
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
        self._channel_keys = self._open_keys(
            accept_policy(self.policy, self.keystore, require_signed=self.require_signed)
        )
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

    def __repr__(self) -> str:
        return f"<Node {self.identity!r} policy={self.policy.name!r} v{self.policy.version}>"
