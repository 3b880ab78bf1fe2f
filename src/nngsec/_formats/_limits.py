"""The largest policy, channel-key and signature file nngsec reads, checked before anything
of it is parsed (and, for a file, before it is read past the limit).

Parsing is what costs: YAML with places (``_yaml.py``) and pydantic spend 250 times a
file's size in memory on input made of many small values (a 2 MB policy of one long list
took 10 to 20 s and 490 MB to refuse, a 1 MiB channel-key file of one long list 5.5 s
and 330 MB). A node whose keystore pins a signer verifies a set over its raw bytes before
it parses it (``_policy/_verify.py``), so these limits are what bounds a node that parses
a set without a signature, and ``nngsec check`` and the admin commands, which parse
first.

Each limit is well above the largest deployment measured (``benchmarks/policy_limits.py``
prints the figures; 2 cores, libyaml):

- a policy: the generated deployment of 10,000 identities and 200 channels that
  ``benchmarks/bench_check.py`` times is 1.2 MB and parses in about 1 s (28 MB); one of
  2,000 identities in 500 channels that name 60 members each is 0.6 MB. 4 MiB holds over
  three times the first.
- a channel-key file grows with holders x epochs (about 230 bytes a sealed entry, at most
  two epochs a channel): those two deployments, with a previous epoch kept, are 2.9 MB
  (13,400 entries) and 8.3 MB (36,400 entries; 2.5 to 4 s and 88 MB to parse). 16 MiB
  holds twice the second.
- a signature file is one line of 200 characters and a few comment lines: 4 KiB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .._errors import NngsecError, PolicyError, Problem
from ._units import format_size

__all__ = ["CHANNEL_KEYS_LIMIT", "POLICY_LIMIT", "SIGNATURE_LIMIT", "SizeLimit", "read_bounded"]


@dataclass(frozen=True)
class SizeLimit:
    """The most bytes a ``what`` file may have, and what to do about a larger one."""

    what: str  # "policy", "channel-key", "signature": messages add " file"
    limit: int
    hint: str

    def check(
        self, size: int | None, where: str, *, error: type[NngsecError] = PolicyError
    ) -> None:
        """Refuse a file of ``size`` bytes (``None``: larger than the limit, size unknown:
        a stream) found at ``where`` when it is over the limit."""
        if size is not None and size <= self.limit:
            return
        found = f"is {size:,} bytes" if size is not None else "is larger than that"
        raise error(
            Problem(
                f"the {self.what} file {found}, over the limit of {format_size(self.limit)} "
                f"({self.limit:,} bytes): refused before it is parsed",
                where,
                hint=self.hint,
            )
        )


POLICY_LIMIT = SizeLimit(
    "policy",
    4 << 20,
    "restore the policy from its source; a deployment of 10,000 identities is about 1.2 MB",
)
CHANNEL_KEYS_LIMIT = SizeLimit(
    "channel-key",
    16 << 20,
    "restore the channel-key file written by nngsec rotate; one holder's key of one epoch "
    "is about 215 bytes",
)
SIGNATURE_LIMIT = SizeLimit(
    "signature", 4 << 10, "re-create it with nngsec sign (a signature file is one line)"
)


def read_bounded(path: Path, limit: SizeLimit, *, error: type[NngsecError] = PolicyError) -> bytes:
    """The bytes of ``path``, read no further than one byte past ``limit`` (a file that
    grows, or a stream such as ``/dev/zero``, is never read whole); raises ``error`` when
    there are more, and ``OSError`` as :meth:`Path.read_bytes` does."""
    with path.open("rb") as file:
        data = file.read(limit.limit + 1)
        if len(data) > limit.limit:
            size = os.fstat(file.fileno()).st_size
            limit.check(size if size > limit.limit else None, str(path), error=error)
    return data
