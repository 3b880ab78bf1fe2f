"""Random deployments: whatever the wiring, the checker answers with findings, never a crash,
and its reports and graphs are well-formed."""

from __future__ import annotations

import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support import examples

from nngsec._topology._check import CheckOptions, run_check
from nngsec._topology._graph import render_dot, render_mermaid
from nngsec._topology._report import render_json, render_sarif, render_text

NODES = ["sensor-1", "sensor-2", "dashboard", "scheduler", "worker", "hub", "edge", "ghost"]
CHANNELS = ["telemetry", "jobs", "control", "cells", "health", "sync", "nothing"]
ROLES = ["publisher", "subscriber", "pusher", "puller", "client", "server", "surveyor"]
ROLES += ["respondent", "member"]
PATTERNS = ["pubsub", "pipeline", "reqrep", "bus", "survey"]  # pair has no relay
HOSTS = ["hub", "edge", "ops", "dashboard"]
PORTS = [5555, 5556, 5557]
TRANSPORTS = ["tcp", "tls+tcp"]

listen_urls = st.one_of(
    st.builds(lambda t, p: f"{t}://*:{p}", st.sampled_from(TRANSPORTS), st.sampled_from(PORTS)),
    st.builds(lambda p: f"tcp://localhost:{p}", st.sampled_from(PORTS)),
    st.sampled_from(["ipc:///run/a.sock", "inproc://a"]),
)
dial_urls = st.one_of(
    st.builds(
        lambda t, h, p: f"{t}://{h}:{p}",
        st.sampled_from(TRANSPORTS),
        st.sampled_from(HOSTS),
        st.sampled_from(PORTS),
    ),
    st.sampled_from(["ipc:///run/a.sock", "inproc://a", "tcp://127.0.0.1:5555"]),
)
sockets = st.fixed_dictionaries(
    {"channel": st.sampled_from(CHANNELS), "role": st.sampled_from(ROLES)},
    optional={
        "listen": st.lists(listen_urls, min_size=1, max_size=2),
        "dial": st.lists(dial_urls, min_size=1, max_size=2),
        "topics": st.lists(st.sampled_from(["temp.", "temp.a", "x", ""]), max_size=2),
    },
).filter(lambda s: "listen" in s or "dial" in s)
sides = st.one_of(
    st.builds(lambda u: {"listen": u}, listen_urls), st.builds(lambda u: {"dial": u}, dial_urls)
)
relays = st.fixed_dictionaries(
    {
        "pattern": st.sampled_from(PATTERNS),
        "channel": st.sampled_from(CHANNELS),
        "front": sides,
        "back": sides,
    }
)
nodes = st.dictionaries(
    st.sampled_from(NODES),
    st.fixed_dictionaries(
        {},
        optional={
            "identity": st.sampled_from([*NODES, "old-1", "sensors"]),
            "host": st.sampled_from(HOSTS),
            "sockets": st.lists(sockets, max_size=3),
            "relays": st.lists(relays, max_size=2),
        },
    ),
    max_size=6,
)


@settings(
    max_examples=examples(80),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(nodes=nodes)
def test_any_wiring_gives_findings_not_crashes(deployment, nodes):
    deployment.topology_path.write_text(
        yaml.safe_dump({"nngsec": 1, "policy": "policy.yaml", "nodes": nodes})
    )
    result = run_check([deployment.topology_path], CheckOptions(keystore=deployment.keystore))
    for finding in result.findings:
        assert finding.line is None or finding.line >= 1
        assert finding.message
    assert json.loads(render_json(result))["findings"] is not None
    assert json.loads(render_sarif(result))["version"] == "2.1.0"
    assert render_text(result).endswith("\n")
    assert render_dot(result).startswith("digraph")
    assert render_mermaid(result).startswith("flowchart")
