"""Check reports: text for people, JSON for scripts (binding shape), SARIF 2.1.0 for CI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .._version import __version__
from ._check import CheckResult
from ._findings import Finding
from ._rules import Rule, ordered_rules

__all__ = ["render_json", "render_sarif", "render_text", "summary"]

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)

_COLOURS = {
    "error": "\033[1;31m",
    "warning": "\033[33m",
    "file": "\033[1;4m",
    "dim": "\033[2m",
    "ok": "\033[32m",
    "reset": "\033[0m",
}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary(result: CheckResult) -> str:
    """One line: what was found, and what was checked."""
    topologies = len(result.topologies)
    checked = f"policy {result.policy.name} ({_plural(len(result.policy.channels), 'channel')})"
    if topologies:
        nodes = sum(len(t.model.nodes) for t in result.topologies)
        checked += (
            f", {_plural(topologies, 'topology file')} ({_plural(nodes, 'node')}, "
            f"{_plural(len(result.graph.links), 'link')})"
        )
    if not result.findings:
        return f"no findings; checked {checked}"
    files = len({f.file for f in result.findings})
    return (
        f"{_plural(result.errors, 'error')}, {_plural(result.warnings, 'warning')} in "
        f"{_plural(files, 'file')}; checked {checked}"
    )


def render_text(result: CheckResult, *, colour: bool = False) -> str:
    """Findings grouped by file, sorted by line, and a one-line summary."""

    def paint(kind: str, text: str) -> str:
        return f"{_COLOURS[kind]}{text}{_COLOURS['reset']}" if colour else text

    lines: list[str] = []
    for file, group in groupby(result.findings, key=lambda f: f.file):
        findings = list(group)
        lines.append(paint("file", file))
        width = max(len(_position(f)) for f in findings)
        for finding in findings:
            severity = paint(finding.severity, f"{finding.severity:<7}")
            lines.append(
                f"  {_position(finding):<{width}}  {severity}  {finding.message}  "
                + paint("dim", f"[{finding.rule}]")
            )
            if finding.hint:
                lines.append(f"  {'':<{width}}  {'':<7}  " + paint("dim", f"hint: {finding.hint}"))
        lines.append("")
    kind = "error" if result.errors else ("warning" if result.warnings else "ok")
    lines.append(paint(kind, summary(result)))
    return "\n".join(lines) + "\n"


def _position(finding: Finding) -> str:
    if finding.line is None:
        return "-"
    return f"{finding.line}:{finding.column}" if finding.column else str(finding.line)


def render_json(result: CheckResult) -> str:
    """``{"findings": [{"rule", "severity", "message", "file", "line", ...}]}`` (binding)."""
    return json.dumps({"findings": [f.to_json() for f in result.findings]}, indent=2) + "\n"


def _artifact(file: str) -> dict[str, str]:
    path = Path(file)
    if path.is_absolute():
        return {"uri": path.as_uri()}
    return {"uri": quote(path.as_posix()), "uriBaseId": "%SRCROOT%"}


def _sarif_rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": "".join(part.title() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.doc},
        "help": {"text": rule.doc, "markdown": rule.doc},
        "defaultConfiguration": {"level": rule.severity},
        "properties": {"scope": rule.scope},
    }


def render_sarif(result: CheckResult, rules: Sequence[Rule] | None = None) -> str:
    """A SARIF 2.1.0 log with one run; locations are relative to the working directory."""
    rules = list(rules) if rules is not None else ordered_rules()
    index = {rule.id: position for position, rule in enumerate(rules)}
    results = []
    for finding in result.findings:
        location: dict[str, Any] = {"artifactLocation": _artifact(finding.file)}
        if finding.line is not None:
            region = {"startLine": finding.line}
            if finding.column is not None:
                region["startColumn"] = finding.column
            location["region"] = region
        text = finding.message + (f" (hint: {finding.hint})" if finding.hint else "")
        results.append(
            {
                "ruleId": finding.rule,
                "ruleIndex": index[finding.rule],
                "level": finding.severity,
                "message": {"text": text},
                "locations": [{"physicalLocation": location}],
            }
        )
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "nngsec",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_sarif_rule(rule) for rule in rules],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"
