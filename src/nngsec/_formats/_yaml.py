"""YAML loading that remembers where every value came from.

Policies and topologies are read with libyaml (through PyYAML's C parser when present) into
a node tree, which is then turned into plain Python data while recording the position of
every key and value. Errors found later (by pydantic or by cross-checks) are reported at the
exact ``file:line:column`` of the offending field.

Scalars are resolved with the YAML 1.2 core schema, not PyYAML's YAML 1.1 default: in a
security policy, ``revoked: [no]`` must mean the identity named "no", not ``False``, and
``1:30`` must not become the number 90.

Refused with a positioned :class:`PolicyError`: syntax errors, duplicate mapping keys (a
second ``publishers:`` must not silently replace the first), tabs in indentation, an empty
document, several documents in one file, and a file that is not UTF-8.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from .._errors import NngsecError, PolicyError, Problem
from ._echo import echo, echo_key
from ._limits import SizeLimit, read_bounded
from ._secrets import find_secret_text

__all__ = [
    "Loc",
    "Span",
    "YamlDocument",
    "format_loc",
    "load_yaml_file",
    "parse_yaml",
    "read_text",
    "refuse_secret_text",
    "text_from_bytes",
]

Loc = tuple[str | int, ...]
"""A path into a document: mapping keys and sequence indexes."""


class Span(NamedTuple):
    """Where a node is: 1-based line and column, and 0-based character offsets."""

    line: int
    column: int
    start: int
    end: int


def format_loc(loc: Loc) -> str:
    """``('channels', 'telemetry', 'publishers', 1)`` -> ``channels.telemetry.publishers[1]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:  # keys are input: a long one that is not a name is cut (see _echo.py)
            text += f".{echo_key(part)}" if text else echo_key(part)
    return text


# libyaml's parser and composer when PyYAML was built with it (much faster), else pure Python.
if hasattr(yaml, "CBaseLoader"):

    class _Loader(yaml.CBaseLoader):
        """Parser + composer + YAML 1.2 core resolver; values are built by :class:`_Builder`."""

else:  # pragma: no cover - PyYAML built without libyaml

    class _Loader(yaml.BaseLoader):  # type: ignore[no-redef]
        """Parser + composer + YAML 1.2 core resolver; values are built by :class:`_Builder`."""


_Loader.yaml_implicit_resolvers = {}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A parsed YAML file: plain data plus the place of each key and value."""

    path: str
    text: str
    data: Any
    values: dict[Loc, Span] = field(repr=False)
    keys: dict[Loc, Span] = field(repr=False)

    def place(self, loc: Loc, *, key: bool = False) -> tuple[int | None, int | None]:
        """(line, column) of ``loc``, or of its nearest ancestor that exists.

        With ``key=True`` the mapping key is preferred (useful for "unknown field"). A value
        left empty (``field:`` with nothing after it) is placed at its key too: the end of
        the line is no place to point at.
        """
        for depth in range(len(loc), -1, -1):
            sub = loc[:depth]
            value = self.values.get(sub)
            empty = value is not None and value.start == value.end
            span = (self.keys.get(sub) if key or empty else None) or value
            if span is not None:
                return span.line, span.column
        return None, None

    def problem(self, loc: Loc, message: str, hint: str = "", *, key: bool = False) -> Problem:
        """A :class:`Problem` placed at ``loc``."""
        line, column = self.place(loc, key=key)
        return Problem(message, self.path, line, column, format_loc(loc), hint)


def _span(node: yaml.Node) -> Span:
    start, end = node.start_mark, node.end_mark
    return Span(start.line + 1, start.column + 1, start.index, end.index)


def _scalar(node: yaml.ScalarNode) -> Any:
    value: str = node.value
    tag = node.tag
    if tag == "tag:yaml.org,2002:str":
        return value
    if tag == "tag:yaml.org,2002:int":
        if value.startswith("0o"):
            return int(value[2:], 8)
        return int(value, 0) if value.startswith("0x") else int(value)
    if tag == "tag:yaml.org,2002:float":
        if value.lower() in (".inf", "+.inf", "-.inf", ".nan"):
            return float(value.lower().replace(".", ""))
        return float(value)
    if tag == "tag:yaml.org,2002:bool":
        return value.lower() == "true"
    if tag == "tag:yaml.org,2002:null":
        return None
    # Any other explicit tag (!!binary, !custom, ...) is kept as its text; the models
    # then refuse it with a type error at this position.
    return value


MAX_DEPTH = 64
"""Deepest nesting of mappings and lists accepted (nngsec files need fewer than ten)."""


class _Builder:
    def __init__(self, path: str, budget: int) -> None:
        self.path = path
        self.values: dict[Loc, Span] = {}
        self.keys: dict[Loc, Span] = {}
        self.problems: list[Problem] = []
        # Values left to build. Without aliases a document never has more values than
        # twice its characters; aliases nested in aliases could expand exponentially.
        self.budget = budget

    def _refuse(self, node: yaml.Node, message: str, hint: str) -> PolicyError:
        span = _span(node)
        return PolicyError(Problem(message, self.path, span.line, span.column, hint=hint))

    def _refuse_escaped_secret(self, node: yaml.ScalarNode) -> None:
        """Security: the raw text of every file is searched for private keys before parsing
        (``refuse_secret_text``), but a double-quoted scalar can spell one the raw text does
        not hold: escapes (``nngsec\\x2dsecret-v1:``, ``\\u0041``) and ``\\`` line
        continuations join what the search saw apart. Such a key loaded silently (in
        ``description:``, on its way to every node): search the value as parsed too."""
        if node.style == '"' and find_secret_text(node.value) is not None:
            raise self._refuse(
                node,
                "a private key is written here (spelled with escapes); a file nngsec reads "
                "must never hold one (not shown)",
                _EXPOSED_HINT,
            )

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise self._refuse(
                node,
                "the document expands to too many values through aliases (*name)",
                "write the values out instead of nesting anchors and aliases",
            )
        if len(loc) > MAX_DEPTH:
            raise self._refuse(
                node,
                f"mappings and lists are nested more than {MAX_DEPTH} levels deep",
                "check the indentation and brackets around this place",
            )
        self.values[loc] = _span(node)
        if isinstance(node, yaml.ScalarNode):
            self._refuse_escaped_secret(node)
            try:
                return _scalar(node)
            except ValueError:  # Python reads integers of at most 4300 digits
                raise self._refuse(
                    node,
                    f"a number of {len(node.value)} characters is too long to read",
                    "write a smaller number",
                ) from None
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, index)) for index, item in enumerate(node.value)]
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                span = _span(key_node)
                self.problems.append(
                    Problem(
                        "a mapping key must be a plain name, got a collection",
                        self.path,
                        span.line,
                        span.column,
                        format_loc(loc),
                        "write the key as a name followed by ':'",
                    )
                )
                continue
            self._refuse_escaped_secret(key_node)
            key = _scalar(key_node)
            if not isinstance(key, str):
                key = key_node.value  # `1: x` or `true: y` keys are kept as written
            span = _span(key_node)
            if key in result:
                first = self.keys[(*loc, key)]
                self.problems.append(
                    Problem(
                        f"duplicate key {echo(key)} (first defined at line {first.line})",
                        self.path,
                        span.line,
                        span.column,
                        format_loc((*loc, key)),
                        "remove or merge one of the two entries; YAML would keep only the last",
                    )
                )
                continue
            self.keys[(*loc, key)] = span
            result[key] = self.build(value_node, (*loc, key))
        return result


def _tab_problems(text: str, path: str) -> Iterator[Problem]:
    for number, line in enumerate(text.splitlines(), start=1):
        indent = len(line) - len(line.lstrip(" \t"))
        column = line.find("\t", 0, indent)
        if column >= 0:
            yield Problem(
                "tab character in indentation",
                path,
                number,
                column + 1,
                hint="YAML indentation must use spaces; replace the tab with spaces",
            )


# Characters YAML 1.2 allows in a stream (section 5.1), BOM included; anything else (C0/C1
# controls, DEL, lone surrogates, U+FFFE/U+FFFF) is refused by the parser.
_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def position(text: str | bytes, offset: int) -> tuple[int, int]:
    """The 1-based (line, column) of ``offset`` in ``text`` (columns count characters of
    a ``str``, bytes of ``bytes``)."""
    newline: Any = "\n" if isinstance(text, str) else b"\n"
    line = text.count(newline, 0, offset) + 1
    return line, offset - (text.rfind(newline, 0, offset) + 1) + 1


def _unprintable_problem(text: str, path: str) -> Problem | None:
    found = _NOT_PRINTABLE.search(text)
    if found is None:
        return None
    line, column = position(text, found.start())
    return Problem(
        f"character U+{ord(found.group()):04X} is not allowed in YAML",
        path,
        line,
        column,
        hint="remove it; in a double-quoted string, write a control character as an escape",
    )


def parse_yaml(text: str, path: str, *, what: str = "policy") -> YamlDocument:
    """Parse ``text`` (read from ``path``) into a :class:`YamlDocument`.

    The root must be a mapping; ``what`` names the kind of file in messages (``policy``,
    ``topology``, ``channel-key``: messages add " file").
    """
    refuse_secret_text(text, path, what=f"{what} file")
    tabs = list(_tab_problems(text, path))
    if tabs:
        raise PolicyError(tabs)
    unprintable = _unprintable_problem(text, path)
    if unprintable is not None:
        raise PolicyError(unprintable)
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "invalid YAML"
        context = f" ({error.context})" if error.context and error.problem else ""
        raise PolicyError(
            Problem(
                f"invalid YAML: {problem}{context}",
                path,
                mark.line + 1 if mark else None,
                mark.column + 1 if mark else None,
                hint="check indentation, quotes and brackets around this place",
            )
        ) from None
    except yaml.YAMLError as error:
        raise PolicyError(
            Problem(f"invalid YAML: {error}", path, hint="check the file's syntax")
        ) from None
    if not nodes:
        raise PolicyError(
            Problem(
                f"the {what} file is empty",
                path,
                1,
                1,
                hint=f"a {what} file starts with 'nngsec: 1'",
            )
        )
    if len(nodes) > 1:
        span = _span(nodes[1])
        raise PolicyError(
            Problem(
                f"a {what} file holds one YAML document, found {len(nodes)}",
                path,
                span.line,
                span.column,
                hint="remove the '---' separator and the documents after it",
            )
        )
    root = nodes[0]
    if not isinstance(root, yaml.MappingNode):
        span = _span(root)
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        raise PolicyError(
            Problem(
                f"the {what} file must be a mapping of fields, got {kind}",
                path,
                span.line,
                span.column,
                hint=f"a {what} file starts with 'nngsec: 1' followed by its fields",
            )
        )
    builder = _Builder(path, budget=2 * len(text) + 1000)
    data = builder.build(root, ())
    if builder.problems:
        raise PolicyError(builder.problems)
    return YamlDocument(path, text, data, builder.values, builder.keys)


_EXPOSED_HINT = (
    "remove it, and treat this private key as exposed (anyone who saw the file may hold it): "
    "make a new identity with nngsec keygen, and revoke the old one"
)


def refuse_secret_text(
    text: str, path: str, *, what: str, error: type[NngsecError] = PolicyError
) -> None:
    """Refuse ``text`` (of the ``what`` at ``path``) if it holds a private key anywhere.

    The error says where, and repeats none of the text: a message quoting part of a key
    hands that part to every terminal, log and CI job that shows it.
    """
    offset = find_secret_text(text)
    if offset is not None:
        line, column = position(text, offset)
        raise error(
            Problem(
                f"a private key is written here; a {what} must never hold one (not shown)",
                path,
                line,
                column,
                hint=_EXPOSED_HINT,
            )
        )


def read_text(
    path: Path,
    *,
    what: str,
    error: type[NngsecError] = PolicyError,
    utf8_hint: str = "save the file as UTF-8",
    secret: bool = False,
    limit: SizeLimit | None = None,
) -> str:
    """The text of the ``what`` file at ``path`` (``policy``, ``private key``), or an
    ``error`` placed at the problem: missing, a directory, unreadable, not UTF-8, or holding
    a private key (unless it is the one file meant to hold one: ``secret=True``); with
    ``limit``, also larger than that (found without reading further: ``_limits.py``)."""
    try:
        raw = path.read_bytes() if limit is None else read_bounded(path, limit, error=error)
    except FileNotFoundError:
        raise error(Problem(f"{what} file not found", str(path), hint="check the path")) from None
    except IsADirectoryError:
        raise error(
            Problem(
                f"expected a {what} file, found a directory",
                str(path),
                hint="give the path of the file itself",
            )
        ) from None
    except OSError as failure:
        raise error(
            Problem(
                f"cannot read {what} file: {failure.strerror}",
                str(path),
                hint="check that the file exists and that you may read it",
            )
        ) from None
    return text_from_bytes(
        raw, str(path), what=what, error=error, utf8_hint=utf8_hint, secret=secret
    )


def text_from_bytes(
    raw: bytes,
    where: str,
    *,
    what: str,
    error: type[NngsecError] = PolicyError,
    utf8_hint: str = "save the file as UTF-8",
    secret: bool = False,
    limit: SizeLimit | None = None,
) -> str:
    """The text of the ``what`` file whose bytes are ``raw`` (read from a file or from a
    store; ``where`` names it), or an ``error`` placed at the problem: not UTF-8, or holding
    a private key (unless it is the one file meant to hold one: ``secret=True``); with
    ``limit``, also larger than that."""
    if limit is not None:
        limit.check(len(raw), where, error=error)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as failure:
        line, column = position(raw, failure.start)
        raise error(
            Problem(
                f"the {what} file is not valid UTF-8 (byte 0x{raw[failure.start]:02x})",
                where,
                line,
                column,
                hint=utf8_hint,
            )
        ) from None
    if not secret:
        refuse_secret_text(text, where, what=f"{what} file", error=error)
    return text


def load_yaml_file(path: str | Path, *, what: str = "policy") -> YamlDocument:
    """Read and parse a YAML file; every failure is a positioned :class:`PolicyError`."""
    path = Path(path)
    return parse_yaml(read_text(path, what=what), str(path), what=what)
