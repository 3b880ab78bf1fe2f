"""Rules about time: what has expired, and what expires soon (run on every check)."""

from __future__ import annotations

from collections.abc import Iterator

from ..._formats._units import format_duration, format_utc, parse_utc
from ..._formats._yaml import Loc
from .._findings import Issue
from ._base import Context, rule


def _deadlines(ctx: Context) -> Iterator[tuple[Loc, str, float, str]]:
    """(where, what, when, how to renew) for everything in the policy that expires."""
    policy = ctx.policy
    path = policy.document.path
    sign = f"and sign it: nngsec sign {path} --key ADMIN.key"
    if policy.model.expires:
        yield (
            ("expires",),
            f"policy {policy.name!r}",
            parse_utc(policy.model.expires),
            f"set a later expires:, raise version:, {sign}",
        )
    for name, entry in policy.model.identities.items():
        if entry.expires and not policy.is_revoked(name):
            yield (
                ("identities", name, "expires"),
                f"identity {name!r}",
                parse_utc(entry.expires),
                f"give it a later expires: (or a new identity), raise version:, {sign}",
            )
    keys = ctx.keys
    if keys is None or keys.model.policy != policy.name:
        return
    for channel, spec in keys.model.channels.items():
        current = spec.epochs[0]
        if channel in policy.channels and current.expires:
            yield (
                ("channels", channel),
                f"key epoch {current.epoch} of channel {channel!r}",
                parse_utc(current.expires),
                f"rotate it: nngsec rotate {path} {channel}, {sign}",
            )


@rule("expired", "error", scope="policy")
def expired(ctx: Context) -> Iterator[Issue]:
    """The policy, an identity or a channel's current key epoch is past its expiry time.

    **Why it matters.** Nodes refuse to start on an expired policy and refuse an update to
    one; frames from an identity past its `expires:` (or sent under an expired policy) are
    refused as `revoked`; nobody seals or accepts frames under an expired key epoch
    (`nngsec rotate --lifetime`). Whatever has expired has stopped working.

    **Example.**

    ```yaml
    expires: 2026-01-31T00:00:00Z          # expired, checked on 2026-02-01
    identities:
      contractor: {key: "nngsec-id-v1:...", expires: 2026-01-15T00:00:00Z}
    ```

    **Fix.** Set a later `expires:` (or remove it), raise `version:`, sign and distribute
    the policy; rotate a channel whose key epoch expired.
    """
    for loc, what, when, renew in _deadlines(ctx):
        if when <= ctx.now:
            yield Issue(
                ctx.at_policy(loc, key=loc[-1] != "expires"),
                f"{what} expired at {format_utc(when)}",
                renew,
            )


@rule("expiring-soon", "warning", scope="policy")
def expiring_soon(ctx: Context) -> Iterator[Issue]:
    """The policy, an identity or a channel's current key epoch expires within the warning
    window (`--expiry-warning`, two weeks by default).

    **Why it matters.** At its expiry time it stops working (see `expired`) on every node at
    once. A new policy or key epoch has to be made, signed and reach every node first.

    **Example.** `expires: 2026-02-07T00:00:00Z`, checked on 2026-02-01 with the default
    window of 14 days.

    **Fix.** Renew it now (a later `expires:`, a new version, signed), or widen the window
    with `--expiry-warning 30d` to hear about it earlier.
    """
    for loc, what, when, renew in _deadlines(ctx):
        if ctx.now < when <= ctx.now + ctx.expiry_warning:
            yield Issue(
                ctx.at_policy(loc, key=loc[-1] != "expires"),
                f"{what} expires at {format_utc(when)}, within "
                f"{format_duration(ctx.expiry_warning)}",
                renew,
            )
