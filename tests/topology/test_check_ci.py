"""``nngsec check`` in CI: SARIF that code scanning accepts (rule help links, fingerprints,
security severities), a valid report even when an input cannot be read, ``--output``.

Every SARIF log is validated against the OASIS SARIF 2.1.0 schema in tests/data.
"""

from __future__ import annotations

import json
import re
import shutil
from typing import Any

import jsonschema
import pytest
from tests.support import DATA, ROOT

from nngsec._topology._rules import RULES
from nngsec._version import PROJECT_URL

POLICY = ROOT / "policies" / "factory.yaml"
TOPOLOGY = ROOT / "policies" / "factory.topology.yaml"
SARIF = jsonschema.Draft4Validator(json.loads((DATA / "sarif-schema-2.1.0.json").read_text()))
BROKEN = """
nodes:
  sensor-1:
    sockets:
      - {channel: telemetry, role: subscriber, dial: "tcp://dashboard:5555"}
  dashboard:
    sockets:
      - {channel: telemetry, role: subscriber, listen: "tcp://*:5555"}
"""


def sarif(text: str) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(text)
    SARIF.validate(log)
    return log


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation but '-' and '_' dropped, spaces '-'."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_the_tool_and_every_rule_link_to_their_documentation(cli):
    log = sarif(cli("check", TOPOLOGY, "--format", "sarif").out)
    driver = log["runs"][0]["tool"]["driver"]
    assert driver["informationUri"] == PROJECT_URL
    anchors = _anchors((ROOT / "docs" / "rules.md").read_text())
    assert len(driver["rules"]) == len(RULES)
    for rule in driver["rules"]:
        page, _, anchor = rule["helpUri"].partition("#")
        assert page == f"{PROJECT_URL}/blob/main/docs/rules.md"
        assert anchor == rule["id"] and anchor in anchors, rule["id"]


def test_every_rule_has_a_security_severity_code_scanning_ranks(cli):
    log = sarif(cli("check", TOPOLOGY, "--format", "sarif").out)
    for rule in log["runs"][0]["tool"]["driver"]["rules"]:
        properties = rule["properties"]
        score = float(properties["security-severity"])
        assert "security" in properties["tags"]
        if rule["defaultConfiguration"]["level"] == "error":
            assert 7.0 <= score < 9.0, rule["id"]  # high
        else:
            assert 4.0 <= score < 7.0, rule["id"]  # medium


def _fingerprints(log: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (r["ruleId"], r["partialFingerprints"]["nngsecFinding/v1"])
        for r in log["runs"][0]["results"]
    ]


def test_fingerprints_are_unique_and_survive_lines_moving(cli, deployment):
    deployment.write_topology(BROKEN)
    first = sarif(cli("check", deployment.topology_path, "--format", "sarif").out)
    prints = _fingerprints(first)
    assert len(prints) >= 3
    assert len({p for _, p in prints}) == len(prints)
    text = deployment.topology_path.read_text()
    deployment.topology_path.write_text("# moved down by two lines\n#\n" + text)
    moved = sarif(cli("check", deployment.topology_path, "--format", "sarif").out)
    assert _fingerprints(moved) == prints
    lines = [
        r["locations"][0]["physicalLocation"]["region"]["startLine"]
        for r in moved["runs"][0]["results"]
    ]
    assert lines != [
        r["locations"][0]["physicalLocation"]["region"]["startLine"]
        for r in first["runs"][0]["results"]
    ]


def test_a_successful_run_says_so(cli):
    log = sarif(cli("check", TOPOLOGY, "--format", "sarif").out)
    assert log["runs"][0]["invocations"] == [{"executionSuccessful": True}]


# -- input that cannot be read: exit 2, and still a valid report ------------------------------


@pytest.mark.parametrize(
    ("name", "problems"),
    [("missing.yaml", 1), ("many-problems.yaml", 4), ("yaml-unclosed-flow.yaml", 1)],
)
def test_sarif_of_an_unreadable_input_is_a_valid_log_that_says_why(cli, tmp_path, name, problems):
    source = DATA / "bad_policies" / name
    if source.exists():
        shutil.copy(source, tmp_path / name)
    result = cli("check", name, "--format", "sarif", cwd=tmp_path)
    assert result.code == 2
    log = sarif(result.out)
    run = log["runs"][0]
    assert run["results"] == []
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    assert len(notes) == problems == len(result.error_lines)
    for note, line in zip(notes, result.error_lines, strict=True):
        assert note["level"] == "error"
        assert line == f"nngsec: error: {note['message']['text']}"  # the stderr line, as is
        location = note["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == name


def test_json_of_an_unreadable_input_is_valid_and_lists_the_problems(cli, tmp_path):
    shutil.copy(DATA / "bad_policies" / "many-problems.yaml", tmp_path / "p.yaml")
    result = cli("check", "p.yaml", "--format", "json", cwd=tmp_path)
    assert result.code == 2
    report = json.loads(result.out)
    assert report["findings"] == []
    assert len(report["errors"]) == 4 == len(result.error_lines)
    for error in report["errors"]:
        assert set(error) == {"message", "file", "line", "column", "field", "hint"}
        assert error["file"] == "p.yaml" and error["line"] >= 1


def test_text_of_an_unreadable_input_stays_on_stderr(cli, tmp_path):
    result = cli("check", "missing.yaml", cwd=tmp_path)
    assert (result.code, result.out) == (2, "")


# -- --output ---------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["sarif", "json", "text"])
def test_output_writes_the_report_to_a_file(cli, tmp_path, form):
    target = tmp_path / f"report.{form}"
    result = cli("check", TOPOLOGY, "--format", form, "--output", target)
    assert result.code == 0
    assert result.out == ""
    written = target.read_text()
    if form == "sarif":
        assert sarif(written)["runs"][0]["results"]
    elif form == "json":
        assert json.loads(written)["findings"]
    else:
        assert "0 errors, 4 warnings" in written and "\033[" not in written


def test_output_gets_a_report_when_the_input_is_unreadable(cli, tmp_path):
    target = tmp_path / "report.sarif"
    result = cli("check", "missing.yaml", "--format", "sarif", "--output", target, cwd=tmp_path)
    assert result.code == 2
    assert result.out == ""
    assert sarif(target.read_text())["runs"][0]["invocations"][0]["executionSuccessful"] is False


def test_list_rules_in_json_links_each_rule(cli):
    rules = json.loads(cli("check", "--list-rules", "--format", "json").out)["rules"]
    assert all(r["help"].endswith(f"/docs/rules.md#{r['rule']}") for r in rules)
