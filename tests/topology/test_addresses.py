"""NNG address parsing and which dial reaches which listen (pure functions)."""

from __future__ import annotations

import re

import pytest

from nngsec._topology._addresses import dial_keys, listen_key, parse_address


def reaches(dial: str, listen: str, *, dial_host: str, listen_host: str, same_node: bool = False):
    d = parse_address(dial, listen=False)
    source = listen_key(parse_address(listen, listen=True), host=listen_host, node="b")
    node = "b" if same_node else "a"
    return source in dial_keys(d, host=dial_host, node=node)


@pytest.mark.parametrize(
    ("dial", "listen", "dial_host", "listen_host", "expected"),
    [
        ("tcp://hub:5555", "tcp://*:5555", "edge", "hub", True),
        ("tcp://hub:5555", "tcp://0.0.0.0:5555", "edge", "hub", True),
        ("tcp://hub:5555", "tcp://:5555", "edge", "hub", True),
        ("tcp://HUB:5555", "tcp://[::]:5555", "edge", "hub", True),
        ("tcp://hub:5555", "tcp://*:5556", "edge", "hub", False),
        ("tcp://other:5555", "tcp://*:5555", "edge", "hub", False),
        ("tcp://hub:5555", "tcp://hub:5555", "edge", "anything", True),  # named: exact
        ("tcp://10.0.0.5:5555", "tcp://hub:5555", "edge", "hub", False),  # no resolving
        ("tcp://localhost:5555", "tcp://*:5555", "hub", "hub", True),
        ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5555", "hub", "hub", True),
        ("tcp://[::1]:5555", "tcp://localhost:5555", "hub", "hub", True),
        ("tcp://localhost:5555", "tcp://*:5555", "edge", "hub", False),  # other host
        ("tcp://hub:5555", "tcp://127.0.0.1:5555", "edge", "hub", False),
        ("tls+tcp://hub:5555", "tcp://*:5555", "edge", "hub", False),
        ("tls+tcp://hub:5555", "tls+tcp://*:5555", "edge", "hub", True),
        ("tcp4://hub:5555", "tcp://*:5555", "edge", "hub", True),
        ("ws://hub:80/a", "ws://*:80/a", "edge", "hub", True),
        ("ws://hub:80/a", "ws://*:80/b", "edge", "hub", False),
        ("ipc:///tmp/x.sock", "ipc:///tmp/x.sock", "ops", "ops", True),
        ("ipc:///tmp/x.sock", "ipc:///tmp/x.sock", "edge", "ops", False),
        ("ipc:///tmp/x.sock", "ipc:///tmp/y.sock", "ops", "ops", False),
    ],
)
def test_dial_reaches_listen(dial, listen, dial_host, listen_host, expected):
    assert reaches(dial, listen, dial_host=dial_host, listen_host=listen_host) is expected


def test_inproc_connects_within_one_node_only():
    assert reaches("inproc://a", "inproc://a", dial_host="h", listen_host="h", same_node=True)
    assert not reaches("inproc://a", "inproc://a", dial_host="h", listen_host="h")


@pytest.mark.parametrize(
    ("text", "listen", "message"),
    [
        ("hub:5555", True, "expected an address like tcp://host:5555"),
        ("udp://hub:5555", True, "unsupported transport 'udp'"),
        ("tcp://hub", True, "has no port"),
        ("tcp://hub:0", True, "invalid port '0'"),
        ("tcp://hub:70000", True, "invalid port '70000'"),
        ("tcp://hub:55a", True, "invalid port '55a'"),
        ("tcp://hub:\u0665\u0665\u0665\u0665", True, "invalid port"),  # Arabic-Indic digits
        ("tcp://hub:5555/path", True, "has a path"),
        ("tcp://*:5555", False, "cannot dial 'tcp://*:5555'"),
        ("tcp://0.0.0.0:5555", False, "cannot dial"),
        ("tcp://hu b:5555", True, "invalid host 'hu b'"),
        ("tcp://[::1:5555", True, "expected tcp://[ipv6-address]:port"),
        ("ipc://", True, "names no endpoint"),
    ],
)
def test_invalid_addresses(text, listen, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_address(text, listen=listen)


def test_parsed_fields():
    address = parse_address("tls+tcp6://[FE80::1]:443", listen=False)
    assert (address.transport, address.host, address.port, address.scope) == (
        "tls+tcp",
        "fe80::1",
        443,
        "named",
    )
    assert parse_address("ws://h:80", listen=True).path == "/"
    assert parse_address("ipc://rel/x.sock", listen=True).path == "rel/x.sock"
