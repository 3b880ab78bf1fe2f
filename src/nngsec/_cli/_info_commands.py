"""schema: the JSON Schemas of the policy, topology and channel-key file formats."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import BaseModel

from .._keys._channel_keys import ChannelKeyFileModel
from .._policy._model import PolicyModel
from .._topology._model import TopologyModel

SCHEMA_ID = "https://nngsec.dev/schema/v1"


def register(commands: Any) -> None:
    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of a file format",
        description="Print the JSON Schema of the policy format (or of the topology or "
        "channel-key format), for editors that complete and check YAML.",
    )
    schema.add_argument(
        "format", nargs="?", default="policy", choices=["policy", "topology", "channel-keys"]
    )
    schema.set_defaults(run=_schema)


def json_schema(kind: str) -> dict[str, Any]:
    models: dict[str, type[BaseModel]] = {
        "policy": PolicyModel,
        "topology": TopologyModel,
        "channel-keys": ChannelKeyFileModel,
    }
    model = models[kind]
    schema = _check_key_names(model.model_json_schema(by_alias=True))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_ID}/{kind}.json",
        **schema,
    }


def _check_key_names(node: Any) -> Any:
    """Make mappings keyed by names refuse keys that are not names.

    pydantic describes ``dict[Name, X]`` as ``patternProperties: {NAME_PATTERN: X}``, which
    leaves any key that does not match the pattern (``Sensor-1``) unchecked.
    """
    if isinstance(node, list):
        return [_check_key_names(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _check_key_names(value) for key, value in node.items()}
    patterns = node.get("patternProperties")
    if isinstance(patterns, dict) and len(patterns) == 1 and "additionalProperties" not in node:
        ((pattern, value),) = patterns.items()
        del node["patternProperties"]
        node["propertyNames"] = {**node.get("propertyNames", {}), "pattern": pattern}
        node["additionalProperties"] = value
    return node


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(args.format), indent=2))
    return 0
