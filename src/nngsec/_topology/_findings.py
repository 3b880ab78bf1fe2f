"""What the checker reports: one :class:`Finding` per problem, at a place in a file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .._formats._yaml import Loc, YamlDocument

__all__ = ["SEVERITIES", "Finding", "Issue", "Place", "Severity", "place"]

Severity = Literal["error", "warning"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning")


@dataclass(frozen=True, slots=True)
class Place:
    """A file and, when known, a 1-based line and column in it."""

    file: str
    line: int | None = None
    column: int | None = None


def place(doc: YamlDocument, loc: Loc, *, key: bool = False) -> Place:
    """Where ``loc`` is in ``doc`` (the mapping key with ``key=True``)."""
    line, column = doc.place(loc, key=key)
    return Place(doc.path, line, column)


@dataclass(frozen=True, slots=True)
class Issue:
    """What a rule yields; the runner adds the rule id and the severity in force.

    ``severity`` is set only where a rule departs from its default (an unused listen is a
    warning of the otherwise error-level ``unpaired-endpoint``). ``subjects`` are the keys
    of the sockets, relay sides or nodes concerned, so graphs can highlight them.
    """

    place: Place
    message: str
    hint: str = ""
    severity: Severity | None = None
    subjects: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found by one rule."""

    rule: str
    severity: Severity
    message: str
    file: str
    line: int | None
    column: int | None
    hint: str = ""
    subjects: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def where(self) -> str:
        """``file:line:column``, as much of it as is known."""
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line or 0, self.column or 0, self.rule, self.message)

    def to_json(self) -> dict[str, object]:
        """The binding JSON shape (``rule severity message file line``) plus column and hint."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "hint": self.hint,
        }

    def __str__(self) -> str:
        text = f"{self.where}: {self.severity}: {self.message} [{self.rule}]"
        return f"{text} (hint: {self.hint})" if self.hint else text
