"""Edits of a policy file that keep everything else as written (comments, order, spacing).

Used by ``revoke`` (a new revoked identity), by ``rotate`` and ``sign`` (a deployment id
for a policy that has none) and by ``sign --bump`` (a higher ``version:``).

Rather than re-serialising the YAML (which would lose comments and reflow the file), an
edit splices new text at the positions the parser recorded, and the result is parsed and
validated again before anyone writes it.
"""

from __future__ import annotations

from .._errors import PolicyError
from .._formats._yaml import YamlDocument, parse_yaml
from ._load import parse_policy

__all__ = ["add_deployment", "add_revoked", "set_version"]


def _line_end(text: str, offset: int) -> int:
    end = text.find("\n", offset)
    return len(text) if end < 0 else end


def _version_edit(text: str, doc: YamlDocument, version: int) -> tuple[int, int, str]:
    """The edit that makes ``version:`` say ``version`` (a new line after ``name:`` when
    the policy has no ``version:``)."""
    newline = "\r\n" if "\r\n" in text else "\n"
    if "version" in doc.data:
        span = doc.values[("version",)]
        return span.start, span.end, str(version)
    after_name = _line_end(text, doc.values[("name",)].end) + 1
    return after_name, after_name, f"version: {version}{newline}"


def set_version(text: str, path: str, version: int) -> str:
    """``text`` with ``version:`` set to ``version`` (used by ``nngsec sign --bump``)."""
    if text and not text.endswith("\n"):
        text += "\r\n" if "\r\n" in text else "\n"
    doc = parse_yaml(text, path)
    start, end, replacement = _version_edit(text, doc, version)
    edited_text = text[:start] + replacement + text[end:]
    try:
        edited = parse_policy(edited_text, path)
    except PolicyError as error:
        raise PolicyError(
            doc.problem(
                ("version",),
                f"could not set version: {version} without breaking the file "
                f"({error.problems[0].message})",
                f"set version: {version} by hand",
                key=True,
            )
        ) from None
    if edited.version != version:
        raise PolicyError(
            doc.problem(("version",), "could not set version: safely", "set it by hand", key=True)
        )
    return edited_text


def add_revoked(text: str, path: str, identity: str) -> str:
    """``text`` with ``identity`` appended to ``revoked:`` and ``version`` raised by one.

    Raising the version matters: without it, the pre-revocation policy would still pass
    anti-rollback, and could be replayed to nodes to undo the revocation.
    """
    newline = "\r\n" if "\r\n" in text else "\n"
    if text and not text.endswith("\n"):
        text += newline  # every line ends with a newline, so new lines go after one
    doc: YamlDocument = parse_yaml(text, path)
    data = doc.data
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), non-overlapping

    version = data.get("version", 1)
    edits.append(_version_edit(text, doc, version + 1))

    revoked = data.get("revoked")
    if "revoked" not in data:
        edits.append((len(text), len(text), f"revoked: [{identity}]{newline}"))
    elif revoked is None:
        span = doc.values[("revoked",)]
        if span.end > span.start:  # "revoked: ~" or "revoked: null"
            edits.append((span.start, span.end, f"[{identity}]"))
        else:  # "revoked:" with nothing (or only a comment) after it
            colon = text.index(":", doc.keys[("revoked",)].end)
            edits.append((colon + 1, colon + 1, f" [{identity}]"))
    elif text[doc.values[("revoked",)].start] == "[":  # flow list: [a, b]
        span = doc.values[("revoked",)]
        if revoked:  # right after the last item: keeps a trailing comma or comment valid
            last = doc.values[("revoked", len(revoked) - 1)]
            edits.append((last.end, last.end, f", {identity}"))
        else:
            edits.append((span.start, span.end, f"[{identity}]"))
    else:  # block list: one "- name" per line; copy the last item's indentation
        last = doc.values[("revoked", len(revoked) - 1)]
        line_start = text.rfind("\n", 0, last.start) + 1
        prefix = text[line_start : last.start]
        after = _line_end(text, last.end) + 1
        edits.append((after, after, f"{prefix}{identity}{newline}"))

    # From the end backwards so offsets stay valid; at one offset, the edit listed first
    # ends up first in the text.
    order = sorted(range(len(edits)), key=lambda i: (edits[i][0], i), reverse=True)
    for index in order:
        start, end, replacement = edits[index]
        text = text[:start] + replacement + text[end:]

    try:
        edited = parse_policy(text, path)
    except PolicyError as error:
        raise PolicyError(
            doc.problem(
                ("revoked",),
                f"could not add {identity!r} to revoked: without breaking the file "
                f"({error.problems[0].message})",
                "add it by hand under revoked: and raise version:",
                key=True,
            )
        ) from None
    if identity not in edited.revoked or edited.version != version + 1:
        raise PolicyError(
            doc.problem(
                ("revoked",),
                f"could not add {identity!r} to revoked: safely",
                "add it by hand under revoked: and raise version:",
                key=True,
            )
        )
    return text


def add_deployment(text: str, path: str, deployment: str) -> str:
    """``text`` with ``deployment: ID`` on a new line after ``name:`` (or as the value of
    an empty ``deployment:``). Nothing else changes, ``version:`` included: the id is
    what tells this deployment from another with the same policy name, and it is added
    once, before the first channel keys are made."""
    newline = "\r\n" if "\r\n" in text else "\n"
    if text and not text.endswith("\n"):
        text += newline
    doc: YamlDocument = parse_yaml(text, path)
    if "deployment" in doc.data:  # "deployment:" with nothing after it
        colon = text.index(":", doc.keys[("deployment",)].end)
        span = doc.values[("deployment",)]
        start, end = (span.start, span.end) if span.end > span.start else (colon + 1, colon + 1)
        text = text[:start] + (f" {deployment}" if start == end else deployment) + text[end:]
    else:
        after_name = _line_end(text, doc.values[("name",)].end) + 1
        text = text[:after_name] + f"deployment: {deployment}{newline}" + text[after_name:]
    hint = f"add the line 'deployment: {deployment}' under name: by hand"
    try:
        edited = parse_policy(text, path)
    except PolicyError as error:
        raise PolicyError(
            doc.problem(
                ("name",),
                "could not add a deployment id without breaking the file "
                f"({error.problems[0].message})",
                hint,
                key=True,
            )
        ) from None
    if edited.model.deployment != deployment:
        raise PolicyError(doc.problem(("name",), "could not add a deployment id safely", hint))
    return text
