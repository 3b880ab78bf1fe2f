"""relay: run a key-less forwarding device until SIGINT or SIGTERM.

NNG itself (pynng) is imported when the relay starts, not when the command line is parsed:
``nngsec relay --help`` answers without it.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

from .._formats._units import parse_size
from .._patterns import RELAY_PATTERN_NAMES as PATTERNS

if TYPE_CHECKING:
    from .._relay import Relay

DEFAULT_SIZE_TEXT = "16MiB"  # the relay's DEFAULT_MAX_MESSAGE_SIZE (a test keeps them equal)
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_FAILED = 1


class _Stop(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM; a BaseException so nothing swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.name = signal.Signals(signum).name


def _size(text: str) -> int | None:
    if text.strip().lower() in ("none", "unlimited"):
        return None
    try:
        size = parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected a positive size or 'none'")
    return size


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "relay",
        help="run a key-less forwarding device",
        description="Forward messages of one pattern between two addresses with raw NNG "
        "sockets, as nng_device does: bodies go through byte for byte; the relay holds no "
        "key and cannot read the payloads of encrypted channels. The front faces the "
        "initiating side (publishers, pushers, clients, surveyors), the back the other side; "
        "for bus, both face members. Listens on both URLs unless told to dial. Runs until "
        "SIGINT or SIGTERM.",
    )
    parser.add_argument("pattern", metavar="PATTERN", choices=PATTERNS, help=", ".join(PATTERNS))
    parser.add_argument("--front", metavar="URL", required=True, help="e.g. tcp://0.0.0.0:5555")
    parser.add_argument("--back", metavar="URL", required=True, help="e.g. tcp://0.0.0.0:5556")
    parser.add_argument("--dial-front", action="store_true", help="dial the front URL")
    parser.add_argument("--dial-back", action="store_true", help="dial the back URL")
    parser.add_argument(
        "--max-message-size",
        metavar="SIZE",
        type=_size,
        default=argparse.SUPPRESS,  # absent: the relay's own default
        help=f"largest message accepted from a peer, or 'none' (default: {DEFAULT_SIZE_TEXT})",
    )
    parser.set_defaults(run=_relay)


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`_Stop` in the main thread, once."""

    def stop(signum: int, frame: FrameType | None) -> None:
        for number in _STOP_SIGNALS:  # a second signal must not interrupt the clean close
            signal.signal(number, signal.SIG_IGN)
        raise _Stop(signum)

    previous = {number: signal.signal(number, stop) for number in _STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _relay(args: argparse.Namespace) -> int:
    from .._relay import DEFAULT_MAX_MESSAGE_SIZE, relay

    stopped_by = ""
    with _stop_on_signals():
        running: Relay | None = None
        try:
            running = relay(
                args.pattern,
                front=args.front,
                back=args.back,
                dial_front=args.dial_front,
                dial_back=args.dial_back,
                max_message_size=getattr(args, "max_message_size", DEFAULT_MAX_MESSAGE_SIZE),
            )
            print(f"nngsec: {running.describe()}; stop with Ctrl-C or SIGTERM", flush=True)
            running.wait()
        except _Stop as stop:
            stopped_by = stop.name
        finally:
            if running is not None:
                running.close()
    if not stopped_by:  # wait() returned by itself: forwarding failed (the error says why)
        error = running.error if running is not None else None
        for problem in error.problems if error else ():
            print(f"nngsec: error: {problem}", file=sys.stderr)
        return EXIT_FAILED
    print(f"nngsec: relay stopped on {stopped_by}, sockets closed", file=sys.stderr)
    return 0
