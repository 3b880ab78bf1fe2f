"""keygen, trust, sign, rotate, revoke: the commands that create and change keys and policies."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .._errors import NngsecError, Problem
from .._formats._units import format_duration, parse_duration
from .._keys._keystore import Keystore
from .._policy import _admin

DEFAULT_KEYSTORE = os.environ.get("NNGSEC_KEYSTORE", "keys")


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not 0 <= seconds <= _admin.MAX_GRACE:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected a duration from 0s to 365d")
    return seconds


def register(commands: Any) -> None:
    keygen = commands.add_parser(
        "keygen",
        help="create an identity key pair",
        description="Write DIR/NAME.key (private, mode 0600) and DIR/NAME.pub, and print the "
        "line to paste under identities: in the policy. An existing NAME.key is never "
        "replaced; when its NAME.pub is missing (an interrupted keygen), it is written.",
    )
    keygen.add_argument("name", metavar="NAME")
    keygen.add_argument("--keystore", metavar="DIR", default=DEFAULT_KEYSTORE)
    keygen.add_argument(
        "--public",
        action="store_true",
        help="write nothing: print the line to paste for the existing DIR/NAME.key",
    )
    keygen.set_defaults(run=_keygen)

    trust = commands.add_parser(
        "trust",
        help="pin a policy signer in a keystore",
        description="Pin an admin's public key (ADMIN.pub) as a trusted policy signer. From "
        "then on, nodes using this keystore refuse unsigned or badly signed policies.",
    )
    trust.add_argument("public_file", metavar="PUBFILE")
    trust.add_argument("--keystore", metavar="DIR", default=DEFAULT_KEYSTORE)
    trust.set_defaults(run=_trust)

    sign = commands.add_parser(
        "sign",
        help="sign a policy and its channel keys",
        description="Write POLICY.sig: an Ed25519 signature over the policy's version, the "
        "policy file and its channel-key file, by the admin key in KEYFILE. A policy that "
        "changed since it was last signed needs a higher version: (nodes refuse another "
        "policy under a version they verified).",
    )
    sign.add_argument("policy", metavar="POLICY")
    sign.add_argument("--key", metavar="KEYFILE", required=True)
    sign.add_argument(
        "--bump",
        action="store_true",
        help="if the policy changed since it was last signed without raising version:, "
        "raise it in the file (keeping the rest as written) before signing",
    )
    sign.set_defaults(run=_sign)

    rotate = commands.add_parser(
        "rotate",
        help="create or rotate channel keys",
        description="Start a new key epoch for the named channels (all channels that need "
        "channel keys when none is named), sealed to each entitled identity that is not "
        "revoked. The previous epoch stays readable during the grace period.",
    )
    rotate.add_argument("policy", metavar="POLICY")
    rotate.add_argument("channels", metavar="CHANNEL", nargs="*")
    rotate.add_argument(
        "--grace",
        metavar="DURATION",
        type=_duration,
        default=_admin.DEFAULT_GRACE,
        help="how long the previous epoch stays readable after the new one activates (default: 1h)",
    )
    rotate.add_argument(
        "--activate-in",
        metavar="DURATION",
        type=_duration,
        default=_admin.DEFAULT_LEAD,
        help="distribute the new epoch now, and let senders use it only after DURATION, so "
        "that every receiver holds it first (default: "
        f"{format_duration(_admin.DEFAULT_LEAD)}; 0s: at once)",
    )
    rotate.add_argument(
        "--lifetime",
        metavar="DURATION",
        type=_duration,
        default=None,
        help="the new epoch expires after DURATION: nobody seals or accepts frames under it "
        "then (default: never)",
    )
    rotate.set_defaults(run=_rotate)

    revoke = commands.add_parser(
        "revoke",
        help="revoke an identity and rotate what it could read",
        description="Add IDENTITY to revoked: (keeping the rest of the file as written), "
        "raise version:, and rotate the keys of every channel it could read.",
    )
    revoke.add_argument("policy", metavar="POLICY")
    revoke.add_argument("identity", metavar="IDENTITY")
    revoke.add_argument(
        "--grace",
        metavar="DURATION",
        type=_duration,
        default=None,
        help="how long receivers still accept the epoch the revoked identity held (default: "
        f"{format_duration(_admin.REVOKE_GRACE)} where that epoch only lets it read, 0s where it "
        "could forge: a bus with origin: group, a service key). The new epochs are used at once",
    )
    revoke.set_defaults(run=_revoke)


def _keygen(args: argparse.Namespace) -> int:
    keystore = Keystore(args.keystore)
    if args.public:
        key = keystore.identity(args.name)
    elif keystore.has_identity(args.name) and not keystore.public_path(args.name).exists():
        key, public_path = keystore.complete(args.name)
        _say(
            f"found {keystore.key_path(args.name)} without its public file (an interrupted "
            f"keygen): wrote {public_path}"
        )
        _say("paste this line under identities: in the policy:")
    else:
        key, secret_path, public_path = keystore.generate(args.name)
        _say(f"wrote {secret_path} (private, mode 0600) and {public_path}")
        _say(f"fingerprint (key id) {key.public.fingerprint}: frames and logs name it by this")
        _say("paste this line under identities: in the policy:")
    print(f"{args.name}: {key.public.to_text()}")
    return 0


def _trust(args: argparse.Namespace) -> int:
    name, public, new = Keystore(args.keystore).trust(args.public_file)
    state = "pinned" if new else "already pinned"
    print(f"{state} {name} (key id {public.fingerprint}) as a policy signer in {args.keystore}")
    return 0


def _deployment_note(policy: str, deployment: str | None) -> None:
    if deployment is not None:
        _say(
            f"added deployment: {deployment} to {policy} (a random id every key and signature "
            "of this deployment is bound to; the rest of the file is unchanged)"
        )


def _sign(args: argparse.Namespace) -> int:
    result = _admin.sign(args.policy, args.key, bump=args.bump)
    _deployment_note(args.policy, result.deployment_added)
    if result.bumped_from is not None:
        _say(
            f"raised version: from {result.bumped_from} to {result.version} in {args.policy} "
            "(it changed since it was last signed)"
        )
    what = (
        f"and its channel keys {result.keys_path}"
        if result.keys_path is not None
        else "(it has no channel-key file)"
    )
    print(
        f"signed {args.policy} version {result.version} {what} with key id {result.key_id}: "
        f"wrote {result.signature_path}"
    )
    return 0


def _stale_note(policy: str, result: _admin.RotateResult) -> None:
    if result.signature_stale:
        _say(
            f"note: the policy signature no longer covers the new channel keys; sign again: "
            f"nngsec sign {policy} --key ADMIN.key"
        )


def _rotate(args: argparse.Namespace) -> int:
    result = _admin.rotate(
        args.policy,
        args.channels,
        grace=args.grace,
        activate_in=args.activate_in,
        lifetime=args.lifetime,
    )
    _deployment_note(args.policy, result.deployment_added)
    if not result.rotated:
        print(
            f"no channel of {args.policy} needs channel keys (pair channels, single-server "
            "reqrep channels, signed and plaintext channels need none)"
        )
        return 0
    for channel, epoch in result.rotated.items():
        holders = ", ".join(result.sealed_to[channel]) or "nobody (every holder is revoked)"
        activates = result.activate_at.get(channel)
        when = f"; senders use it from {activates}" if activates else ""
        print(f"{channel}: epoch {epoch}, sealed to {holders}{when}")
    if result.replaced_format_1:
        print(
            f"wrote {result.keys_path} in format 2, replacing a format-1 file (nngsec 0.1) "
            "whose epochs are no longer readable: every node needs the new files"
        )
    else:
        grace = format_duration(args.grace)
        print(f"wrote {result.keys_path} (previous epochs readable for {grace})")
    _stale_note(args.policy, result)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    if not Path(args.policy).exists():
        raise NngsecError(Problem("policy file not found", args.policy, hint="check the path"))
    result = _admin.revoke(args.policy, args.identity, grace=args.grace)
    _deployment_note(args.policy, result.deployment_added)
    print(f"revoked {result.identity} in {args.policy} (version now {result.version})")
    for channel, epoch in result.rotation.rotated.items():
        holders = ", ".join(result.rotation.sealed_to[channel]) or "nobody"
        print(f"{channel}: rotated to epoch {epoch}, sealed to {holders}")
    for channel in result.not_rotatable:
        _say(
            f"warning: {channel}: its keys come from identity keys, so rotation cannot cut "
            f"{result.identity} off; it is refused as a sender by every node with the new "
            "policy, but remove or replace it in this channel to stop it reading"
        )
    _say(
        f"note: distribute the new policy and keys, and sign again: nngsec sign {args.policy} "
        "--key ADMIN.key"
    )
    return 0
