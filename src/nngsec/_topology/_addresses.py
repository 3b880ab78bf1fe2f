"""NNG addresses as the checker sees them: parsing, and which dial reaches which listen.

Pure functions, no I/O, no name resolution. Transports understood:

- ``tcp://HOST:PORT`` (and ``tcp4://``, ``tcp6://``), ``tls+tcp://HOST:PORT`` (and
  ``tls+tcp4``/``tls+tcp6``), ``ws://HOST:PORT/PATH``, ``wss://HOST:PORT/PATH``;
- ``ipc://PATH``: a socket file, reachable from the same host only;
- ``inproc://NAME``: reachable from the same process (the same topology node) only.

A listen is filed under a *key*; a dial looks up the keys it could reach:

- a listen on ``*``, ``0.0.0.0``, ``::`` or an empty host binds every interface of its
  node's host, so ``tcp://*:5555`` on host ``hub`` is reached by a dial to
  ``tcp://hub:5555`` and by a loopback dial (``localhost``, ``127.0.0.1``, ``::1``) from a
  node on host ``hub``;
- a listen on a loopback address is reached by loopback dials from the same host only;
- a listen on any other name or address is reached by dials to exactly that name (case
  does not matter). The checker does not resolve names: ``tcp://10.0.0.5:5555`` and
  ``tcp://hub:5555`` are different addresses to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .._formats._echo import echo

__all__ = [
    "TRANSPORT_NAMES",
    "Address",
    "Key",
    "dial_keys",
    "listen_key",
    "parse_address",
]

# Transport as written -> the family that decides whether two ends can connect.
_TRANSPORTS: dict[str, str] = {
    "tcp": "tcp",
    "tcp4": "tcp",
    "tcp6": "tcp",
    "tls+tcp": "tls+tcp",
    "tls+tcp4": "tls+tcp",
    "tls+tcp6": "tls+tcp",
    "ws": "ws",
    "wss": "wss",
    "ipc": "ipc",
    "inproc": "inproc",
}
TRANSPORT_NAMES: tuple[str, ...] = tuple(_TRANSPORTS)
"""The transports as an address may spell them (in any case: NNG reads ``TCP://`` too)."""
_NETWORK = frozenset({"tcp", "tls+tcp", "ws", "wss"})
_WITH_PATH = frozenset({"ws", "wss"})
_WILDCARDS = frozenset({"", "*", "0.0.0.0", "::"})  # noqa: S104 - recognised, not bound
_LOOPBACK = re.compile(r"^(?:localhost|127(?:\.\d{1,3}){3}|::1)$")
_HOST = re.compile(r"^[a-z0-9_](?:[a-z0-9_.-]{0,252})$|^[0-9a-f:.]{2,45}$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
SUPPORTED = "tcp, tls+tcp, ws, wss, ipc, inproc"

Scope = Literal["any", "loopback", "named", "local"]
Key = tuple[str, str, str, int, str]
"""(transport family, scope, host or node, port, path): equal keys connect."""


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed NNG URL.

    ``scope`` is ``any`` (all interfaces), ``loopback``, ``named`` (a host name or address)
    for network transports and ``local`` for ``ipc`` and ``inproc``.
    """

    url: str
    transport: str
    host: str
    port: int
    path: str
    scope: Scope

    @property
    def is_network(self) -> bool:
        return self.transport in _NETWORK


def parse_address(text: str, *, listen: bool) -> Address:
    """Parse ``text``; a :class:`ValueError` says what is wrong and what was expected."""
    match = _SCHEME.match(text)
    if match is None:
        raise ValueError(
            f"got {echo(text)}, expected an address like tcp://host:5555 or ipc:///tmp/name.sock"
        )
    written, rest = match.group(1).lower(), match.group(2)
    transport = _TRANSPORTS.get(written)
    if transport is None:
        raise ValueError(f"unsupported transport {echo(written)}, expected {SUPPORTED}")
    if transport in ("ipc", "inproc"):
        if not rest:
            what = "a socket file path" if transport == "ipc" else "a name"
            raise ValueError(f"{echo(text)} names no endpoint, expected {what} after {written}://")
        return Address(text, transport, "", 0, rest, "local")
    return _network(text, written, transport, rest, listen=listen)


def _network(text: str, written: str, transport: str, rest: str, *, listen: bool) -> Address:
    hostport, slash, path = rest.partition("/")
    if slash and transport not in _WITH_PATH:
        raise ValueError(f"{echo(text)} has a path, expected {written}://host:port")
    path = "/" + path if transport in _WITH_PATH else ""
    if hostport.startswith("["):
        host, bracket, port_text = hostport[1:].partition("]")
        if not bracket or not port_text.startswith(":"):
            raise ValueError(f"got {echo(text)}, expected {written}://[ipv6-address]:port")
        port_text = port_text[1:]
    else:
        host, colon, port_text = hostport.rpartition(":")
        if not colon:
            raise ValueError(f"{echo(text)} has no port, expected {written}://host:port")
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid port {echo(port_text)}, expected 1 to 65535")
    host = host.lower()
    if host in _WILDCARDS:
        if not listen:
            raise ValueError(
                f"cannot dial {echo(text)}: a wildcard host only makes sense for listen; "
                "name the host to reach"
            )
        scope: Scope = "any"
    elif _LOOPBACK.match(host):
        scope = "loopback"
    elif _HOST.match(host):
        scope = "named"
    else:
        raise ValueError(f"invalid host {echo(host)}, expected a host name or address")
    return Address(text, transport, host, int(port_text), path, scope)


def listen_key(address: Address, *, host: str, node: str) -> Key:
    """The key a listen on ``address``, run by ``node`` on ``host``, is filed under."""
    if address.transport == "inproc":
        return ("inproc", "node", node, 0, address.path)
    if address.transport == "ipc":
        return ("ipc", "host", host, 0, address.path)
    if address.scope == "any":
        return (address.transport, "any", host, address.port, address.path)
    if address.scope == "loopback":
        return (address.transport, "loopback", host, address.port, address.path)
    return (address.transport, "named", address.host, address.port, address.path)


def dial_keys(address: Address, *, host: str, node: str) -> tuple[Key, ...]:
    """The keys of the listens a dial to ``address`` from ``node`` on ``host`` reaches."""
    if address.transport in ("ipc", "inproc"):
        return (listen_key(address, host=host, node=node),)
    t, port, path = address.transport, address.port, address.path
    if address.scope == "loopback":
        return ((t, "loopback", host, port, path), (t, "any", host, port, path))
    return ((t, "named", address.host, port, path), (t, "any", address.host, port, path))
