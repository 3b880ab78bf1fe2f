"""Durations and sizes as written in policies (``nngsec._formats._units``)."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nngsec._formats._units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("250ms", 0.25),
        ("1.5m", 90.0),
        (" 10 s ", 10.0),
        ("0.1s", 0.1),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512KiB", 512 * 1024),
        ("1MiB", 1 << 20),
        ("1GiB", 1 << 30),
        ("64B", 64),
        ("2MB", 2_000_000),
        ("1KB", 1000),
        ("0.5KiB", 512),
        ("2.01MB", 2_010_000),  # exact decimal arithmetic, not float rounding
        ("4.07MB", 4_070_000),
    ],
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (30, "(no unit)"),
        (1.5, "(no unit)"),
        ("30", "expected a duration with a unit"),
        ("30y", "unknown unit 'y'"),
        ("30S", "unknown unit 'S'"),  # units are case-sensitive
        ("-5s", "expected a duration"),
        ("s", "expected a duration"),
        ("", "expected a duration"),
        ("1e3s", "expected a duration"),
        ("\u0663\u0660s", "expected a duration"),  # non-ASCII digits
        (True, "expected a duration"),
        (None, "expected a duration"),
        ([], "expected a duration"),
    ],
)
def test_bad_durations(value, fragment):
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert fragment in str(caught.value)
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (1024, "(no unit)"),
        ("1Mib", "unknown unit 'Mib'"),
        ("1mb", "unknown unit 'mb'"),
        ("1.5B", "not a whole number of bytes"),
        ("0.3KiB", "not a whole number of bytes"),
        ("KiB", "expected a size"),
        ("1 2KiB", "expected a size"),
        (False, "expected a size"),
    ],
)
def test_bad_sizes(value, fragment):
    with pytest.raises(ValueError) as caught:
        parse_size(value)
    assert fragment in str(caught.value)


def test_huge_numbers_are_values_not_crashes():
    assert parse_size("1" * 400 + "B") == int("1" * 400)
    assert parse_duration("9" * 400 + "s") == math.inf


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(90.0, "90s"), (3600.0, "1h"), (86400 * 2, "2d"), (120.0, "2m"), (0.25, "250ms")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (1 << 20, "1MiB"),
        (1536, "1536B"),
        (3072, "3KiB"),
        (1000, "1000B"),
        (3 << 30, "3GiB"),
        (1, "1B"),
    ],
)
def test_format_size(size, text):
    assert format_size(size) == text


@given(st.integers(min_value=1, max_value=7 * 86400 * 1000))
def test_duration_round_trip_in_milliseconds(milliseconds):
    seconds = parse_duration(f"{milliseconds}ms")
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(min_value=1, max_value=1 << 40))
def test_size_round_trip(size):
    assert parse_size(format_size(size)) == size


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["KB", "MB", "GB"]))
def test_decimal_sizes_with_two_decimals_are_exact(hundredths, unit):
    factor = {"KB": 1000, "MB": 1000**2, "GB": 1000**3}[unit]
    text = f"{hundredths // 100}.{hundredths % 100:02d}{unit}"
    assert parse_size(text) == hundredths * factor // 100


@given(st.text(max_size=30))
def test_parsers_raise_only_value_error(text):
    for parse in (parse_duration, parse_size):
        with contextlib.suppress(ValueError):
            parse(text)
