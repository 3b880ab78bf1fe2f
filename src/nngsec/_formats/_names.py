"""Names of identities, groups, channels and nodes: one rule everywhere.

Lowercase, so that ``Sensor-1`` and ``sensor-1`` can never be two different identities;
no spaces or slashes, so a name is also a safe file name (``keys/NAME.key``); at most 64
characters, so a channel name fits the wire header's length byte with room to spare.
"""

from __future__ import annotations

import re

__all__ = ["NAME_HINT", "NAME_MAX", "NAME_PATTERN", "NAME_RULE", "is_name"]

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
NAME_MAX = 64
NAME_RULE = "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"
NAME_HINT = f"names are {NAME_RULE} (at most {NAME_MAX})"

_NAME = re.compile(NAME_PATTERN)


def is_name(value: object) -> bool:
    """Whether ``value`` is a string that follows the name rule (and its length limit)."""
    # fullmatch: with match, the pattern's ``$`` also matches before a final newline, so
    # "sensor\n" passed here (a key file named "sensor\n.key") while policies refuse it.
    return isinstance(value, str) and len(value) <= NAME_MAX and _NAME.fullmatch(value) is not None
