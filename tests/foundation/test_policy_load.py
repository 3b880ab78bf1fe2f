"""Loading policies: the format version, positions of problems, all problems at once."""

from __future__ import annotations

import pytest

from nngsec import PolicyError
from nngsec._policy._load import parse_policy


def problems_of(text: str) -> list[tuple[int | None, int | None, str, str, str]]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    return [(p.line, p.column, p.field, p.message, p.hint) for p in caught.value.problems]


@pytest.mark.parametrize("written", ["1.0", "true", "'1'", "2", "0", "-1", "[1]", "~"])
def test_only_the_integer_1_is_format_version_1(written):
    [(line, column, field, message, hint)] = problems_of(f"nngsec: {written}\nname: x\n")
    assert (line, column, field) == (1, 9, "nngsec")
    assert message.startswith("unsupported format version")
    assert "nngsec: 1" in hint
