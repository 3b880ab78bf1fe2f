"""Per-epoch channel secrets, sealed to each entitled identity, in one file beside the policy.

``factory.yaml`` has its channel keys in ``factory.keys.json`` (machine-managed, safe to
distribute: every secret in it is sealed)::

    {
      "nngsec-channel-keys": 2,
      "policy": "factory",
      "deployment": "<the policy's deployment id>",
      "channels": {
        "telemetry": {
          "kind": "audience",
          "epochs": [
            {"epoch": 1795712400, "created": "2026-11-26T17:00:00Z", "retire_at": null,
             "activate_at": "2026-11-26T17:05:00Z", "expires": null,
             "public": "<base64url X25519 public key>",
             "sealed": {"dashboard": "<base64url sealed box>", "archiver": "..."}},
            {"epoch": 1795708800, "created": "...", "retire_at": "2026-11-26T18:00:00Z", ...}
          ]
        }
      }
    }

Kinds: ``group`` (bus: a 32-byte symmetric key), ``audience`` (sealed channels: an X25519
key pair whose private half the receivers hold and whose public half senders encrypt to),
``service`` (reqrep with several servers: an X25519 key pair the servers share).

Each entry is ``crypto_box_seal`` to the member's X25519 key of
``label || 0 || deployment (16 bytes) || policy || 0 || channel || 0 || epoch (u32 BE) ||
kind (1 byte) || secret``; opening checks that deployment, policy, channel, epoch and kind
match, so a copied or misplaced entry is caught. That stops mistakes, not attackers: a
sealed box is anonymous and anyone can write a valid entry for anyone. Only the policy
signature, verified against a pinned signer, authenticates the file.

Format 1 (nngsec 0.1) entries did not bind the deployment; such a file is refused, and
``nngsec rotate`` replaces it (continuing its epoch numbers, as nodes refuse lower ones).
The newest epoch is the current one; at most one previous epoch is kept, until its
``retire_at`` time (the grace period for frames still in flight). A new epoch is numbered
``max(previous + 1, now)`` (``now`` in whole seconds), so a file deleted and made again
never reuses a number nodes have seen with other keys.

Zero-loss rotation (``nngsec rotate --activate-in``): the newest epoch may carry an
``activate_at`` time. Receivers hold it (and accept frames under it) as soon as they have
the file; senders keep sealing under the previous epoch until ``activate_at``, so every
receiver has the new epoch before the first frame under it is sent. The previous epoch
retires ``grace`` after the activation. An epoch may also carry ``expires`` (``rotate
--lifetime``): after it, nobody seals or accepts frames under it. Both fields are in the
file, so the policy signature covers them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from nacl.bindings import crypto_box_easy, crypto_box_seal_open, crypto_scalarmult_base
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
from .._formats._deployment import decode_deployment_id
from .._formats._diagnostics import FieldValueError, pydantic_problems, short
from .._formats._labels import CHANNEL_KEY_ENTRY, EPOCH_FINGERPRINT
from .._formats._limits import CHANNEL_KEYS_LIMIT
from .._formats._model import StrictModel, check_format_version
from .._formats._text import b64url_decode, b64url_encode
from .._formats._units import format_size
from .._formats._yaml import YamlDocument, parse_yaml, read_text
from .._patterns import ChannelKeyKind
from ._identity import IdentityKey

__all__ = ["ChannelKeyFile", "EpochKeys", "OpenedChannelKeys"]

_KIND_BYTE: dict[str, bytes] = {"group": b"g", "audience": b"a", "service": b"s"}
FORMAT_FIELD = "nngsec-channel-keys"
FORMAT_VERSION = 2
LEGACY_FORMAT = 1  # nngsec 0.1: entries without the deployment id
SECRET_SIZE = 32
_HINT = "this file is written by `nngsec rotate`; re-run it rather than editing"


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


def _check_deployment(text: str) -> str:
    try:
        decode_deployment_id(text)
    except ValueError as error:
        raise FieldValueError(str(error)) from None
    return text


DeploymentId = Annotated[StrictStr, AfterValidator(_check_deployment)]


class EpochModel(StrictModel):
    epoch: StrictInt = Field(ge=1, lt=1 << 32)
    created: Timestamp
    retire_at: Timestamp | None = None
    activate_at: Timestamp | None = None  # senders use it from then on (zero-loss rotation)
    expires: Timestamp | None = None  # nobody seals or accepts frames under it after this
    public: StrictStr | None = None
    sealed: dict[str, StrictStr]


class ChannelModel(StrictModel):
    kind: ChannelKeyKind
    epochs: tuple[EpochModel, ...] = Field(min_length=1, max_length=2)


class ChannelKeyFileModel(StrictModel):
    format: Literal[2] = Field(alias="nngsec-channel-keys")  # FORMAT_FIELD
    policy: StrictStr
    deployment: DeploymentId
    channels: dict[str, ChannelModel]


def _in_use(channel: ChannelModel, now: float) -> EpochModel | None:
    """The epoch senders of ``channel`` use at ``now``: the newest active one (an epoch
    still waiting for its activation time is not, and is dropped by a new rotation)."""
    for entry in channel.epochs:
        if entry.activate_at is None or _seconds(entry.activate_at) <= now:
            return entry
    return None


def _entry_plaintext(
    deployment: str, policy: str, channel: str, epoch: int, kind: str, secret: bytes
) -> bytes:
    return b"".join(
        (
            CHANNEL_KEY_ENTRY,
            b"\x00",
            decode_deployment_id(deployment),
            policy.encode(),
            b"\x00",
            channel.encode(),
            b"\x00",
            struct.pack(">I", epoch),
            _KIND_BYTE[kind],
            secret,
        )
    )


def seal_to(plaintext: bytes, public: bytes, random: Callable[[int], bytes]) -> bytes:
    """libsodium's ``crypto_box_seal`` byte for byte (``e_pk || crypto_box_easy(plaintext,
    nonce = BLAKE2b-192(e_pk || pk), pk, e_sk)``), with the ephemeral secret drawn from
    ``random``: with an injected generator a rotation is reproducible, so the test vectors
    can carry the channel-key file and an implementation check its reading of it."""
    ephemeral_secret = random(32)
    ephemeral = crypto_scalarmult_base(ephemeral_secret)
    nonce = hashlib.blake2b(ephemeral + public, digest_size=24).digest()
    return ephemeral + crypto_box_easy(plaintext, nonce, public, ephemeral_secret)


def _is_legacy(data: object) -> bool:
    return (
        isinstance(data, dict)
        and type(data.get(FORMAT_FIELD)) is int
        and (data[FORMAT_FIELD] == LEGACY_FORMAT)
    )


def _refuse_legacy(doc: YamlDocument) -> None:
    """A format-1 file is refused with what to do: its entries do not bind the deployment."""
    if _is_legacy(doc.data):
        raise PolicyError(
            doc.problem(
                (FORMAT_FIELD,),
                f"channel-key format {LEGACY_FORMAT} (nngsec 0.1): its entries do not bind "
                f"the deployment id, and this nngsec reads format {FORMAT_VERSION}",
                "re-run `nngsec rotate POLICY`: it writes format 2 with new keys for every channel",
            )
        )


@dataclass(frozen=True, slots=True)
class EpochKeys:
    """One epoch of a channel as a node sees it.

    ``secret`` is ``None`` when this node is not entitled to it (a publisher that is not
    a subscriber still learns ``public`` to encrypt to). ``retire_at`` is when a previous
    epoch stops being accepted (``None`` for the current epoch). ``activate_at`` is when
    senders start using it (``None``: at once); ``expires`` when it stops being usable at
    all (``None``: never). ``holders`` are the identities with an entry in this epoch,
    sorted by name: the audience of the epoch, in the order ``origin: mac`` frames carry
    their receivers' MACs.
    """

    epoch: int
    secret: bytes | None
    public: bytes | None
    retire_at: float | None
    activate_at: float | None = None
    expires: float | None = None
    holders: tuple[str, ...] = ()

    def active(self, now: float) -> bool:
        """Whether senders may use this epoch at ``now``."""
        return self.activate_at is None or now >= self.activate_at

    def usable(self, now: float | None) -> bool:
        """Whether frames under this epoch are accepted at ``now`` (``None``: no check)."""
        if now is None:
            return True
        if self.retire_at is not None and now > self.retire_at:
            return False
        return self.expires is None or now <= self.expires

    def __repr__(self) -> str:  # never show the secret
        held = "held" if self.secret is not None else "not held"
        return (
            f"EpochKeys(epoch={self.epoch}, secret {held}, retire_at={self.retire_at}, "
            f"activate_at={self.activate_at}, expires={self.expires})"
        )


@dataclass(frozen=True, slots=True)
class OpenedChannelKeys:
    """The epochs of one channel a node knows: the current one first."""

    kind: ChannelKeyKind
    epochs: tuple[EpochKeys, ...]

    @property
    def current(self) -> EpochKeys:
        """The newest epoch (which may not be active yet: see :meth:`sending`)."""
        return self.epochs[0]

    def sending(self, now: float) -> EpochKeys:
        """The epoch senders use at ``now``: the newest one that is active. A new epoch
        distributed ahead of its activation is held by receivers but not yet used."""
        for keys in self.epochs:
            if keys.active(now):
                return keys
        return self.epochs[-1]  # nothing active yet (a first epoch with a lead): the oldest

    def get(self, epoch: int, now: float | None) -> EpochKeys | None:
        """Keys of ``epoch`` unless retired or expired at ``now`` (``None``: no check)."""
        for keys in self.epochs:
            if keys.epoch == epoch:
                return keys if keys.usable(now) else None
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
        text = read_text(path, what="channel-key", limit=CHANNEL_KEYS_LIMIT)
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: Path | None) -> ChannelKeyFile:
        shown = str(path) if path else "<channel keys>"
        raw = text.encode()
        CHANNEL_KEYS_LIMIT.check(len(raw), shown)  # before parsing: see _formats/_limits.py
        try:
            doc = parse_yaml(text, shown, what="channel-key")
        except PolicyError as error:
            raise PolicyError([replace(p, hint=_HINT) for p in error.problems]) from None
        _refuse_legacy(doc)
        try:
            check_format_version(
                doc, what="channel-key", field=FORMAT_FIELD, supported=FORMAT_VERSION
            )
        except PolicyError as error:
            raise PolicyError([replace(p, hint=_HINT) for p in error.problems]) from None
        try:
            model = ChannelKeyFileModel.model_validate(doc.data)
        except ValidationError as error:
            raise PolicyError(
                [
                    replace(problem, hint=_HINT)
                    for problem, _ in pydantic_problems(doc, error.errors(), ChannelKeyFileModel)
                ]
            ) from None
        return cls(model, raw, path)

    @staticmethod
    def legacy_epochs(path: Path, policy_name: str | None = None) -> dict[str, int] | None:
        """The newest epoch of each channel of a format-1 file at ``path`` (``None`` when
        there is no such file), so that a rotation replacing it continues the numbers.
        With ``policy_name``, a format-1 file of another policy is refused."""
        if not path.exists():
            return None
        text = read_text(path, what="channel-key", limit=CHANNEL_KEYS_LIMIT)
        doc = parse_yaml(text, str(path), what="channel-key")
        if not _is_legacy(doc.data):
            return None
        if policy_name is not None and doc.data.get("policy") != policy_name:
            raise PolicyError(
                doc.problem(
                    ("policy",) if "policy" in doc.data else (),
                    f"the channel-key file (format 1) belongs to policy "
                    f"{short(doc.data.get('policy'))}, not {policy_name!r}",
                    "move the file away, or rename the policy back",
                )
            )
        epochs: dict[str, int] = {}
        channels = doc.data.get("channels")
        for channel, spec in (channels if isinstance(channels, dict) else {}).items():
            listed = spec.get("epochs") if isinstance(spec, dict) else None
            numbers = [
                e.get("epoch")
                for e in (listed if isinstance(listed, list) else [])
                if isinstance(e, dict)
            ]
            valid = [n for n in numbers if type(n) is int and 1 <= n < 1 << 32]
            if valid and isinstance(channel, str):
                epochs[channel] = max(valid)
        return epochs

    def dumps(self) -> bytes:
        data = self.model.model_dump(by_alias=True, mode="json")
        return (json.dumps(data, indent=2) + "\n").encode()

    def save(self) -> None:
        """Write the file, unless it is larger than nodes accept (:meth:`check_size`)."""
        if self.path is None:
            raise ValueError("a channel-key file read from text has no path to save to")
        data = self.dumps()
        self.check_size(data)
        write_atomic(self.path, data, mode=0o644)

    def check_size(self, data: bytes) -> None:
        """Refuse to write ``data`` (this file's bytes) when every node would refuse it
        unread, as larger than ``CHANNEL_KEYS_LIMIT``."""
        if len(data) <= CHANNEL_KEYS_LIMIT.limit:
            return
        raise PolicyError(
            Problem(
                f"the channel-key file would be {len(data):,} bytes, over the "
                f"{format_size(CHANNEL_KEYS_LIMIT.limit)} every node refuses unread: not "
                "written (the files are unchanged)",
                str(self.path) if self.path is not None else None,
                hint="split the largest channels (a channel keeps a key per holder for "
                "each of at most two epochs), or rotate once the previous epoch's grace "
                "period has ended, which keeps one",
            )
        )

    def check_policy(self, policy_name: str, deployment: str | None, hint: str) -> None:
        """Refuse this file unless it was written for the policy named ``policy_name`` in
        ``deployment``: nodes would refuse it, so nothing may sign, rotate or use it for
        another policy or another deployment."""
        where = str(self.path) if self.path else "<channel keys>"
        if self.model.policy != policy_name:
            raise PolicyError(
                Problem(
                    f"the channel-key file belongs to policy {short(self.model.policy)}, "
                    f"not {policy_name!r}",
                    where,
                    hint=hint,
                )
            )
        if self.model.deployment != deployment:
            theirs = f"deployment {deployment}" if deployment else "no deployment id"
            raise PolicyError(
                Problem(
                    f"the channel-key file belongs to deployment {self.model.deployment} of "
                    f"policy {policy_name!r}, and the policy has {theirs}",
                    where,
                    field="deployment",
                    hint=hint,
                )
            )

    # -- rotation -----------------------------------------------------------------------
    @staticmethod
    def rotate(
        existing: ChannelKeyFile | None,
        *,
        policy_name: str,
        deployment: str,
        path: Path,
        kinds: dict[str, ChannelKeyKind],
        holders: Mapping[str, Iterable[tuple[str, bytes]]],
        rotate: Iterable[str],
        now: float,
        grace: float | Mapping[str, float],
        activate_in: float = 0.0,
        lifetime: float | None = None,
        random: Callable[[int], bytes] = os.urandom,
        after_epochs: Mapping[str, int] | None = None,
    ) -> ChannelKeyFile:
        """A new file with a fresh epoch for each channel in ``rotate``.

        ``kinds`` lists every channel that needs keys (others are dropped from the file);
        ``holders`` gives, per rotated channel, the (identity, X25519 public key) pairs to
        seal to (revoked identities already left out by the caller). ``after_epochs``:
        epoch numbers to continue from when there is no ``existing`` file to read them
        from (a format-1 file being replaced). ``grace`` (seconds, for all channels or per
        channel) is how long the previous epoch stays readable after the new one activates,
        ``activate_in`` seconds from ``now``; ``lifetime`` bounds the new epoch (``expires``).

        A previous epoch that had not activated yet at ``now`` was never used by senders:
        it is replaced, and the epoch in use stays the previous one.
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
            last_epoch = max(last_epoch, (after_epochs or {}).get(channel, 0))
            if previous is not None and previous.kind != kind:
                previous = None
            if channel not in rotated:
                if previous is not None:
                    channels[channel] = previous
                continue
            # A previous epoch still waiting for activation is replaced, but its number is
            # not reused: last_epoch is the newest epoch in the file, pending or not.
            epoch = max(last_epoch + 1, int(now))
            prior = _in_use(previous, now) if previous is not None else None
            # Whole seconds, as the file writes them: rounded up, so the lead is never cut.
            activate_at = math.ceil(now + activate_in) if activate_in > 0 else now
            secret = random(SECRET_SIZE)
            public = crypto_scalarmult_base(secret) if kind != "group" else None
            plaintext = _entry_plaintext(deployment, policy_name, channel, epoch, kind, secret)
            sealed = {
                name: b64url_encode(seal_to(plaintext, box_key, random))
                for name, box_key in sorted(holders.get(channel, ()))
            }
            current = EpochModel(
                epoch=epoch,
                created=_timestamp(now),
                # A first epoch is used at once: there is nothing to switch from.
                activate_at=_timestamp(activate_at) if prior and activate_in > 0 else None,
                expires=_timestamp(now + lifetime) if lifetime is not None else None,
                public=b64url_encode(public) if public else None,
                sealed=sealed,
            )
            epochs = [current]
            if prior is not None:
                channel_grace = grace if isinstance(grace, (int, float)) else grace[channel]
                retire_at = activate_at + channel_grace
                if prior.retire_at is not None:
                    retire_at = min(retire_at, _seconds(prior.retire_at))
                epochs.append(prior.model_copy(update={"retire_at": _timestamp(retire_at)}))
            channels[channel] = ChannelModel(kind=kind, epochs=tuple(epochs))
        model = ChannelKeyFileModel.model_validate(
            {
                FORMAT_FIELD: FORMAT_VERSION,
                "policy": policy_name,
                "deployment": deployment,
                "channels": channels,
            }
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
            epochs.append(
                EpochKeys(
                    entry.epoch,
                    secret,
                    public,
                    _seconds(entry.retire_at) if entry.retire_at else None,
                    _seconds(entry.activate_at) if entry.activate_at else None,
                    _seconds(entry.expires) if entry.expires else None,
                    tuple(sorted(entry.sealed)),
                )
            )
        return OpenedChannelKeys(spec.kind, tuple(epochs))

    def _open_entry(
        self, channel: str, epoch: int, kind: str, sealed: str, key: IdentityKey, where: str
    ) -> bytes:
        expected_prefix = _entry_plaintext(
            self.model.deployment, self.model.policy, channel, epoch, kind, b""
        )
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

    def fingerprint(self, channel: str, epoch_index: int = 0) -> str:
        """A digest of one epoch of ``channel`` (the current one by default), hex: what a
        keystore records to refuse other keys under an epoch number it has seen.

        It covers what an epoch is given when it is made and keeps for its life: the
        deployment, its kind and number, its ``activate_at`` and ``expires`` times, its
        public key and its sealed entries. Not ``retire_at``: a later rotation sets that
        on the epoch it replaces (the same keys, now the previous epoch), and not
        ``created``, which says nothing about whom the keys are for.
        """
        spec = self.model.channels[channel]
        entry = spec.epochs[epoch_index]
        digest = hashlib.blake2b(digest_size=32, key=EPOCH_FINGERPRINT)
        for part in (
            self.model.deployment.encode(),
            _KIND_BYTE[spec.kind],
            struct.pack(">I", entry.epoch),
            (entry.activate_at or "").encode(),
            (entry.expires or "").encode(),
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
