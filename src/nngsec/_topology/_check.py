"""Running a check: read the inputs, build the link graph, run the rules, sort the findings.

Inputs that cannot be read or parsed raise :class:`PolicyError` (exit status 2 on the
command line); everything else the checker has to say is a :class:`Finding`.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from .._errors import NngsecError, PolicyError, Problem
from .._formats._limits import POLICY_LIMIT
from .._formats._yaml import format_loc, parse_yaml, read_text
from .._keys._channel_keys import ChannelKeyFile
from .._keys._files import read_public_file
from .._keys._identity import PublicIdentity
from .._keys._keystore import Keystore
from .._policy._checks import duplicate_keys, unknown_names
from .._policy._load import parse_policy
from .._policy._model import PolicyModel
from .._policy._policy import Policy
from ._findings import SEVERITIES, Finding, Severity
from ._links import Graph, build_graph
from ._load import Topology, topology_from_document
from ._rules import DEFAULT_MAC_AUDIENCE, DEFAULT_WIDE_SECRET, RULES, Context, ordered_rules
from ._rules._base import DEFAULT_EXPIRY_WARNING

__all__ = ["CheckOptions", "CheckResult", "check", "load_policy_for_check", "run_check"]

_TOPOLOGY_KEYS = re.compile(r"^(?:nodes|policy)\s*:", re.MULTILINE)
_POLICY_KEYS = re.compile(r"^(?:identities|channels|groups)\s*:", re.MULTILINE)


@dataclass(frozen=True)
class CheckOptions:
    """How to check: where the keys are, which rules to skip, which severities to change."""

    keystore: Path | None = None
    trusted: tuple[Path, ...] = ()
    ignore: frozenset[str] = frozenset()
    severities: Mapping[str, Severity] = field(default_factory=dict)
    warn_as_error: bool = False
    wide_secret_threshold: int = DEFAULT_WIDE_SECRET
    mac_audience_threshold: int = DEFAULT_MAC_AUDIENCE
    expiry_warning: float = DEFAULT_EXPIRY_WARNING
    now: float | None = None  # the time expiry is judged at (default: now)

    def validate(self) -> None:
        """Refuse unknown rule ids, so that a typo does not silently keep a rule on."""
        names = list(RULES)
        problems = []
        for rule_id in (*self.ignore, *self.severities):
            if rule_id not in RULES:
                close = difflib.get_close_matches(rule_id, names, n=1)
                problems.append(
                    Problem(
                        f"unknown rule {rule_id!r}",
                        hint=f"did you mean {close[0]!r}?"
                        if close
                        else "nngsec check --list-rules shows them",
                    )
                )
        for rule_id, severity in self.severities.items():
            if severity not in SEVERITIES:
                problems.append(
                    Problem(
                        f"unknown severity {severity!r} for {rule_id}, expected error or warning"
                    )
                )
        if self.wide_secret_threshold < 1:
            problems.append(Problem("the wide-secret threshold must be at least 1"))
        if self.mac_audience_threshold < 1:
            problems.append(Problem("the large-mac-audience threshold must be at least 1"))
        if problems:
            raise NngsecError(problems)


@dataclass(frozen=True)
class CheckResult:
    policy: Policy
    topologies: tuple[Topology, ...]
    graph: Graph
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")


def check(
    policy: str | Path,
    topologies: Iterable[str | Path] = (),
    *,
    keystore: str | Path | None = None,
    trusted: Iterable[str | Path] = (),
    ignore: Iterable[str] = (),
    warn_as_error: bool = False,
    wide_secret_threshold: int = DEFAULT_WIDE_SECRET,
    mac_audience_threshold: int = DEFAULT_MAC_AUDIENCE,
) -> list[Finding]:
    """Validate a deployment offline: ``nngsec check`` as a function.

    ``policy`` is a policy file (or a topology file naming its policy, when ``topologies``
    is empty). Returns the findings sorted by file and line; raises
    :class:`nngsec.PolicyError` when an input cannot be read or parsed.
    """
    options = CheckOptions(
        keystore=Path(keystore) if keystore is not None else None,
        trusted=tuple(Path(t) for t in trusted),
        ignore=frozenset(ignore),
        warn_as_error=warn_as_error,
        wide_secret_threshold=wide_secret_threshold,
        mac_audience_threshold=mac_audience_threshold,
    )
    return list(run_check([Path(policy), *(Path(t) for t in topologies)], options).findings)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while large inputs are loaded.

    Loading a 10,000-node topology allocates a few million small objects (YAML nodes,
    positions, models), which triggers full collections again and again: with collection
    paused, a check of that size takes a third of the time. The loaded data holds no
    reference cycles, so nothing accumulates; the previous state is restored on exit.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run_check(paths: Sequence[Path], options: CheckOptions | None = None) -> CheckResult:
    """Check ``POLICY [TOPOLOGY...]`` or ``TOPOLOGY...`` (each naming its policy)."""
    options = options or CheckOptions()
    options.validate()
    if not paths:
        raise NngsecError(Problem("nothing to check", hint="nngsec check POLICY [TOPOLOGY...]"))
    with _collector_paused():
        return _run(paths, options)


def _run(paths: Sequence[Path], options: CheckOptions) -> CheckResult:
    policy_path, topologies = _resolve_inputs(paths)
    policy = load_policy_for_check(policy_path)
    keystore = _keystore(options.keystore)
    trusted = _trusted(options.trusted)
    keys = ChannelKeyFile.load(policy.keys_path) if policy.keys_path else None
    graph = build_graph(topologies, policy.pattern)
    context = Context(
        policy=policy,
        topologies=topologies,
        graph=graph,
        keys=keys,
        keystore=keystore,
        trusted=trusted,
        wide_secret_threshold=options.wide_secret_threshold,
        mac_audience_threshold=options.mac_audience_threshold,
        now=time.time() if options.now is None else options.now,
        expiry_warning=options.expiry_warning,
    )
    findings: list[Finding] = []
    for rule in ordered_rules():
        if rule.id in options.ignore:
            continue
        if (rule.scope == "topology" and not topologies) or (
            rule.scope == "keystore" and keystore is None
        ):
            continue
        for issue in rule.check(context):
            severity = options.severities.get(rule.id) or issue.severity or rule.severity
            if options.warn_as_error:
                severity = "error"
            findings.append(
                Finding(
                    rule.id,
                    severity,
                    issue.message,
                    issue.place.file,
                    issue.place.line,
                    issue.place.column,
                    issue.hint,
                    issue.subjects,
                )
            )
    findings.sort(key=Finding.sort_key)
    return CheckResult(policy, topologies, graph, tuple(findings))


def load_policy_for_check(path: Path) -> Policy:
    """Load a policy like :func:`nngsec.load_policy`, except that names no identity or group
    defines are left for the ``unknown-identity`` rule to report (with every other rule)
    instead of refusing the whole policy."""
    text = read_text(path, what="policy", limit=POLICY_LIMIT)
    try:
        return parse_policy(text, str(path), file=path)
    except PolicyError as error:
        doc = parse_yaml(text, str(path), what="policy")
        try:
            model = PolicyModel.model_validate(doc.data)
        except ValidationError:
            raise error from None
        # Left to rules: unknown names (unknown-identity), shared keys (duplicate-identity).
        keys = {name: entry.key for name, entry in model.identities.items()}
        tolerated = {format_loc(loc) for loc, _, _ in unknown_names(doc.data)} | {
            format_loc(("identities", name)) for name, _, _ in duplicate_keys(keys)
        }
        if any(p.field not in tolerated for p in error.problems):
            raise
        return Policy(model, path=path, source=text.encode("utf-8"), document=doc)


def _resolve_inputs(paths: Sequence[Path]) -> tuple[Path, tuple[Topology, ...]]:
    first = paths[0]
    text = read_text(first, what="policy")
    problems: list[Problem] = []
    topologies: list[Topology] = []
    policy_path: Path | None = first
    if _TOPOLOGY_KEYS.search(text):  # `check TOPOLOGY...`: the topologies name the policy
        policy_path = None
        doc = parse_yaml(text, str(first), what="topology")
        try:
            topologies.append(topology_from_document(doc, first))
        except PolicyError as error:
            problems.extend(error.problems)
    for path in paths[1:]:
        try:
            topologies.append(_load_topology_argument(path))
        except PolicyError as error:
            problems.extend(error.problems)
    if problems:
        raise PolicyError(problems)
    if policy_path is None:
        policy_path = _policy_named_by(topologies)
    _check_node_names(topologies)
    return policy_path, tuple(topologies)


def _load_topology_argument(path: Path) -> Topology:
    text = read_text(path, what="topology")
    if not _TOPOLOGY_KEYS.search(text) and _POLICY_KEYS.search(text):
        raise PolicyError(
            Problem(
                "expected a topology file here, this looks like a policy",
                str(path),
                hint="give the policy first: nngsec check POLICY TOPOLOGY...",
            )
        )
    doc = parse_yaml(text, str(path), what="topology")
    return topology_from_document(doc, path)


def _policy_named_by(topologies: list[Topology]) -> Path:
    chosen: tuple[Path, Topology] | None = None
    for topology in topologies:
        named = topology.policy_path
        if named is None:
            raise PolicyError(
                topology.document.problem(
                    (),
                    "the topology does not name its policy",
                    "add 'policy: FILE' (relative to the topology), or run "
                    "nngsec check POLICY TOPOLOGY...",
                )
            )
        if not named.is_file():
            raise PolicyError(
                topology.document.problem(
                    ("policy",),
                    f"policy file {str(named)!r} not found",
                    "the path is relative to the topology file",
                )
            )
        if chosen is None:
            chosen = (named, topology)
        elif named.resolve() != chosen[0].resolve():
            raise PolicyError(
                topology.document.problem(
                    ("policy",),
                    f"this topology names policy {str(named)!r}, but {chosen[1].display} "
                    f"names {str(chosen[0])!r}",
                    "check one deployment (one policy) at a time",
                )
            )
    if chosen is None:
        raise PolicyError(Problem("no topology names a policy", hint="nngsec check POLICY ..."))
    return chosen[0]


def _check_node_names(topologies: list[Topology]) -> None:
    seen: dict[str, Topology] = {}
    problems = []
    for topology in topologies:
        for node in topology.model.nodes:
            other = seen.setdefault(node, topology)
            if other is not topology:
                line, _ = other.document.place(("nodes", node), key=True)
                problems.append(
                    topology.document.problem(
                        ("nodes", node),
                        f"node {node!r} is also defined in {other.display}:{line}",
                        "node names are unique across the topology files of a deployment",
                        key=True,
                    )
                )
    if problems:
        raise PolicyError(problems)


def _keystore(directory: Path | None) -> Keystore | None:
    if directory is None:
        return None
    if not directory.is_dir():
        raise NngsecError(
            Problem("keystore directory not found", str(directory), hint="check --keystore")
        )
    return Keystore(directory)


def _trusted(paths: tuple[Path, ...]) -> dict[str, PublicIdentity]:
    signers: dict[str, PublicIdentity] = {}
    for path in paths:
        name, public = read_public_file(path)
        signers[name] = public
    return signers
