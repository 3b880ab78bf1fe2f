"""The ``nngsec`` command line.

Every command answers bad input with one line per problem on stderr
(``file:line:column: field: message (hint: ...)``) and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .._errors import NngsecError
from .._version import __version__
from . import (
    _admin_commands,
    _check_commands,
    _info_commands,
    _live_commands,
    _relay_command,
    _run_commands,
)

__all__ = ["main"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class _Parser(argparse.ArgumentParser):
    """argparse, with a hint to --help on usage errors (still exit 2, one line)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (hint: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nngsec",
        description="End-to-end, per-message security for NNG messaging, declared in policies.",
    )
    parser.add_argument("--version", action="version", version=f"nngsec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    _admin_commands.register(commands)
    _live_commands.register(commands)
    _check_commands.register(commands)
    _info_commands.register(commands)
    _run_commands.register(commands)
    _relay_command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="nngsec: %(levelname)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or EXIT_OK)
    except NngsecError as error:
        for problem in error.problems:
            print(f"nngsec: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as error:
        # For a rename (os.replace(temp, target)) the target is the file the user knows.
        target = error.filename2 or error.filename
        where = f"{target}: " if target else ""
        print(
            f"nngsec: error: {where}{error.strerror or error} "
            "(hint: check the path, its permissions and the free disk space)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except Exception as error:  # a bug: say so in one line unless debugging
        if os.environ.get("NNGSEC_DEBUG"):
            raise
        print(
            f"nngsec: internal error: {type(error).__name__}: {error} "
            "(hint: rerun with NNGSEC_DEBUG=1 for a traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
