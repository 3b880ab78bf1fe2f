"""nngsec: end-to-end, per-message security for NNG (pynng) messaging.

Declare who may talk to whom in a YAML policy, attach it to ordinary pynng sockets, and
validate whole deployments offline. See ``docs/`` for the wire format and threat model.
"""

from ._errors import (
    KeystoreError,
    NngsecError,
    PolicyError,
    Problem,
    Rejected,
    UsageError,
)
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
from ._version import __version__

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

# Public names report the package as their home, as httpx and trio do: tracebacks, reprs
# and pickles say ``nngsec.Rejected``, never the private module that defines it.
for _name in __all__:
    _value = globals()[_name]
    if callable(_value):  # classes and functions (not the version string)
        _value.__module__ = __name__
del _name, _value
