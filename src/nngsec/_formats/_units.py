"""Durations (``30s``, ``5m``, ``1h``), sizes (``512KiB``, ``1MiB``) and UTC times
(``2027-06-30T00:00:00Z``) as written in policies.

A number without a unit is refused: ``max_age: 30`` could mean seconds or milliseconds,
and a security setting must not be a guess. Spaces or tabs may stand around the number and
the unit (``30 s``). :data:`DURATION_PATTERN` and :data:`SIZE_PATTERN` are exactly the
spellings the parsers accept, written so that Python's ``re`` and the ECMA-262 regexes of
JSON Schema validators read them alike (the policy schema uses them).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from fractions import Fraction

from ._echo import echo

__all__ = [
    "DURATION_PATTERN",
    "SIZE_PATTERN",
    "format_duration",
    "format_size",
    "format_utc",
    "parse_duration",
    "parse_size",
    "parse_utc",
]

_DURATION_UNITS: dict[str, Fraction] = {
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
    "d": Fraction(86400),
}
_SIZE_UNITS: dict[str, Fraction] = {
    "B": Fraction(1),
    "KiB": Fraction(1 << 10),
    "MiB": Fraction(1 << 20),
    "GiB": Fraction(1 << 30),
    "KB": Fraction(1000),
    "MB": Fraction(1000**2),
    "GB": Fraction(1000**3),
}
_BLANK = r"[ \t]*"
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_QUANTITY = re.compile(f"{_BLANK}({_NUMBER}){_BLANK}([A-Za-z]+){_BLANK}", re.ASCII)


def _pattern(units: dict[str, Fraction]) -> str:
    choices = "|".join(sorted(units, key=len, reverse=True))  # longest first: ms before m
    return f"^{_BLANK}{_NUMBER}{_BLANK}(?:{choices}){_BLANK}$"


DURATION_PATTERN = _pattern(_DURATION_UNITS)
SIZE_PATTERN = _pattern(_SIZE_UNITS)


def _split(text: str) -> tuple[Fraction, str] | None:
    """The number (exact: ``2.01`` is 201/100, not a float near it) and the unit."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        return None
    return Fraction(match.group(1)), match.group(2)


def _parse(value: object, units: dict[str, Fraction], expected: str) -> Fraction:
    """The exact quantity in ``value`` (``"1.5m"``), in the base unit of ``units``."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"got {echo(value)}, expected {expected}")
    if not isinstance(value, str):
        raise ValueError(f"got {echo(value)} (no unit), expected {expected}")
    split = _split(value)
    if split is None:
        raise ValueError(f"got {echo(value)}, expected {expected}")
    number, unit = split
    if unit not in units:
        raise ValueError(f"unknown unit {echo(unit)} in {echo(value)}, expected {expected}")
    return number * units[unit]


def parse_duration(value: object) -> float:
    """Seconds in a duration such as ``30s``, ``1.5m``, ``250ms``, ``2h`` or ``1d``.

    Raises ``ValueError`` with a message naming what was found and what is expected.
    """
    expected = "a duration with a unit, like 30s, 5m, 1h (units: ms, s, m, h, d)"
    seconds = _parse(value, _DURATION_UNITS, expected)
    try:
        return float(seconds)
    except OverflowError:  # more digits than a float holds: callers refuse it by range
        return math.inf


def parse_size(value: object) -> int:
    """Bytes in a size such as ``512KiB``, ``1MiB``, ``64B`` or ``2MB`` (decimal).

    Raises ``ValueError`` with a message naming what was found and what is expected.
    """
    expected = "a size with a unit, like 512KiB or 1MiB (units: B, KiB, MiB, GiB, KB, MB, GB)"
    size = _parse(value, _SIZE_UNITS, expected)
    if size.denominator != 1:
        raise ValueError(f"got {echo(value)}, which is not a whole number of bytes")
    return int(size)


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration, e.g. ``90.0 -> '90s'``, ``3600 -> '1h'``."""
    for unit in ("d", "h", "m", "s"):
        count = Fraction(seconds) / _DURATION_UNITS[unit]
        if count >= 1 and count.denominator == 1:
            return f"{int(count)}{unit}"
    return f"{round(seconds * 1000)}ms"


def format_size(size: int) -> str:
    """The shortest exact binary spelling of a size, e.g. ``1048576 -> '1MiB'``."""
    for unit in ("GiB", "MiB", "KiB"):
        if size >= _SIZE_UNITS[unit] and size % _SIZE_UNITS[unit] == 0:
            return f"{size // _SIZE_UNITS[unit]}{unit}"
    return f"{size}B"


UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
UTC_EXAMPLE = "2027-06-30T00:00:00Z"


def parse_utc(text: object) -> float:
    """Seconds since the epoch of a UTC time written ``2027-06-30T00:00:00Z`` (exactly that
    form: a time without its zone would mean something else on every machine)."""
    if not isinstance(text, str):
        raise ValueError(f"got {echo(text)}, expected a UTC time like {UTC_EXAMPLE}")
    try:
        moment = datetime.strptime(text, UTC_FORMAT)
    except ValueError:
        raise ValueError(f"got {echo(text)}, expected a UTC time like {UTC_EXAMPLE}") from None
    return moment.replace(tzinfo=UTC).timestamp()


def format_utc(seconds: float) -> str:
    """``seconds`` since the epoch as ``2027-06-30T00:00:00Z`` (whole seconds, rounded down)."""
    return datetime.fromtimestamp(seconds, UTC).strftime(UTC_FORMAT)
