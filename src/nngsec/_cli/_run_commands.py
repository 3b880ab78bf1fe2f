"""demo and bench: the commands that run things."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import _bench

MODES = ("threads", "processes")


def _csv(kind: type, choices: tuple[Any, ...] | None = None) -> Any:
    def parse(text: str) -> tuple[Any, ...]:
        try:
            values = tuple(kind(part) for part in text.split(",") if part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list, got {text!r}"
            ) from None
        if choices is not None:
            wrong = [v for v in values if v not in choices]
            if wrong:
                known = ", ".join(map(str, choices))
                raise argparse.ArgumentTypeError(
                    f"unknown {', '.join(map(str, wrong))}; choose from {known}"
                )
        return values

    return parse


def register(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="a secured factory under attack, in one process",
        description="Run a small factory (sensors, dashboard, job pipeline, control service "
        "with two servers, a bus of cells, a pair, a health survey) over ipc, with key-less "
        "relays in between, while an attacker injects forged, replayed, tampered, "
        "reflected, revoked, misdirected and foreign frames, one at a time. Prints each "
        "attack with the reason it was rejected for (which check), what each receiver "
        "delivered and rejected, and a table per channel; then rotates keys under traffic "
        "and revokes a subscriber. Exits 0 only if every honest message arrived and every "
        "attack was rejected for the expected reason.",
    )
    demo.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: progress and a table (default); json: a machine-readable summary only",
    )
    demo.add_argument(
        "--json",
        dest="format",
        action="store_const",
        const="json",
        help="the same as --format json",
    )
    demo.set_defaults(run=_run_demo)

    bench = commands.add_parser(
        "bench",
        help="secured vs plain pynng, throughput and latency",
        description="Run the same traffic over plain pynng sockets, over secured ones, and "
        "over plain ones plus the libsodium calls of the scheme (the floor), in the same "
        "run with the same buffers; report msgs/s (median, min and max over repeats), "
        "latency p50 and the ratios secured/plain, floor/plain and secured/floor. Progress "
        "and the time left go to stderr; Ctrl-C stops it at once.",
    )
    bench.add_argument(
        "--patterns",
        metavar="PATTERN,...",
        type=_csv(str, _bench.PATTERNS),
        default=_bench.PATTERNS,
        help=f"comma-separated, from {', '.join(_bench.PATTERNS)} (default: all)",
    )
    bench.add_argument(
        "--origins",
        metavar="ORIGIN,...",
        type=_csv(str, _bench.ORIGINS),
        default=_bench.ORIGINS,
        help="origin: rows of pubsub, pipeline and survey, comma-separated, from "
        f"{', '.join(_bench.ORIGINS)} (default: both)",
    )
    bench.add_argument(
        "--sizes",
        metavar="BYTES,...",
        type=_csv(int),
        default=None,
        help="payload sizes in bytes, comma-separated (default: 64,1024,65536; --quick: 1024)",
    )
    bench.add_argument(
        "--modes",
        metavar="MODE,...",
        type=_csv(str, MODES),
        default=MODES,
        help="comma-separated, from threads (both ends in this process) and processes (two "
        "processes) (default: both)",
    )
    bench.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="runs per case; the median is shown (default: 3; --quick: 1)",
    )
    bench.add_argument(
        "--transport",
        choices=("inproc", "ipc", "tcp"),
        default="ipc",
        help="inproc, ipc or tcp (default: ipc)",
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run in under 30 s: 1024-byte messages, one repeat, fewer messages",
    )
    bench.add_argument(
        "--verify-threads",
        metavar="N",
        type=int,
        default=0,
        help="the secured receiver of the signed pubsub, pipeline and bus rows verifies on N "
        "threads (Node.attach(verify_threads=N); default: 0, in the socket's thread)",
    )
    bench.add_argument(
        "--format", choices=("text", "json"), default="text", help="text or json (default: text)"
    )
    bench.set_defaults(run=_run_bench)


def _run_demo(args: argparse.Namespace) -> int:
    from . import _demo

    return _demo.main(as_json=args.format == "json")


def _run_bench(args: argparse.Namespace) -> int:
    sizes = args.sizes or ((1024,) if args.quick else (64, 1024, 65536))
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if repeats < 1:
        print("nngsec: error: --repeats must be at least 1", file=sys.stderr)
        return 2
    if not 0 <= args.verify_threads <= 16:
        print("nngsec: error: --verify-threads is from 0 to 16", file=sys.stderr)
        return 2
    if any(size < 0 for size in sizes):
        print("nngsec: error: --sizes are byte counts (hint: 64,1024)", file=sys.stderr)
        return 2
    if args.transport == "inproc" and "processes" in args.modes:
        print(
            "nngsec: error: inproc cannot cross processes (hint: --transport ipc)", file=sys.stderr
        )
        return 2
    text = args.format == "text"
    if text:
        print(_bench.HEADER, flush=True)
    try:
        results = _bench.run_bench(
            cases=_bench.selected_cases(args.patterns, args.origins),
            sizes=sizes,
            modes=args.modes,
            repeats=repeats,
            transport=args.transport,
            quick=args.quick,
            verify_threads=args.verify_threads,
            on_row=(lambda row: print(_bench.format_row(row), flush=True)) if text else None,
        )
    except KeyboardInterrupt:
        print("\nnngsec: bench interrupted", file=sys.stderr)
        return 130
    if not text:
        print(_bench.to_json(results))
    return 0
