"""What every file format of nngsec shares: the strict base model and the version check.

Every model forbids unknown fields (a typo must not silently weaken security) and is
immutable once validated. Every file starts with a format-version field, checked before
the model runs so that a file of a newer format is refused as such, not as a pile of
unknown fields.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from .._errors import PolicyError
from ._echo import echo
from ._yaml import YamlDocument

__all__ = ["StrictModel", "check_format_version"]


class StrictModel(BaseModel):
    """Base of the policy, topology and channel-key models."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, populate_by_name=True
    )


def check_format_version(
    doc: YamlDocument, *, what: str, field: str = "nngsec", supported: int = 1
) -> None:
    """Refuse a document whose ``field`` is missing or is not exactly the integer
    ``supported`` (not ``true``, ``1.0`` or ``'1'``, which YAML and JSON would let through
    a lax comparison)."""
    if field not in doc.data:
        raise PolicyError(
            doc.problem(
                (),
                f"missing the format version field {field!r}",
                f"start the file with '{field}: {supported}'",
            )
        )
    version = doc.data[field]
    if type(version) is not int or version != supported:
        raise PolicyError(
            doc.problem(
                (field,),
                f"unsupported {what} format version {_as_written(version)}, this nngsec reads "
                f"version "
                f"{supported}",
                f"write '{field}: {supported}', or upgrade nngsec to read newer formats",
            )
        )


def _as_written(value: object) -> str:
    """A scalar as YAML or JSON spells it (``true``, not Python's ``True``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else echo(value)
