"""Loading a policy file: YAML with positions -> model -> cross-checks -> :class:`Policy`.

Every problem becomes a :class:`Problem` at ``file:line:column`` with the field path, what
was found, what was expected and a hint. All problems of a file are reported together.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .._errors import PolicyError, Problem
from .._formats._diagnostics import pydantic_problems
from .._formats._limits import POLICY_LIMIT
from .._formats._model import check_format_version
from .._formats._names import NAME_MAX
from .._formats._yaml import Loc, YamlDocument, parse_yaml, read_text
from .._patterns import PATTERN_NAMES, pattern_of
from ._checks import cross_check, duplicate_key_problems
from ._model import CHANNEL_MODELS, PolicyModel
from ._policy import Policy

__all__ = ["load_policy", "parse_policy"]


def load_policy(path: str | Path) -> Policy:
    """Load and validate a policy file.

    Raises :class:`nngsec.PolicyError` listing every problem with its place (a file over
    the size limit of a policy, 4 MiB, is refused before it is read further).
    """
    path = Path(path)
    text = read_text(path, what="policy", limit=POLICY_LIMIT)
    return parse_policy(text, str(path), file=path)


def parse_policy(text: str, display_path: str = "<policy>", *, file: Path | None = None) -> Policy:
    """Validate policy ``text``; ``display_path`` is used in messages, ``file`` is where it
    lives (for its channel-key and signature files)."""
    source = text.encode("utf-8")
    POLICY_LIMIT.check(len(source), display_path)  # before parsing: see _formats/_limits.py
    doc = parse_yaml(text, display_path, what="policy")
    check_format_version(doc, what="policy")
    problems: list[Problem] = []
    model: PolicyModel | None = None
    try:
        model = PolicyModel.model_validate(doc.data)
    except ValidationError as error:
        problems.extend(_model_problems(doc, error.errors()))
    problems.extend(cross_check(doc))
    if model is not None:
        keys = {name: entry.key for name, entry in model.identities.items()}
        problems.extend(duplicate_key_problems(doc, keys))
    if problems or model is None:
        raise PolicyError(_sorted_unique(problems))
    return Policy(model, path=file, source=source, document=doc)


def _sorted_unique(problems: Iterable[Problem]) -> list[Problem]:
    unique = dict.fromkeys(problems)
    return sorted(unique, key=lambda p: (p.line or 0, p.column or 0, p.field))


def _channel_fields(doc: YamlDocument, loc: Loc) -> list[str]:
    if len(loc) == 2 and loc[0] == "channels":
        channel = doc.data.get("channels", {}).get(loc[1])
        spec = pattern_of(channel.get("pattern")) if isinstance(channel, dict) else None
        if spec is not None:
            return list(CHANNEL_MODELS[spec.name].model_fields)
    return []


def _model_problems(doc: YamlDocument, errors: list[ErrorDetails]) -> Iterator[Problem]:
    """Generic translations, made specific where the policy knows better."""
    for problem, kind in pydantic_problems(
        doc,
        errors,
        PolicyModel,
        union_tags=frozenset(PATTERN_NAMES),
        allowed_fields=lambda loc: _channel_fields(doc, loc),
        name_max=NAME_MAX,
    ):
        field = problem.field
        in_channel = field.startswith("channels.") and field.count(".") == 2
        if kind == "extra_forbidden" and in_channel:
            spec = pattern_of(doc.data["channels"][field.split(".")[1]].get("pattern"))
            if spec is not None:
                roles = ", ".join(spec.role_fields)
                problem = replace(
                    problem,
                    message=f"{problem.message} for a {spec.name} channel (its roles are {roles})",
                )
        elif kind == "missing" and in_channel and not field.endswith(".pattern"):
            problem = replace(
                problem, hint=f"this pattern needs the role field {field.rsplit('.', 1)[1]!r}"
            )
        elif (
            kind == "value_error"
            and field.startswith("identities.")
            and (field.count(".") == 1 or field.endswith(".key"))  # not the mapping's expires
        ):
            # (A private key never gets here: the text was refused before it was parsed.)
            problem = replace(
                problem,
                message=f"invalid public key: {problem.message}",
                hint="copy the line printed by `nngsec keygen NAME` (also in NAME.pub)",
            )
        yield problem
