"""The channel-key file format (``nngsec._keys._channel_keys``): parsing and refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nngsec import PolicyError
from nngsec._keys._channel_keys import ChannelKeyFile

EXAMPLE = Path(__file__).parents[2] / "policies" / "factory.keys.json"


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


def parse_problems(data: dict[str, Any] | str) -> list[tuple[int | None, int | None, str, str]]:
    text = data if isinstance(data, str) else json.dumps(data, indent=2)
    with pytest.raises(PolicyError) as caught:
        ChannelKeyFile.parse(text, Path("f.keys.json"))
    return [(p.line, p.column, p.field, p.message) for p in caught.value.problems]


def test_the_example_file_parses():
    keys = ChannelKeyFile.parse(EXAMPLE.read_text(), EXAMPLE)
    assert keys.model.policy == "factory"
    assert keys.raw == EXAMPLE.read_bytes()


def test_a_bad_epoch_is_one_problem_not_also_an_empty_list():
    data = example()
    data["channels"]["telemetry"]["epochs"][0]["epoch"] = "1"
    [(line, column, field, message)] = parse_problems(data)
    assert field == "channels.telemetry.epochs[0].epoch"
    assert message == "got '1', expected a whole number"
    assert line is not None
    assert column is not None


def test_an_empty_epoch_list_says_so():
    data = example()
    data["channels"]["telemetry"]["epochs"] = []
    [(_, _, field, message)] = parse_problems(data)
    assert field == "channels.telemetry.epochs"
    assert message == "got 0 items, expected at least 1"
