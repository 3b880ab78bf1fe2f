"""Finding private-key text where it must never be: in any file nngsec reads, except the
private key file itself.

A private key pasted into a policy (a slip of the clipboard) would be distributed to every
node, and an error message quoting it would put it in terminals, logs and CI output. So
every file nngsec reads is searched before anything else looks at it, and refused if it
holds what looks like a private key:

- the secret-key type prefix ``nngsec-secret-`` in any case, anywhere (also inside a longer
  value or a comment, and for any format version);
- a bare secret-key body: 48 base64url characters on their own whose last 4 bytes are the
  checksum of a ``nngsec-secret-v1:`` key (the prefix was left out of the paste). A random
  string passes that checksum with probability 2^-32.

The search only says *where* (an offset); the caller builds the error, which never
repeats the text (see ``refuse_secret_text`` in ``_yaml.py``).
"""

from __future__ import annotations

import re

from ._text import b64url_decode, has_checksum

__all__ = ["SECRET_MARKER", "SECRET_PREFIX", "find_secret_text"]

SECRET_PREFIX = "nngsec-secret-v1:"  # noqa: S105 - a type prefix, not a secret
SECRET_MARKER = "nngsec-secret-"  # noqa: S105 - what any version of the prefix starts with
SEED_SIZE = 32

_MARKER = re.compile(re.escape(SECRET_MARKER), re.IGNORECASE)
# 36 bytes (seed and checksum) are exactly 48 base64url characters; a run of them that
# stands alone (not part of a longer run) is a candidate bare body.
_BARE_BODY = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{48}(?![A-Za-z0-9_-])")


def find_secret_text(text: str) -> int | None:
    """The offset of the first private key in ``text``, or ``None`` when it holds none."""
    marked = _MARKER.search(text)
    first = marked.start() if marked else None
    for candidate in _BARE_BODY.finditer(text, 0, len(text) if first is None else first):
        try:
            raw = b64url_decode(candidate.group())
        except ValueError:
            continue
        if has_checksum(SECRET_PREFIX, raw, SEED_SIZE):
            return candidate.start()
    return first
