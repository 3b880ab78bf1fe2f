"""JSON Schemas of nngsec's file formats, from their pydantic models, in the standard form
that editors (yaml-language-server, VS Code, IntelliJ) and validators (ajv in its default
strict mode, Python's jsonschema) all accept.

What pydantic writes is adjusted so that a person sees sense, not Python:

- a union told apart by a field (a channel's ``pattern``) becomes one ``if``/``then`` per
  value instead of ``oneOf`` with OpenAPI's ``discriminator``/``mapping`` (unknown
  keywords to a JSON Schema validator): an editor then completes and checks the fields of
  *that* pattern;
- titles say what a thing is (``pubsub channel``), not the class behind it
  (``PubsubChannel``); properties get no title of their own (their description says it);
- an optional field has no ``default: null``, so completion does not write ``topics: null``;
- mappings keyed by names check their keys (``propertyNames``), which pydantic's
  ``patternProperties`` would leave unchecked.

Models are the source: a field added to a model appears in the schema, and a test keeps
the schemas shipped in the package equal to what this module generates.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

__all__ = ["DRAFT", "model_schema", "or_empty"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_DEFS = "#/$defs/"


class _Generator(GenerateJsonSchema):
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # "Max Age" says less than the description next to it


def or_empty(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of a section that may be written with nothing under it
    (``revoked:``), which the loaders read as empty."""
    inner = {key: value for key, value in schema.items() if key not in ("description", "default")}
    outer = {key: value for key, value in schema.items() if key in ("description", "default")}
    schema.clear()
    schema.update(outer)
    schema["anyOf"] = [inner, {"type": "null", "description": "nothing under it: empty"}]


def _words(class_name: str) -> str:
    """``PubsubChannel`` -> ``pubsub channel``; ``SocketModel`` -> ``socket``."""
    name = class_name.removesuffix("Model") or class_name
    return " ".join(part.lower() for part in re.findall(r"[A-Z][a-z0-9]*|[a-z0-9]+", name))


def model_schema(
    model: type[BaseModel], *, schema_id: str, title: str, description: str
) -> dict[str, Any]:
    """The standard JSON Schema (draft 2020-12) of ``model``, as a file of that format."""
    raw = model.model_json_schema(by_alias=True, schema_generator=_Generator)
    defs: dict[str, Any] = raw.pop("$defs", {})
    names = {name: _words(name).replace(" ", "-") for name in defs}
    tidy = _Tidy(defs, names)
    root = tidy.node(raw)
    root["title"] = title
    root["description"] = description
    schema: dict[str, Any] = {"$schema": DRAFT, "$id": schema_id, **root}
    if defs:
        schema["$defs"] = {
            names[name]: {**tidy.node(value), "title": _words(name)}
            for name, value in sorted(defs.items(), key=lambda item: names[item[0]])
        }
    return schema


class _Tidy:
    """One pass over a schema tree; ``defs`` resolve the ``$ref`` of unions."""

    def __init__(self, defs: dict[str, Any], names: dict[str, str]) -> None:
        self.defs = defs
        self.names = names

    def node(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.node(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "discriminator" in node and "oneOf" in node:
            node = self._tagged_union(node)
        result: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_DEFS):
                result[key] = _DEFS + self.names[value.removeprefix(_DEFS)]
            elif key == "default" and value is None:
                continue  # completion would write `field: null`
            else:
                result[key] = self.node(value)
        return _check_key_names(result)

    def _tagged_union(self, node: dict[str, Any]) -> dict[str, Any]:
        """``oneOf`` + ``discriminator`` -> one ``if``/``then`` per value of the tag, in the
        order of ``oneOf`` (the order the models were declared in)."""
        tag: str = node["discriminator"]["propertyName"]
        branches: dict[str, str] = {}
        tag_schema: dict[str, Any] = {}
        for choice in node["oneOf"]:
            properties = self.defs[choice["$ref"].removeprefix(_DEFS)]["properties"]
            branches[properties[tag]["const"]] = choice["$ref"]
            tag_schema = tag_schema or {
                key: value for key, value in properties[tag].items() if key != "const"
            }
        values = list(branches)
        return {
            "type": "object",
            "description": f"its {tag} ({', '.join(values)}) decides its other fields",
            "required": [tag],
            "properties": {tag: {**tag_schema, "enum": values}},
            "allOf": [
                {
                    "if": {"properties": {tag: {"const": value}}, "required": [tag]},
                    "then": {"$ref": ref},
                }
                for value, ref in branches.items()
            ],
        }


def _check_key_names(node: dict[str, Any]) -> dict[str, Any]:
    """Make mappings keyed by names refuse keys that are not names.

    pydantic describes ``dict[Name, X]`` as ``patternProperties: {NAME_PATTERN: X}``, which
    leaves any key that does not match the pattern (``Sensor-1``) unchecked.
    """
    patterns = node.get("patternProperties")
    if isinstance(patterns, dict) and len(patterns) == 1 and "additionalProperties" not in node:
        ((pattern, value),) = patterns.items()
        node = {key: item for key, item in node.items() if key != "patternProperties"}
        node["propertyNames"] = {"type": "string", **node.get("propertyNames", {})}
        node["propertyNames"]["pattern"] = pattern
        node["additionalProperties"] = value
    return node
