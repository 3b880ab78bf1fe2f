"""Edits of a policy file that keep everything else as written (comments, order, spacing).

Rather than re-serialising the YAML (which would lose comments and reflow the file), an
edit splices new text at the positions the parser recorded, and the result is parsed and
validated again before anyone writes it.
"""

from __future__ import annotations

from .._errors import PolicyError, Problem
from .._yaml import YamlDocument, parse_yaml
from ._load import parse_policy

__all__ = ["add_revoked"]


def _line_end(text: str, offset: int) -> int:
    end = text.find("\n", offset)
    return len(text) if end < 0 else end


def add_revoked(text: str, path: str, identity: str) -> str:
    """``text`` with ``identity`` appended to ``revoked:`` and ``version`` raised by one.

    Raising the version matters: without it, the pre-revocation policy would still pass
    anti-rollback, and could be replayed to nodes to undo the revocation.
    """
    doc: YamlDocument = parse_yaml(text, path)
    data = doc.data
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), non-overlapping

    version = data.get("version", 1)
    if "version" in data:
        span = doc.values[("version",)]
        edits.append((span.start, span.end, str(version + 1)))
    else:
        name_end = _line_end(text, doc.values[("name",)].end)
        edits.append((name_end, name_end, f"\nversion: {version + 1}"))

    revoked = data.get("revoked")
    if "revoked" not in data:
        tail = "" if text.endswith("\n") or not text else "\n"
        edits.append((len(text), len(text), f"{tail}revoked: [{identity}]\n"))
    elif revoked is None:  # "revoked:" with nothing after it
        key = doc.keys[("revoked",)]
        end = _line_end(text, key.start)
        edits.append((key.start, end, f"revoked: [{identity}]"))
    elif text[doc.values[("revoked",)].start] == "[":  # flow list: [a, b]
        span = doc.values[("revoked",)]
        if revoked:
            close = text.rindex("]", span.start, span.end)
            edits.append((close, close, f", {identity}"))
        else:
            edits.append((span.start, span.end, f"[{identity}]"))
    else:  # block list: one "- name" per line; copy the last item's indentation
        last = doc.values[("revoked", len(revoked) - 1)]
        line_start = text.rfind("\n", 0, last.start) + 1
        prefix = text[line_start : last.start]
        end = _line_end(text, last.end)
        edits.append((end, end, f"\n{prefix}{identity}"))

    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]

    try:
        edited = parse_policy(text, path)
    except PolicyError as error:
        raise PolicyError(
            Problem(
                f"could not add {identity!r} to revoked: without breaking the file "
                f"({error.problems[0].message})",
                path,
                hint="add it by hand under revoked: and raise version:",
            )
        ) from None
    if identity not in edited.revoked or edited.version != version + 1:
        raise PolicyError(
            Problem(
                f"could not add {identity!r} to revoked: safely",
                path,
                hint="add it by hand under revoked: and raise version:",
            )
        )
    return text
