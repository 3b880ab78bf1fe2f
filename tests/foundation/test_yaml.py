"""Positioned YAML loading (``nngsec._formats._yaml``): YAML 1.2 core scalars, refusals."""

from __future__ import annotations

import math

import pytest

from nngsec import PolicyError
from nngsec._formats._yaml import format_loc, parse_yaml


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


@pytest.mark.parametrize(
    ("text", "line", "column", "code"),
    [
        ("a: 1\nb: bell\x07\n", 2, 8, "U+0007"),
        ("a: \x00\n", 1, 4, "U+0000"),
        ("a: 'x'\n  # \x7f\n", 2, 5, "U+007F"),
        ("é: b\nc: \x01", 2, 4, "U+0001"),  # columns count characters, not bytes
        ("a: \ud800\n", 1, 4, "U+D800"),  # a lone surrogate (only from str input)
        ("a: \ufffe\n", 1, 4, "U+FFFE"),
    ],
)
def test_characters_yaml_forbids_are_one_positioned_problem(text, line, column, code):
    [(got_line, got_column, field, message)] = problems(text)
    assert (got_line, got_column, field) == (line, column, "")
    assert code in message
    assert "\n" not in message


def test_escaped_control_characters_and_a_bom_are_fine():
    assert parse_yaml('\ufeffa: "\\a"\n', "f.yaml").data == {"a": "\x07"}


def test_deep_nesting_is_a_positioned_problem_not_a_recursion_error():
    text = "a: " + "[" * 900 + "]" * 900 + "\n"
    [(line, column, _, message)] = problems(text)
    assert line == 1
    assert column is not None
    assert "nested more than" in message


def test_nesting_a_policy_needs_is_fine():
    text = "a: " + "[" * 60 + "]" * 60 + "\n"
    assert parse_yaml(text, "f.yaml").data["a"] is not None


def test_alias_expansion_bomb_is_refused_quickly():
    # Each level refers ten times to the one before: 10**8 values if expanded.
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"l{level}: &l{level} [{refs}]")
    [(line, _, _, message)] = problems("\n".join(lines) + "\n")
    assert line is not None
    assert "too many values" in message


def test_a_few_aliases_are_fine():
    doc = parse_yaml("a: &x [p, q]\nb: *x\nc: *x\n", "f.yaml")
    assert doc.data == {"a": ["p", "q"], "b": ["p", "q"], "c": ["p", "q"]}


def test_a_collection_as_a_key_is_placed_with_a_hint():
    with pytest.raises(PolicyError) as caught:
        parse_yaml("a: 1\n? [x, y]\n: 2\n", "f.yaml")
    [problem] = caught.value.problems
    assert (problem.line, problem.column) == (2, 3)
    assert problem.message == "a mapping key must be a plain name, got a collection"
    assert problem.hint
