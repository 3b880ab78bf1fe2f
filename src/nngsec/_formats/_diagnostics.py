"""Turning pydantic validation errors into positioned, readable problems.

Shared by every file format nngsec reads (policies, channel-key files, topologies): each
error becomes a :class:`Problem` at the ``file:line:column`` of the field, saying what was
found, what was expected, and a hint.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from .._errors import Problem
from ._echo import echo
from ._names import NAME_PATTERN, NAME_RULE
from ._yaml import Loc, YamlDocument

__all__ = ["NAME_RULE", "FieldValueError", "pydantic_problems"]


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


_BOUNDS = {
    "greater_than_equal": ("of at least", "ge"),
    "greater_than": ("greater than", "gt"),
    "less_than_equal": ("of at most", "le"),
    "less_than": ("less than", "lt"),
}


_MAPPING_HINT = "write a mapping: one 'name: value' per line, indented under this key"
_TYPE_HINTS = {
    "string_type": "write text; quote it if it looks like a number or true/false",
    "int_type": "write a whole number, like 3",
    "int_parsing": "write a whole number, like 3",
    "float_type": "write a number, like 1.5",
    "bool_type": "write true or false",
    "list_type": "write a list: [a, b] or one '- item' per line",
    "tuple_type": "write a list: [a, b] or one '- item' per line",
    "dict_type": _MAPPING_HINT,
    "model_type": _MAPPING_HINT,
    "model_attributes_type": _MAPPING_HINT,
}


class FieldValueError(ValueError):
    """A field validator's refusal, with a hint for the person fixing the file."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def _did_you_mean(got: object, choices: list[str]) -> str:
    close = difflib.get_close_matches(str(got)[:200], choices, n=1)
    return f"did you mean {close[0]!r}?" if close else ""


def short(value: Any) -> str:
    """A rejected value as a message may quote it: at most a few characters of it (see
    ``_echo.py``: a message must not carry a pasted key on to the terminal and the logs)."""
    return echo(value)


def _clean_loc(raw: tuple[int | str, ...], union_tags: frozenset[str]) -> tuple[Loc, bool]:
    """Drop pydantic's union tags from a loc; say whether it points at a mapping key."""
    loc: list[str | int] = []
    is_key = False
    for part in raw:
        if part == "[key]":
            is_key = True
        elif isinstance(part, str) and part in union_tags:
            continue
        else:
            loc.append(part)
    return tuple(loc), is_key


def pydantic_problems(
    doc: YamlDocument,
    errors: list[ErrorDetails],
    model: type[BaseModel],
    *,
    union_tags: frozenset[str] = frozenset(),
    allowed_fields: Callable[[Loc], list[str]] | None = None,
    name_max: int = 64,
) -> Iterator[tuple[Problem, str]]:
    """Each error as a positioned problem, with pydantic's error type (for callers' hints).

    ``union_tags`` are discriminator values pydantic puts into locs (removed);
    ``allowed_fields(loc)`` lists the fields of the mapping at ``loc`` for "did you mean".
    """
    cleaned = [_clean_loc(error["loc"], union_tags)[0] for error in errors]
    for error in errors:
        loc, is_key = _clean_loc(error["loc"], union_tags)
        if error["type"] in ("too_short", "too_long") and any(
            len(other) > len(loc) and other[: len(loc)] == loc for other in cleaned
        ):
            continue  # pydantic counts only the items that validated: the items' errors say it
        kind = error["type"]
        value = error.get("input")
        ctx: dict[str, Any] = dict(error.get("ctx") or {})
        field = str(loc[-1]) if loc else ""
        hint = ""
        at_key = is_key
        if kind == "extra_forbidden":
            allowed = allowed_fields(loc[:-1]) if allowed_fields else []
            if not allowed and not loc[:-1]:
                allowed = list(model.model_fields)
            message = f"unknown field {short(field)}"
            close = difflib.get_close_matches(field[:200], allowed, n=1)
            hint = (
                f"did you mean {close[0]!r}?" if close else "remove it; unknown fields are errors"
            )
            at_key = True
        elif kind == "missing":
            message = f"missing required field {field!r}"
            hint = "add it"
            at_key = True
        elif kind in ("union_tag_not_found", "union_tag_invalid"):
            discriminator = str(ctx.get("discriminator", "")).strip("'")
            expected = str(ctx.get("expected_tags", "")).replace("'", "")
            if kind == "union_tag_not_found":
                message = f"missing required field {discriminator!r}"
                hint = f"add {discriminator}: one of {expected}" if expected else "add it"
            else:
                got = ctx.get("tag", value)
                message = f"unknown {discriminator} {short(got)}, expected one of {expected}"
                hint = _did_you_mean(got, expected.split(", ")) or "write one of those"
            loc = (*loc, discriminator)
            at_key = kind == "union_tag_not_found"
        elif kind == "literal_error":
            expected = str(ctx.get("expected", ""))
            message = f"got {short(value)}, expected {expected}"
            hint = _did_you_mean(value, re.findall(r"'([^']*)'", expected)) or "write one of those"
        elif (kind == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN) or (
            kind == "string_too_long" and ctx.get("max_length") == name_max
        ):
            message = f"invalid name {short(value)}, expected {NAME_RULE} (at most {name_max})"
            hint = "names are case-sensitive and lowercase, e.g. sensor-1"
        elif kind in _BOUNDS:
            what, bound_key = _BOUNDS[kind]
            noun = "a whole number" if isinstance(value, int) else "a number"
            message = f"got {short(value)}, expected {noun} {what} {ctx.get(bound_key)}"
            hint = "use a value in that range"
        elif kind in ("too_short", "too_long"):
            if kind == "too_short":
                bound = f"at least {ctx.get('min_length')}"
            else:
                bound = f"at most {ctx.get('max_length')}"
            message = f"got {ctx.get('actual_length')} items, expected {bound}"
            hint = "add or remove items"
        elif kind == "value_error":
            message = str(ctx.get("error", error["msg"]))
            hint = getattr(ctx.get("error"), "hint", "")
        elif kind in _TYPE_NAMES:
            message = f"got {short(value)}, expected {_TYPE_NAMES[kind]}"
            hint = _TYPE_HINTS.get(kind, "")
            if kind == "int_type" and isinstance(value, str) and value.lstrip("+-").isdigit():
                hint = "write the number without quotes"
        else:
            message = f"{error['msg']} (got {short(value)})"
        hint = hint or "see `nngsec schema` for the form this field takes"
        yield doc.problem(loc, message, hint, key=at_key), kind
