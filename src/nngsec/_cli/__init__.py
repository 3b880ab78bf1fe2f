"""The ``nngsec`` command line.

Every command answers bad input with one line per problem on stderr
(``file:line:column: field: message (hint: ...)``) and exit status 2, never a traceback.

Start-up is kept short (``nngsec --version``, ``--help`` and ``relay`` are run by scripts and
supervisors): the modules of a command, and the libraries they need (pydantic's models,
libsodium, NNG), are imported only when that command runs. :data:`COMMANDS` lists each
command with its module and summary, so ``nngsec --help`` needs none of them; a test checks
that the list matches what the modules register.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .._errors import NngsecError
from .._version import __version__
from . import _logs

__all__ = ["COMMANDS", "build_parser", "main"]

# command -> (module in this package whose register() defines it, one-line summary), in
# the order of ``nngsec --help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("_init_command", "write a starter deployment: policy, topology, keys"),
    "keygen": ("_admin_commands", "create an identity key pair"),
    "trust": ("_admin_commands", "pin a policy signer in a keystore"),
    "sign": ("_admin_commands", "sign a policy and its channel keys"),
    "rotate": ("_admin_commands", "create or rotate channel keys"),
    "revoke": ("_admin_commands", "revoke an identity and rotate what it could read"),
    "publish": ("_live_commands", "upload a policy set to etcd for the nodes that follow it"),
    "export": ("_live_commands", "the files one node needs, and nothing of anyone else's"),
    "keys": ("_keys_command", "list identities, fingerprints and channel-key epochs"),
    "check": ("_check_commands", "validate a policy and a deployment offline"),
    "explain": ("_check_commands", "blast radius of a compromised identity"),
    "schema": ("_info_commands", "print the JSON Schema of a file format"),
    "completion": ("_completion", "print a shell completion script (bash, zsh, fish)"),
    "demo": ("_run_commands", "a secured factory under attack, in one process"),
    "bench": ("_run_commands", "secured vs plain pynng, throughput and latency"),
    "relay": ("_relay_command", "run a key-less forwarding device"),
}

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class _Parser(argparse.ArgumentParser):
    """argparse, with a hint to --help on usage errors (still exit 2, one line)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (hint: {self.prog} --help)\n")


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The command named on the command line: the first word that is not an option (the
    top-level options take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``nngsec`` parser; with ``argv``, only the command it names is fully defined
    (the others are listed with their summary), so only that command's modules load."""
    parser = _Parser(
        prog="nngsec",
        description="End-to-end, per-message security for NNG messaging, declared in policies.",
        epilog="Run nngsec COMMAND --help for a command's options. Shell completion: "
        "nngsec completion bash|zsh|fish.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"nngsec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    chosen = None if argv is None else _chosen_command(argv)
    wanted = {module for name, (module, _) in COMMANDS.items() if argv is None or name == chosen}
    registered: set[str] = set()
    for name, (module, summary) in COMMANDS.items():
        if module not in wanted:
            commands.add_parser(name, help=summary, add_help=False)
        elif module not in registered:  # its register() defines all of the module's commands
            importlib.import_module(f"{__name__}.{module}").register(commands)
            registered.add(module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _logs.configure()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
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
