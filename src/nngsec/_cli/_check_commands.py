"""check and explain: offline validation of a deployment, and the blast radius of an identity."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .._errors import NngsecError
from .._formats._atomic import write_atomic
from .._formats._units import format_duration, parse_duration
from .._policy._load import load_policy
from .._topology._check import CheckOptions, run_check
from .._topology._explain import explain, render_explain_json, render_explain_text
from .._topology._findings import SEVERITIES, Severity
from .._topology._graph import GRAPH_SUFFIXES, write_graph
from .._topology._report import (
    render_json,
    render_json_failure,
    render_sarif,
    render_sarif_failure,
    render_text,
    rule_help_uri,
)
from .._topology._rules import DEFAULT_MAC_AUDIENCE, DEFAULT_WIDE_SECRET, ordered_rules
from .._topology._rules._base import DEFAULT_EXPIRY_WARNING

EXIT_CLEAN = 0
EXIT_FINDINGS = 1


def _rule_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _severity_override(text: str) -> tuple[str, Severity]:
    rule_id, equals, level = text.partition("=")
    if not equals or level not in SEVERITIES:
        raise argparse.ArgumentTypeError(f"expected RULE=error or RULE=warning, got {text!r}")
    return rule_id.strip(), level


def _window(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not 0 <= seconds <= 10 * 365 * 86400:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected a duration from 0s to 3650d")
    return seconds


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _graph_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in GRAPH_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"expected a file ending in {', '.join(GRAPH_SUFFIXES)}, got {text!r}"
        )
    return path


def register(commands: Any) -> None:
    check = commands.add_parser(
        "check",
        help="validate a policy and a deployment offline",
        usage="nngsec check [options] POLICY [TOPOLOGY ...]\n"
        "       nngsec check [options] TOPOLOGY ...   (each naming its policy)\n"
        "       nngsec check --list-rules [--format json]",
        description="Validate a deployment before anything runs: the policy, its channel keys "
        "and signature, and the topology files describing which node runs which identity "
        "with which sockets and relays. Give the policy first (nngsec check POLICY "
        "[TOPOLOGY...]), or topology files that name their policy (nngsec check TOPOLOGY). "
        "Rules are listed by --list-rules and documented in docs/rules.md.",
        epilog="exit status: 0 no error-severity finding, 1 error findings, 2 an input cannot "
        "be read or parsed (one line per problem: file:line:column: field: message); with "
        "--format json or sarif, a valid report is written even then",
    )
    check.add_argument(
        "inputs",
        metavar="FILE",
        nargs="*",
        type=Path,
        help="the policy, then topology files; or topology files naming their policy",
    )
    check.add_argument(
        "--keystore",
        metavar="DIR",
        type=Path,
        help="also check the nodes' private keys in DIR (presence, mode 0600, match) and "
        "the policy signature against the signers DIR pins",
    )
    check.add_argument(
        "--trust",
        metavar="PUBFILE",
        type=Path,
        action="append",
        default=[],
        help="verify the policy signature against this signer's public key (repeatable)",
    )
    check.add_argument(
        "--format",
        choices=["text", "json", "sarif"],
        default="text",
        help="text (default), json, or sarif (SARIF 2.1.0, for code scanning in CI)",
    )
    check.add_argument(
        "--output",
        metavar="FILE",
        type=Path,
        help="write the report to FILE instead of stdout (also when an input is unreadable)",
    )
    check.add_argument(
        "--graph",
        metavar="FILE",
        type=_graph_path,
        action="append",
        default=[],
        help="also draw the deployment: FILE.dot (Graphviz), FILE.mmd (Mermaid), or "
        "FILE.svg / FILE.png (needs Graphviz installed); repeatable",
    )
    check.add_argument(
        "--ignore",
        metavar="RULE",
        type=_rule_list,
        action="append",
        default=[],
        help="skip a rule (repeatable, or comma-separated)",
    )
    check.add_argument(
        "--severity",
        metavar="RULE=LEVEL",
        type=_severity_override,
        action="append",
        default=[],
        help="change a rule's severity to error or warning (repeatable)",
    )
    check.add_argument(
        "--warn-as-error",
        action="store_true",
        help="report every warning as an error (exit 1 on any finding)",
    )
    check.add_argument(
        "--wide-secret-threshold",
        metavar="N",
        type=_positive,
        default=DEFAULT_WIDE_SECRET,
        help="wide-secret: most identities a channel secret may have "
        f"(default {DEFAULT_WIDE_SECRET})",
    )
    check.add_argument(
        "--mac-audience-threshold",
        metavar="N",
        type=_positive,
        default=DEFAULT_MAC_AUDIENCE,
        help="large-mac-audience: most receivers an origin: mac channel may have "
        f"(default {DEFAULT_MAC_AUDIENCE})",
    )
    check.add_argument(
        "--expiry-warning",
        metavar="DURATION",
        type=_window,
        default=DEFAULT_EXPIRY_WARNING,
        help="expiring-soon: how far ahead an expires: is reported (default "
        f"{format_duration(DEFAULT_EXPIRY_WARNING)})",
    )
    check.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour the text report (auto: on a terminal, unless NO_COLOR is set or TERM is "
        "dumb; FORCE_COLOR forces it)",
    )
    check.add_argument(
        "--list-rules", action="store_true", help="list the rules (text or --format json) and exit"
    )
    check.set_defaults(run=_check, parser=check)

    explain_parser = commands.add_parser(
        "explain",
        help="blast radius of a compromised identity",
        description="What an attacker holding IDENTITY's private key (and the channel keys "
        "sealed to it) can read, whom it can pose as, what it can only send as itself, and "
        "which command contains it.",
    )
    explain_parser.add_argument("policy", metavar="POLICY", type=Path)
    explain_parser.add_argument("identity", metavar="IDENTITY")
    explain_parser.add_argument("--format", choices=["text", "json"], default="text")
    explain_parser.set_defaults(run=_explain)


def use_colour(choice: str, to_terminal: bool) -> bool:
    """Whether to colour: ``--color always|never`` decides; with ``auto``, NO_COLOR (set and
    not empty, no-color.org) turns it off, then FORCE_COLOR (force-color.org) on, then
    TERM=dumb off; otherwise colour when the report goes to a terminal."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    return to_terminal


def _list_rules(args: argparse.Namespace) -> int:
    rules = ordered_rules()
    if args.format == "json":
        data = [
            {
                "rule": r.id,
                "severity": r.severity,
                "scope": r.scope,
                "summary": r.summary,
                "help": rule_help_uri(r.id),
            }
            for r in rules
        ]
        print(json.dumps({"rules": data}, indent=2))
        return EXIT_CLEAN
    width = max(len(r.id) for r in rules)
    for r in rules:
        print(f"{r.id:<{width}}  {r.severity:<7}  {r.scope:<8}  {r.summary}")
    return EXIT_CLEAN


def _check(args: argparse.Namespace) -> int:
    if args.list_rules:
        return _list_rules(args)
    if not args.inputs:
        args.parser.error("give a policy (and topologies), or topology files")
    options = CheckOptions(
        keystore=args.keystore,
        trusted=tuple(args.trust),
        ignore=frozenset(rule for group in args.ignore for rule in group),
        severities=dict(args.severity),
        warn_as_error=args.warn_as_error,
        wide_secret_threshold=args.wide_secret_threshold,
        mac_audience_threshold=args.mac_audience_threshold,
        expiry_warning=args.expiry_warning,
    )
    try:
        result = run_check(args.inputs, options)
    except NngsecError as error:
        # CI uploads the report whatever happened: a machine-readable one says why it is
        # empty. The problems also go to stderr, one line each, and the exit status is 2.
        if args.format == "json":
            _emit(args.output, render_json_failure(error.problems))
        elif args.format == "sarif":
            _emit(args.output, render_sarif_failure(error.problems))
        raise
    for path in args.graph:
        write_graph(result, path)
    if args.format == "json":
        _emit(args.output, render_json(result))
    elif args.format == "sarif":
        _emit(args.output, render_sarif(result))
    else:
        terminal = args.output is None and sys.stdout.isatty()
        _emit(args.output, render_text(result, colour=use_colour(args.color, terminal)))
    return EXIT_FINDINGS if result.errors else EXIT_CLEAN


def _emit(output: Path | None, report: str) -> None:
    """The report on stdout, or written to ``output`` (atomically: a reader never sees half)."""
    if output is None:
        sys.stdout.write(report)
    else:
        write_atomic(output, report.encode("utf-8"))


def _explain(args: argparse.Namespace) -> int:
    exposure = explain(load_policy(args.policy), args.identity)
    if args.format == "json":
        sys.stdout.write(render_explain_json(exposure))
    else:
        sys.stdout.write(render_explain_text(exposure))
    return EXIT_CLEAN
