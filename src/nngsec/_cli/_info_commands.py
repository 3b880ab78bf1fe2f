"""schema and demo: commands that show things."""

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
    schema = model.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_ID}/{kind}.json",
        **schema,
    }


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(args.format), indent=2))
    return 0
