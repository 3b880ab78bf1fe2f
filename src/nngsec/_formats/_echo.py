"""How much of a rejected value an error message may repeat: at most a few characters.

Error messages end up in terminals, logs, CI output and bug reports. A value refused from
a file may be something that must not travel that far, above all a private key pasted
into the wrong field: 39 repeated characters of a key leave 22 bits to guess. Every
message that quotes input quotes it through :func:`echo` (values) or :func:`echo_key`
(mapping keys and field paths), which keep at most :data:`ECHO_LIMIT` characters of it;
the file, line and column already say where the value is.

Names that follow the name rule (lowercase letters, digits, ``.``, ``_``, ``-``, at most
64) are shown whole: "unknown name 'dashbaord'" is the message that helps, and a name
cannot hold key text (keys are base64url, with upper-case letters). Valid deployment ids
are named whole too, where a message is about one (not secret, and what tells two
deployments apart).
"""

from __future__ import annotations

from ._names import is_name

__all__ = ["ECHO_LIMIT", "echo", "echo_key"]

ECHO_LIMIT = 12
"""The most characters of a rejected value any message repeats."""

_SHOWN = ECHO_LIMIT - 2  # characters kept before the "..." of a value cut short


def echo(value: object) -> str:
    """A value as a message may quote it: ``repr`` when short, else cut to its first
    characters (a whole name is kept; a long number is described by its size)."""
    if isinstance(value, str):
        if len(value) <= ECHO_LIMIT or is_name(value):
            return repr(value)
        return f"{value[:_SHOWN]!r}... ({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 40:
        # repr() of a number over 4300 digits raises; its size is what matters here.
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    if len(text) <= ECHO_LIMIT:
        return text
    return text[:_SHOWN] + "..."


def echo_key(part: str | int) -> str:
    """A mapping key (or list index) as a field path may show it: whole when it is a name
    or short, cut otherwise (a key is input too); as ``repr`` when it holds a character
    that is not printable, so that a key holding a newline cannot split a message."""
    if isinstance(part, int) or is_name(part):
        return str(part)
    shown = part if len(part) <= ECHO_LIMIT else part[:_SHOWN]
    if not shown.isprintable():
        shown = repr(shown)
    return shown if len(part) <= ECHO_LIMIT else shown + "..."
