"""``revoke``'s text edit (``nngsec._policy._edit.add_revoked``): the file stays as written.

Each case gives a policy as the admin wrote it and the exact text expected after revoking
``dashboard``: only ``revoked:`` and ``version:`` change; comments, order, quoting, blank
lines and line endings are kept.
"""

from __future__ import annotations

import pytest

from nngsec import PolicyError
from nngsec._policy._edit import add_revoked
from nngsec._policy._load import parse_policy
from tests.support import K1, K2

HEAD = f"""# factory policy
nngsec: 1
name: factory  # the name
identities:
  sensor: {K1}   # on the roof
  dashboard: {K2}
"""
V2 = "version: 2\n"


def head_with_version(version: str = V2) -> str:
    return HEAD.replace("name: factory  # the name\n", f"name: factory  # the name\n{version}")


CASES = {
    "absent": (HEAD, head_with_version() + "revoked: [dashboard]\n"),
    "absent-no-final-newline": (HEAD.rstrip("\n"), head_with_version() + "revoked: [dashboard]\n"),
    "empty-flow": (HEAD + "revoked: []\n", head_with_version() + "revoked: [dashboard]\n"),
    "empty-flow-with-comment": (
        HEAD + "revoked: []  # nobody yet\n",
        head_with_version() + "revoked: [dashboard]  # nobody yet\n",
    ),
    "flow": (
        HEAD + "revoked: [sensor]  # stolen\n",
        head_with_version() + "revoked: [sensor, dashboard]  # stolen\n",
    ),
    "flow-trailing-comma": (
        HEAD + "revoked: [sensor,]\n",
        head_with_version() + "revoked: [sensor, dashboard,]\n",
    ),
    "flow-over-lines": (
        HEAD + "revoked: [\n  sensor,  # stolen\n]\n",
        head_with_version() + "revoked: [\n  sensor, dashboard,  # stolen\n]\n",
    ),
    "flow-quoted": (
        HEAD + "revoked: ['sensor']\n",
        head_with_version() + "revoked: ['sensor', dashboard]\n",
    ),
    "block": (
        HEAD + "revoked:\n  - sensor  # stolen\n# the end\n",
        head_with_version() + "revoked:\n  - sensor  # stolen\n  - dashboard\n# the end\n",
    ),
    "block-not-indented": (
        HEAD + "revoked:\n- sensor\n",
        head_with_version() + "revoked:\n- sensor\n- dashboard\n",
    ),
    "block-then-more-fields": (
        HEAD + "revoked:\n    - sensor\ngroups: {}\n",
        head_with_version() + "revoked:\n    - sensor\n    - dashboard\ngroups: {}\n",
    ),
    "block-no-final-newline": (
        HEAD + "revoked:\n  - sensor",
        head_with_version() + "revoked:\n  - sensor\n  - dashboard\n",
    ),
    "null": (HEAD + "revoked:\n", head_with_version() + "revoked: [dashboard]\n"),
    "null-with-comment": (
        HEAD + "revoked:   # nobody yet\n",
        head_with_version() + "revoked: [dashboard]   # nobody yet\n",
    ),
    "null-then-more-fields": (
        HEAD + "revoked:\ngroups: {}\n",
        head_with_version() + "revoked: [dashboard]\ngroups: {}\n",
    ),
    "tilde-with-comment": (
        HEAD + "revoked: ~  # nobody\n",
        head_with_version() + "revoked: [dashboard]  # nobody\n",
    ),
    "null-word": (HEAD + "revoked: null\n", head_with_version() + "revoked: [dashboard]\n"),
    "revoked-first": (
        "revoked: [sensor]\n" + HEAD,
        "revoked: [sensor, dashboard]\n" + head_with_version(),
    ),
    "version-present": (
        head_with_version("version: 41   # bump on every change\n") + "revoked: []\n",
        head_with_version("version: 42   # bump on every change\n") + "revoked: [dashboard]\n",
    ),
    "version-after-identities": (
        HEAD + "version: 9\nrevoked: []\n",
        HEAD + "version: 10\nrevoked: [dashboard]\n",
    ),
    "name-on-the-last-line": (
        f"nngsec: 1\nidentities:\n  sensor: {K1}\n  dashboard: {K2}\nname: factory",
        f"nngsec: 1\nidentities:\n  sensor: {K1}\n  dashboard: {K2}\nname: factory\n"
        "version: 2\nrevoked: [dashboard]\n",
    ),
    "name-value-on-its-own-line": (
        HEAD.replace("name: factory  # the name", "name:\n  factory"),
        HEAD.replace("name: factory  # the name", "name:\n  factory\nversion: 2")
        + "revoked: [dashboard]\n",
    ),
    "document-start-marker": (
        "---\n" + HEAD + "revoked: []\n",
        "---\n" + head_with_version() + "revoked: [dashboard]\n",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_revoke_keeps_the_file_as_written(name):
    before, expected = CASES[name]
    after = add_revoked(before, "p.yaml", "dashboard")
    assert after == expected
    policy = parse_policy(after, "p.yaml")
    assert "dashboard" in policy.revoked
    assert policy.version == parse_policy(before, "p.yaml").version + 1


@pytest.mark.parametrize("name", ["absent", "block", "flow", "null-with-comment"])
def test_windows_line_endings_are_kept(name):
    before, expected = CASES[name]
    after = add_revoked(before.replace("\n", "\r\n"), "p.yaml", "dashboard")
    assert after == expected.replace("\n", "\r\n")


@pytest.mark.parametrize(
    "text",
    [
        # a whole policy in flow style: there is no line to add "revoked:" to
        "{nngsec: 1, name: factory, identities: {sensor: " + K1 + ", dashboard: " + K2 + "}}\n",
        # an explicit document end: text after it would be a second document
        HEAD.replace("# factory policy\n", "") + "...\n",
    ],
)
def test_a_layout_the_edit_cannot_handle_is_refused_not_broken(text):
    with pytest.raises(PolicyError) as caught:
        add_revoked(text, "p.yaml", "dashboard")
    [problem] = caught.value.problems
    assert "could not add 'dashboard' to revoked" in problem.message
    assert "by hand" in problem.hint
    assert (problem.path, problem.line, problem.column) == ("p.yaml", 1, 1)
