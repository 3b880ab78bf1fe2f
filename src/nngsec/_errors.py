"""The exception tree of nngsec.

::

    NngsecError                 base of everything nngsec raises on purpose
    ├── PolicyError             a policy, topology or channel-key file is invalid or untrusted,
    │                           or the policy does not allow what was asked (attach a socket
    │                           in a role the identity does not hold, send without a role)
    ├── KeystoreError           a key file or keystore is missing, malformed or unsafe
    ├── Rejected                a received frame failed a check; ``.reason`` says which
    └── UsageError              a caller mistake (also a ``ValueError``): a payload over the
                                channel's limit, ``send()`` on a Rep socket before ``recv()``,
                                a topic on a channel without topics, a bad argument

Errors about files carry :class:`Problem` records: the place (file, line, column, field
path), what was found against what was expected, and a hint. ``str(error)`` prints one
line per problem in the ``file:line:column: field: message (hint: ...)`` form the command
line shows.

``Rejected`` is deliberately opaque about cryptographic failures: a bad signature, a bad
MAC and a failed decryption are all ``forged`` so that a sender learns nothing about which
check failed. Its ``detail`` is for local logs and never contains key material or payload.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

__all__ = [
    "KeystoreError",
    "NngsecError",
    "PolicyError",
    "Problem",
    "RejectReason",
    "Rejected",
    "UsageError",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input, and where it is.

    ``line`` and ``column`` are 1-based; either may be ``None`` when the place is a whole
    file. ``field`` is the path inside the document, e.g. ``channels.telemetry.publishers[1]``.
    """

    message: str
    path: str | None = None
    line: int | None = None
    column: int | None = None
    field: str = ""
    hint: str = ""

    @property
    def place(self) -> str:
        """``file:line:column`` (as much of it as is known)."""
        parts = [self.path or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        text = f"{self.place}: " if self.path is not None or self.line is not None else ""
        if self.field:
            text += f"{self.field}: "
        text += self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class NngsecError(Exception):
    """Base class of every error nngsec raises on purpose."""

    problems: tuple[Problem, ...]

    def __init__(self, problems: Problem | str | Iterable[Problem]) -> None:
        if isinstance(problems, str):
            problems = (Problem(problems),)
        elif isinstance(problems, Problem):
            problems = (problems,)
        self.problems = tuple(problems)
        if not self.problems:
            raise ValueError("an error needs at least one problem")
        super().__init__("\n".join(str(p) for p in self.problems))

    # The first problem's place, for callers that only want one (binding: .path .line .column).
    @property
    def path(self) -> str | None:
        return self.problems[0].path

    @property
    def line(self) -> int | None:
        return self.problems[0].line

    @property
    def column(self) -> int | None:
        return self.problems[0].column

    @property
    def field(self) -> str:
        return self.problems[0].field

    @property
    def hint(self) -> str:
        return self.problems[0].hint


class PolicyError(NngsecError):
    """A policy (or topology, or channel-key file) is invalid, untrusted or does not fit."""


class KeystoreError(NngsecError):
    """A keystore or key file is missing, malformed, or unsafe to use."""


class UsageError(NngsecError, ValueError):
    """A mistake of the calling code, not of its input files: a bad argument, or a call
    the socket's state does not allow. A ``ValueError`` too, as Python's convention has it."""


RejectReason = Literal[
    "malformed",
    "wrong-channel",
    "unknown-sender",
    "unauthorized",
    "revoked",
    "too-large",
    "stale",
    "replay",
    "no-key",
    "forged",
]


class Rejected(NngsecError):
    """A received frame failed a check and was not accepted.

    ``reason`` is one of the binding strings listed as class attributes. Nothing of the
    frame's payload is ever attached to the exception.
    """

    MALFORMED: ClassVar[RejectReason] = "malformed"
    WRONG_CHANNEL: ClassVar[RejectReason] = "wrong-channel"
    UNKNOWN_SENDER: ClassVar[RejectReason] = "unknown-sender"
    UNAUTHORIZED: ClassVar[RejectReason] = "unauthorized"
    REVOKED: ClassVar[RejectReason] = "revoked"
    TOO_LARGE: ClassVar[RejectReason] = "too-large"
    STALE: ClassVar[RejectReason] = "stale"
    REPLAY: ClassVar[RejectReason] = "replay"
    NO_KEY: ClassVar[RejectReason] = "no-key"
    FORGED: ClassVar[RejectReason] = "forged"

    REASONS: ClassVar[tuple[RejectReason, ...]] = get_args(RejectReason)

    reason: RejectReason
    detail: str

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(Problem(f"{reason}: {detail}" if detail else reason))

    def __reduce__(self) -> tuple[type[Rejected], tuple[RejectReason, str]]:
        return (Rejected, (self.reason, self.detail))
