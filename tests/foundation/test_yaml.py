"""Positioned YAML loading (``nngsec._yaml``): YAML 1.2 core scalars, refusals with places."""

from __future__ import annotations

import math

import pytest

from nngsec import PolicyError
from nngsec._yaml import format_loc, parse_yaml


def problems(text: str) -> list[tuple[int | None, int | None, str, str]]:
    with pytest.raises(PolicyError) as caught:
        parse_yaml(text, "f.yaml")
    return [(p.line, p.column, p.field, p.message) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: .inf\n", math.inf),
        ("a: -.Inf\n", -math.inf),
        ("a: +.INF\n", math.inf),
        ("a: 1e3\n", 1000.0),
        ("a: 0x1f\n", 31),
        ("a: 0o17\n", 15),
        ("a: 017\n", 17),  # YAML 1.2: not octal
        ("a: yes\n", "yes"),  # YAML 1.2: not a boolean
        ("a: no\n", "no"),
        ("a: on\n", "on"),
        ("a: 1:30\n", "1:30"),  # YAML 1.2: not sexagesimal
        ("a: ~\n", None),
        ("a:\n", None),
        ("a: True\n", True),
        ("a: '1'\n", "1"),
        ("a: !!binary aGVsbG8=\n", "aGVsbG8="),
    ],
)
def test_scalars_follow_the_yaml_1_2_core_schema(text, expected):
    assert parse_yaml(text, "f.yaml").data == {"a": expected}


@pytest.mark.parametrize("text", ["a: .nan\n", "a: .NaN\n", "a: .NAN\n"])
def test_nan_is_a_float_not_a_crash(text):
    value = parse_yaml(text, "f.yaml").data["a"]
    assert isinstance(value, float)
    assert math.isnan(value)


def test_format_loc():
    assert format_loc(("channels", "telemetry", "publishers", 1)) == (
        "channels.telemetry.publishers[1]"
    )
    assert format_loc(()) == ""
    assert format_loc((0, "a")) == "[0].a"
