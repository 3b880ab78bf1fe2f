"""publish and export: the commands that distribute a policy to running nodes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._keys._keystore import Keystore
from .._policy._export import export_node
from .._runtime._store import publish
from ._admin_commands import DEFAULT_KEYSTORE


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def register(commands: Any) -> None:
    publish_command = commands.add_parser(
        "publish",
        help="upload a policy set to etcd for the nodes that follow it",
        description="Upload POLICY, its signature and its channel keys to etcd under PREFIX as "
        "one transaction, unless the store holds a newer set (a higher version, or a later "
        "key epoch): compare-and-swap. Nodes started with Node('etcd://HOST:PORT/PREFIX', ...) "
        "verify the set exactly as from files and switch to it within seconds.",
    )
    publish_command.add_argument("policy", metavar="POLICY")
    publish_command.add_argument("url", metavar="etcd://HOST:PORT/PREFIX")
    publish_command.add_argument("--format", choices=("text", "json"), default="text")
    publish_command.set_defaults(run=_publish)

    export = commands.add_parser(
        "export",
        help="the files one node needs, and nothing of anyone else's",
        description="Write into DIR (new or empty) what NODE needs to run: its private key, "
        "the pinned signers, and the policy, its signature and channel keys (or, with "
        "--store, the etcd URL it follows), with node.json naming them.",
    )
    export.add_argument("policy", metavar="POLICY")
    export.add_argument("node", metavar="NODE", help="the identity the node runs")
    export.add_argument("--out", metavar="DIR", required=True)
    export.add_argument(
        "--keystore",
        metavar="DIR",
        default=DEFAULT_KEYSTORE,
        help="where the identity's private key is (default: $NNGSEC_KEYSTORE or keys)",
    )
    export.add_argument(
        "--trust",
        metavar="PUBFILE",
        action="append",
        default=[],
        help="a signer's public key to pin (repeatable; default: the keystore's pinned ones)",
    )
    export.add_argument("--store", metavar="etcd://HOST:PORT/PREFIX", default=None)
    export.set_defaults(run=_export)


def _publish(args: argparse.Namespace) -> int:
    result = publish(args.policy, args.url)
    if args.format == "json":
        print(
            json.dumps(
                {
                    "url": str(result.address),
                    "version": result.version,
                    "epochs": result.epochs,
                    "revision": result.revision,
                    "changed": result.changed,
                    "signed": result.signed,
                }
            )
        )
    elif result.changed:
        epochs = ", ".join(f"{c} epoch {e}" for c, e in sorted(result.epochs.items()))
        print(
            f"published {args.policy} version {result.version}"
            f"{' (' + epochs + ')' if epochs else ''} to {result.address} "
            f"at revision {result.revision}"
        )
    else:
        print(f"{result.address} already holds this set (version {result.version})")
    if not result.signed:
        _say(
            f"warning: {args.policy} is not signed: nodes that pin a signer refuse it "
            f"(sign it: nngsec sign {args.policy} --key ADMIN.key)"
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    result = export_node(
        args.policy,
        args.node,
        args.out,
        keystore=Keystore(args.keystore),
        trusted=args.trust,
        store=args.store,
    )
    for path in result.files:
        print(path)
    if not result.signers:
        _say(
            "warning: the bundle pins no signer, so the node will accept any policy set it "
            "is given (add --trust ADMIN.pub)"
        )
    elif not result.signed and args.store is None:
        _say(
            f"warning: {args.policy} is not signed and the bundle pins a signer: the node "
            f"will refuse it (sign it: nngsec sign {args.policy} --key ADMIN.key)"
        )
    return 0
