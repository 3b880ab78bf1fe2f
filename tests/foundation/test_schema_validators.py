"""Two JSON Schema validators and the loader agree.

The second validator is ajv (the validator behind most JavaScript tooling and the one the
issue tried), in its default strict mode, run by Node.js from ``tests/ajv`` (versions pinned
by its package-lock.json; ``make test`` installs it with ``npm ci``). Python's jsonschema is
the first. Both validate the example deployment, the bad-policy corpus and the spellings
the loader accepts; where they disagree with the loader it must be a rule a JSON Schema
cannot state (cross-references, checksums, value ranges of a string), listed below.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]
import pytest

from nngsec import PolicyError, load_policy
from nngsec._cli._info_commands import KINDS, json_schema
from nngsec._formats._yaml import load_yaml_file, parse_yaml
from nngsec._policy._load import parse_policy
from nngsec._topology._load import topology_from_document
from tests.support import DATA, K1, ROOT

AJV = ROOT / "tests" / "ajv"
BAD = DATA / "bad_policies"
FACTORY = (ROOT / "policies" / "factory.yaml").read_text()
TOPOLOGY = (ROOT / "policies" / "factory.topology.yaml").read_text()

# What the loader refuses and a JSON Schema cannot say, by corpus file.
LOADER_ONLY = {
    "duration-too-long": "the range of a duration written as a string (1ms to 7d)",
    "size-fraction-of-byte": "a whole number of bytes (1.5B), an arithmetic rule",
    "format-version-float": "1.0 and 1 are the same JSON number",
    "group-cycle": "a cross-reference: groups naming each other",
    "identity-and-group": "a cross-reference: one name in two sections",
    "pair-one-member": "the members a pair names once groups are expanded",
    "pair-three-members": "the members a pair names once groups are expanded",
    "public-key-checksum": "the checksum inside a key",
    "public-key-duplicate": "a cross-reference: two identities with one key",
    "revoked-group": "a cross-reference: a group listed under revoked",
    "revoked-twice": "a repeated identity (uniqueItems would also refuse a repeated group)",
    "revoked-unknown": "a cross-reference: a name no identity defines",
    "role-with-empty-group": "the members a role names once groups are expanded",
    "unknown-name-in-group": "a cross-reference: a name no identity or group defines",
    "unknown-name-in-role": "a cross-reference: a name no identity or group defines",
}


@cache
def schemas() -> dict[str, dict[str, Any]]:
    return {kind: json_schema(kind) for kind in KINDS}


def ajv(documents: list[tuple[str, Any]]) -> list[bool]:
    """ajv's verdict on each (schema kind, data); every strict-mode warning fails."""
    node = shutil.which("node")
    if node is None or not (AJV / "node_modules" / "ajv").is_dir():
        pytest.fail("ajv is not installed: run make test (npm ci --prefix tests/ajv)")
    request = {"schemas": schemas(), "documents": [{"schema": k, "data": d} for k, d in documents]}
    done = subprocess.run(
        [node, str(AJV / "validate.mjs")],
        input=json.dumps(request, allow_nan=False),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["warnings"] == [], "ajv's strict mode warns about the schemas"
    return [result["valid"] for result in answer["results"]]


def python_valid(kind: str, data: Any) -> bool:
    return not list(jsonschema.Draft202012Validator(schemas()[kind]).iter_errors(data))


def loader_accepts_policy(text: str) -> bool:
    try:
        parse_policy(text, "policy.yaml")
    except PolicyError:
        return False
    return True


def _corpus() -> dict[str, Any]:
    """The bad-policy corpus as data (files that are not even YAML or JSON left out)."""
    files = {}
    for path in sorted(BAD.glob("*.yaml")):
        try:
            data = load_yaml_file(path).data
            json.dumps(data, allow_nan=False)
        except PolicyError:
            continue  # not YAML a validator could be given (syntax, encoding, duplicate key)
        except ValueError:
            continue  # .nan: not JSON (the Python validator refuses it, below)
        files[path.stem] = data
    return files


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# Spellings the loader accepts and the schema used to refuse; each with a near miss that
# both refuse, so that the schema is not simply accepting everything.
POLICY_SPELLINGS = {
    "an empty revoked section": (("revoked: []", "revoked:"), ("revoked: []", "revoked: 5")),
    "a space in a duration": (
        ("max_age: 30s", "max_age: 30 s"),
        ("max_age: 30s", "max_age: 30 sec"),
    ),
    "a space in a size": (
        ("max_message_size: 256KiB", "max_message_size: 256 KiB"),
        ("max_message_size: 256KiB", "max_message_size: 256 KIB"),
    ),
    "a quoted key with a trailing space": (
        (f"sensor-1: {K1}", f'sensor-1: "{K1} "'),
        (f"sensor-1: {K1}", f'sensor-1: "{K1} x"'),
    ),
}
TOPOLOGY_SPELLINGS = {
    "an upper-case transport": (
        ('dial: "tcp://hub:5555"', 'dial: "TCP://hub:5555"'),
        ('dial: "tcp://hub:5555"', 'dial: "TCPX://hub:5555"'),
    ),
    "a list of addresses": (
        ('dial: "tcp://hub:5556"', 'dial: ["tcp://hub:5556"]'),
        ('dial: "tcp://hub:5556"', "dial: [5556]"),
    ),
}


def _spelled(base: str, spellings: dict[str, Any]) -> dict[tuple[str, bool], str]:
    """(case, accepted?) -> the file's text with that spelling."""
    texts = {}
    for case, (accepted, refused) in spellings.items():
        texts[case, True] = _replace(base, *accepted)
        texts[case, False] = _replace(base, *refused)
    return texts


POLICY_TEXTS = _spelled(FACTORY, POLICY_SPELLINGS)
TOPOLOGY_TEXTS = _spelled(TOPOLOGY, TOPOLOGY_SPELLINGS)
CORPUS = _corpus()


def _data(text: str, what: str) -> Any:
    return parse_yaml(text, f"{what}.yaml", what=what).data


@pytest.fixture(scope="module")
def by_ajv() -> dict[object, bool]:
    """ajv's verdict on every document of this module, in one run of node."""
    documents: dict[object, tuple[str, Any]] = {
        ("example", "policy"): ("policy", _data(FACTORY, "policy")),
        ("example", "topology"): ("topology", _data(TOPOLOGY, "topology")),
        ("example", "channel-keys"): (
            "channel-keys",
            json.loads((ROOT / "policies" / "factory.keys.json").read_text()),
        ),
    }
    documents.update({("corpus", name): ("policy", data) for name, data in CORPUS.items()})
    documents.update({key: ("policy", _data(text, "policy")) for key, text in POLICY_TEXTS.items()})
    documents.update(
        {key: ("topology", _data(text, "topology")) for key, text in TOPOLOGY_TEXTS.items()}
    )
    return dict(zip(documents, ajv(list(documents.values())), strict=True))


def test_ajv_compiles_every_schema_in_strict_mode():
    """An empty batch still compiles all three schemas: an unknown keyword, a union type or
    an ignored keyword would be refused here (the old schema: ``discriminator``)."""
    assert ajv([]) == []


def test_validators_and_loader_agree_on_the_bad_policy_corpus(by_ajv):
    assert len(CORPUS) >= 45
    for name, document in CORPUS.items():
        with pytest.raises(PolicyError):
            load_policy(BAD / f"{name}.yaml")  # every file of the corpus is refused
        ajv_valid = by_ajv["corpus", name]
        assert python_valid("policy", document) == ajv_valid, name
        if name in LOADER_ONLY:
            assert ajv_valid, f"{name} is refused by the schema now: drop it from LOADER_ONLY"
        else:
            assert not ajv_valid, f"{name}: the loader refuses it, the schema accepts it"
    assert set(LOADER_ONLY) <= set(CORPUS)


def test_a_yaml_nan_is_refused_by_the_schema_and_the_loader():
    document = load_yaml_file(BAD / "duration-nan.yaml").data
    assert not python_valid("policy", document)
    with pytest.raises(PolicyError):
        load_policy(BAD / "duration-nan.yaml")


@pytest.mark.parametrize("case", list(POLICY_SPELLINGS))
def test_the_loader_and_both_validators_accept_the_same_policy_spellings(case, by_ajv):
    for accepted in (True, False):
        text = POLICY_TEXTS[case, accepted]
        assert loader_accepts_policy(text) is accepted, (case, accepted)
        assert by_ajv[case, accepted] is accepted, (case, accepted)
        assert python_valid("policy", _data(text, "policy")) is accepted, (case, accepted)


@pytest.mark.parametrize("case", list(TOPOLOGY_SPELLINGS))
def test_the_loader_and_both_validators_accept_the_same_topology_spellings(case, by_ajv, tmp_path):
    for accepted in (True, False):
        text = TOPOLOGY_TEXTS[case, accepted]
        assert loader_accepts_topology(text, tmp_path) is accepted, (case, accepted)
        assert by_ajv[case, accepted] is accepted, (case, accepted)
        assert python_valid("topology", _data(text, "topology")) is accepted, (case, accepted)


def test_the_example_deployment_is_valid_to_all_three(by_ajv):
    for kind in KINDS:
        assert by_ajv["example", kind], kind
    assert python_valid("policy", _data(FACTORY, "policy"))
    assert python_valid("topology", _data(TOPOLOGY, "topology"))
    load_policy(ROOT / "policies" / "factory.yaml")
    assert loader_accepts_topology(TOPOLOGY, ROOT / "policies")


def loader_accepts_topology(text: str, directory: Path) -> bool:
    """The topology loader of ``nngsec check`` on ``text``."""
    path = directory / "factory.topology.yaml"
    try:
        topology_from_document(parse_yaml(text, str(path), what="topology"), path)
    except PolicyError:
        return False
    return True
