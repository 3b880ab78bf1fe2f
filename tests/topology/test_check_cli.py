"""``nngsec check`` and ``nngsec explain`` as a user runs them: exit codes, formats, errors.

Through ``nngsec._cli.main`` in this process (the ``cli`` fixture); the same exit statuses
from a real ``python -m nngsec`` are checked in ``tests/test_entry_points.py``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml
from tests.support import ROOT

from nngsec._cli._info_commands import json_schema
from nngsec._topology._docs import render_rules_markdown
from nngsec._topology._rules import RULES

POLICY = ROOT / "policies" / "factory.yaml"
TOPOLOGY = ROOT / "policies" / "factory.topology.yaml"
SARIF_SCHEMA = ROOT / "tests" / "data" / "sarif-schema-2.1.0.json"
POSITIONED = re.compile(r"^nngsec: error: \S+:\d+:\d+: ")

BROKEN = """
nodes:
  sensor-1:
    sockets:
      - {channel: telemetry, role: subscriber, dial: "tcp://dashboard:5555"}
  dashboard:
    sockets:
      - {channel: telemetry, role: subscriber, listen: "tcp://*:5555"}
"""


def no_traceback(result) -> None:
    assert "Traceback" not in result.err
    assert "Traceback" not in result.out


# -- the example deployment -----------------------------------------------------------
@pytest.mark.parametrize("args", [[TOPOLOGY], [POLICY, TOPOLOGY]])
def test_example_topology_checks_clean(cli, args):
    result = cli("check", *args, "--format", "json")
    assert result.code == 0, result.out + result.err
    findings = json.loads(result.out)["findings"]
    # The example policy ships unsigned (its admin key is nobody's), its control service
    # has two controllers sharing a service key, and its jobs and requests are shared out
    # between two receivers each (replayable from one to the other): all worth a warning.
    assert [f["rule"] for f in findings] == [
        "replay-across-receivers",  # jobs: two workers; control: two controllers
        "replay-across-receivers",
        "unsigned-policy",
        "forgeable-service",
    ]


def test_example_topology_text_report(cli):
    result = cli("check", TOPOLOGY, cwd=ROOT)
    assert result.code == 0
    assert result.out.splitlines()[-1] == (
        "0 errors, 4 warnings in 2 files; checked policy factory (6 channels), 1 topology file "
        "(13 nodes, 18 links)"
    )
    assert "\033[" not in result.out  # not a terminal: no colour


def test_example_topology_follows_the_published_schema():
    data = yaml.safe_load(TOPOLOGY.read_text())
    jsonschema.validate(data, json_schema("topology"))


def test_policy_alone_runs_the_policy_rules(cli):
    result = cli("check", POLICY, "--format", "json")
    assert result.code == 0
    assert [f["rule"] for f in json.loads(result.out)["findings"]] == [
        "unsigned-policy",
        "forgeable-service",
    ]


# -- exit codes and output formats ----------------------------------------------------
def test_errors_exit_1_with_the_binding_json_shape(cli, deployment):
    deployment.write_topology(BROKEN)
    result = cli("check", deployment.topology_path, "--format", "json")
    assert result.code == 1
    no_traceback(result)
    findings = json.loads(result.out)["findings"]
    rules = {f["rule"] for f in findings}
    assert {"role-not-authorized", "incompatible-peers"} <= rules
    for finding in findings:
        assert {"rule", "severity", "message", "file", "line", "column", "hint"} == set(finding)
        assert finding["severity"] in ("error", "warning")
    (incompatible,) = [f for f in findings if f["rule"] == "incompatible-peers"]
    assert incompatible["line"] == 6
    assert incompatible["file"] == str(deployment.topology_path)
    assert incompatible["message"] == (
        "sensor-1's subscriber socket on telemetry is linked to dashboard's subscriber socket "
        "on telemetry: two subscribers cannot talk, expected a publisher on the other end"
    )


def test_sarif_output_validates_against_the_sarif_schema(cli, deployment):
    deployment.write_topology(BROKEN)
    result = cli("check", deployment.policy_path, deployment.topology_path, "--format", "sarif")
    assert result.code == 1
    log = json.loads(result.out)
    schema = json.loads(SARIF_SCHEMA.read_text())
    jsonschema.Draft4Validator(schema).validate(log)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} == set(RULES)
    for item in run["results"]:
        assert rules[item["ruleIndex"]]["id"] == item["ruleId"]
        region = item["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1
    assert {r["level"] for r in run["results"]} == {"error", "warning"}


def test_sarif_of_a_clean_run_validates_too(cli):
    result = cli(
        "check",
        TOPOLOGY,
        "--format",
        "sarif",
        "--ignore",
        "unsigned-policy,forgeable-service,replay-across-receivers",
    )
    assert result.code == 0
    log = json.loads(result.out)
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text())).validate(log)
    assert log["runs"][0]["results"] == []


def test_severity_options(cli):
    assert cli("check", TOPOLOGY, "--warn-as-error").code == 1
    result = cli("check", TOPOLOGY, "--severity", "unsigned-policy=error", "--format", "json")
    assert result.code == 1
    severities = {f["rule"]: f["severity"] for f in json.loads(result.out)["findings"]}
    assert severities["unsigned-policy"] == "error"
    result = cli(
        "check", TOPOLOGY, "--ignore", "unsigned-policy,forgeable-service,replay-across-receivers"
    )
    assert result.code == 0
    assert result.out.startswith("no findings; checked policy factory")


def test_colour_on_request(cli):
    result = cli("check", TOPOLOGY, "--color", "always")
    assert "\033[33mwarning" in result.out


def test_list_rules(cli):
    text = cli("check", "--list-rules")
    assert text.code == 0
    assert all(rule in text.out for rule in RULES)
    data = json.loads(cli("check", "--list-rules", "--format", "json").out)
    assert {r["rule"] for r in data["rules"]} == set(RULES)


@pytest.mark.parametrize("command", ["check", "explain"])
def test_help(cli, command):
    result = cli(command, "--help")
    assert result.code == 0
    assert "usage: nngsec " + command in result.out


def test_rules_doc_is_current():
    doc = ROOT / "docs" / "rules.md"
    assert doc.read_text() == render_rules_markdown(), (
        "docs/rules.md is stale: run `make docs-regen` (python -m nngsec._topology._docs)"
    )


# -- unreadable, malformed and missing inputs: exit 2, one positioned line ------------
def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("nngsec: 1\npolicy: policy.yaml\nnodes:\n  a: [\n", r":5:1: invalid YAML"),
        (
            "nngsec: 1\npolicy: policy.yaml\nnodes:\n  a:\n    sokets: []\n",
            r":5:5: "
            r"nodes.a.sokets: unknown field 'sokets' \(hint: did you mean 'sockets'\?\)",
        ),
        (
            "nngsec: 1\npolicy: policy.yaml\nnodes:\n  a:\n    sockets:\n"
            "      - {channel: jobs, role: pushr, dial: 'tcp://b:1'}\n",
            r":6:31: nodes.a.sockets\[0\].role: unknown role 'pushr'.*did you mean 'pusher'",
        ),
        (
            "nngsec: 1\npolicy: policy.yaml\nnodes:\n  a:\n    sockets:\n"
            "      - {channel: jobs, role: pusher, dial: 'tcp://*:1'}\n",
            r":6:45: nodes.a.sockets\[0\].dial: cannot dial 'tcp://\*:1'",
        ),
        (
            "nngsec: 2\npolicy: policy.yaml\n",
            r":1:9: nngsec: unsupported topology format version 2",
        ),
        (  # 1.0 == 1, but a format version is an integer, as in a policy
            "nngsec: 1.0\npolicy: policy.yaml\n",
            r":1:9: nngsec: unsupported topology format version 1.0",
        ),
        ("nngsec: 1\npolicy: nowhere.yaml\n", r":2:9: policy: policy file .* not found"),
        ("nngsec: 1\nnodes: {}\n", r":1:1: the topology does not name its policy"),
        ("", r":1:1: the topology file is empty"),
        (b"nngsec: 1\npolicy: \xff\n", r":2:9: the topology file is not valid UTF-8"),
        ("nngsec: 1\npolicy: policy.yaml\nnodes:\n\ta: {}\n", r":4:1: tab character"),
        (
            "nngsec: 1\npolicy: policy.yaml\nnodes:\n  hub:\n    relays:\n"
            '      - {pattern: pair, channel: c, front: {listen: "tcp://*:1"},\n'
            '         back: {listen: "tcp://*:2"}}\n',
            r":6:19: nodes.hub.relays\[0\].pattern: pair has no relay",
        ),
    ],
)
def test_malformed_topology_exits_2_with_one_positioned_line(cli, deployment, content, expected):
    path = _write(deployment.root / "topology.yaml", content)
    # A topology names its policy and can be checked alone; an empty or undecodable file
    # cannot say what it is, so it is given after its policy.
    alone = isinstance(content, str) and content.startswith("nngsec: ")
    result = cli("check", *([path] if alone else [deployment.policy_path, path]))
    assert result.code == 2, result.out + result.err
    no_traceback(result)
    lines = result.err.splitlines()
    assert len(lines) == 1, lines
    assert POSITIONED.match(lines[0]), lines[0]
    assert re.search(expected, lines[0]), lines[0]


def test_missing_and_unreadable_inputs_exit_2(cli, deployment, tmp_path):
    for args, expected in [
        ([tmp_path / "nope.yaml"], "nope.yaml: policy file not found (hint: check the path)"),
        ([deployment.policy_path, tmp_path / "nope.yaml"], "topology file not found"),
        ([tmp_path], "expected a policy file, found a directory"),
        ([deployment.policy_path, deployment.policy_path], "this looks like a policy"),
        ([deployment.policy_path, "--keystore", tmp_path / "none"], "keystore directory not"),
        ([deployment.policy_path, "--ignore", "unsigned-polcy"], "did you mean 'unsigned-policy'"),
        ([deployment.policy_path, "--graph", tmp_path / "x.pdf"], "expected a file ending in"),
        ([deployment.policy_path, "--severity", "wide-secret=fatal"], "expected RULE=error"),
        ([], "give a policy"),
    ]:
        result = cli("check", *args)
        assert result.code == 2, (args, result.out, result.err)
        no_traceback(result)
        assert len(result.err.splitlines()) == 1, result.err
        assert expected in result.err, result.err


def test_a_broken_policy_exits_2(cli, deployment):
    deployment.edit_policy("pattern: pubsub", "pattern: pubsob")
    result = cli("check", deployment.policy_path)
    assert result.code == 2
    no_traceback(result)
    assert POSITIONED.match(result.err)
    assert "unknown pattern 'pubsob'" in result.err


def test_duplicate_node_across_topology_files(cli, deployment):
    node = "nngsec: 1\npolicy: policy.yaml\nnodes:\n  dashboard: {}\n"
    first = _write(deployment.root / "a.yaml", node)
    second = _write(deployment.root / "b.yaml", node)
    result = cli("check", first, second)
    assert result.code == 2
    assert f"b.yaml:4:3: nodes.dashboard: node 'dashboard' is also defined in {first}:4" in (
        result.err
    )


def test_topologies_naming_different_policies(cli, deployment):
    shutil.copy(POLICY, deployment.root / "other.yaml")
    first = _write(deployment.root / "a.yaml", "nngsec: 1\npolicy: policy.yaml\n")
    second = _write(deployment.root / "b.yaml", "nngsec: 1\npolicy: other.yaml\n")
    result = cli("check", first, second)
    assert result.code == 2
    assert "check one deployment (one policy) at a time" in result.err


# -- graphs ---------------------------------------------------------------------------
def test_graphs_in_dot_and_mermaid(cli, deployment):
    deployment.write_topology(BROKEN)
    dot, mmd = deployment.root / "g.dot", deployment.root / "g.mmd"
    result = cli("check", deployment.topology_path, "--graph", dot, "--graph", mmd)
    assert result.code == 1
    text = dot.read_text()
    assert text.startswith("digraph nngsec {")
    assert 'label="host sensor-1"' in text
    assert '"node:sensor-1" -> "node:dashboard"' in text
    assert 'label="telemetry\\npubsub, sealed", style=dashed, color="#c62828"' in text
    chart = mmd.read_text()
    assert chart.startswith("flowchart LR")
    assert '-.->|"telemetry<br/>pubsub, sealed"|' in chart
    assert "linkStyle 0 stroke:#c62828" in chart


def test_graph_of_the_example_draws_relays_and_flow(cli, tmp_path):
    dot = tmp_path / "factory.dot"
    assert cli("check", TOPOLOGY, "--graph", dot).code == 0
    text = dot.read_text()
    assert text.count("shape=hexagon") == 3
    assert '"relay:hub:0" [label="relay hub\\ntelemetry (pubsub)"' in text
    # Frames flow from the publisher to the relay and from the relay to the subscriber.
    assert '"node:sensor-1" -> "relay:hub:0"' in text
    assert '"relay:hub:0" -> "node:dashboard"' in text
    assert '"node:dashboard" -> "node:archiver" [label="sync\\npair, secretbox", dir=both]' in text
    assert "#c62828" not in text  # nothing flagged in the example


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graph_rendered_to_svg(cli, tmp_path):
    svg = tmp_path / "factory.svg"
    assert cli("check", TOPOLOGY, "--graph", svg).code == 0
    assert "<svg" in svg.read_text()


# -- explain --------------------------------------------------------------------------
def test_explain_text(cli):
    result = cli("explain", POLICY, "controller-a")
    assert result.code == 0, result.err
    out = result.out
    assert "control (reqrep, peerbox) as server" in out
    assert "every request to the service, from every client" in out
    assert "poses as:     dashboard" in out
    assert f"Contain it: nngsec revoke {POLICY} controller-a" in out
    assert "rotates the keys of: control" in out


def test_explain_json(cli):
    result = cli("explain", POLICY, "dashboard", "--format", "json")
    assert result.code == 0
    data = json.loads(result.out)
    channels = {c["channel"]: c for c in data["channels"]}
    assert set(channels) == {"telemetry", "control", "health", "sync"}
    assert channels["telemetry"]["reads"] == "all"
    assert channels["control"]["reads"] == "own"
    assert channels["health"]["reads"] == "own"
    assert channels["sync"]["reads"] == "all"
    assert data["rotates"] == ["telemetry"]
    assert data["not_rotatable"] == ["sync"]


def test_explain_unknown_identity_exits_2(cli):
    result = cli("explain", POLICY, "dashbord")
    assert result.code == 2
    no_traceback(result)
    assert POSITIONED.match(result.err)
    assert "no identity 'dashbord' in policy 'factory' (hint: did you mean 'dashboard'?)" in (
        result.err
    )


def test_the_mac_audience_threshold_option(cli, tmp_path):
    """``--mac-audience-threshold N`` sets when large-mac-audience warns; 0 is refused."""
    policy = tmp_path / "factory.yaml"
    text = POLICY.read_text()
    assert "  telemetry:\n    pattern: pubsub\n" in text
    policy.write_text(
        text.replace(
            "  telemetry:\n    pattern: pubsub\n",
            "  telemetry:\n    pattern: pubsub\n    origin: mac\n",
        )
    )
    shutil.copy(POLICY.with_name("factory.keys.json"), tmp_path / "factory.keys.json")
    found = cli("check", policy, "--mac-audience-threshold", "1", "--format", "json")
    assert "large-mac-audience" in [f["rule"] for f in json.loads(found.out)["findings"]]
    clean = cli("check", policy, "--format", "json")
    assert "large-mac-audience" not in [f["rule"] for f in json.loads(clean.out)["findings"]]
    refused = cli("check", policy, "--mac-audience-threshold", "0")
    assert refused.code == 2 and "--mac-audience-threshold" in refused.err
    no_traceback(refused)
