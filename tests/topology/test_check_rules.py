"""Every rule: a minimal input that triggers it (rule, severity, line) and a near-identical
one that does not."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path
from string import Template

import pytest

from nngsec._keys._keystore import Keystore
from nngsec._policy._admin import rotate, sign
from nngsec._topology._findings import Finding
from nngsec._topology._rules import RULES

# What the test deployment always gets: it is unsigned, and its control service has two
# servers sharing a service key.
BASELINE = {"unsigned-policy", "forgeable-service"}


def of_rule(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def marked_line(text: str, mark: str = "# <-") -> int:
    (line,) = [n for n, text_line in enumerate(text.splitlines(), 1) if mark in text_line]
    return line


def assert_finds(findings: list[Finding], rule: str, severity: str, line: int | None) -> Finding:
    hits = [f for f in findings if f.rule == rule and f.line == line]
    assert hits, f"no {rule} at line {line}; got:\n" + "\n".join(str(f) for f in findings)
    assert all(f.severity == severity for f in hits), hits
    assert all(f.message and f.hint for f in hits), hits
    return hits[0]


def assert_clean(findings: list[Finding], rule: str) -> None:
    hits = of_rule(findings, rule)
    assert not hits, "\n".join(str(f) for f in hits)


# A relayed telemetry channel. $-placeholders are where the bad and good variants differ,
# and each line carrying one is marked "# @NAME" so tests can name the line they expect.
TELEMETRY = Template("""
nodes:
  hub:
    $hub_identity  # @hub_identity
    relays:
      - pattern: $relay_pattern  # @relay_pattern
        channel: telemetry
        front: {listen: "tcp://*:5555"}
        back: {listen: "tcp://*:5556"}
  sensor-1:
    sockets:
      - channel: $channel  # @channel
        role: $role  # @role
        dial: "$publisher_dial"  # @publisher_dial
        topics: [$topic]  # @topic
  dashboard:
    sockets:
      - channel: telemetry
        role: subscriber
        dial: "$subscriber_dial"  # @subscriber_dial
        topics: [$subscription]  # @subscription
""")
GOOD = {
    "hub_identity": "description: relay host",
    "relay_pattern": "pubsub",
    "channel": "telemetry",
    "role": "publisher",
    "publisher_dial": "tcp://hub:5555",
    "subscriber_dial": "tcp://hub:5556",
    "topic": "temp.line1",
    "subscription": "temp.",
}


def telemetry(**bad: str) -> str:
    """The telemetry topology with some values replaced."""
    return TELEMETRY.substitute({**GOOD, **bad})


def test_the_good_telemetry_topology_is_clean(deployment) -> None:
    findings = deployment.check(telemetry())
    # The test policy has channels this small topology does not use, and no signature.
    assert {f.rule for f in findings} == BASELINE


# -- topology rules driven by one changed value ---------------------------------------
@pytest.mark.parametrize(
    ("rule", "severity", "change", "at"),
    [
        ("unknown-channel", "error", {"channel": "telemtry"}, "channel"),
        ("role-pattern-mismatch", "error", {"channel": "control", "topic": "x"}, "role"),
        ("relay-pattern-mismatch", "error", {"relay_pattern": "pipeline"}, "relay_pattern"),
        ("role-not-authorized", "error", {"role": "subscriber"}, "role"),
        ("unpaired-endpoint", "error", {"publisher_dial": "tcp://hub:5565"}, "publisher_dial"),
        ("incompatible-peers", "error", {"subscriber_dial": "tcp://hub:5555"}, "subscriber_dial"),
        ("topic-not-allowed", "error", {"topic": "pres.line1"}, "topic"),
        ("topic-not-allowed", "error", {"subscription": "pres."}, "subscription"),
        ("relay-holds-keys", "warning", {"hub_identity": "identity: dashboard"}, "relay_pattern"),
    ],
)
def test_topology_rule(deployment, rule: str, severity: str, change: dict[str, str], at: str):
    bad = telemetry(**change)
    line = deployment.line(bad, f"# @{at}")
    finding = assert_finds(deployment.check(bad), rule, severity, line)
    assert finding.file == str(deployment.topology_path)
    assert_clean(deployment.check(telemetry()), rule)


def _nodes(text: str) -> str:
    """More node entries to append under ``nodes:``."""
    return textwrap.indent(textwrap.dedent(text).lstrip("\n"), "  ")


def test_unpaired_listen_is_a_warning(deployment):
    spare = Template("""
      spare:
        relays:
          - pattern: pubsub
            channel: telemetry
            front: {listen: "tcp://*:6000"}  # <-
            back: {dial: "tcp://hub:5555"}
      sensor-2:
        sockets:
          - {channel: telemetry, role: publisher, dial: "$dial"}
    """)
    bad = telemetry() + _nodes(spare.substitute(dial="tcp://hub:5555"))
    findings = deployment.check(bad)
    hit = assert_finds(findings, "unpaired-endpoint", "warning", deployment.line(bad))
    assert hit.message == (
        "the front of relay spare.relays[0] (telemetry) listens on tcp://*:6000, but nothing "
        "in the topology dials it"
    )
    good = telemetry() + _nodes(spare.substitute(dial="tcp://spare:6000"))
    findings = deployment.check(good)
    assert {f.rule for f in findings} == BASELINE  # a chain of two relays


def test_unpaired_dial_hints_at_the_near_miss(deployment):
    hints = {
        "tcp://hub:5565": "hub listens on port 5555, 5556, not 5565",
        "tls+tcp://hub:5555": "tcp://*:5555 listens with tcp://, not tls+tcp://",
        "tcp://sensor-1:5555": "add a listen on tcp://sensor-1:5555, or correct the address",
    }
    for dial, hint in hints.items():
        findings = deployment.check(telemetry(publisher_dial=dial))
        (finding,) = [f for f in of_rule(findings, "unpaired-endpoint") if f.severity == "error"]
        assert finding.hint == hint
        assert f"dials {dial}, but nothing" in finding.message


def test_topics_on_a_channel_without_topics(deployment) -> None:
    body = """
    nodes:
      scheduler:
        sockets:
          - {channel: jobs, role: pusher, listen: "tcp://*:5560", $topics}
      worker:
        sockets:
          - {channel: jobs, role: puller, dial: "tcp://scheduler:5560"}
    """
    bad = Template(body).substitute(topics="topics: [a.]}  # <-").replace("]}}", "]}")
    hit = assert_finds(deployment.check(bad), "topic-not-allowed", "error", deployment.line(bad))
    assert "only pubsub channels have topics" in hit.message
    good = Template(body).substitute(topics="description: no topics")
    assert_clean(deployment.check(good), "topic-not-allowed")


def test_role_not_authorized_suggests_the_held_role(deployment) -> None:
    (finding,) = of_rule(deployment.check(telemetry(role="subscriber")), "role-not-authorized")
    assert "identity 'sensor-1' is not in its subscribers (it is a publisher)" in finding.message
    assert finding.hint == "did you mean role: publisher?"


# Two listeners on one host: the dashboard's at $listen, the scheduler's at tcp://*:5560.
DUPLICATE_LISTEN = Template("""
nodes:
  scheduler:
    host: ops
    sockets:
      - {channel: jobs, role: pusher, listen: "tcp://*:5560"}
  dashboard:
    host: ops
    sockets:
      - {channel: health, role: surveyor, listen: "$listen"}  # <-
  sensor-1:
    sockets:
      - {channel: health, role: respondent, dial: "$dial"}
  worker:
    sockets:
      - {channel: jobs, role: puller, dial: "tcp://ops:5560"}
""")


def test_duplicate_listen(deployment) -> None:
    body = DUPLICATE_LISTEN
    bad = body.substitute(listen="tcp://*:5560", dial="tcp://ops:5560")
    findings = deployment.check(bad)
    hit = assert_finds(findings, "duplicate-listen", "error", deployment.line(bad))
    assert "already taken by scheduler's pusher socket on jobs" in hit.message
    good = body.substitute(listen="tcp://*:5561", dial="tcp://ops:5561")
    assert_clean(deployment.check(good), "duplicate-listen")


def test_isolated_socket_and_a_subscriber_behind_two_relays(deployment) -> None:
    body = Template("""
    nodes:
      hub:
        relays:
          - {pattern: pubsub, channel: telemetry, front: {listen: "tcp://*:5555"},
             back: {listen: "tcp://*:5556"}}
      edge:
        relays:
          - {pattern: pubsub, channel: telemetry, front: {$front},
             back: {listen: "tcp://*:5557"}}
      sensor-1:
        sockets:
          - {channel: telemetry, role: publisher, dial: "tcp://hub:5555"}
      dashboard:
        sockets:
          - {channel: telemetry, role: subscriber, dial: "tcp://edge:5557"}  # <-
    """)
    bad = body.substitute(front='listen: "tcp://*:5558"')
    findings = deployment.check(bad)
    hit = assert_finds(findings, "isolated-socket", "warning", deployment.line(bad))
    assert "reaches no publisher" in hit.message
    good = body.substitute(front='dial: "tcp://hub:5556"')
    findings = deployment.check(good)
    assert_clean(findings, "isolated-socket")
    assert {f.rule for f in findings} == BASELINE


def test_bus_not_meshed(deployment) -> None:
    body = Template("""
    nodes:
      cell-1:
        sockets:
          - {channel: cells, role: member, listen: "tcp://*:7000"}
      cell-2:
        sockets:
          - {channel: cells, role: member, listen: "tcp://*:7000", dial: "tcp://cell-1:7000"}  # <-
      cell-3:
        sockets:
          - {channel: cells, role: member, dial: $dial}
    """)
    bad = body.substitute(dial='["tcp://cell-1:7000"]')
    hit = assert_finds(deployment.check(bad), "bus-not-meshed", "warning", deployment.line(bad))
    assert "does not reach the member socket(s) of cell-3" in hit.message
    good = body.substitute(dial='["tcp://cell-1:7000", "tcp://cell-2:7000"]')
    assert_clean(deployment.check(good), "bus-not-meshed")


def test_bus_relay_reflects_to_every_member_on_both_sides(deployment):
    """The bus relay is a reflector (one raw Bus0 socket on both URLs): members on the same
    side hear each other too. A member reached only through another member is not."""
    body = Template("""
    nodes:
      hub:
        relays:
          - {pattern: bus, channel: cells, front: {listen: "tcp://*:7000"},
             back: {listen: "tcp://*:7001"}}
      cell-1:
        sockets:
          - {channel: cells, role: member, dial: "tcp://hub:7000"}  # <-
      cell-2:
        sockets:
          - {channel: cells, role: member, dial: "tcp://hub:7000", listen: "tcp://*:7002"}
      cell-3:
        sockets:
          - {channel: cells, role: member, dial: $dial}
    """)
    bad = body.substitute(dial='["tcp://cell-2:7002"]')  # bus sockets do not forward
    hit = assert_finds(deployment.check(bad), "bus-not-meshed", "warning", deployment.line(bad))
    assert "does not reach the member socket(s) of cell-3" in hit.message
    findings = deployment.check(body.substitute(dial='["tcp://hub:7001", "tcp://cell-2:7002"]'))
    assert {f.rule for f in findings} == BASELINE  # same side (1, 2) is fine


def test_no_receivers_in_the_topology(deployment) -> None:
    body = Template("""
    nodes:
      scheduler:
        sockets:
          - {channel: jobs, role: pusher, listen: "tcp://*:5560"}  # <-
      worker:
        sockets:
          - {channel: $channel, role: puller, dial: "tcp://scheduler:5560"}
    """)
    bad = body.substitute(channel="jobz")
    findings = deployment.check(bad)
    hit = assert_finds(findings, "no-receivers", "warning", deployment.line(bad))
    assert "1 pusher socket(s) in the topology but no puller socket" in hit.message
    assert_clean(deployment.check(body.substitute(channel="jobs")), "no-receivers")


# -- identities, revocation -----------------------------------------------------------
def test_unknown_identity_in_the_policy(deployment) -> None:
    deployment.edit_policy("subscribers: [dashboard]", "subscribers: [dashbaord]  # <-")
    findings = deployment.check()
    line = marked_line(deployment.policy_text())
    hit = assert_finds(findings, "unknown-identity", "error", line)
    assert hit.hint == "did you mean 'dashboard'?"
    assert hit.file == str(deployment.policy_path)
    deployment.edit_policy("subscribers: [dashbaord]", "subscribers: [dashboard]")
    assert_clean(deployment.check(), "unknown-identity")


def test_unknown_identity_of_a_node(deployment) -> None:
    body = Template("""
    nodes:
      front-desk:
        identity: $identity  # <-
        sockets:
          - {channel: health, role: surveyor, listen: "tcp://*:7100"}
      sensor-1:
        sockets:
          - {channel: health, role: respondent, dial: "tcp://front-desk:7100"}
    """)
    bad = body.substitute(identity="dashbord")
    findings = deployment.check(bad)
    assert_finds(findings, "unknown-identity", "error", deployment.line(bad))
    assert_clean(findings, "role-not-authorized")  # not reported twice
    assert_clean(deployment.check(body.substitute(identity="dashboard")), "unknown-identity")


def test_revoked_in_use(deployment) -> None:
    deployment.edit_policy("revoked: []", "revoked: [sensor-2]")
    deployment.edit_policy("publishers: [sensors]", "publishers: [sensors]  # <-")
    findings = deployment.check()
    hit = assert_finds(findings, "revoked-in-use", "error", marked_line(deployment.policy_text()))
    assert "(through group 'sensors')" in hit.message
    deployment.edit_policy("revoked: [sensor-2]", "revoked: [old-1]")
    assert_clean(deployment.check(), "revoked-in-use")


def test_revoked_identity_run_by_a_node(deployment) -> None:
    deployment.edit_policy("revoked: []", "revoked: [old-1]")
    body = Template("""
    nodes:
      spare:
        identity: $identity  # <-
        sockets:
          - {channel: health, role: surveyor, listen: "tcp://*:7100"}
    """)
    bad = body.substitute(identity="old-1")
    assert_finds(deployment.check(bad), "revoked-in-use", "error", deployment.line(bad))
    assert_clean(deployment.check(body.substitute(identity="dashboard")), "revoked-in-use")


# -- policy-level rules ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "old", "bad", "good"),
    [
        (
            "plaintext-channel",
            "topics:",
            "scheme: plaintext\n    topics:",
            "scheme: signed\n    topics:",
        ),
        (
            "forgeable-group",
            "members: [cell-1, cell-2, cell-3]",
            "members: [cell-1, cell-2, cell-3]\n    origin: group",
            "members: [cell-1, cell-2, cell-3]\n    origin: signed",
        ),
    ],
)
def test_policy_setting_rule(deployment, rule: str, old: str, bad: str, good: str) -> None:
    text = deployment.policy_text()
    changed = bad.split("\n", maxsplit=1)[0] if rule == "plaintext-channel" else bad.split("\n")[1]
    deployment.policy_path.write_text(text.replace(old, bad.replace(changed, changed + "  # <-")))
    severity = RULES[rule].severity
    assert_finds(deployment.check(), rule, severity, marked_line(deployment.policy_text()))
    deployment.policy_path.write_text(text.replace(old, good))
    assert_clean(deployment.check(), rule)


def test_wide_secret(deployment) -> None:
    text = deployment.policy_text()
    line = marked_line(text.replace("  cells:\n", "  cells:  # <-\n"))
    findings = deployment.check(wide_secret_threshold=2)
    hit = assert_finds(findings, "wide-secret", "warning", line)
    assert "group key of channel 'cells' is held by 3 identities, more than 2" in hit.message
    assert_clean(deployment.check(wide_secret_threshold=3), "wide-secret")


def test_large_mac_audience(deployment) -> None:
    deployment.edit_policy("subscribers: [dashboard]", "subscribers: [dashboard, scheduler]")
    deployment.edit_policy('topics: ["temp."]', 'topics: ["temp."]\n    origin: mac  # <-')
    line = marked_line(deployment.policy_text())
    hit = assert_finds(
        deployment.check(mac_audience_threshold=1), "large-mac-audience", "warning", line
    )
    assert "origin: mac with 2 receivers, more than 1" in hit.message
    assert "32 bytes of MACs" in hit.message
    assert_clean(deployment.check(mac_audience_threshold=2), "large-mac-audience")
    assert_clean(deployment.check(), "large-mac-audience")  # 16 by default
    deployment.edit_policy("origin: mac", "origin: signed")
    assert_clean(deployment.check(mac_audience_threshold=1), "large-mac-audience")


def test_no_receivers_left_in_the_policy(deployment) -> None:
    deployment.edit_policy("pullers: [worker]", "pullers: [worker]  # <-")
    deployment.edit_policy("revoked: []", "revoked: [worker]")
    line = marked_line(deployment.policy_text())
    hit = assert_finds(deployment.check(), "no-receivers", "warning", line)
    assert "(every other one is revoked)" in hit.message
    deployment.edit_policy("revoked: [worker]", "revoked: [old-1]")
    assert_clean(deployment.check(), "no-receivers")


def test_missing_channel_keys_for_a_new_receiver(deployment) -> None:
    deployment.edit_policy("subscribers: [dashboard]", "subscribers: [dashboard, scheduler]")
    line = marked_line(deployment.policy_text().replace("  telemetry:\n", "  telemetry:  # <-\n"))
    hit = assert_finds(deployment.check(), "missing-channel-keys", "error", line)
    assert "scheduler of channel 'telemetry' has no entry in its current key epoch" in hit.message
    assert hit.hint == f"nngsec rotate {deployment.policy_path} telemetry"
    rotate(deployment.policy_path, ["telemetry"])
    assert_clean(deployment.check(), "missing-channel-keys")


def test_missing_channel_key_file(deployment) -> None:
    keys = deployment.policy_path.with_name("policy.keys.json")
    keys.unlink()
    findings = of_rule(deployment.check(), "missing-channel-keys")
    # telemetry, jobs, health (audience), control (service, two servers), cells (group)
    assert len(findings) == 5
    assert all("but there is no policy.keys.json" in f.message for f in findings)
    rotate(deployment.policy_path)
    assert_clean(deployment.check(), "missing-channel-keys")


def _drop_deployment_line(deployment) -> str:
    """Remove the policy's deployment: line; returns the id it had."""
    text = deployment.policy_text()
    [line] = [line for line in text.splitlines(keepends=True) if line.startswith("deployment:")]
    deployment.policy_path.write_text(text.replace(line, ""))
    return str(line.split(":", 1)[1].strip())


def test_no_deployment_id(deployment) -> None:
    assert_clean(deployment.check(), "no-deployment-id")  # rotate wrote one
    deployment.policy_path.with_name("policy.keys.json").unlink()
    _drop_deployment_line(deployment)
    line = marked_line(deployment.policy_text().replace("name: factory\n", "name: factory # <-\n"))
    hit = assert_finds(deployment.check(), "no-deployment-id", "warning", line)
    assert "another deployment with the same policy name" in hit.message
    assert hit.hint == f"nngsec rotate {deployment.policy_path} adds one"
    rotate(deployment.policy_path)
    assert_clean(deployment.check(), "no-deployment-id")


def test_missing_channel_keys_of_another_deployment(deployment) -> None:
    """The keys of one deployment are refused by a policy of the same name in another (or
    by the same policy whose deployment: line was lost)."""
    kept = _drop_deployment_line(deployment)
    line = marked_line(deployment.policy_text().replace("name: factory\n", "name: factory # <-\n"))
    hit = assert_finds(deployment.check(), "missing-channel-keys", "error", line)
    assert hit.message == (
        f"policy.keys.json belongs to deployment {kept}, and the policy has no deployment id: "
        "nodes refuse it"
    )
    assert_clean(deployment.check(), "stale-key-holder")  # one finding for one cause
    text = deployment.policy_text().replace(
        "name: factory\n", "name: factory\ndeployment: AAAAAAAAAAAAAAAAAAAAAA\n"
    )
    deployment.policy_path.write_text(text)
    hit = assert_finds(deployment.check(), "missing-channel-keys", "error", line + 1)
    assert f"belongs to deployment {kept}, and the policy has deployment AAAA" in hit.message


def test_stale_key_holder_after_removal_without_rotation(deployment) -> None:
    deployment.edit_policy("subscribers: [dashboard]", "subscribers: [dashboard, scheduler]")
    rotate(deployment.policy_path, ["telemetry"])
    deployment.edit_policy("subscribers: [dashboard, scheduler]", "subscribers: [dashboard]")
    line = marked_line(deployment.policy_text().replace("  telemetry:\n", "  telemetry:  # <-\n"))
    hit = assert_finds(deployment.check(), "stale-key-holder", "error", line)
    assert "scheduler is no longer a receiver of channel 'telemetry'" in hit.message
    rotate(deployment.policy_path, ["telemetry"])
    assert_clean(deployment.check(), "stale-key-holder")


def test_stale_key_holder_after_revocation_by_hand(deployment) -> None:
    deployment.edit_policy("pullers: [worker]", "pullers: [worker, old-1]")
    rotate(deployment.policy_path, ["jobs"])
    deployment.edit_policy("revoked: []", "revoked: [old-1]")
    line = marked_line(deployment.policy_text().replace("  jobs:\n", "  jobs:  # <-\n"))
    findings = deployment.check()
    hit = assert_finds(findings, "stale-key-holder", "error", line)
    assert hit.message.startswith("revoked old-1 still has an entry in the current key epoch")
    rotate(deployment.policy_path, ["jobs"])
    assert_clean(deployment.check(), "stale-key-holder")


# -- signatures -----------------------------------------------------------------------
@pytest.fixture
def admin(deployment):
    store = Keystore(deployment.root / "admin")
    _, secret, public = store.generate("admin")
    return store, (secret, public)


def test_unsigned_policy(deployment, admin) -> None:
    assert_finds(deployment.check(), "unsigned-policy", "warning", 1)
    secret, public = admin[1]
    sign(deployment.policy_path, secret)
    assert_clean(deployment.check(trusted=(public,)), "unsigned-policy")
    # A signature nothing can verify is not taken on trust: it may no longer match.
    hit = assert_finds(deployment.check(), "unsigned-policy", "warning", 1)
    assert "nothing here can verify" in hit.message


def test_bad_signature_after_a_change(deployment, admin) -> None:
    secret, public = admin[1]
    sign(deployment.policy_path, secret)
    assert_clean(deployment.check(trusted=(public,)), "bad-signature")
    rotate(deployment.policy_path, ["telemetry"])  # changes the signed key file
    sig = f"{deployment.policy_path}.sig"
    sig_line = marked_line(Path(sig).read_text(), "nngsec-sig-v2:")
    findings = deployment.check(trusted=(public,))
    hit = assert_finds(findings, "bad-signature", "error", sig_line)
    assert hit.file == sig
    assert "does not match its channel keys (modified after signing)" in hit.message
    # Without a signer to verify against, only the form is checked.
    assert_clean(deployment.check(), "bad-signature")


def test_bad_signature_when_the_keystore_pins_a_signer(deployment, admin) -> None:
    secret, public = admin[1]
    Keystore(deployment.keystore).trust(public)
    findings = deployment.check(keystore=deployment.keystore)
    assert_finds(findings, "bad-signature", "error", 1)
    assert_clean(findings, "unsigned-policy")  # reported once, as the error it is
    sign(deployment.policy_path, secret)
    assert_clean(deployment.check(keystore=deployment.keystore), "bad-signature")


def test_malformed_signature(deployment) -> None:
    sig = deployment.policy_path.with_name("policy.yaml.sig")
    sig.write_text("# nngsec policy signature\nnngsec-sig-v2:tooshort\n")
    assert_finds(deployment.check(), "bad-signature", "error", 2)


def test_a_signature_of_format_1_is_refused(deployment, admin) -> None:
    sign(deployment.policy_path, admin[1][0])
    sig = deployment.policy_path.with_name("policy.yaml.sig")
    sig.write_text(sig.read_text().replace("nngsec-sig-v2:", "nngsec-sig-v1:"))
    hit = assert_finds(deployment.check(), "bad-signature", "error", 4)
    assert "format 1" in hit.message
    assert "sign it again" in hit.hint


def test_bad_signature_when_the_keystore_pins_no_signer(deployment, admin) -> None:
    """Nodes with that keystore refuse a policy with a signature they cannot verify."""
    sign(deployment.policy_path, admin[1][0])
    findings = deployment.check(keystore=deployment.keystore)
    hit = assert_finds(findings, "bad-signature", "error", 4)
    assert "pins no signer" in hit.message
    assert hit.hint == f"nngsec trust ADMIN.pub --keystore {deployment.keystore}"
    assert_clean(findings, "unsigned-policy")
    Keystore(deployment.keystore).trust(admin[1][1])
    assert_clean(deployment.check(keystore=deployment.keystore), "bad-signature")


def test_duplicate_identity_of_two_policy_entries(deployment) -> None:
    """One key under two names (also through another spelling of its last character)."""
    text = deployment.policy_text()
    line = next(t for t in text.splitlines() if t.startswith("  worker: "))
    alias = line.replace("  worker: ", "  worker-spare: ") + "  # <-"
    deployment.edit_policy(line, line + "\n" + alias)
    findings = deployment.check()
    hit = assert_finds(
        findings, "duplicate-identity", "error", marked_line(deployment.policy_text())
    )
    assert hit.message == (
        "identity 'worker-spare' has the same public key as 'worker', so the two are one identity"
    )
    deployment.edit_policy("\n" + alias, "")
    assert_clean(deployment.check(), "duplicate-identity")


def test_duplicate_identity_of_two_nodes(deployment) -> None:
    body = Template("""
    nodes:
      cell-1:
        sockets:
          - {channel: cells, role: member, listen: "tcp://*:7200"}
      cell-1b:
        identity: $identity  # <-
        sockets:
          - {channel: cells, role: member, dial: "tcp://cell-1:7200"}
    """)
    bad = body.substitute(identity="cell-1")
    hit = assert_finds(deployment.check(bad), "duplicate-identity", "error", deployment.line(bad))
    assert "nodes 'cell-1' (" in hit.message and "and 'cell-1b' both run identity 'cell-1'" in (
        hit.message
    )
    assert len(hit.subjects) == 2
    assert_clean(deployment.check(body.substitute(identity="cell-2")), "duplicate-identity")


# -- keystore rules -------------------------------------------------------------------
NODE = """
nodes:
  dashboard:
    sockets:  # <-
      - {channel: health, role: surveyor, listen: "tcp://*:7100"}
  sensor-1:
    sockets:
      - {channel: health, role: respondent, dial: "tcp://dashboard:7100"}
"""


def test_missing_private_key(deployment) -> None:
    key = deployment.keystore / "dashboard.key"
    line = deployment.line(NODE) - 1  # the node's name: no identity: line to point at
    assert_clean(deployment.check(NODE, keystore=deployment.keystore), "missing-private-key")
    key.unlink()
    hit = assert_finds(
        deployment.check(NODE, keystore=deployment.keystore), "missing-private-key", "error", line
    )
    assert "dashboard.key does not exist" in hit.message


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_key_file_permissions(deployment) -> None:
    key = deployment.keystore / "dashboard.key"
    line = deployment.line(NODE) - 1
    assert_clean(deployment.check(NODE, keystore=deployment.keystore), "key-file-permissions")
    key.chmod(0o644)
    hit = assert_finds(
        deployment.check(NODE, keystore=deployment.keystore), "key-file-permissions", "error", line
    )
    assert "mode 0644, expected 0600" in hit.message
    assert hit.hint == f"chmod 600 {key}"


def test_keystore_permissions(deployment, admin) -> None:
    keystore = Keystore(deployment.keystore)
    keystore.trust(admin[1][1])
    sign(deployment.policy_path, admin[1][0])
    assert_clean(deployment.check(keystore=deployment.keystore), "keystore-permissions")
    pinned = deployment.keystore / "trusted" / "admin.pub"
    pinned.chmod(0o666)  # anyone could replace the admin's key with theirs
    findings = deployment.check(keystore=deployment.keystore)
    [hit] = of_rule(findings, "keystore-permissions")
    assert (hit.severity, hit.file, hit.line) == ("error", str(pinned), None)
    assert hit.message == "a pinned signer's file can be written by group or others (mode 0666)"
    assert hit.hint == f"chmod go-w {pinned}"
    assert_clean(findings, "bad-signature")  # not reported as a missing signer as well
    pinned.chmod(0o644)
    deployment.keystore.chmod(0o777)
    [hit] = of_rule(deployment.check(keystore=deployment.keystore), "keystore-permissions")
    assert hit.file == str(deployment.keystore)


def test_private_key_mismatch(deployment) -> None:
    line = deployment.line(NODE) - 1
    assert_clean(deployment.check(NODE, keystore=deployment.keystore), "private-key-mismatch")
    key = deployment.keystore / "dashboard.key"
    key.unlink()
    shutil.copy2(deployment.keystore / "scheduler.key", key)
    hit = assert_finds(
        deployment.check(NODE, keystore=deployment.keystore), "private-key-mismatch", "error", line
    )
    assert "does not match the public key of 'dashboard'" in hit.message


def test_every_rule_is_tested_here() -> None:
    source = Path(__file__).read_text()
    untested = [rule for rule in RULES if f'"{rule}"' not in source]
    assert not untested


def test_duplicate_listen_across_scopes(deployment):
    body = DUPLICATE_LISTEN
    dial = "tcp://ops:5561"
    for listen in ("tcp://ops:5560", "tls+tcp://localhost:5560"):
        bad = body.substitute(listen=listen, dial=dial)
        assert_finds(deployment.check(bad), "duplicate-listen", "error", deployment.line(bad))
    good = body.substitute(listen="tcp://ops:5561", dial=dial)
    assert_clean(deployment.check(good), "duplicate-listen")


def test_forgeable_service(deployment) -> None:
    text = deployment.policy_text()
    line = marked_line(text.replace("servers: [ctl-a, ctl-b]", "servers: [ctl-a, ctl-b]  # <-"))
    hit = assert_finds(deployment.check(), "forgeable-service", "warning", line)
    assert "2 servers sharing one service key" in hit.message
    deployment.edit_policy("servers: [ctl-a, ctl-b]", "servers: [ctl-a]")
    assert_clean(deployment.check(), "forgeable-service")


def test_expired_and_expiring_soon(tmp_path: Path) -> None:
    from tests.support import K1, K2, NOW

    from nngsec._topology._check import CheckOptions, run_check

    policy = tmp_path / "timed.yaml"
    policy.write_text(
        "nngsec: 1\nname: timed\nexpires: 2027-01-20T00:00:00Z\nidentities:\n"
        f"  a: {K1}\n  b: {{key: {K2}, expires: 2027-01-01T00:00:00Z}}\n"
        "channels:\n  p: {pattern: pair, members: [a, b]}\n"
    )  # NOW is 2027-01-15T08:00:00Z
    findings = list(run_check([policy], CheckOptions(now=NOW)).findings)
    expired = assert_finds(findings, "expired", "error", 6)
    assert "identity 'b' expired at 2027-01-01T00:00:00Z" in expired.message
    soon = assert_finds(findings, "expiring-soon", "warning", 3)
    assert "policy 'timed' expires at 2027-01-20T00:00:00Z" in soon.message
    narrow = run_check([policy], CheckOptions(now=NOW, expiry_warning=86400.0)).findings
    assert_clean(list(narrow), "expiring-soon")


@pytest.mark.parametrize(
    ("channel", "sender", "receivers", "what"),
    [
        ("jobs", "pusher: scheduler", ["puller: worker", "puller: worker"], "a job"),
        ("control", "client: dashboard", ["server: ctl-a", "server: ctl-b"], "a request"),
    ],
)
def test_replay_across_receivers(deployment, channel, sender, receivers, what) -> None:
    """Two receivers of a load-balanced channel, of one identity or of two."""

    def node(name: str, role_identity: str, address: str, mark: str = "") -> str:
        role, identity = role_identity.split(": ")
        return (
            f"  {name}:\n    identity: {identity}\n    sockets:\n"
            f"      - {{channel: {channel}, role: {role}, {address}}}{mark}\n"
        )

    head = "nodes:\n" + node("front", sender, 'listen: "tcp://*:5560"')
    first = node("one", receivers[0], 'dial: "tcp://front:5560"')
    second = node("two", receivers[1], 'dial: "tcp://front:5560"', "  # <-")
    bad = head + first + second
    hit = assert_finds(
        deployment.check(bad), "replay-across-receivers", "warning", deployment.line(bad)
    )
    assert f"{what} recorded on its way to one can be replayed to another" in hit.message
    assert "idempotent" in hit.hint
    assert_clean(deployment.check(head + first), "replay-across-receivers")
