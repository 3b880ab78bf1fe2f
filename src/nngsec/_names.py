"""Names of identities, groups, channels and nodes: one rule everywhere.

Lowercase, so that ``Sensor-1`` and ``sensor-1`` can never be two different identities;
no spaces or slashes, so a name is also a safe file name (``keys/NAME.key``); at most 64
characters, so a channel name fits the wire header's length byte with room to spare.
"""

from __future__ import annotations

__all__ = ["NAME_MAX", "NAME_PATTERN", "NAME_RULE"]

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
NAME_MAX = 64
NAME_RULE = "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"
