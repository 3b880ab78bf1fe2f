"""The Python API of the checker, explain on unusual policies, the benchmark generator."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

import nngsec
from nngsec._policy._load import load_policy
from nngsec._topology._check import load_policy_for_check
from nngsec._topology._explain import explain

ROOT = Path(__file__).resolve().parents[2]


def test_public_check_api():
    findings = nngsec.check(
        ROOT / "policies" / "factory.yaml", [ROOT / "policies" / "factory.topology.yaml"]
    )
    assert [(f.rule, f.severity) for f in findings] == [
        ("replay-across-receivers", "warning"),  # jobs: two workers
        ("replay-across-receivers", "warning"),  # control: two controllers
        ("unsigned-policy", "warning"),
        ("forgeable-service", "warning"),  # control: two controllers share a service key
    ]
    assert isinstance(findings[0], nngsec.Finding)
    ignored = ["unsigned-policy", "forgeable-service"]
    assert nngsec.check(ROOT / "policies" / "factory.yaml", ignore=ignored) == []
    with pytest.raises(nngsec.NngsecError, match="unknown rule 'no-such-rule'"):
        nngsec.check(ROOT / "policies" / "factory.yaml", ignore=["no-such-rule"])


def test_unknown_names_do_not_hide_other_policy_errors(deployment):
    deployment.edit_policy("subscribers: [dashboard]", "subscribers: [dashbaord]")
    # Alone, an unknown name is a finding; the policy still loads for the checker...
    assert load_policy_for_check(deployment.policy_path).name == "factory"
    # ...but not for nodes, and not when something else is wrong too.
    with pytest.raises(nngsec.PolicyError):
        load_policy(deployment.policy_path)
    deployment.edit_policy("pattern: pipeline", "pattern: pipelin")
    with pytest.raises(nngsec.PolicyError) as info:
        load_policy_for_check(deployment.policy_path)
    messages = [p.message for p in info.value.problems]
    assert any("unknown pattern 'pipelin'" in m for m in messages)


def test_a_malformed_pattern_is_an_input_error_not_a_crash(deployment):
    deployment.edit_policy("pattern: survey", "pattern: []")
    deployment.edit_policy("subscribers: [dashboard]", "subscribers: [dashbaord]")
    with pytest.raises(nngsec.PolicyError, match=r"channels\.health\.pattern"):
        load_policy_for_check(deployment.policy_path)


def test_explain_origin_group_bus_and_plaintext(deployment):
    deployment.edit_policy(
        "members: [cell-1, cell-2, cell-3]", "members: [cell-1, cell-2, cell-3]\n    origin: group"
    )
    deployment.edit_policy("topics:", "scheme: plaintext\n    topics:")
    policy = load_policy(deployment.policy_path)
    cells = explain(policy, "cell-1").channels[0]
    assert (cells.reads, cells.impersonates, cells.sends_as_itself) == (
        "all",
        ("cell-2", "cell-3"),
        False,
    )
    (telemetry, health) = explain(policy, "sensor-1").channels
    assert telemetry.reads == "public"
    assert telemetry.impersonates == ("sensor-2",)
    assert health.reads == "all"
    assert explain(policy, "old-1").channels == ()


def test_explain_origin_mac(deployment):
    """A receiver of an origin: mac channel reads everything and can fool itself; a sender
    still cannot pose as another; what it says about senders proves nothing."""
    deployment.edit_policy('topics: ["temp."]', 'topics: ["temp."]\n    origin: mac')
    deployment.edit_policy("respondents: [sensors]", "respondents: [sensors]\n    origin: mac")
    policy = load_policy(deployment.policy_path)
    (telemetry,) = [c for c in explain(policy, "dashboard").channels if c.channel == "telemetry"]
    assert telemetry.reads == "all" and telemetry.impersonates == ()
    assert "only it accepts" in telemetry.reads_detail
    (telemetry, health) = explain(policy, "sensor-1").channels
    assert telemetry.sends_detail.startswith("messages MAC'd as sensor-1 to each receiver only")
    assert telemetry.impersonates == ()
    (health,) = [c for c in explain(policy, "dashboard").channels if c.channel == "health"]
    assert health.sends_detail == "surveys MAC'd to each respondent as dashboard only"


def test_explain_revoked_identity(deployment):
    deployment.edit_policy("revoked: []", "revoked: [old-1]")
    exposure = explain(load_policy(deployment.policy_path), "old-1")
    assert exposure.revoked
    assert exposure.contain.startswith("already revoked")


def _generator() -> ModuleType:
    path = ROOT / "benchmarks" / "gen_topology.py"
    spec = importlib.util.spec_from_file_location("gen_topology", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_generated_topology_checks_clean_and_fast(tmp_path):
    """A coarse sanity check of the benchmark generator and of linear-time checking; the
    timing of the 10,000-node case is measured by benchmarks/bench_check.py, not here."""
    _, topology = _generator().generate(tmp_path, 1000, 20)
    started = time.perf_counter()
    findings = nngsec.check(topology, wide_secret_threshold=1000)
    assert time.perf_counter() - started < 10
    assert {f.rule for f in findings} <= {
        "unsigned-policy",
        "forgeable-service",
        "replay-across-receivers",
    }


def test_schema_topology_command(cli):
    result = cli("schema", "topology")
    assert result.code == 0
    schema = json.loads(result.out)
    assert schema["$id"].endswith("/topology.json")
    assert "nodes" in schema["properties"]
