"""The deployment id (issue 9, finding 9): its one spelling, the text edit that adds it
(``nngsec._policy._edit.add_deployment``), and the commands that add and keep it."""

from __future__ import annotations

import json
import os
import time

import pytest

from nngsec import NngsecError, PolicyError, load_policy
from nngsec._formats._deployment import decode_deployment_id, new_deployment_id
from nngsec._keys._keystore import Keystore
from nngsec._policy._admin import revoke, rotate, sign
from nngsec._policy._edit import add_deployment
from nngsec._policy._load import parse_policy
from tests.support import K1, K2, TELEMETRY, at

ID = "tNPqhcXefx3L0GCv6vs-tQ"
HEAD = f"""# factory policy
nngsec: 1
name: factory  # the name
identities:
  sensor: {K1}   # on the roof
  dashboard: {K2}
"""


def with_id(text: str, line: str = f"deployment: {ID}\n") -> str:
    return text.replace("name: factory  # the name\n", f"name: factory  # the name\n{line}")


EDITS = {
    "absent": (HEAD, with_id(HEAD)),
    "absent-no-final-newline": (HEAD.rstrip("\n"), with_id(HEAD)),
    "before-version": (
        HEAD.replace("# the name\n", "# the name\nversion: 4\n"),
        HEAD.replace("# the name\n", f"# the name\ndeployment: {ID}\nversion: 4\n"),
    ),
    "crlf": (HEAD.replace("\n", "\r\n"), with_id(HEAD).replace("\n", "\r\n")),
    "empty-value": (HEAD + "deployment:\n", HEAD + f"deployment: {ID}\n"),
    "empty-value-with-comment": (
        HEAD + "deployment:   # to come\n",
        HEAD + f"deployment: {ID}   # to come\n",
    ),
    "null": (HEAD + "deployment: ~\n", HEAD + f"deployment: {ID}\n"),
}


@pytest.mark.parametrize("case", sorted(EDITS))
def test_adding_the_id_keeps_the_file_as_written(case):
    before, after = EDITS[case]
    assert add_deployment(before, "p.yaml", ID) == after
    assert parse_policy(after, "p.yaml").deployment == decode_deployment_id(ID)


def test_an_edit_that_would_break_the_file_is_refused():
    flow = f"{{nngsec: 1, name: factory, identities: {{sensor: {K1}}}}}\n"
    with pytest.raises(PolicyError) as caught:
        add_deployment(flow, "p.yaml", ID)
    assert "could not add a deployment id" in caught.value.problems[0].message
    assert caught.value.problems[0].hint == f"add the line 'deployment: {ID}' under name: by hand"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("tNPqhcXefx3L0GCv6vs-t", "got 21 characters"),
        ("tNPqhcXefx3L0GCv6vs-tQQ", "got 23 characters"),
        ("tNPqhcXefx3L0GCv6vs+tQ", "got other characters"),
        ("tNPqhcXefx3L0GCv6vs-tR", "not the spelling nngsec writes"),  # unused bits set
        ("12345", "expected a deployment id"),  # YAML reads a number
    ],
)
def test_a_bad_id_in_a_policy_is_placed(value, message):
    text = HEAD + f"deployment: {value}\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    [problem] = caught.value.problems
    assert problem.field == "deployment"
    assert message in problem.message
    assert at(text, problem) == value
    assert problem.hint


def test_new_ids_are_random_and_decode_to_16_bytes():
    ids = {new_deployment_id() for _ in range(64)}
    assert len(ids) == 64
    assert all(len(decode_deployment_id(i)) == 16 for i in ids)


def test_an_id_yaml_would_read_as_a_number_is_drawn_again(monkeypatch):
    from nngsec._formats import _deployment

    spellings = iter(["0x1234567890abcdefABCDEF", "1234567890123456789012", ID])
    monkeypatch.setattr(_deployment, "b64url_encode", lambda raw: next(spellings))
    assert new_deployment_id(os.urandom) == ID


# -- the commands ----------------------------------------------------------------------


def test_rotate_adds_an_id_once_and_keeps_it(world_factory, cli):
    world = world_factory(TELEMETRY, ["sensor", "dashboard"], with_keys=False)
    before = world.policy_path.read_text()
    result = cli("rotate", world.policy_path)
    assert result.code == 0
    [note] = [line for line in result.error_lines if line.startswith("added deployment: ")]
    added = note.split()[2]
    assert world.policy_path.read_text() == before.replace(
        "name: factory\n", f"name: factory\ndeployment: {added}\n"
    )
    keys = json.loads(world.policy_path.with_name("policy.keys.json").read_text())
    assert keys["deployment"] == added
    again = cli("rotate", world.policy_path)
    assert "added deployment" not in again.err
    assert load_policy(world.policy_path).model.deployment == added


def test_sign_adds_an_id_to_a_policy_without_one(world_factory, cli, tmp_path):
    body = "channels:\n  sync:\n    pattern: pair\n    members: [a, b]\n"
    world = world_factory(body, ["a", "b"], with_keys=False)
    admin = Keystore(tmp_path / "admin")
    admin.generate("admin")
    result = cli("sign", world.policy_path, "--key", admin.directory / "admin.key")
    assert result.code == 0
    assert "added deployment: " in result.err
    policy = load_policy(world.policy_path)
    assert policy.deployment is not None
    # The signature covers the file with the id: a node pinning the admin accepts it.
    world.keystore.trust(admin.directory / "admin.pub")
    world.node("a")


def test_sign_with_a_bad_key_changes_nothing(world_factory, tmp_path):
    world = world_factory(TELEMETRY, ["sensor", "dashboard"], with_keys=False)
    before = world.policy_path.read_bytes()
    with pytest.raises(NngsecError):
        sign(world.policy_path, tmp_path / "missing.key")
    assert world.policy_path.read_bytes() == before


def test_revoke_and_rotate_keep_the_id(world_factory):
    world = world_factory(TELEMETRY, ["sensor", "dashboard", "spare"])
    kept = load_policy(world.policy_path).model.deployment
    assert kept is not None
    revoke(world.policy_path, "spare")
    rotate(world.policy_path)
    policy = load_policy(world.policy_path)
    assert policy.model.deployment == kept
    assert policy.revoked == {"spare"}


def test_revoke_adds_an_id_to_a_policy_without_one(world_factory):
    world = world_factory(TELEMETRY, ["sensor", "dashboard", "spare"], with_keys=False)
    result = revoke(world.policy_path, "spare")
    policy = load_policy(world.policy_path)
    assert result.deployment_added == policy.model.deployment
    assert policy.revoked == {"spare"}
    world.node("dashboard")  # its keys (rotated by revoke) bind the same id


def test_a_lost_deployment_line_is_not_replaced_by_a_new_id(world_factory):
    world = world_factory(TELEMETRY, ["sensor", "dashboard"])
    text = world.policy_path.read_text()
    [line] = [line for line in text.splitlines(keepends=True) if line.startswith("deployment:")]
    world.policy_path.write_text(text.replace(line, ""))
    for command in (lambda: rotate(world.policy_path), lambda: revoke(world.policy_path, "sensor")):
        with pytest.raises(PolicyError) as caught:
            command()
        [problem] = caught.value.problems
        assert problem.message.startswith("the policy has no deployment: line, but its channel")
        assert problem.hint.startswith(f"restore the line '{line.strip()}' under name:")
    assert "deployment:" not in world.policy_path.read_text()  # nothing was written


def test_a_node_refuses_the_keys_of_another_deployment(world_factory):
    world = world_factory(TELEMETRY, ["sensor", "dashboard"])
    text = world.policy_path.read_text()
    other = new_deployment_id()
    [line] = [line for line in text.splitlines(keepends=True) if line.startswith("deployment:")]
    world.policy_path.write_text(text.replace(line, f"deployment: {other}\n"))
    with pytest.raises(PolicyError) as caught:
        world.node("dashboard")
    message = caught.value.problems[0].message
    assert message.startswith("the channel-key file belongs to deployment ")
    assert message.endswith(f"and the policy has deployment {other}")


def test_rotate_replaces_a_format_1_file_and_continues_its_epochs(world_factory, cli):
    world = world_factory(TELEMETRY, ["sensor", "dashboard"])
    keys_path = world.policy_path.with_name("policy.keys.json")
    rotate(world.policy_path)
    legacy = json.loads(keys_path.read_text())
    legacy["nngsec-channel-keys"] = 1
    del legacy["deployment"]
    # Epochs are at least the time of the rotation; one ahead of the clock shows that the
    # replacement continues the format-1 file's numbers rather than starting at the time.
    ahead = int(time.time()) + 10**6
    legacy["channels"]["telemetry"]["epochs"][0]["epoch"] = ahead
    keys_path.write_text(json.dumps(legacy, indent=2))
    with pytest.raises(PolicyError) as caught:
        world.node("dashboard")
    assert "channel-key format 1 (nngsec 0.1)" in caught.value.problems[0].message
    assert caught.value.problems[0].line == 2
    result = cli("rotate", world.policy_path)
    assert result.code == 0
    assert "replacing a format-1 file (nngsec 0.1)" in result.out
    data = json.loads(keys_path.read_text())
    assert data["nngsec-channel-keys"] == 2
    assert [e["epoch"] for e in data["channels"]["telemetry"]["epochs"]] == [ahead + 1]
    assert world.node("dashboard").channel_keys["telemetry"].current.epoch == ahead + 1


def test_rotate_refuses_a_format_1_file_of_another_policy(world_factory):
    world = world_factory(TELEMETRY, ["sensor", "dashboard"])
    keys_path = world.policy_path.with_name("policy.keys.json")
    legacy = json.loads(keys_path.read_text())
    legacy.update({"nngsec-channel-keys": 1, "policy": "elsewhere"})
    del legacy["deployment"]
    keys_path.write_text(json.dumps(legacy, indent=2))
    with pytest.raises(PolicyError) as caught:
        rotate(world.policy_path)
    [problem] = caught.value.problems
    assert problem.message == (
        "the channel-key file (format 1) belongs to policy 'elsewhere', not 'factory'"
    )
    assert (problem.line, problem.field) == (3, "policy")
    assert json.loads(keys_path.read_text())["policy"] == "elsewhere"  # left as it was
