"""nngsec: end-to-end, per-message security for NNG (pynng) messaging.

Declare who may talk to whom in a YAML policy, attach it to ordinary pynng sockets, and
validate whole deployments offline. See ``docs/`` for the wire format and threat model.

The exceptions are imported with the package; every other public name is imported when it
is first used (PEP 562 ``__getattr__``), so ``import nngsec`` and ``nngsec --version`` do
not pay for building the pydantic models, loading libsodium and NNG.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from ._errors import (
    KeystoreError,
    NngsecError,
    PolicyError,
    Problem,
    Rejected,
    UsageError,
)
from ._version import __version__

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers and editors
    from ._keys._identity import IdentityKey, PublicIdentity
    from ._keys._keystore import Keystore
    from ._policy._load import load_policy
    from ._policy._policy import Policy
    from ._relay import Relay, relay
    from ._runtime._codec import Received
    from ._runtime._node import Node
    from ._runtime._sockets import SecureContext, SecureSocket, SocketStats
    from ._topology._check import check
    from ._topology._findings import Finding

__all__ = [
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

# Public name -> the private module that defines it.
_LAZY: dict[str, str] = {
    "Finding": "nngsec._topology._findings",
    "IdentityKey": "nngsec._keys._identity",
    "Keystore": "nngsec._keys._keystore",
    "Node": "nngsec._runtime._node",
    "Policy": "nngsec._policy._policy",
    "PublicIdentity": "nngsec._keys._identity",
    "Received": "nngsec._runtime._codec",
    "Relay": "nngsec._relay",
    "SecureContext": "nngsec._runtime._sockets",
    "SecureSocket": "nngsec._runtime._sockets",
    "SocketStats": "nngsec._runtime._sockets",
    "check": "nngsec._topology._check",
    "load_policy": "nngsec._policy._load",
    "relay": "nngsec._relay",
}


def _adopt_loaded() -> None:
    """Public names report the package as their home, as httpx and trio do: tracebacks,
    reprs and pickles say ``nngsec.Rejected``, never the private module that defines it.

    Applied to every public name whose module is loaded, whoever loaded it (a ``Policy``
    returned by ``load_policy`` says ``nngsec.Policy`` before anyone asked for that name).
    """
    namespace = globals()
    for name in __all__:
        value = namespace.get(name)
        if value is None and name in _LAZY:
            module = sys.modules.get(_LAZY[name])
            value = getattr(module, name, None)
        if callable(value):  # classes and functions (not the version string)
            value.__module__ = __name__


if not TYPE_CHECKING:  # hidden from type checkers, so that a misspelt name stays an error

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        _adopt_loaded()
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


_adopt_loaded()
