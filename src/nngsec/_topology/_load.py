"""Loading topology files with the same positioned errors as policies."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .._errors import PolicyError, Problem
from .._formats._diagnostics import pydantic_problems
from .._formats._echo import echo
from .._formats._model import check_format_version
from .._formats._names import NAME_MAX
from .._formats._yaml import Loc, YamlDocument, format_loc
from .._patterns import ROLE_NAMES
from ._model import NodeModel, RelayModel, RelaySide, SocketModel, TopologyModel

__all__ = ["Topology", "topology_from_document"]


@dataclass(frozen=True, eq=False)
class Topology:
    """A validated topology file: its model and the document it came from (for positions)."""

    path: Path
    document: YamlDocument
    model: TopologyModel

    @property
    def display(self) -> str:
        """The path as the user gave it, used in every finding."""
        return self.document.path

    @cached_property
    def policy_path(self) -> Path | None:
        """The policy this topology names, resolved relative to the topology file."""
        if self.model.policy is None:
            return None
        return self.path.parent / self.model.policy

    def identity_of(self, node: str) -> str | None:
        """The identity whose keys ``node`` holds: explicit, else its name if it has sockets."""
        spec = self.model.nodes[node]
        if spec.identity is not None:
            return spec.identity
        return node if spec.sockets else None

    def host_of(self, node: str) -> str:
        spec = self.model.nodes[node]
        return spec.host if spec.host is not None else node.lower()

    def identity_loc(self, node: str) -> tuple[Loc, bool]:
        """Where the node's identity is written (or the node's key when it is implied)."""
        if self.model.nodes[node].identity is not None:
            return ("nodes", node, "identity"), False
        return ("nodes", node), True


def topology_from_document(doc: YamlDocument, path: Path) -> Topology:
    """Validate a parsed topology file; every problem is positioned in a PolicyError."""
    check_format_version(doc, what="topology")
    try:
        model = TopologyModel.model_validate(doc.data)
    except ValidationError as error:
        problems = dict.fromkeys(_problems(doc, error.errors()))
        raise PolicyError(
            sorted(problems, key=lambda p: (p.line or 0, p.column or 0, p.field))
        ) from None
    return Topology(path, doc, model)


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model of the mapping at ``loc`` (for "unknown field, did you mean")."""
    shape = tuple("*" if isinstance(p, int) else p for p in loc)
    if len(shape) >= 2 and shape[0] == "nodes":
        shape = ("nodes", "<node>", *shape[2:])
    models: dict[tuple[str, ...], type[BaseModel]] = {
        (): TopologyModel,
        ("nodes", "<node>"): NodeModel,
        ("nodes", "<node>", "sockets", "*"): SocketModel,
        ("nodes", "<node>", "relays", "*"): RelayModel,
        ("nodes", "<node>", "relays", "*", "front"): RelaySide,
        ("nodes", "<node>", "relays", "*", "back"): RelaySide,
    }
    return models.get(shape)


def _allowed_fields(loc: Loc) -> list[str]:
    model = _model_at(loc)
    return list(model.model_fields) if model else []


def _problems(doc: YamlDocument, errors: list[ErrorDetails]) -> Iterator[Problem]:
    translated = pydantic_problems(
        doc, errors, TopologyModel, allowed_fields=_allowed_fields, name_max=NAME_MAX
    )
    # pydantic_problems yields exactly one problem per error, in order.
    for error, (problem, kind) in zip(errors, translated, strict=True):
        if kind == "literal_error" and error["loc"][-1:] == ("role",):
            got = error.get("input")
            close = difflib.get_close_matches(str(got)[:200], ROLE_NAMES, n=1)
            problem = replace(
                problem,
                message=f"unknown role {echo(got)}, expected one of {', '.join(ROLE_NAMES)}",
                hint=f"did you mean {close[0]!r}?" if close else "",
            )
        loc = tuple(error["loc"])
        if loc and isinstance(loc[-1], int) and not isinstance(_data_at(doc, loc[:-1]), list):
            # `dial: URL` is read as a one-item list; name the field as the user wrote it.
            problem = replace(problem, field=format_loc(loc[:-1]))
        yield problem


def _data_at(doc: YamlDocument, loc: Loc) -> object:
    node: object = doc.data
    for part in loc:
        if not isinstance(node, dict | list):
            return None
        try:
            node = node[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return node
