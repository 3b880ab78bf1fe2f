"""Per-epoch channel secrets, sealed to each entitled identity, in one file beside the policy.

``factory.yaml`` has its channel keys in ``factory.keys.json`` (machine-managed, safe to
distribute: every secret in it is sealed)::

    {
      "nngsec-channel-keys": 1,
      "policy": "factory",
      "channels": {
        "telemetry": {
          "kind": "audience",
          "epochs": [
            {"epoch": 2, "created": "2026-11-26T17:00:00Z", "retire_at": null,
             "public": "<base64url X25519 public key>",
             "sealed": {"dashboard": "<base64url sealed box>", "archiver": "..."}},
            {"epoch": 1, "created": "...", "retire_at": "2026-11-26T18:00:00Z", ...}
          ]
        }
      }
    }

Kinds: ``group`` (bus: a 32-byte symmetric key), ``audience`` (sealed channels: an X25519
key pair whose private half the receivers hold and whose public half senders encrypt to),
``service`` (reqrep with several servers: an X25519 key pair the servers share).

Each entry is ``crypto_box_seal`` to the member's X25519 key of
``label || 0 || policy || 0 || channel || 0 || epoch (u32 BE) || kind (1 byte) || secret``;
opening checks that policy, channel, epoch and kind match, so a copied or misplaced entry
is caught. That stops mistakes, not attackers: a sealed box is anonymous and anyone can
write a valid entry for anyone. Only the policy signature, verified against a pinned
signer, authenticates the file.
The newest epoch is the current one; at most one previous epoch is kept, until its
``retire_at`` time (the grace period for frames still in flight).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from nacl.bindings import crypto_box_seal, crypto_box_seal_open, crypto_scalarmult_base
from nacl.exceptions import CryptoError
from pydantic import (
    AfterValidator,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from .._errors import PolicyError, Problem
from .._formats._atomic import write_atomic
from .._formats._diagnostics import FieldValueError, pydantic_problems, short
from .._formats._labels import CHANNEL_KEY_ENTRY, EPOCH_FINGERPRINT
from .._formats._model import StrictModel, check_format_version
from .._formats._text import b64url_decode, b64url_encode
from .._formats._yaml import parse_yaml, read_text
from .._patterns import ChannelKeyKind
from ._identity import IdentityKey

__all__ = ["ChannelKeyFile", "EpochKeys", "OpenedChannelKeys"]

_KIND_BYTE: dict[str, bytes] = {"group": b"g", "audience": b"a", "service": b"s"}
FORMAT_FIELD = "nngsec-channel-keys"
FORMAT_VERSION = 1
SECRET_SIZE = 32


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _check_timestamp(text: str) -> str:
    try:
        _seconds(text)
    except ValueError:
        raise FieldValueError(
            f"got {short(text)}, expected a UTC time like 2026-11-26T17:00:00Z"
        ) from None
    return text


Timestamp = Annotated[StrictStr, AfterValidator(_check_timestamp)]


class EpochModel(StrictModel):
    epoch: StrictInt = Field(ge=1, lt=1 << 32)
    created: Timestamp
    retire_at: Timestamp | None = None
    public: StrictStr | None = None
    sealed: dict[str, StrictStr]


class ChannelModel(StrictModel):
    kind: ChannelKeyKind
    epochs: tuple[EpochModel, ...] = Field(min_length=1, max_length=2)


class ChannelKeyFileModel(StrictModel):
    format: Literal[1] = Field(alias="nngsec-channel-keys")  # FORMAT_FIELD
    policy: StrictStr
    channels: dict[str, ChannelModel]


def _entry_plaintext(policy: str, channel: str, epoch: int, kind: str, secret: bytes) -> bytes:
    return b"".join(
        (
            CHANNEL_KEY_ENTRY,
            b"\x00",
            policy.encode(),
            b"\x00",
            channel.encode(),
            b"\x00",
            struct.pack(">I", epoch),
            _KIND_BYTE[kind],
            secret,
        )
    )


@dataclass(frozen=True, slots=True)
class EpochKeys:
    """One epoch of a channel as a node sees it.

    ``secret`` is ``None`` when this node is not entitled to it (a publisher that is not
    a subscriber still learns ``public`` to encrypt to). ``retire_at`` is when a previous
    epoch stops being accepted (``None`` for the current epoch).
    """

    epoch: int
    secret: bytes | None
    public: bytes | None
    retire_at: float | None

    def __repr__(self) -> str:  # never show the secret
        held = "held" if self.secret is not None else "not held"
        return f"EpochKeys(epoch={self.epoch}, secret {held}, retire_at={self.retire_at})"


@dataclass(frozen=True, slots=True)
class OpenedChannelKeys:
    """The epochs of one channel a node knows: the current one first."""

    kind: ChannelKeyKind
    epochs: tuple[EpochKeys, ...]

    @property
    def current(self) -> EpochKeys:
        return self.epochs[0]

    def get(self, epoch: int, now: float | None) -> EpochKeys | None:
        """Keys of ``epoch`` unless retired at ``now`` (``None``: do not check retirement)."""
        for keys in self.epochs:
            if keys.epoch == epoch:
                if keys.retire_at is not None and now is not None and now > keys.retire_at:
                    return None
                return keys
        return None


class ChannelKeyFile:
    """The channel-key file of a policy: parsed, with the exact bytes it was read from."""

    def __init__(self, model: ChannelKeyFileModel, raw: bytes, path: Path | None) -> None:
        self.model = model
        self.raw = raw
        self.path = path

    # -- reading and writing ------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> ChannelKeyFile | None:
        """The file at ``path``, or ``None`` when there is none yet."""
        if not path.exists():
            return None
        text = read_text(path, what="channel-key")
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: Path | None) -> ChannelKeyFile:
        shown = str(path) if path else "<channel keys>"
        hint = "this file is written by `nngsec rotate`; re-run it rather than editing"
        try:
            doc = parse_yaml(text, shown, what="channel-key")
            check_format_version(doc, what="channel-key", field=FORMAT_FIELD)
        except PolicyError as error:
            raise PolicyError([replace(p, hint=hint) for p in error.problems]) from None
        try:
            model = ChannelKeyFileModel.model_validate(doc.data)
        except ValidationError as error:
            raise PolicyError(
                [
                    replace(problem, hint=hint)
                    for problem, _ in pydantic_problems(doc, error.errors(), ChannelKeyFileModel)
                ]
            ) from None
        return cls(model, text.encode(), path)

    def dumps(self) -> bytes:
        data = self.model.model_dump(by_alias=True, mode="json")
        return (json.dumps(data, indent=2) + "\n").encode()

    def save(self) -> None:
        if self.path is None:
            raise ValueError("a channel-key file read from text has no path to save to")
        write_atomic(self.path, self.dumps(), mode=0o644)

    def check_policy(self, policy_name: str, hint: str) -> None:
        """Refuse this file unless it was written for the policy named ``policy_name``:
        nodes would refuse it, so nothing may sign, rotate or use it for another policy."""
        if self.model.policy != policy_name:
            raise PolicyError(
                Problem(
                    f"the channel-key file belongs to policy {short(self.model.policy)}, "
                    f"not {policy_name!r}",
                    str(self.path) if self.path else "<channel keys>",
                    hint=hint,
                )
            )

    # -- rotation -----------------------------------------------------------------------
    @staticmethod
    def rotate(
        existing: ChannelKeyFile | None,
        *,
        policy_name: str,
        path: Path,
        kinds: dict[str, ChannelKeyKind],
        holders: Mapping[str, Iterable[tuple[str, bytes]]],
        rotate: Iterable[str],
        now: float,
        grace: float,
        random: Callable[[int], bytes] = os.urandom,
    ) -> ChannelKeyFile:
        """A new file with a fresh epoch for each channel in ``rotate``.

        ``kinds`` lists every channel that needs keys (others are dropped from the file);
        ``holders`` gives, per rotated channel, the (identity, X25519 public key) pairs to
        seal to (revoked identities already left out by the caller).
        """
        old: dict[str, ChannelModel] = dict(existing.model.channels) if existing else {}
        rotated = set(rotate)
        channels: dict[str, ChannelModel] = {}
        for channel, kind in kinds.items():
            previous = old.get(channel)
            # Epoch numbers only grow, even when the channel changed pattern or scheme
            # (and its old epochs are dropped): nodes refuse an epoch below one they saw.
            # They are never reused either, not even when the file was deleted: an epoch is
            # at least the time in seconds (a u32 until 2106), so a new file starts above
            # every epoch written before (unless those ran ahead: over one rotation a second).
            last_epoch = previous.epochs[0].epoch if previous is not None else 0
            if previous is not None and previous.kind != kind:
                previous = None
            if channel not in rotated:
                if previous is not None:
                    channels[channel] = previous
                continue
            epoch = max(last_epoch + 1, int(now))
            secret = random(SECRET_SIZE)
            public = crypto_scalarmult_base(secret) if kind != "group" else None
            plaintext = _entry_plaintext(policy_name, channel, epoch, kind, secret)
            sealed = {
                name: b64url_encode(crypto_box_seal(plaintext, box_key))
                for name, box_key in sorted(holders.get(channel, ()))
            }
            current = EpochModel(
                epoch=epoch,
                created=_timestamp(now),
                public=b64url_encode(public) if public else None,
                sealed=sealed,
            )
            epochs = [current]
            if previous is not None:
                retire_at = now + grace
                prior = previous.epochs[0]
                if prior.retire_at is not None:
                    retire_at = min(retire_at, _seconds(prior.retire_at))
                epochs.append(prior.model_copy(update={"retire_at": _timestamp(retire_at)}))
            channels[channel] = ChannelModel(kind=kind, epochs=tuple(epochs))
        model = ChannelKeyFileModel.model_validate(
            {FORMAT_FIELD: FORMAT_VERSION, "policy": policy_name, "channels": channels}
        )
        file = ChannelKeyFile(model, b"", path)
        file.raw = file.dumps()
        return file

    # -- opening ------------------------------------------------------------------------
    def open_channel(
        self, channel: str, identity: str, key: IdentityKey
    ) -> OpenedChannelKeys | None:
        """The epochs of ``channel`` as ``identity`` sees them, or ``None`` if it has none."""
        spec = self.model.channels.get(channel)
        if spec is None:
            return None
        where = str(self.path) if self.path else "<channel keys>"
        epochs = []
        for entry in spec.epochs:
            secret = None
            sealed = entry.sealed.get(identity)
            public = None
            try:
                public = b64url_decode(entry.public) if entry.public is not None else None
            except ValueError:
                public = b""
            if spec.kind != "group" and (public is None or len(public) != 32):
                raise PolicyError(
                    Problem(
                        f"channel {channel!r} epoch {entry.epoch}: missing or invalid public key",
                        where,
                        field=f"channels.{channel}.epochs",
                        hint="re-run nngsec rotate",
                    )
                )
            if sealed is not None:
                secret = self._open_entry(channel, entry.epoch, spec.kind, sealed, key, where)
                expected = crypto_scalarmult_base(secret) if spec.kind != "group" else None
                if expected is not None and not hmac.compare_digest(expected, public or b""):
                    raise PolicyError(
                        Problem(
                            f"channel {channel!r} epoch {entry.epoch}: the public key does not "
                            "match the sealed secret (the file was altered)",
                            where,
                            field=f"channels.{channel}.epochs",
                            hint="restore the file from its signed source",
                        )
                    )
            retire = _seconds(entry.retire_at) if entry.retire_at else None
            epochs.append(EpochKeys(entry.epoch, secret, public, retire))
        return OpenedChannelKeys(spec.kind, tuple(epochs))

    def _open_entry(
        self, channel: str, epoch: int, kind: str, sealed: str, key: IdentityKey, where: str
    ) -> bytes:
        expected_prefix = _entry_plaintext(self.model.policy, channel, epoch, kind, b"")
        try:
            plaintext = crypto_box_seal_open(
                b64url_decode(sealed), key.public.box_key, key.box_secret
            )
        except (CryptoError, ValueError):
            plaintext = b""
        if len(plaintext) != len(expected_prefix) + SECRET_SIZE or not hmac.compare_digest(
            plaintext[: len(expected_prefix)], expected_prefix
        ):
            raise PolicyError(
                Problem(
                    f"channel {channel!r} epoch {epoch}: this identity's sealed entry does not "
                    "open or belongs elsewhere (wrong key, or the file was altered)",
                    where,
                    field=f"channels.{channel}.epochs",
                    hint="re-run nngsec rotate for this channel",
                )
            )
        return plaintext[len(expected_prefix) :]

    def fingerprint(self, channel: str) -> str:
        """A digest of the current epoch of ``channel`` (its kind, number, public key and
        sealed entries), hex: what a keystore records to refuse other keys under the same
        epoch number."""
        spec = self.model.channels[channel]
        entry = spec.epochs[0]
        digest = hashlib.blake2b(digest_size=32, key=EPOCH_FINGERPRINT)
        for part in (
            _KIND_BYTE[spec.kind],
            struct.pack(">I", entry.epoch),
            (entry.public or "").encode(),
            *(f"{name}\x00{box}".encode() for name, box in sorted(entry.sealed.items())),
        ):
            digest.update(struct.pack(">I", len(part)) + part)
        return digest.hexdigest()

    def holders(self, channel: str, epoch_index: int = 0) -> frozenset[str]:
        """Names with a sealed entry in an epoch of ``channel`` (current by default)."""
        spec = self.model.channels.get(channel)
        if spec is None or epoch_index >= len(spec.epochs):
            return frozenset()
        return frozenset(spec.epochs[epoch_index].sealed)
