"""``nngsec schema``: the JSON Schema of the policy (and channel-key) format."""

from __future__ import annotations

import json
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]
import pytest

from nngsec._formats._yaml import load_yaml_file
from tests.support import DATA, ROOT, InProcessCli

BAD = DATA / "bad_policies"


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        result = InProcessCli(monkeypatch, tmp_path_factory.mktemp("schema"))("schema")
    assert result.code == 0, result
    data: dict[str, Any] = json.loads(result.out)
    jsonschema.Draft202012Validator.check_schema(data)
    return data


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema)


def test_the_example_policy_validates(schema):
    data = load_yaml_file(ROOT / "policies" / "factory.yaml").data
    assert list(validator(schema).iter_errors(data)) == []
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_example_channel_keys_validate(cli):
    result = cli("schema", "channel-keys")
    assert result.code == 0
    schema = json.loads(result.out)
    data = json.loads((ROOT / "policies" / "factory.keys.json").read_text())
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(data)) == []


@pytest.mark.parametrize(
    "name",
    [
        "unknown-top-field",
        "unknown-channel-field",
        "role-of-other-pattern",
        "origin-on-reqrep",
        "missing-role",
        "missing-pattern",
        "unknown-pattern",
        "unknown-scheme",
        "duration-no-unit",
        "duration-bad-unit",
        "size-bad-unit",
        "size-no-unit",
        "name-uppercase",
        "name-bad-in-role",
        "name-bad-channel",
        "name-missing",
        "private-key-in-policy",
        "public-key-truncated",
        "public-key-wrong-version",
        "identities-as-list",
        "role-not-a-list",
        "version-zero",
        "version-quoted",
        "replay-window-too-small",
        "format-version-2",
    ],
)
def test_the_schema_refuses_what_the_loader_refuses_by_shape(schema, name):
    data = load_yaml_file(BAD / f"{name}.yaml").data
    assert list(validator(schema).iter_errors(data)), f"{name} passes the schema"


def _defaults(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        if "default" in node:
            found.append((where, node))
        for key, value in node.items():
            found.extend(_defaults(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_defaults(value, f"{where}/{index}"))
    return found


def test_every_default_is_valid_for_its_own_field(schema):
    defaults = _defaults(schema)
    assert len(defaults) > 10
    for where, node in defaults:
        field_schema = {k: v for k, v in node.items() if k != "default"}
        field_schema["$defs"] = schema["$defs"]
        errors = list(jsonschema.Draft202012Validator(field_schema).iter_errors(node["default"]))
        assert errors == [], f"default {node['default']!r} at {where}"


def test_durations_and_sizes_are_strings_with_units(schema):
    channel = schema["$defs"]["PubsubChannel"]["properties"]
    assert channel["max_age"]["type"] == "string"
    assert channel["max_age"]["default"] == "30s"
    assert channel["max_message_size"]["type"] == "string"
    assert channel["max_message_size"]["default"] == "1MiB"
