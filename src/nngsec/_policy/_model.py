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
    ConfigDict,
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
from .._formats._diagnostics import FieldValueError, short
from .._formats._json_schema import or_empty
from .._formats._model import StrictModel
from .._formats._names import NAME_MAX, NAME_PATTERN, NAME_RULE
from .._formats._text import CHECKSUM_SIZE
from .._formats._units import (
    DURATION_PATTERN,
    SIZE_PATTERN,
    UTC_EXAMPLE,
    parse_duration,
    parse_size,
    parse_utc,
)
from .._keys._identity import PUBLIC_PREFIX, PublicIdentity
from .._patterns import (
    ORIGIN_MEANINGS,
    PATTERNS,
    SCHEME_NAMES,
    Origin,
    Pattern,
    PatternSpec,
    RoleSpec,
    Scheme,
    pattern_of,
)

__all__ = [
    "CHANNEL_MODELS",
    "Channel",
    "ChannelBase",
    "IdentityEntry",
    "PolicyModel",
    "origin_schemes",
]


Name = Annotated[
    str,
    StringConstraints(strict=True, pattern=NAME_PATTERN, max_length=NAME_MAX),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": NAME_PATTERN,
            "maxLength": NAME_MAX,
            "description": f"a name: {NAME_RULE}, at most {NAME_MAX} characters",
            "examples": ["sensor-1"],
        }
    ),
]

# Around a pasted key, spaces and tabs are ignored (the schema's pattern allows them too);
# nothing else is: a key is one line.
KEY_PADDING = " \t"
_PUBLIC_CHARS = ((64 + CHECKSUM_SIZE) * 8 + 5) // 6  # base64url of both keys and the checksum
_KEY_DESCRIPTION = (
    f"the public key printed by `nngsec keygen NAME` (also in NAME.pub): {PUBLIC_PREFIX} and "
    f"{_PUBLIC_CHARS} characters; never a private key"
)
PUBLIC_KEY_PATTERN = f"^[ \\t]*{PUBLIC_PREFIX}[A-Za-z0-9_-]{{{_PUBLIC_CHARS}}}[ \\t]*$"


def public_key_text(value: str) -> str:
    """A public key as written, without the padding the loader ignores."""
    return value.strip(KEY_PADDING)


def _duration(value: object) -> float:
    hint = "write a number and a unit, like 30s, 5m or 1h"
    try:
        seconds = parse_duration(value)
    except ValueError as error:
        raise FieldValueError(str(error), hint) from None
    if not 0.001 <= seconds <= 7 * 86400:
        raise FieldValueError(f"got {short(value)}, expected a duration between 1ms and 7d", hint)
    return seconds


def _size(value: object) -> int:
    hint = "write a number and a unit, like 512KiB or 1MiB"
    try:
        size = parse_size(value)
    except ValueError as error:
        raise FieldValueError(str(error), hint) from None
    if not 1 <= size <= 1 << 30:
        raise FieldValueError(f"got {short(value)}, expected a size between 1B and 1GiB", hint)
    return size


def _topic(value: object) -> str:
    if not isinstance(value, str):
        raise FieldValueError(
            f"got {short(value)}, expected a topic prefix as a string", 'quote it: "temp."'
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
        raise ValueError(f"got {short(value)}, expected a public key string '{PUBLIC_PREFIX}...'")
    return PublicIdentity.from_text(public_key_text(value))


def _utc(value: object) -> str:
    try:
        parse_utc(value)
    except ValueError as error:
        raise FieldValueError(str(error), f"write the time in UTC, like {UTC_EXAMPLE}") from None
    return value  # type: ignore[return-value]  # a str: parse_utc accepted it


UTC_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
UtcTime = Annotated[
    str,
    BeforeValidator(_utc),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": UTC_PATTERN,
            "description": f"a UTC time in this exact form: {UTC_EXAMPLE}",
            "examples": [UTC_EXAMPLE],
        }
    ),
]

Duration = Annotated[
    float,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "a duration: a number and a unit (ms, s, m, h, d), from 1ms to 7d",
            "examples": ["30s", "500ms", "5m", "1h"],
        }
    ),
]
Size = Annotated[
    int,
    BeforeValidator(_size),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": SIZE_PATTERN,
            "description": "a size: a number and a unit (B, KiB, MiB, GiB, or decimal KB, "
            "MB, GB), from 1B to 1GiB",
            "examples": ["64KiB", "1MiB"],
        }
    ),
]
Topic = Annotated[
    str,
    BeforeValidator(_topic),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[^\\u0000]*$",
            "maxLength": 255,
            "description": "a topic prefix: text without the NUL character, at most 255 bytes "
            "of UTF-8",
            "examples": ["temp."],
        }
    ),
]
DeploymentId = Annotated[
    str,
    BeforeValidator(_deployment),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[A-Za-z0-9_-]{21}[AQgw]$",
            "description": "the deployment's random id (22 base64url characters), written by "
            "nngsec rotate, sign and init",
        }
    ),
]
PublicKey = Annotated[
    PublicIdentity,
    BeforeValidator(_public_identity),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": PUBLIC_KEY_PATTERN,
            "description": _KEY_DESCRIPTION,
        }
    ),
]
NameList = tuple[Name, ...]


class IdentityEntry(StrictModel):
    """An identity in its mapping form: ``name: {key: nngsec-id-v1:..., expires: ...}``."""

    key: PublicKey
    expires: UtcTime | None = Field(
        default=None, description="after this UTC time, frames from this identity are refused"
    )


def _identity_entry(value: object) -> Any:
    """Both forms of an identity: its key as a string, or a mapping with ``key:`` (and
    ``expires:``). The string form is parsed here, so its errors stay at the identity."""
    if isinstance(value, dict):
        return value
    return IdentityEntry.model_construct(key=_public_identity(value), expires=None)


IdentityValue = Annotated[
    IdentityEntry,
    BeforeValidator(_identity_entry),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": PUBLIC_KEY_PATTERN,
                    "description": _KEY_DESCRIPTION,
                },
                {
                    "type": "object",
                    "description": "the identity's key, and when it expires",
                    "properties": {
                        "key": {
                            "type": "string",
                            "pattern": PUBLIC_KEY_PATTERN,
                            "description": _KEY_DESCRIPTION,
                        },
                        "expires": {
                            "type": "string",
                            "pattern": UTC_PATTERN,
                            "description": "after this UTC time, frames from this identity "
                            f"are refused, e.g. {UTC_EXAMPLE}",
                        },
                    },
                    "required": ["key"],
                    "additionalProperties": False,
                },
            ]
        }
    ),
]
if TYPE_CHECKING:
    SchemeChoice = Literal["auto"] | Scheme
else:
    SchemeChoice = Literal[("auto", *SCHEME_NAMES)]


class ChannelBase(StrictModel):
    """Settings every channel has, whatever its pattern."""

    description: StrictStr | None = Field(default=None, description="what the channel is for")
    scheme: SchemeChoice = Field(
        default="auto",
        description="how frames are protected; auto: the pattern's default scheme",
    )
    max_age: Duration = Field(
        default=30.0,
        description="oldest acceptable frame, e.g. 30s",
        json_schema_extra={"default": "30s"},  # as written in a policy
    )
    # At most 65536 frames (8 KiB of bitmap per sender session): the receiver keeps one
    # window per session for max_age, and an authorised sender chooses its sessions.
    replay_window: StrictInt = Field(
        default=4096,
        ge=64,
        le=1 << 16,
        description="frames per sender session a receiver remembers to refuse replays "
        "(64 to 65536)",
    )
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


def origin_schemes(spec: PatternSpec) -> tuple[str, ...]:
    """The ``scheme:`` values a non-default ``origin:`` applies to: the pattern's default
    scheme (bus: secretbox; pubsub, pipeline, survey: sealed), named or as ``auto``."""
    return ("auto", spec.default_scheme)


def _origin_schema(spec: PatternSpec) -> dict[str, Any]:
    """The JSON-schema rule that a non-default origin takes the default scheme only (the
    cross-checks refuse the others with a hint)."""
    return {
        "if": {
            "properties": {"origin": {"enum": list(spec.origins[1:])}},
            "required": ["origin"],
        },
        "then": {"properties": {"scheme": {"enum": list(origin_schemes(spec))}}},
    }


def _origin_base(spec: PatternSpec) -> type[ChannelBase]:
    """The base of a channel model whose pattern offers a non-default ``origin:``."""
    return type(
        f"_{spec.name.title()}OriginChannel",
        (ChannelBase,),
        {"model_config": ConfigDict(json_schema_extra=_origin_schema(spec))},
    )


def _role_description(role: RoleSpec) -> str:
    does = [
        verb
        for flag, verb in (
            (role.sends, "send"),
            (role.receives, "receive"),
            (role.answers, "answer"),
            (role.asks, "read the answers"),
        )
        if flag
    ]
    return f"identities and groups in the {role.name} role: they {' and '.join(does)}"


def _channel_model(spec: PatternSpec) -> type[ChannelBase]:
    fields: dict[str, Any] = {
        "pattern": (Literal[spec.name], Field(description="the messaging pattern")),
        # The schemes this pattern takes (the model accepts every name; the cross-checks
        # refuse a misfit with a message naming the pattern's schemes).
        "scheme": (
            SchemeChoice,
            Field(
                default="auto",
                description=f"how frames are protected; auto: {spec.default_scheme}",
                json_schema_extra={"enum": ["auto", *spec.schemes]},
            ),
        ),
    }
    for role in spec.roles:
        # Every role names somebody; an empty list is refused by the cross-checks, which
        # also refuse a list whose groups name nobody (beyond what a schema can tell).
        fields[role.field] = (
            NameList,
            Field(description=_role_description(role), json_schema_extra={"minItems": 1}),
        )
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
        f"{spec.name.title()}Channel",
        __base__=_origin_base(spec) if spec.origins[1:] else ChannelBase,
        __module__=__name__,
        __doc__=f"A {spec.name} channel ({spec.socket_names} sockets).",
        **fields,
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
    name: Name = Field(description="the policy's name, in every frame's keys and signatures")
    version: StrictInt = Field(  # signatures carry it as a u64 (docs/spec/key-files.md)
        default=1, ge=1, le=(1 << 63) - 1, description="serial number for anti-rollback"
    )
    deployment: DeploymentId | None = Field(
        default=None,
        description="random id of this deployment, bound into every key and frame signature "
        "(written by nngsec rotate and nngsec sign)",
    )
    description: StrictStr | None = Field(default=None, description="what the policy is for")
    identities: dict[Name, IdentityValue] = Field(
        default_factory=dict,
        description="name: public key (from `nngsec keygen NAME`), or name: {key: ..., "
        "expires: ...}, one per identity",
        json_schema_extra=or_empty,
    )
    groups: dict[Name, NameList] = Field(
        default_factory=dict,
        description="name: [identities and groups], to name several identities at once",
        json_schema_extra=or_empty,
    )
    channels: dict[Name, Channel] = Field(
        default_factory=dict,
        description="name: a channel with its pattern and the names in each of its roles",
        json_schema_extra=or_empty,
    )
    revoked: NameList = Field(
        default=(),
        description="identities whose keys must no longer be trusted (kept under "
        "identities: so their frames are recognised and refused)",
        json_schema_extra=or_empty,
    )
    expires: UtcTime | None = Field(
        default=None, description="after this UTC time, nodes refuse the policy"
    )

    @field_validator("identities", "groups", "channels", "revoked", mode="before")
    @classmethod
    def _empty_section(cls, value: Any, info: ValidationInfo) -> Any:
        """A section written with nothing under it (``revoked:``) is an empty section."""
        if value is None:
            return () if info.field_name == "revoked" else {}
        return value
