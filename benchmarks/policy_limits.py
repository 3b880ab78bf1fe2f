"""What refusing a huge policy costs a node, and what parsing the largest deployment costs
(the figures behind ``_formats/_limits.py`` and the threat model's "The store").

    python -m benchmarks.policy_limits [--quick]

1. A node whose keystore pins a signer is given a tampered policy of one long YAML list
   (0.5 MB and 2 MB) beside the admin's signature of the policy before: the time to refuse
   it and the growth of the process's peak resident memory, each in a fresh
   process. The same policy on a node that pins no signer is parsed (that is what the
   size limit bounds).
2. The largest deployments measured: ``gen_topology.py``'s 10,000 identities and 200
   channels (what ``bench_check.py`` times), and 2,000 identities in 500 channels naming
   60 members each; their policy and channel-key file (one epoch, and two after a
   rotation): size, time to parse and peak memory, each in a fresh process.

Only public functions are called, so the same script measures an older nngsec
(``PYTHONPATH=OLD/src``).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUICK = "--quick" in sys.argv
TAMPERED = (50_000,) if QUICK else (500_000, 2_000_000)


def _peak_mb() -> float:
    """This process's peak resident memory. Linux's VmHWM, not ``ru_maxrss``: that one
    keeps the peak of the parent's copy from before ``exec``, which hides a child's own."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB (Linux)
    [line] = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) / 1024  # kB


def _child(kind: str, path: Path, keystore: Path | None) -> dict[str, object]:
    """One measurement in this (fresh) process: time and peak memory growth."""
    from nngsec import Keystore, NngsecError, Node, load_policy
    from nngsec._keys._channel_keys import ChannelKeyFile

    before = _peak_mb()
    started = time.perf_counter()
    outcome = "accepted"
    try:
        if kind == "node" and keystore is not None:
            Node(path, identity="dashboard", keystore=Keystore(keystore), watch=False).close()
        elif kind == "policy":
            load_policy(path)
        else:
            ChannelKeyFile.load(path)
    except NngsecError as error:
        outcome = error.problems[0].message[:70]
    return {
        "seconds": time.perf_counter() - started,
        "peak_mb": _peak_mb() - before,
        "outcome": outcome,
    }


def _measure(kind: str, path: Path, keystore: Path | None = None) -> dict[str, object]:
    args = [sys.executable, "-m", "benchmarks.policy_limits", "--child", kind, str(path)]
    if keystore is not None:
        args.append(str(keystore))
    done = subprocess.run(
        args, capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1]
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _row(*cells: object) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


def _figures(result: dict[str, object]) -> tuple[str, str]:
    seconds = float(str(result["seconds"]))
    shown = f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"
    return shown, f"{result['peak_mb']:.0f} MB"


def _tampered(root: Path) -> None:
    from nngsec import Keystore
    from nngsec._policy._admin import rotate, sign

    print("\nrefusing a tampered policy of one long list (fresh process each)\n")
    _row("policy", "node's keystore", "time", "peak memory growth", "refused as")
    _row("---", "---", "---", "---", "---")
    for size in TAMPERED:
        world = root / f"tampered-{size}"
        world.mkdir()
        keys = Keystore(world / "keys")
        lines = ["nngsec: 1", "name: factory", "identities:"]
        for name in ("sensor", "dashboard"):
            key, _, _ = keys.generate(name)
            lines.append(f"  {name}: {key.public.to_text()}")
        lines += ["channels:", "  telemetry:", "    pattern: pubsub"]
        lines += ["    publishers: [sensor]", "    subscribers: [dashboard]"]
        policy = world / "policy.yaml"
        policy.write_text("\n".join(lines) + "\n")
        rotate(policy)
        admin = Keystore(world / "admin")
        admin.generate("admin")
        sign(policy, admin.key_path("admin"))
        original = policy.read_bytes()
        items = (size - len(original) - len(b"revoked:\n")) // 4
        policy.write_bytes(original + b"revoked:\n" + b"- a\n" * items)
        shown = f"{policy.stat().st_size / 1e6:.1f} MB"
        unpinned = _measure("policy", policy)
        keys.trust(admin.directory / "admin.pub")
        pinned = _measure("node", policy, keys.directory)
        _row(shown, "pins the admin", *_figures(pinned), pinned["outcome"])
        _row(shown, "(parsed: load_policy)", *_figures(unpinned), unpinned["outcome"])


def _deployments(root: Path) -> None:
    from benchmarks.gen_topology import generate
    from nngsec._policy._admin import rotate

    print("\nparsing the largest deployments measured (fresh process each)\n")
    _row("deployment", "file", "size", "time", "peak memory growth")
    _row("---", "---", "---", "---", "---")
    nodes, channels = (600, 30) if QUICK else (10_000, 200)
    generated, _ = generate(root / "generated", nodes, channels)
    deployments = [(f"gen_topology: {nodes:,} identities, {channels} channels", generated)]
    if not QUICK:
        dense = (2_000, 500, 60)
        named = root / "named" / "policy.yaml"
        _named_members(named, *dense)
        rotate(named)
        deployments.append(("{:,} identities, {} channels naming {} members".format(*dense), named))
    for label, policy in deployments:
        keys = policy.with_suffix(".keys.json")
        for kind, path, what in (("policy", policy, "policy"), ("keys", keys, "keys, 1 epoch")):
            _file_row(label, what, kind, path)
        rotate(policy, now=time.time() + 60)  # the previous epoch is kept (grace)
        _file_row(label, "keys, 2 epochs", "keys", keys)


def _file_row(label: str, what: str, kind: str, path: Path) -> None:
    size = f"{path.stat().st_size / 1e6:.2f} MB"
    _row(label, what, size, *_figures(_measure(kind, path)))


def _named_members(path: Path, identities: int, channels: int, members: int) -> None:
    """A dense policy: every channel names its members one by one (no groups)."""
    from nngsec._keys._identity import IdentityKey

    path.parent.mkdir(parents=True)
    names = [f"node-{i:05d}" for i in range(identities)]
    lines = ["nngsec: 1", "name: dense", "version: 1", "identities:"]
    lines += [f"  {n}: {IdentityKey.generate().public.to_text()}" for n in names]
    lines.append("channels:")
    roles = {
        "pubsub": ("publishers", "subscribers"),
        "pipeline": ("pushers", "pullers"),
        "reqrep": ("servers", "clients"),
        "survey": ("surveyors", "respondents"),
    }
    for index in range(channels):
        pattern = ("pubsub", "pipeline", "reqrep", "survey", "bus")[index % 5]
        start = index * 37 % identities
        chosen = [names[(start + k) % identities] for k in range(members)]
        lines += [f"  channel-{index:04d}:", f"    pattern: {pattern}"]
        if pattern == "bus":
            lines.append(f"    members: [{', '.join(chosen[:12])}]")
            continue
        few, many = roles[pattern]
        lines.append(f"    {few}: [{', '.join(chosen[:5])}]")
        lines.append(f"    {many}: [{', '.join(chosen[5:])}]")
        if pattern == "pubsub":
            lines.append('    topics: ["t."]')
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    if "--child" in sys.argv:
        at = sys.argv.index("--child")
        kind, path, *rest = sys.argv[at + 1 :]
        print(json.dumps(_child(kind, Path(path), Path(rest[0]) if rest else None)))
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        _tampered(Path(scratch))
        _deployments(Path(scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
