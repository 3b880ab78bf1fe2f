"""Node: one identity running under one policy, with its keys opened."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ._errors import PolicyError, Problem
from ._keys._channel_keys import OpenedChannelKeys
from ._keys._identity import IdentityKey
from ._keys._keystore import Keystore
from ._policy._load import load_policy
from ._policy._policy import Policy
from ._trust import accept_policy, load_identity

__all__ = ["DEFAULT_CLOCK_SKEW", "Node"]

DEFAULT_CLOCK_SKEW = 2.0
"""Seconds a frame may be stamped in the future and still be accepted (clocks differ)."""


class Node:
    """An identity's view of a policy: what it may send and receive, with which keys.

    Construction verifies the policy (pinned signature, anti-rollback), checks that the
    identity is defined, not revoked and has its private key in the keystore, and opens
    this identity's channel-key entries (current and previous epochs).

    ``clock`` (seconds since the epoch) and ``random`` (n -> n random bytes) are
    injectable for tests and test vectors.
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
    ) -> None:
        self.policy = policy if isinstance(policy, Policy) else load_policy(policy)
        self.keystore = keystore if isinstance(keystore, Keystore) else Keystore(keystore)
        self.identity = identity
        self.clock = clock
        self.random = random
        self.clock_skew = clock_skew
        keys_file = accept_policy(self.policy, self.keystore)
        self._key: IdentityKey = load_identity(self.policy, self.keystore, identity)
        self._channel_keys: dict[str, OpenedChannelKeys] = {}
        for channel in self.policy.channels:
            if not self.policy.roles_of(identity, channel):
                continue
            if self.policy.channel_key_kind(channel) is None or keys_file is None:
                continue
            opened = keys_file.open_channel(channel, identity, self._key)
            if opened is not None:
                self._channel_keys[channel] = opened

    @property
    def key(self) -> IdentityKey:
        return self._key

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

    def __repr__(self) -> str:
        return f"<Node {self.identity!r} policy={self.policy.name!r} v{self.policy.version}>"
