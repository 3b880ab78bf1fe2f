"""schema: the JSON Schemas of the policy, topology and channel-key file formats.

The same schemas ship in the package (``nngsec/schemas/*.schema.json``, for editors that
point at a file); regenerate them with ``make schemas`` (``python -m
nngsec._cli._info_commands DIR``). A test fails when the shipped files differ from what the
models generate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

SCHEMA_ID = "https://nngsec.dev/schema/v1"
KINDS = ("policy", "topology", "channel-keys")


def register(commands: Any) -> None:
    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of a file format",
        description="Print the JSON Schema (draft 2020-12) of the policy format (or of the "
        "topology or channel-key format), for editors that complete and check YAML and for "
        "validators such as ajv. The same files ship in the package: nngsec/schemas/.",
        epilog="In a YAML file, a first line '# yaml-language-server: $schema=PATH' points "
        "yaml-language-server (VS Code, Neovim, Helix...) at a schema saved with "
        "nngsec schema > PATH.",
    )
    schema.add_argument(
        "format", nargs="?", default="policy", choices=KINDS, help="default: policy"
    )
    schema.set_defaults(run=_schema)


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of file format ``kind`` (one of :data:`KINDS`)."""
    from .._formats._json_schema import model_schema
    from .._keys._channel_keys import ChannelKeyFileModel
    from .._policy._model import PolicyModel
    from .._topology._model import TopologyModel

    if kind == "policy":
        return model_schema(
            PolicyModel,
            schema_id=f"{SCHEMA_ID}/policy.json",
            title="nngsec policy",
            description="Who may talk to whom: identities, groups, and channels with a "
            "messaging pattern and the names in each role (format version 1).",
        )
    if kind == "topology":
        return model_schema(
            TopologyModel,
            schema_id=f"{SCHEMA_ID}/topology.json",
            title="nngsec topology",
            description="A deployment for `nngsec check`: the nodes, the identity each runs, "
            "their sockets and the key-less relays between them (format version 1).",
        )
    if kind == "channel-keys":
        return model_schema(
            ChannelKeyFileModel,
            schema_id=f"{SCHEMA_ID}/channel-keys.json",
            title="nngsec channel keys",
            description="Per-epoch channel secrets sealed to each entitled identity, written "
            "by `nngsec rotate` (machine-managed: do not edit).",
        )
    raise ValueError(f"unknown schema {kind!r}, expected one of {', '.join(KINDS)}")


def render(kind: str) -> str:
    """The schema of ``kind`` as the text ``nngsec schema`` prints and the package ships."""
    return json.dumps(json_schema(kind), indent=2, ensure_ascii=False) + "\n"


def shipped_path(kind: str, directory: Path | None = None) -> Path:
    """Where the package keeps the schema of ``kind`` (or in ``directory``)."""
    base = directory if directory is not None else Path(__file__).parent.parent / "schemas"
    return base / f"{kind}.schema.json"


def _schema(args: argparse.Namespace) -> int:
    sys.stdout.write(render(args.format))
    return 0


if __name__ == "__main__":  # make schemas: write the schemas the package ships
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    for kind in KINDS:
        path = shipped_path(kind, target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(kind), encoding="utf-8")
        print(f"wrote {path}")
