"""Private keys are never read from the wrong file, and never repeated (issue 9, finding 7).

A ``nngsec-secret-v1:`` line pasted into a policy field used to be quoted in the error (39
characters: 234 of the key's 256 bits, the rest found by brute force in seconds), and in a
free-text field it loaded silently, on its way to every node. Every file nngsec reads is
now refused if it holds private-key text anywhere, with a placed error that shows none of
it; and no message repeats more than 12 characters of any value it refuses.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nngsec import IdentityKey, Keystore, NngsecError, Node, load_policy
from nngsec._keys._files import read_public_file
from nngsec._policy._admin import sign
from nngsec._topology._check import CheckOptions, run_check
from tests.support import InProcessCli, build_world, examples

WINDOW = 13  # no message may hold this many consecutive characters of a refused value
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
PROPERTY = settings(
    deadline=None,
    max_examples=examples(50),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

BODY = """channels:
  telemetry:
    pattern: pubsub
    publishers: [sensor]
    subscribers: [dashboard]
"""
TOPOLOGY = """nngsec: 1
policy: policy.yaml
# the deployment
nodes:
  sensor:
    host: edge
    sockets:
      - {channel: telemetry, role: publisher, dial: "tcp://hub:5555"}
  dashboard:
    sockets:
      - {channel: telemetry, role: subscriber, listen: "tcp://*:5555"}
"""


def windows(value: str) -> set[str]:
    return {value[i : i + WINDOW] for i in range(len(value) - WINDOW + 1)}


def assert_not_repeated(error: NngsecError, value: str) -> None:
    shown = "\n".join([str(error), *(p.hint for p in error.problems)])
    leaked = [w for w in windows(value) if w in shown]
    assert not leaked, f"{leaked[0]!r} of the refused value is in: {shown}"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two deployments: ``unsigned/`` (policy, channel keys, topology, a keystore that has
    recorded the policy) and ``signed/`` (the same, signed by an admin it pins)."""
    root = tmp_path_factory.mktemp("leaks")
    for name in ("unsigned", "signed"):
        (root / name).mkdir()
        world = build_world(root / name, BODY, ["sensor", "dashboard"])
        if name == "signed":
            admin = Keystore(root / name / "admin")
            admin.generate("admin")
            sign(world.policy_path, admin.key_path("admin"))
            world.keystore.trust(admin.directory / "admin.pub")
        world.node("dashboard")
        (root / name / "topology.yaml").write_text(TOPOLOGY)
    return root


def _replace(old: str, new: str) -> Callable[[str, str], str]:
    def edit(text: str, value: str) -> str:
        assert old in text, old
        return text.replace(old, new.format(v=value), 1)

    return edit


def _append(line: str) -> Callable[[str, str], str]:
    return lambda text, value: text + line.format(v=value)


def _json(change: Callable[[dict, str], None]) -> Callable[[str, str], str]:  # type: ignore[type-arg]
    def edit(text: str, value: str) -> str:
        data = json.loads(text)
        change(data, value)
        return json.dumps(data, indent=2)

    return edit


def _entry(data: dict, value: str) -> None:  # type: ignore[type-arg]
    data["channels"]["telemetry"]["epochs"][0]["sealed"]["dashboard"] = value


def _digest(data: dict, value: str) -> None:  # type: ignore[type-arg]
    [entry] = data.values()  # the policy's one record (under its name and deployment id)
    entry["digest"] = value


@dataclass(frozen=True)
class Slot:
    """A place in one file of the deployment where a value can be written."""

    file: str
    edit: Callable[[str, str], str]
    free_text: bool = False  # loads fine with any text in it (nothing to refuse but a key)


POLICY_ID = re.compile(r"(  dashboard: )\S+")
SLOTS = {
    "policy description": Slot("policy.yaml", _append('description: "{v}"\n'), True),
    "channel description": Slot(
        "policy.yaml",
        _replace("    pattern: pubsub\n", '    pattern: pubsub\n    description: "{v}"\n'),
        True,
    ),
    "policy comment": Slot("policy.yaml", _append("# {v}\n"), True),
    "policy name": Slot("policy.yaml", _replace("name: factory", 'name: "{v}"')),
    "identity key": Slot("policy.yaml", lambda t, v: POLICY_ID.sub(rf'\g<1>"{v}"', t, count=1)),
    "role member": Slot(
        "policy.yaml", _replace("subscribers: [dashboard]", 'subscribers: [dashboard, "{v}"]')
    ),
    "max_age": Slot(
        "policy.yaml",
        _replace("    pattern: pubsub\n", '    pattern: pubsub\n    max_age: "{v}"\n'),
    ),
    "scheme": Slot(
        "policy.yaml", _replace("    pattern: pubsub\n", '    pattern: pubsub\n    scheme: "{v}"\n')
    ),
    "unknown field": Slot("policy.yaml", _append('"{v}": 1\n')),
    "channel name": Slot("policy.yaml", _replace("  telemetry:\n", '  "{v}":\n')),
    "topology host": Slot("topology.yaml", _replace("host: edge", 'host: "{v}"'), True),
    "topology identity": Slot(
        "topology.yaml", _replace("    host: edge\n", '    host: edge\n    identity: "{v}"\n')
    ),
    "topology role": Slot("topology.yaml", _replace("role: publisher", 'role: "{v}"')),
    "topology dial": Slot("topology.yaml", _replace('dial: "tcp://hub:5555"', 'dial: "{v}"')),
    "topology comment": Slot("topology.yaml", _replace("# the deployment", "# {v}"), True),
    "channel-key entry": Slot("policy.keys.json", _json(_entry)),
    "channel-key created": Slot(
        "policy.keys.json",
        _json(lambda d, v: d["channels"]["telemetry"]["epochs"][0].update(created=v)),
    ),
    "public key file": Slot("keys/dashboard.pub", lambda t, v: t.splitlines()[0] + f"\n{v}: x\n"),
    "public key comment": Slot("keys/dashboard.pub", lambda t, v: f"# {v}\n{t}", True),
    "signature comment": Slot("policy.yaml.sig", lambda t, v: f"# {v}\n{t}", True),
    "signature line": Slot("policy.yaml.sig", lambda t, v: "\n".join([*t.splitlines()[:-1], v])),
    "keystore record": Slot("keys/unverified-policies.json", _json(_digest)),
}


def load(root: Path, file: str) -> None:
    """Use the deployment in ``root`` as nngsec would read ``file``."""
    if file == "topology.yaml":
        run_check([root / "policy.yaml", root / file], CheckOptions())
    elif file == "keys/dashboard.pub":
        read_public_file(root / file)
    else:
        Node(load_policy(root / "policy.yaml"), identity="dashboard", keystore=root / "keys")


def attempt(deployment: Path, slot: Slot, value: str) -> NngsecError | None:
    """Write ``value`` into ``slot`` of a copy of the deployment, and use it."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "d"
        which = "signed" if slot.file.endswith(".sig") else "unsigned"
        shutil.copytree(deployment / which, root)
        path = root / slot.file
        path.write_text(slot.edit(path.read_text(), value))
        try:
            load(root, slot.file)
        except NngsecError as error:
            return error
    return None


def test_every_slot_loads_untouched_and_is_read(deployment):
    """The slots are real: the deployment works, and each file is read by its loader."""
    for name, slot in SLOTS.items():
        value = "fine" if slot.free_text else "Junk"
        error = attempt(deployment, slot, value)
        assert (error is None) == slot.free_text, (name, error)


@st.composite
def pasted_secrets(draw: st.DrawFn) -> tuple[str, str]:
    """(the text a user pasted, the secret characters in it)."""
    key = IdentityKey(draw(st.binary(min_size=32, max_size=32))).to_text()
    body = key.removeprefix("nngsec-secret-v1:")
    prefix = draw(st.sampled_from(["nngsec-secret-v1:", "NNGSEC-SECRET-V1:", "Nngsec-Secret-", ""]))
    if prefix:
        shape = draw(st.sampled_from(["{s}", "x{s}", "key={s}.", "see {s} here"]))
    else:  # a bare body, as a value or word of its own
        shape = draw(st.sampled_from(["{s}", "see {s} here", "({s})"]))
    return shape.format(s=prefix + body), body


@PROPERTY
@given(slot=st.sampled_from(sorted(SLOTS)), pasted=pasted_secrets())
def test_a_pasted_private_key_is_refused_anywhere_and_never_shown(deployment, slot, pasted):
    text, body = pasted
    error = attempt(deployment, SLOTS[slot], text)
    assert error is not None, f"a private key in the {slot} was accepted"
    assert_not_repeated(error, body)
    [problem] = error.problems
    assert problem.message.startswith("a private key is written here"), problem
    assert problem.line is not None and problem.column is not None
    assert "exposed" in problem.hint


@PROPERTY
@given(
    slot=st.sampled_from(sorted(n for n, s in SLOTS.items() if not s.free_text)),
    value=st.text(BASE64URL, min_size=WINDOW, max_size=80).filter(
        lambda v: any(c.isupper() for c in v)
    ),
)
def test_no_message_repeats_more_than_12_characters_of_a_refused_value(deployment, slot, value):
    error = attempt(deployment, SLOTS[slot], value)
    assert error is not None, f"{value!r} in the {slot} was accepted"
    assert_not_repeated(error, value)


@pytest.mark.parametrize(
    "command",
    [
        ["check", "policy.yaml"],
        ["sign", "policy.yaml", "--key", "admin/admin.key"],
        ["rotate", "policy.yaml"],
    ],
)
def test_the_command_line_refuses_and_does_not_show_it(deployment, tmp_path, monkeypatch, command):
    root = tmp_path / "d"
    shutil.copytree(deployment / "signed", root)
    secret = IdentityKey(bytes(range(32))).to_text()
    policy = root / "policy.yaml"
    policy.write_text(policy.read_text() + f"description: the key is {secret}\n")
    result = InProcessCli(monkeypatch, root)(*command)
    assert result.code == 2, result
    body = secret.removeprefix("nngsec-secret-v1:")
    assert not [w for w in windows(body) if w in result.err + result.out]
    [line] = result.error_lines
    lines = policy.read_text().splitlines()
    place = f"{policy.name}:{len(lines)}:25"
    assert line.startswith(f"nngsec: error: {place}: a private key is written here")
