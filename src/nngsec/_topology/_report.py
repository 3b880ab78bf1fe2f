"""Check reports: text for people, JSON for scripts (binding shape), SARIF 2.1.0 for CI."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .._errors import Problem
from .._version import PROJECT_URL, RULES_URL, __version__
from ._check import CheckResult
from ._findings import Finding, Severity
from ._rules import Rule, ordered_rules

__all__ = [
    "render_json",
    "render_json_failure",
    "render_sarif",
    "render_sarif_failure",
    "render_text",
    "rule_help_uri",
    "summary",
]

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


def _problem_json(problem: Problem) -> dict[str, object]:
    return {
        "message": problem.message,
        "file": problem.path,
        "line": problem.line,
        "column": problem.column,
        "field": problem.field,
        "hint": problem.hint,
    }


def render_json_failure(problems: Iterable[Problem]) -> str:
    """The JSON report of a check that could not run (an input unreadable or invalid, exit
    2): no findings, and the problems under ``errors`` (one per line of stderr)."""
    report = {"findings": [], "errors": [_problem_json(p) for p in problems]}
    return json.dumps(report, indent=2) + "\n"


def _artifact(file: str) -> dict[str, str]:
    path = Path(file)
    if path.is_absolute():
        return {"uri": path.as_uri()}
    return {"uri": quote(path.as_posix()), "uriBaseId": "%SRCROOT%"}


# GitHub code scanning ranks security findings by this score (0.1-3.9 low, 4.0-6.9 medium,
# 7.0-8.9 high, 9.0+ critical): an error-level rule finds a hole a deployment runs with
# (or refuses to run with), a warning a weakness to review.
SECURITY_SEVERITY: dict[Severity, str] = {"error": "7.5", "warning": "4.0"}
FINGERPRINT = "nngsecFinding/v1"


def rule_help_uri(rule_id: str) -> str:
    """The rule's section in ``docs/rules.md`` (its heading's anchor is the rule id)."""
    return f"{RULES_URL}#{rule_id}"


def _sarif_rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": "".join(part.title() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.doc},
        "help": {"text": rule.doc, "markdown": rule.doc},
        "helpUri": rule_help_uri(rule.id),
        "defaultConfiguration": {"level": rule.severity},
        "properties": {
            "scope": rule.scope,
            "tags": ["security"],
            "security-severity": SECURITY_SEVERITY[rule.severity],
        },
    }


def _fingerprints(findings: Sequence[Finding]) -> list[str]:
    """A stable identity per finding: its rule, file and message (no line numbers, so an
    edit above it does not make it new), and which repeat of those it is."""
    seen: Counter[tuple[str, str, str]] = Counter()
    prints = []
    for finding in findings:
        key = (finding.rule, finding.file, finding.message)
        seen[key] += 1
        text = "\x00".join((*key, str(seen[key])))
        prints.append(hashlib.sha256(text.encode()).hexdigest()[:32])
    return prints


def _region(line: int | None, column: int | None) -> dict[str, int] | None:
    if line is None:
        return None
    region = {"startLine": line}
    if column is not None:
        region["startColumn"] = column
    return region


def _log(rules: Sequence[Rule], results: list[dict[str, Any]], invocation: dict[str, Any]) -> str:
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
                        "informationUri": PROJECT_URL,
                        "rules": [_sarif_rule(rule) for rule in rules],
                    }
                },
                "invocations": [invocation],
                "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def render_sarif(result: CheckResult, rules: Sequence[Rule] | None = None) -> str:
    """A SARIF 2.1.0 log with one run; locations are relative to the working directory."""
    rules = list(rules) if rules is not None else ordered_rules()
    index = {rule.id: position for position, rule in enumerate(rules)}
    results = []
    for finding, fingerprint in zip(result.findings, _fingerprints(result.findings), strict=True):
        location: dict[str, Any] = {"artifactLocation": _artifact(finding.file)}
        region = _region(finding.line, finding.column)
        if region is not None:
            location["region"] = region
        text = finding.message + (f" (hint: {finding.hint})" if finding.hint else "")
        results.append(
            {
                "ruleId": finding.rule,
                "ruleIndex": index[finding.rule],
                "level": finding.severity,
                "message": {"text": text},
                "locations": [{"physicalLocation": location}],
                "partialFingerprints": {FINGERPRINT: fingerprint},
            }
        )
    return _log(rules, results, {"executionSuccessful": True})


def render_sarif_failure(problems: Iterable[Problem], rules: Sequence[Rule] | None = None) -> str:
    """The SARIF log of a check that could not run (exit 2): no results, an unsuccessful
    invocation, and each problem as an error notification at its place, so that a CI step
    uploading the log has a valid file that says why."""
    notifications = []
    for problem in problems:
        notification: dict[str, Any] = {"level": "error", "message": {"text": str(problem)}}
        if problem.path is not None:
            location: dict[str, Any] = {"artifactLocation": _artifact(problem.path)}
            region = _region(problem.line, problem.column)
            if region is not None:
                location["region"] = region
            notification["locations"] = [{"physicalLocation": location}]
        notifications.append(notification)
    invocation = {"executionSuccessful": False, "toolExecutionNotifications": notifications}
    return _log(list(rules) if rules is not None else ordered_rules(), [], invocation)
