"""init: a starter deployment in a directory, from the example the package ships.

Writes ``DIR/factory.yaml`` (the example policy, comments and all, with a fresh identity
key for each of its identities), ``DIR/factory.topology.yaml``, the channel keys
(``DIR/factory.keys.json``, as ``nngsec rotate`` writes them) and ``DIR/keys/`` with every
identity's private key. Nothing existing is ever replaced: a directory that already holds
any of these files is refused before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

EXAMPLE = "factory"
KEYSTORE = "keys"


def register(commands: Any) -> None:
    init = commands.add_parser(
        "init",
        help="write a starter deployment: policy, topology, keys",
        description="Write a starter deployment into DIR (created if needed): the example "
        "policy (factory.yaml) with a fresh key for each identity, its topology, its channel "
        "keys, and a keystore DIR/keys holding every identity's private key. Refuses a "
        "directory that already holds any of these files. Then: nngsec check "
        "DIR/factory.topology.yaml",
    )
    init.add_argument("directory", metavar="DIR", type=Path)
    init.set_defaults(run=_init)


@dataclass(frozen=True)
class Deployment:
    policy: Path
    topology: Path
    channel_keys: Path
    keystore: Path
    identities: tuple[str, ...]


def _example(name: str) -> str:
    return (resources.files("nngsec") / "_examples" / name).read_text(encoding="utf-8")


def _targets(directory: Path) -> tuple[Path, Path, Path, Path]:
    from .._policy._policy import channel_keys_path

    policy = directory / f"{EXAMPLE}.yaml"
    topology = directory / f"{EXAMPLE}.topology.yaml"
    return policy, topology, channel_keys_path(policy), directory / KEYSTORE


def init_deployment(directory: Path) -> Deployment:
    """Write the starter deployment into ``directory``; see the module docstring."""
    from .._errors import PolicyError, Problem
    from .._formats._atomic import write_atomic
    from .._formats._deployment import new_deployment_id
    from .._keys._keystore import Keystore
    from .._policy._admin import rotate
    from .._policy._load import parse_policy

    policy_path, topology_path, keys_path, keystore_dir = _targets(directory)
    existing = [p for p in (policy_path, topology_path, keys_path, keystore_dir) if p.exists()]
    if existing:
        raise PolicyError(
            Problem(
                f"{directory} already holds a deployment ({', '.join(p.name for p in existing)}); "
                "nngsec init never replaces files",
                str(existing[0]),
                hint="give a new or empty directory, or move those files away first",
            )
        )
    text = _example(f"{EXAMPLE}.yaml")
    template = parse_policy(text, f"{EXAMPLE}.yaml (the example)")
    written = {name: public.to_text() for name, public in template.identities.items()}
    if any(text.count(key) != 1 for key in written.values()):
        raise RuntimeError("a key of the example policy is not written exactly once")

    # A fresh identity for each identity of the example, put where its key was written
    # (the file's comments and layout stay as they are).
    directory.mkdir(parents=True, exist_ok=True)
    keystore = Keystore(keystore_dir)
    for name, old in written.items():
        key, _, _ = keystore.generate(name)
        text = text.replace(old, key.public.to_text())
    # A new deployment, not the example's: two starters must never accept each other's
    # frames (the id is bound into every key and signature).
    if template.model.deployment is not None:
        text = text.replace(template.model.deployment, new_deployment_id(), 1)
    write_atomic(policy_path, text.encode("utf-8"), overwrite=False)
    write_atomic(topology_path, _example(f"{EXAMPLE}.topology.yaml").encode(), overwrite=False)
    rotate(policy_path)
    return Deployment(policy_path, topology_path, keys_path, keystore_dir, tuple(written))


def _init(args: argparse.Namespace) -> int:
    made = init_deployment(args.directory)
    print(f"wrote {made.policy} (policy, {len(made.identities)} new identities)")
    print(f"wrote {made.topology} (which node runs which identity, and the relays)")
    print(f"wrote {made.channel_keys} (channel keys, sealed to each entitled identity)")
    print(f"wrote {made.keystore}/ (every identity's private key, mode 0600)")
    print(f"next: nngsec check {made.topology}", file=sys.stderr)
    print(
        f"note: {made.keystore} holds every private key, for trying things on one machine; a "
        "node of a real deployment gets only its own NAME.key",
        file=sys.stderr,
    )
    return 0
