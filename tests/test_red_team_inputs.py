"""Red team, second round (after issue 9): private-key text and hostile store answers by
ways in that the fixes did not look at.

- YAML's double-quoted escapes (``\\x2d``, ``\\u002D``, a ``\\`` line continuation) spell a
  private key that the raw-text search of every file cannot see: the policy loaded, with
  the key in ``description:``, on its way to every node.
- A private key given on the command line (pasted where a public key, a name or an option
  value belongs) was repeated whole in the error: ``nngsec trust nngsec-secret-v1:...``.
- An etcd (or anything on its port) answering JSON of the wrong shape made ``Node(...)``
  raise ``AttributeError``/``OverflowError``/``TypeError``, and made the thread that follows
  the store stop for good (no revocation reaches the node until it restarts).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from nngsec import IdentityKey, Node, PolicyError, load_policy
from nngsec._runtime._etcd import EtcdClient, StoreError
from nngsec._runtime._source import StoreSource
from nngsec._runtime._store import StoreAddress
from tests.net import wait_for
from tests.support import TELEMETRY, build_world

WINDOW = 13  # no message may hold this many consecutive characters of a private key
PREFIX = "nngsec-secret-v1:"


def leaked(secret: str, text: str) -> list[str]:
    body = secret.removeprefix(PREFIX)
    return [
        body[i : i + WINDOW] for i in range(len(body) - WINDOW + 1) if body[i : i + WINDOW] in text
    ]


def _escaped_spellings(secret: str) -> dict[str, str]:
    body = secret.removeprefix(PREFIX)
    return {
        "hex-escape-in-prefix-and-body": "nngsec\\x2dsecret-v1:"
        + body[:5]
        + f"\\x{ord(body[5]):02x}"
        + body[6:],
        "unicode-escape-in-prefix-and-body": "nngsec\\u002Dsecret-v1:"
        + body[:20]
        + f"\\u{ord(body[20]):04X}"
        + body[21:],
        "line-continuation-in-the-bare-body": body[:10] + "\\\n  " + body[10:],
    }


@pytest.mark.parametrize("spelling", list(_escaped_spellings("x" * 65)))
def test_a_private_key_spelled_with_yaml_escapes_is_refused_and_not_shown(tmp_path, spelling):
    world = build_world(tmp_path, TELEMETRY, ["sensor", "dashboard"], with_keys=False)
    secret = IdentityKey.generate().to_text()
    value = _escaped_spellings(secret)[spelling]
    text = world.policy_path.read_text()
    world.policy_path.write_text(
        text.replace("name: factory", f'name: factory\ndescription: "{value}"')
    )
    with pytest.raises(PolicyError) as refused:
        load_policy(world.policy_path)
    message = str(refused.value)
    assert "private key" in message
    assert not leaked(secret, message)
    [problem] = refused.value.problems
    assert problem.line == 3  # the description line: the place, not the text


@pytest.mark.parametrize(
    "command",
    [
        ["keygen", "{secret}"],
        ["keygen", "{body}"],
        ["trust", "{secret}"],
        ["trust", "{body}"],
        ["check", "policy.yaml", "--format", "{body}"],
        ["rotate", "policy.yaml", "--no-such-option", "{body}"],
        ["revoke", "policy.yaml", "{secret}"],
    ],
)
def test_a_private_key_on_the_command_line_is_refused_and_not_shown(cli, tmp_path, command):
    build_world(tmp_path, TELEMETRY, ["sensor", "dashboard"])
    secret = IdentityKey.generate().to_text()
    argv = [w.format(secret=secret, body=secret.removeprefix(PREFIX)) for w in command]
    result = cli(*argv)
    assert result.code == 2, result
    assert not leaked(secret, result.out + result.err), result.err


# -- a hostile store ---------------------------------------------------------------------
JUNK_ANSWERS = [
    b'{"header": "x"}',
    b'{"header": []}',
    b'{"header": {"revision": 1e400}}',
    b'{"header": {"revision": "9' + b"9" * 5000 + b'"}}',
    b'{"header": {"revision": {"a": 1}}}',
    b'{"kvs": 5}',
    b'{"kvs": "abc"}',
    b'{"kvs": [{"key": "AA==", "value": 7}]}',
    b'{"kvs": [{"key": "!!", "value": ""}]}',
    b"[1, 2]",
    b"not json",
    b"",
]
JUNK_WATCH_FIRST_LINES = [
    b'{"result": "created"}',
    b'{"result": []}',
    b"[]",
    b"garbage",
]
JUNK_WATCH_EVENTS = [
    b'{"result": {"events": [1], "header": "x"}}',
    b'{"result": {"events": [1], "header": {"revision": 1e400}}}',
    b'{"result": {"events": [1], "header": {"revision": [1]}}}',
    b'{"result": 5}',
]


class _HostileStore:
    """An HTTP server on a loopback port that answers every etcd call with ``answer``
    (range and txn) or, for /v3/watch, ``watch_lines`` (one per line, then it holds)."""

    def __init__(self) -> None:
        self.answer = b"{}"
        self.watch_lines: list[bytes] = [b'{"result": {"created": true}}']
        self.calls = 0
        store = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                store.calls += 1
                if self.path == "/v3/watch":
                    body = b"".join(line + b"\n" for line in store.watch_lines)
                else:
                    body = store.answer
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile_store() -> Iterator[_HostileStore]:
    store = _HostileStore()
    yield store
    store.close()


def test_every_malformed_store_answer_is_a_store_error(hostile_store):
    client = EtcdClient("127.0.0.1", hostile_store.port, timeout=2.0)
    for answer in JUNK_ANSWERS:
        hostile_store.answer = answer
        with pytest.raises(StoreError):
            client.range_prefix(b"/p/")
        if b"kvs" not in answer:  # a transaction's answer has no key-values
            with pytest.raises(StoreError):
                client.txn([], [])
    for first in JUNK_WATCH_FIRST_LINES:
        hostile_store.watch_lines = [first]
        with pytest.raises(StoreError):
            client.watch(b"/p/", 1)
    for event in JUNK_WATCH_EVENTS:
        hostile_store.watch_lines = [b'{"result": {"created": true}}', event]
        watch = client.watch(b"/p/", 1)
        try:
            with pytest.raises(StoreError):
                list(watch)
        finally:
            watch.close()


def test_a_node_started_on_a_hostile_store_gets_a_policy_error(hostile_store, tmp_path: Path):
    world = build_world(tmp_path, TELEMETRY, ["sensor", "dashboard"])
    url = f"etcd://127.0.0.1:{hostile_store.port}/plant"
    for answer in JUNK_ANSWERS[:8]:
        hostile_store.answer = answer
        with pytest.raises(PolicyError) as refused:
            Node(url, identity="sensor", keystore=world.keystore, state_dir=False)
        assert "127.0.0.1" in str(refused.value)


def test_junk_from_the_store_does_not_stop_a_node_following_it(hostile_store):
    """The thread following a store retries after junk, as after an outage: it must not
    end (it is what brings revocations to a running node)."""
    address = StoreAddress.parse(f"etcd://127.0.0.1:{hostile_store.port}/plant")
    source = StoreSource(address, timeout=2.0)
    hostile_store.answer = json.dumps({"header": {"revision": "1"}, "kvs": []}).encode()
    hostile_store.watch_lines = [b'{"result": {"created": true}}', JUNK_WATCH_EVENTS[0]]
    stop = threading.Event()
    outcome: list[BaseException] = []

    def follow() -> None:
        try:
            for _ in source.changes(stop, 0.01):
                pass
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        wait_for(lambda: hostile_store.calls >= 8 or outcome, "the source to retry")
        hostile_store.answer = b'{"header": "x"}'  # the catch-up read is junk too
        calls = hostile_store.calls
        wait_for(lambda: hostile_store.calls >= calls + 3 or outcome, "the source to retry")
        assert not outcome, f"the follower ended: {outcome[0]!r}"
        assert thread.is_alive()
    finally:
        stop.set()
        source.interrupt()
        thread.join(5)
