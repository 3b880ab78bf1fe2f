"""Time ``nngsec check`` on a generated deployment (10,000 nodes, 200 channels by default).

    python benchmarks/bench_check.py [--nodes 10000] [--channels 200] [--runs 5] [--dir DIR]

Generates the deployment with ``gen_topology.py`` (once, into DIR or a temporary folder),
then runs the command line ``nngsec check TOPOLOGY`` several times as a user would, and
prints each wall time and the median. The goal is under 5 seconds on the project machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.gen_topology import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="time nngsec check on a generated topology")
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="where to generate (default: a temp folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        where = args.dir or Path(scratch)
        topology = where / "topology.yaml"
        if not topology.exists():
            started = time.perf_counter()
            generate(where, args.nodes, args.channels)
            print(f"generated {topology} in {time.perf_counter() - started:.1f} s")
        lines = topology.read_text().count("\n")
        print(f"{args.nodes} nodes, {args.channels} channels, {lines} topology lines")
        times = []
        for run in range(1, args.runs + 1):
            started = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "nngsec", "check", str(topology), "--format", "json"],
                capture_output=True,
                check=False,
            )
            elapsed = time.perf_counter() - started
            if result.returncode not in (0, 1):
                print(result.stderr.decode(), file=sys.stderr)
                return 1
            times.append(elapsed)
            print(f"run {run}: {elapsed:.2f} s (exit {result.returncode})")
        print(f"median: {statistics.median(times):.2f} s over {len(times)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
