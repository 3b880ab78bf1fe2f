"""The exception tree and the one-line form of a problem."""

from __future__ import annotations

import pickle

import pytest

import nngsec
from nngsec import KeystoreError, NngsecError, PolicyError, Problem, Rejected


def test_the_exception_tree():
    for error in (PolicyError, KeystoreError, Rejected):
        assert issubclass(error, NngsecError)
    assert issubclass(NngsecError, Exception)
    assert set(nngsec.__all__) >= {
        "NngsecError",
        "PolicyError",
        "KeystoreError",
        "Rejected",
        "Problem",
        "Keystore",
        "Node",
        "Policy",
        "load_policy",
    }


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        (
            Problem("bad", "p.yaml", 3, 7, "channels.t.max_age", "write 30s"),
            "p.yaml:3:7: channels.t.max_age: bad (hint: write 30s)",
        ),
        (Problem("bad", "p.yaml", 3), "p.yaml:3: bad"),
        (Problem("bad", "p.yaml"), "p.yaml: bad"),
        (Problem("bad", field="name", hint="h"), "name: bad (hint: h)"),
        (Problem("bad"), "bad"),
    ],
)
def test_a_problem_prints_as_one_line(problem, text):
    assert str(problem) == text


def test_an_error_carries_every_problem_and_the_first_place():
    error = PolicyError(
        [Problem("one", "p.yaml", 2, 1, "name", "h1"), Problem("two", "p.yaml", 5, 3, "x", "h2")]
    )
    assert (error.path, error.line, error.column, error.field, error.hint) == (
        "p.yaml",
        2,
        1,
        "name",
        "h1",
    )
    assert str(error) == "p.yaml:2:1: name: one (hint: h1)\np.yaml:5:3: x: two (hint: h2)"
    assert len(error.problems) == 2
    with pytest.raises(ValueError, match="at least one problem"):
        PolicyError([])


def test_rejected_has_its_reason_and_no_fake_place():
    error = Rejected("forged", "bad tag")
    assert error.reason == "forged"
    assert str(error) == "forged: bad tag"
    assert str(Rejected("replay")) == "replay"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, copy.detail) == ("forged", "bad tag")
    assert set(Rejected.REASONS) == {
        "malformed",
        "wrong-channel",
        "unknown-sender",
        "unauthorized",
        "revoked",
        "forged",
        "no-key",
        "replay",
        "stale",
        "too-large",
    }
