"""A small etcd v3 client over etcd's HTTP/JSON gateway (``/v3/kv/range``, ``/v3/kv/txn``,
``/v3/watch``), on the standard library only.

Why not a client library: ``etcd3gw`` talks to the same gateway but brings ``requests``,
``futurist`` and ``pbr`` for four calls; ``aetcd`` speaks gRPC and needs ``grpcio`` (a large
native wheel) and an asyncio loop inside every node. nngsec needs a range read, one
transaction and a watch stream, and trusts nothing the store returns (every set is verified
as if read from files), so a hundred lines of ``http.client`` are the smaller attack
surface and the smaller install. The gateway is served by etcd itself on its client port
(``/v3/`` since etcd 3.4).

Keys and values are bytes (base64 in the gateway's JSON). Errors are :class:`StoreError`,
with the address in the message; nothing here logs or retries (the callers decide).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["EtcdClient", "KeyValue", "StoreError", "Watch", "prefix_end"]

DEFAULT_TIMEOUT = 5.0
MAX_RESPONSE = 64 << 20  # a policy set is small; a store answering more is refused


class StoreError(Exception):
    """The store could not be reached, or answered something that is not etcd's protocol."""


@dataclass(frozen=True)
class KeyValue:
    key: bytes
    value: bytes
    mod_revision: int


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise StoreError("the store sent a key or value that is not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise StoreError("the store sent a key or value that is not base64") from None


def _int(value: object) -> int:
    # The gateway writes 64-bit integers as JSON strings (and leaves zero out).
    try:
        return int(value) if value is not None else 0  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise StoreError(f"the store sent {value!r} where a number belongs") from None


def prefix_end(prefix: bytes) -> bytes:
    """The end of the key range of every key starting with ``prefix`` (etcd's range_end)."""
    data = bytearray(prefix)
    while data:
        if data[-1] < 0xFF:
            data[-1] += 1
            return bytes(data)
        data.pop()
    return b"\x00"  # every key


class EtcdClient:
    """One etcd endpoint (``host``, ``port``), a connection per request."""

    def __init__(self, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to the gateway's ``path`` (``/v3/kv/range``) and return its answer."""
        connection = self._connect(self.timeout)
        try:
            connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = connection.getresponse()
            data = response.read(MAX_RESPONSE + 1)
        except (OSError, http.client.HTTPException) as error:
            raise StoreError(f"etcd at {self.address} is unreachable: {error}") from None
        finally:
            connection.close()
        if len(data) > MAX_RESPONSE:
            raise StoreError(f"etcd at {self.address} sent an oversized answer to {path}")
        answer = _json(data, self.address)
        if response.status != 200:
            message = answer.get("message") or answer.get("error") or response.reason
            raise StoreError(f"etcd at {self.address} refused {path}: {message}")
        return answer

    def range_prefix(self, prefix: bytes) -> tuple[int, list[KeyValue]]:
        """Every key under ``prefix`` at one revision: (revision, key-values)."""
        answer = self.call(
            "/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))}
        )
        revision = _int(answer.get("header", {}).get("revision"))
        return revision, [_kv(item) for item in answer.get("kvs", [])]

    def txn(
        self,
        compare: list[dict[str, Any]],
        success: list[dict[str, Any]],
        failure: list[dict[str, Any]] | None = None,
    ) -> tuple[bool, int]:
        """One transaction: (whether the comparisons held, the revision after it)."""
        answer = self.call(
            "/v3/kv/txn", {"compare": compare, "success": success, "failure": failure or []}
        )
        return bool(answer.get("succeeded")), _int(answer.get("header", {}).get("revision"))

    def watch(self, prefix: bytes, start_revision: int) -> Watch:
        """A stream of the revisions at which keys under ``prefix`` change, from
        ``start_revision`` on (see :class:`Watch`)."""
        return Watch(self, prefix, start_revision)

    @staticmethod
    def put(key: bytes, value: bytes) -> dict[str, Any]:
        """A put operation, for :meth:`txn`."""
        return {"request_put": {"key": _b64(key), "value": _b64(value)}}

    @staticmethod
    def delete(key: bytes) -> dict[str, Any]:
        """A delete operation, for :meth:`txn`."""
        return {"request_delete_range": {"key": _b64(key)}}

    @staticmethod
    def compare_mod_revision(key: bytes, revision: int) -> dict[str, Any]:
        """The comparison ``key`` was last modified at ``revision`` (0: it does not exist)."""
        return {
            "key": _b64(key),
            "target": "MOD",
            "result": "EQUAL",
            "mod_revision": str(revision),
        }


def _json(data: bytes, address: str) -> dict[str, Any]:
    try:
        answer = json.loads(data)
    except ValueError:
        raise StoreError(f"etcd at {address} sent something that is not JSON") from None
    if not isinstance(answer, dict):
        raise StoreError(f"etcd at {address} sent something that is not a JSON object")
    return answer


def _kv(item: object) -> KeyValue:
    if not isinstance(item, dict):
        raise StoreError("the store sent a key-value that is not an object")
    return KeyValue(
        _unb64(item.get("key")), _unb64(item.get("value", "")), _int(item.get("mod_revision"))
    )


class Watch:
    """An open ``/v3/watch`` stream: iterate for the revision of each change, ``close()``
    from any thread to end it (the iterator then stops, or raises :class:`StoreError` if
    the store went away).

    The gateway streams one JSON object per line: the first confirms the watch, each next
    one carries the events of one revision (a transaction's puts come together).
    """

    def __init__(self, client: EtcdClient, prefix: bytes, start_revision: int) -> None:
        self._client = client
        self._closed = threading.Event()
        # No timeout: a watch waits for changes as long as they take; close() ends it.
        self._connection = client._connect(None)
        request = {
            "create_request": {
                "key": _b64(prefix),
                "range_end": _b64(prefix_end(prefix)),
                "start_revision": str(start_revision),
            }
        }
        try:
            self._connection.connect()
            sock = self._connection.sock
            if sock is not None:  # notice a store that vanished without closing (keepalive)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                sock.settimeout(client.timeout)  # for the confirmation
            self._connection.request(
                "POST", "/v3/watch", json.dumps(request), {"Content-Type": "application/json"}
            )
            self._response = self._connection.getresponse()
            if self._response.status != 200:
                raise StoreError(f"etcd at {client.address} refused the watch")
            first = self._line()
            if not first.get("result", {}).get("created"):
                raise StoreError(f"etcd at {client.address} did not open the watch")
            if sock is not None:
                sock.settimeout(None)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise StoreError(f"etcd at {client.address} is unreachable: {error}") from None
        except StoreError:
            self.close()
            raise

    def _line(self) -> dict[str, Any]:
        line = self._response.readline(MAX_RESPONSE + 1)
        if not line:
            raise StoreError(f"etcd at {self._client.address} closed the watch")
        if len(line) > MAX_RESPONSE:
            raise StoreError(f"etcd at {self._client.address} sent an oversized watch event")
        return _json(line, self._client.address)

    def __iter__(self) -> Iterator[int]:
        while not self._closed.is_set():
            try:
                message = self._line()
            except StoreError:
                if self._closed.is_set():
                    return
                raise
            except Exception as error:  # http.client fails in many ways on a dying stream
                if self._closed.is_set():
                    return
                raise StoreError(f"etcd at {self._client.address}: watch lost: {error}") from None
            result = message.get("result")
            if not isinstance(result, dict):
                error_text = message.get("error", message)
                raise StoreError(f"etcd at {self._client.address}: watch failed: {error_text}")
            if result.get("canceled") or result.get("compact_revision"):
                raise StoreError(f"etcd at {self._client.address} cancelled the watch")
            if result.get("events"):
                yield _int(result.get("header", {}).get("revision"))

    def close(self) -> None:
        self._closed.set()
        sock = self._connection.sock
        if sock is not None:  # wakes a reader blocked in readline() in another thread
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._connection.close()
