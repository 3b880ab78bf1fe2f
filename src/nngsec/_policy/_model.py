"""The policy file as pydantic models (shape only; cross-references are in ``_checks.py``).

Every model forbids unknown fields (a typo must not silently weaken security) and is
immutable. There is one channel model per pattern, built from the pattern's record in
:mod:`nngsec._patterns` (its role fields, and ``topics``/``origin`` where the pattern has
them), so the models cannot drift from what the rest of nngsec knows about the pattern.
``scheme: auto`` is resolved here, to the pattern's default scheme.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    BeforeValidator,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)

from .._formats._deployment import decode_deployment_id
from .._formats._diagnostics import FieldValueError
from .._formats._model import StrictModel
from .._formats._names import NAME_MAX, NAME_PATTERN
from .._formats._units import parse_duration, parse_size
from .._keys._identity import PUBLIC_PREFIX, PublicIdentity
from .._patterns import (
    ORIGIN_MEANINGS,
    PATTERNS,
    SCHEME_NAMES,
    Origin,
    Pattern,
    PatternSpec,
    Scheme,
    pattern_of,
)

__all__ = ["CHANNEL_MODELS", "Channel", "ChannelBase", "PolicyModel"]


Name = Annotated[str, StringConstraints(strict=True, pattern=NAME_PATTERN, max_length=NAME_MAX)]


def _duration(value: object) -> float:
    hint = "write a number and a unit, like 30s, 5m or 1h"
    try:
        seconds = parse_duration(value)
    except ValueError as error:
        raise FieldValueError(str(error), hint) from None
    if not 0.001 <= seconds <= 7 * 86400:
        raise FieldValueError(f"got {value!r}, expected a duration between 1ms and 7d", hint)
    return seconds


def _size(value: object) -> int:
    hint = "write a number and a unit, like 512KiB or 1MiB"
    try:
        size = parse_size(value)
    except ValueError as error:
        raise FieldValueError(str(error), hint) from None
    if not 1 <= size <= 1 << 30:
        raise FieldValueError(f"got {value!r}, expected a size between 1B and 1GiB", hint)
    return size


def _topic(value: object) -> str:
    if not isinstance(value, str):
        raise FieldValueError(
            f"got {value!r}, expected a topic prefix as a string", 'quote it: "temp."'
        )
    if "\x00" in value:
        raise FieldValueError(
            "a topic cannot contain the NUL character (it ends the topic on the wire)",
            "remove the NUL character",
        )
    if len(value.encode()) > 255:
        raise FieldValueError(
            "a topic prefix is at most 255 bytes of UTF-8", "shorten the topic prefix"
        )
    return value


def _deployment(value: object) -> str:
    hint = "nngsec rotate and nngsec sign write one; copy it exactly, or delete the line"
    if not isinstance(value, str):
        raise FieldValueError("expected a deployment id (22 base64url characters)", hint)
    try:
        decode_deployment_id(value)
    except ValueError as error:
        raise FieldValueError(str(error), hint) from None
    return value


def _public_identity(value: object) -> PublicIdentity:
    if isinstance(value, PublicIdentity):
        return value
    if not isinstance(value, str):
        raise ValueError(f"got {value!r}, expected a public key string '{PUBLIC_PREFIX}...'")
    return PublicIdentity.from_text(value.strip())


Duration = Annotated[
    float,
    BeforeValidator(_duration),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h|d)$"}),
]
Size = Annotated[
    int,
    BeforeValidator(_size),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d+)?(B|KiB|MiB|GiB|KB|MB|GB)$"}),
]
Topic = Annotated[str, BeforeValidator(_topic)]
DeploymentId = Annotated[
    str,
    BeforeValidator(_deployment),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9_-]{21}[AQgw]$"}),
]
PublicKey = Annotated[
    PublicIdentity,
    BeforeValidator(_public_identity),
    WithJsonSchema({"type": "string", "pattern": f"^{PUBLIC_PREFIX}[A-Za-z0-9_-]{{91}}$"}),
]
NameList = tuple[Name, ...]
if TYPE_CHECKING:
    SchemeChoice = Literal["auto"] | Scheme
else:
    SchemeChoice = Literal[("auto", *SCHEME_NAMES)]


class ChannelBase(StrictModel):
    """Settings every channel has, whatever its pattern."""

    description: StrictStr | None = None
    scheme: SchemeChoice = "auto"
    max_age: Duration = Field(
        default=30.0,
        description="oldest acceptable frame, e.g. 30s",
        json_schema_extra={"default": "30s"},  # as written in a policy
    )
    # At most 65536 frames (8 KiB of bitmap per sender session): the receiver keeps one
    # window per session for max_age, and an authorised sender chooses its sessions.
    replay_window: StrictInt = Field(default=4096, ge=64, le=1 << 16)
    max_message_size: Size = Field(
        default=1 << 20,
        description="largest payload, e.g. 1MiB",
        json_schema_extra={"default": "1MiB"},
    )

    @model_validator(mode="before")
    @classmethod
    def _resolve_auto(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("scheme", "auto") == "auto":
            spec = pattern_of(data.get("pattern"))
            if spec is not None:
                data = {**data, "scheme": spec.default_scheme}
        return data

    # The per-pattern fields (``pattern``, the role fields, ``topics``, ``origin``) are
    # declared by the models built below; these read them with their types.
    @property
    def pattern_name(self) -> Pattern:
        return self.__dict__["pattern"]  # type: ignore[no-any-return]

    @property
    def pattern_spec(self) -> PatternSpec:
        return PATTERNS[self.pattern_name]

    @property
    def resolved_scheme(self) -> Scheme:
        """The scheme in force (``auto`` is resolved at validation, so this is ``scheme``)."""
        if self.scheme == "auto":
            raise RuntimeError("scheme: auto was not resolved")  # the validator above does
        return self.scheme

    @property
    def topic_prefixes(self) -> tuple[str, ...] | None:
        """Allowed topic prefixes (pubsub), or ``None``: any topic, or no topics at all."""
        return self.__dict__.get("topics")

    @property
    def origin_mode(self) -> Origin | None:
        """How receivers learn who sent a frame, where the pattern lets a policy choose."""
        return self.__dict__.get("origin")

    def role_members(self, role_field: str) -> tuple[str, ...]:
        """Names listed under a role field (``publishers`` ...), groups not yet expanded."""
        return self.__dict__[role_field]  # type: ignore[no-any-return]


def _channel_model(spec: PatternSpec) -> type[ChannelBase]:
    fields: dict[str, Any] = {"pattern": (Literal[spec.name], ...)}
    for role in spec.roles:
        fields[role.field] = (NameList, ...)
    if spec.has_topic:
        fields["topics"] = (
            tuple[Topic, ...] | None,
            Field(default=None, description="allowed topic prefixes; any topic when absent"),
        )
    if spec.origins:
        fields["origin"] = (
            Literal[spec.origins],
            Field(
                default=spec.origins[0],
                description="; ".join(f"{o}: {ORIGIN_MEANINGS[o]}" for o in spec.origins),
            ),
        )
    model: type[ChannelBase] = create_model(
        f"{spec.name.title()}Channel", __base__=ChannelBase, __module__=__name__, **fields
    )
    return model


CHANNEL_MODELS: dict[Pattern, type[ChannelBase]] = {
    name: _channel_model(spec) for name, spec in PATTERNS.items()
}

if TYPE_CHECKING:
    Channel = ChannelBase
else:
    Channel = Annotated[
        Union[tuple(CHANNEL_MODELS.values())],  # noqa: UP007 - built from the table
        Field(discriminator="pattern"),
    ]


class PolicyModel(StrictModel):
    """The fields of a policy file (format version 1)."""

    nngsec: Literal[1] = Field(description="policy format version")
    name: Name
    version: StrictInt = Field(default=1, ge=1, description="serial number for anti-rollback")
    deployment: DeploymentId | None = Field(
        default=None,
        description="random id of this deployment, bound into every key and frame signature "
        "(written by nngsec rotate and nngsec sign)",
    )
    description: StrictStr | None = None
    identities: dict[Name, PublicKey] = Field(default_factory=dict)
    groups: dict[Name, NameList] = Field(default_factory=dict)
    channels: dict[Name, Channel] = Field(default_factory=dict)
    revoked: NameList = ()

    @field_validator("identities", "groups", "channels", "revoked", mode="before")
    @classmethod
    def _empty_section(cls, value: Any, info: ValidationInfo) -> Any:
        """A section written with nothing under it (``revoked:``) is an empty section."""
        if value is None:
            return () if info.field_name == "revoked" else {}
        return value
