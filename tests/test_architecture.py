"""The layout keeps its promises: the exact public surface, one error taxonomy, no import
cycles, imports that only go down the layers, a relay that cannot reach a key, and a module
map in docs/architecture.md that names every module."""

from __future__ import annotations

import ast
import pickle
import re
from collections.abc import Iterator
from pathlib import Path

import pynng
import pytest

import nngsec
from nngsec import NngsecError, PolicyError, Rejected, UsageError
from tests.support import ALL_CHANNELS

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "nngsec"


def test_exported_members():
    """The curated public surface, exactly (httpx's test_exported_members)."""
    assert sorted(nngsec.__all__) == [
        "Finding",
        "IdentityKey",
        "Keystore",
        "KeystoreError",
        "NngsecError",
        "Node",
        "Policy",
        "PolicyError",
        "Problem",
        "PublicIdentity",
        "Received",
        "Rejected",
        "Relay",
        "SecureContext",
        "SecureSocket",
        "SocketStats",
        "UsageError",
        "__version__",
        "check",
        "load_policy",
        "relay",
    ]
    for name in nngsec.__all__:
        value = getattr(nngsec, name)
        if callable(value):
            assert value.__module__ == "nngsec", name


def test_public_exceptions_pickle_and_print_as_nngsec():
    error = pickle.loads(pickle.dumps(Rejected("replay", "seq 3")))
    assert (type(error), error.reason, error.detail) == (Rejected, "replay", "seq 3")
    assert repr(type(error)) == "<class 'nngsec.Rejected'>"


def test_usage_error_is_the_callers_mistake():
    assert issubclass(UsageError, NngsecError)
    assert issubclass(UsageError, ValueError)
    assert not issubclass(UsageError, PolicyError)
    assert Rejected.REASONS == (
        "malformed",
        "wrong-channel",
        "unknown-sender",
        "unauthorized",
        "revoked",
        "too-large",
        "stale",
        "replay",
        "no-key",
        "forged",
    )


def test_caller_mistakes_raise_usage_error(world_factory):
    world = world_factory(
        ALL_CHANNELS.replace("  reqrep-single:\n", "  reqrep-single:\n    max_message_size: 16B\n"),
        ("alice", "bob", "carol", "dave", "erin"),
    )
    alice, carol = world.node("alice"), world.node("carol")
    with pytest.raises(UsageError, match="exceeds max_message_size"):
        alice.seal("reqrep-single", b"x" * 17)
    with pytest.raises(UsageError, match="at most 255 bytes"):
        alice.seal("pubsub-sealed", b"x", topic="t." + "x" * 254)
    with pytest.raises(UsageError, match="no topics"):
        alice.seal("pipeline-sealed", b"x", topic="t.")
    with (
        pynng.Rep0() as raw,
        carol.attach(raw, "reqrep-single") as rep,
        pytest.raises(UsageError, match="nothing to answer"),
    ):
        rep.send(b"too early")
    with pytest.raises(UsageError, match="no relay for pattern 'pair'"):
        nngsec.Relay("pair", front="inproc://a", back="inproc://b")
    with pynng.Pub0() as raw, pytest.raises(UsageError, match="on_reject"):
        alice.attach(raw, "pubsub-sealed", on_reject="ignore")


def test_sealed_body_uses_the_epoch_its_header_names(world_factory, monkeypatch):
    """Keys reloaded between choosing a frame's epoch and sealing its body must not make
    the body use the new epoch's key (every receiver would reject the frame as forged).
    This held only through an ``assert`` once, gone under ``python -O``."""
    world = world_factory(
        "channels:\n  t:\n    pattern: pubsub\n    publishers: [a]\n    subscribers: [b]\n",
        ("a", "b"),
    )
    sender, receiver = world.node("a"), world.node("b")
    first = sender.channel_keys["t"].current.epoch
    session = sender.sender("t")
    scheme = session.codec.forward
    assert scheme is not None
    chosen = scheme.send_epoch

    def choose_then_rotate(peer: str | None, reply_epoch: int | None) -> int:
        epoch: int = chosen(peer, reply_epoch)
        world.rotate("t")  # a new epoch lands right after the header was stamped
        sender.reload_keys()
        receiver.reload_keys()
        return epoch

    monkeypatch.setattr(scheme, "send_epoch", choose_then_rotate)
    frame = session.seal(b"payload", topic="x")
    message = receiver.open("t", frame)
    assert (message.payload, message.epoch) == (b"payload", first)


# -- imports ------------------------------------------------------------------------------


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imports(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """Every nngsec module ``module`` imports, anywhere in the file (a late import inside a
    function or under ``TYPE_CHECKING`` that dodges a cycle is still an edge)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" for alias in node.names]
            found = [name for name in names if name in known]
            if found:  # `from . import _demo` imports the module _demo
                yield from found
            elif target in known:
                yield target
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in known)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {m: set(_imports(m, p, known)) - {m} for m, p in modules.items()}


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


# Lower layers never import higher ones: formats <- keys <- policy <- runtime <- cli. The
# checker stands on policy and keys (not the runtime); the relay on nothing that holds keys.
LAYERS = {
    "nngsec._errors": 0,
    "nngsec._version": 0,
    "nngsec._patterns": 0,
    "nngsec._formats": 1,
    "nngsec._keys": 2,
    "nngsec._relay": 2,
    "nngsec._policy": 3,
    "nngsec._runtime": 4,
    "nngsec._topology": 4,
    "nngsec._cli": 5,
    "nngsec.__main__": 6,
    "nngsec": 6,
}


def _layer(module: str) -> tuple[str, int]:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return prefix, LAYERS[prefix]
    pytest.fail(f"module {module} is in no layer: add it to LAYERS and docs/architecture.md")


def test_imports_only_go_down_the_layers():
    for module, targets in _graph().items():
        home, level = _layer(module)
        for target in targets:
            where, target_level = _layer(target)
            if where == home:
                continue
            assert target_level < level, f"{module} (layer {level}) imports {target}"


def test_the_relay_can_reach_no_key():
    graph = _graph()
    reached: set[str] = set()
    todo = ["nngsec._relay"]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo.extend(graph[module])
    assert reached <= {"nngsec._relay", "nngsec._errors", "nngsec._patterns"}, sorted(reached)


def test_the_module_map_names_every_module():
    text = (ROOT / "docs" / "architecture.md").read_text()
    mapped = set(re.findall(r"^\|\s*`([\w./]+\.py)`\s*\|", text, re.MULTILINE))
    files = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")}
    assert files - mapped == set(), "modules missing from docs/architecture.md's module map"
    assert mapped - files == set(), "docs/architecture.md maps modules that do not exist"
