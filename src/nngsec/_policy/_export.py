"""``nngsec export POLICY NODE --out DIR``: exactly the files one node needs.

::

    DIR/
      node.json                 {"identity": ..., "source": ..., "keystore": "keys"}
      keys/NODE.key, NODE.pub   this node's identity (0600), and nothing of anyone else's
      keys/trusted/*.pub        the pinned policy signers
      POLICY, POLICY.sig, POLICY.keys.json   (files mode; a store's URL in node.json instead)

The channel-key file holds every holder's sealed entry: that is public data by design
(each entry opens only with its holder's private key), so it ships whole.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import KeystoreError, PolicyError, Problem, UsageError
from .._formats._atomic import write_atomic
from .._keys._files import read_public_file
from .._keys._keystore import Keystore
from ._load import load_policy
from ._policy import channel_keys_path, signature_path

__all__ = ["ExportResult", "export_node"]

KEYSTORE_DIR = "keys"


@dataclass(frozen=True)
class ExportResult:
    out: Path
    identity: str
    source: str
    files: list[Path] = field(default_factory=list)
    signers: tuple[str, ...] = ()
    signed: bool = False


def export_node(
    policy_path: str | Path,
    identity: str,
    out: str | Path,
    *,
    keystore: Keystore,
    trusted: Sequence[str | Path] = (),
    store: str | None = None,
) -> ExportResult:
    """Write the bundle of ``identity`` into ``out`` (which must be new or empty).

    ``trusted`` are the signers' ``.pub`` files to pin (default: the ones ``keystore``
    pins); ``store`` an ``etcd://`` URL the node reads its set from instead of files.
    """
    policy_path = Path(policy_path)
    policy = load_policy(policy_path)
    policy.require_identity(identity)
    if policy.is_revoked(identity):
        raise PolicyError(
            Problem(
                f"identity {identity!r} is revoked: no node may run it",
                str(policy_path),
                field="revoked",
                hint="give the node a new identity (nngsec keygen)",
            )
        )
    key = keystore.identity(identity)  # refuses a key file others can read, or a bad one
    if key.public != policy.identities[identity]:
        raise KeystoreError(
            Problem(
                f"the private key of {identity!r} in {keystore.directory} does not match its "
                "public key in the policy",
                str(keystore.key_path(identity)),
                hint="export from the keystore the policy's identities were made in",
            )
        )
    signers = _signers(keystore, trusted)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(
            Problem(
                "the output directory exists and is not empty",
                str(out),
                hint="export into a new directory: a bundle never mixes with other files",
            )
        )
    keys_dir = out / KEYSTORE_DIR
    (keys_dir / Keystore.TRUSTED_DIR).mkdir(mode=0o700, parents=True, exist_ok=True)
    keys_dir.chmod(0o700)
    written: list[Path] = []

    def write(path: Path, data: bytes, mode: int = 0o644) -> None:
        write_atomic(path, data, mode=mode)
        written.append(path)

    secret = keystore.key_path(identity)
    write(keys_dir / secret.name, secret.read_bytes(), 0o600)
    public = secret.with_suffix(".pub")
    if public.exists():
        write(keys_dir / public.name, public.read_bytes())
    for name, data in signers:
        write(keys_dir / Keystore.TRUSTED_DIR / f"{name}.pub", data)
    signed = signature_path(policy_path).exists()
    if store is None:
        source = policy_path.name
        for part in (policy_path, signature_path(policy_path), channel_keys_path(policy_path)):
            if part.exists():
                write(out / part.name, part.read_bytes())
    else:
        source = store
    config = {"identity": identity, "source": source, "keystore": KEYSTORE_DIR}
    write(out / "node.json", (json.dumps(config, indent=2) + "\n").encode())
    return ExportResult(out, identity, source, written, tuple(n for n, _ in signers), signed)


def _signers(keystore: Keystore, trusted: Sequence[str | Path]) -> list[tuple[str, bytes]]:
    """(name, ``.pub`` bytes) of each signer to pin, each checked to be a public key file."""
    folder = keystore.directory / Keystore.TRUSTED_DIR
    files = [Path(f) for f in trusted] or (sorted(folder.glob("*.pub")) if folder.is_dir() else [])
    found = []
    for file in files:
        name, _ = read_public_file(file)  # refuses anything but a public key file
        found.append((name, file.read_bytes()))
    return found
