"""``nngsec schema``: JSON Schemas of the policy, topology and channel-key formats that
editors can use: standard keywords only, readable titles and descriptions, no ``null``
defaults, shipped in the package and current with the models."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from nngsec._cli._info_commands import KINDS, json_schema, render, shipped_path
from nngsec._formats._units import DURATION_PATTERN, SIZE_PATTERN, parse_duration, parse_size
from nngsec._formats._yaml import load_yaml_file
from nngsec._patterns import PATTERNS
from tests.support import DATA, ROOT, InProcessCli

BAD = DATA / "bad_policies"

# Every keyword of JSON Schema draft 2020-12 (core, applicator, validation, unevaluated,
# format-annotation, meta-data, content): nothing else may appear in a shipped schema.
_KEYWORDS = """$schema $id $ref $defs $comment $anchor $dynamicRef $dynamicAnchor $vocabulary
    allOf anyOf oneOf not if then else dependentSchemas prefixItems items contains properties
    patternProperties additionalProperties propertyNames unevaluatedItems
    unevaluatedProperties type const enum multipleOf maximum exclusiveMaximum minimum
    exclusiveMinimum maxLength minLength pattern maxItems minItems uniqueItems maxContains
    minContains maxProperties minProperties required dependentRequired format title
    description default deprecated readOnly writeOnly examples contentEncoding
    contentMediaType contentSchema"""
STANDARD_KEYWORDS = frozenset(_KEYWORDS.split())
# Where a schema holds user names (property names), not keywords.
NAMED = frozenset({"properties", "$defs", "patternProperties", "dependentSchemas"})


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


def walk(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema object in ``node`` with its JSON pointer."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((where, node))
        for key, value in node.items():
            if key in NAMED and isinstance(value, dict):
                for name, sub in value.items():
                    found.extend(walk(sub, f"{where}/{key}/{name}"))
            elif key not in ("enum", "const", "default", "examples", "required"):
                found.extend(walk(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(walk(value, f"{where}/{index}"))
    return found


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


@pytest.mark.parametrize("kind", KINDS)
def test_the_package_ships_each_schema_as_generated(kind):
    """``nngsec/schemas/*.schema.json`` (package data, for editors that point at a file)
    is what the models generate today: after a model change, run ``make schemas``."""
    shipped = shipped_path(kind)
    assert shipped.is_file(), f"missing {shipped}: run make schemas"
    assert shipped.read_text(encoding="utf-8") == render(kind), f"{shipped} is stale: make schemas"


@pytest.mark.subprocess  # what make schemas runs
def test_make_schemas_writes_what_the_package_ships(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "nngsec._cli._info_commands", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for kind in KINDS:
        assert (tmp_path / f"{kind}.schema.json").read_text() == shipped_path(kind).read_text()
    assert done.stdout.count("wrote ") == len(KINDS)
    with pytest.raises(ValueError, match="unknown schema 'nope'"):
        json_schema("nope")


@pytest.mark.parametrize("kind", KINDS)
def test_only_standard_keywords(kind):
    """No OpenAPI ``discriminator``/``mapping`` nor any other keyword that a strict
    validator (ajv) refuses as unknown."""
    for where, node in walk(json_schema(kind)):
        unknown = set(node) - STANDARD_KEYWORDS
        assert not unknown, f"{kind}{where}: {sorted(unknown)}"


@pytest.mark.parametrize("kind", KINDS)
def test_titles_are_words_not_class_names(kind):
    schema = json_schema(kind)
    titles = {node["title"] for _, node in walk(schema) if "title" in node}
    assert titles, kind
    for title in titles:
        assert re.fullmatch(r"[a-z][a-z -]*", title.removeprefix("nngsec ")), title
    for name in schema.get("$defs", {}):
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", name), name


@pytest.mark.parametrize("kind", KINDS)
def test_no_field_defaults_to_null(kind):
    """Editors complete a field with its default: ``topics: null`` must not be offered."""
    for where, node in walk(json_schema(kind)):
        assert "default" not in node or node["default"] is not None, f"{kind}{where}"


def test_every_policy_field_is_described(schema):
    for where, node in walk(schema):
        if where.endswith(("/if", "/then")):
            continue  # conditions on fields described where they are declared
        for name, field in node.get("properties", {}).items():
            described = "description" in field or "$ref" in field
            assert described, f"{where}/properties/{name} has no description"
        if "pattern" in node and isinstance(node["pattern"], str):
            assert "description" in node, f"{where}: a regex with no words next to it"


def test_each_pattern_has_its_own_channel_shape(schema):
    """``if pattern == X then X's channel``, from the pattern records: role fields, the
    schemes the pattern takes, topics only on pubsub."""
    defs = schema["$defs"]
    union = schema["properties"]["channels"]["anyOf"][0]["additionalProperties"]
    assert union["properties"]["pattern"]["enum"] == list(PATTERNS)
    branches = {
        b["if"]["properties"]["pattern"]["const"]: b["then"]["$ref"] for b in union["allOf"]
    }
    assert list(branches) == list(PATTERNS)
    for name, spec in PATTERNS.items():
        channel = defs[branches[name].removeprefix("#/$defs/")]
        assert channel["title"] == f"{name} channel"
        properties = channel["properties"]
        assert properties["scheme"]["enum"] == ["auto", *spec.schemes], name
        for role in spec.roles:
            assert role.field in channel["required"]
            assert properties[role.field]["minItems"] == 1
        assert ("topics" in properties) == spec.has_topic, name
        assert ("origin" in properties) == bool(spec.origins), name
        assert channel["additionalProperties"] is False


def test_durations_and_sizes_are_strings_with_units(schema):
    channel = schema["$defs"]["pubsub-channel"]["properties"]
    assert channel["max_age"]["type"] == "string"
    assert channel["max_age"]["default"] == "30s"
    assert channel["max_message_size"]["type"] == "string"
    assert channel["max_message_size"]["default"] == "1MiB"
    assert channel["max_age"]["examples"]


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
    if name == "private-key-in-policy":  # the loader refuses its text before any YAML
        data = yaml.safe_load((BAD / f"{name}.yaml").read_text())
    else:
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


@pytest.mark.parametrize("kind", KINDS)
def test_every_example_is_valid_for_its_own_field(kind):
    schema = json_schema(kind)
    checked = 0
    for where, node in walk(schema):
        for example in node.get("examples", ()):
            field_schema = {k: v for k, v in node.items() if k != "examples"}
            errors = list(jsonschema.Draft202012Validator(field_schema).iter_errors(example))
            assert errors == [], f"example {example!r} at {where}"
            checked += 1
    assert checked or kind == "channel-keys"


# -- the schema's regexes accept what the parsers accept, no more and no less ---------------

_QUANTITY_TEXT = st.text(alphabet=" \t\n0123456789.msdhKiBMGbk", max_size=10)


@given(_QUANTITY_TEXT)
def test_the_duration_pattern_is_the_parser(text):
    try:
        parse_duration(text)
        parsed = True
    except ValueError:
        parsed = False
    assert (re.fullmatch(DURATION_PATTERN, text) is not None) == parsed, repr(text)


@given(_QUANTITY_TEXT)
def test_the_size_pattern_is_the_parser(text):
    try:
        parse_size(text)
        parsed = True
    except ValueError as error:
        parsed = "whole number of bytes" in str(error)  # a rule of value, not of spelling
    assert (re.fullmatch(SIZE_PATTERN, text) is not None) == parsed, repr(text)
