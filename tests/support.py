"""Test support: an injectable clock and a policy with every pattern and scheme."""

from __future__ import annotations

from dataclasses import dataclass

ALICE, BOB, CAROL, DAVE, ERIN = "alice", "bob", "carol", "dave", "erin"
NAMES = (ALICE, BOB, CAROL, DAVE, ERIN)


@dataclass
class FakeClock:
    """A clock the test moves by hand (seconds since the epoch)."""

    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _channels() -> str:
    lines = ["channels:"]

    def add(name: str, pattern: str, roles: dict[str, list[str]], **extra: str) -> None:
        lines.append(f"  {name}:")
        lines.append(f"    pattern: {pattern}")
        for role, members in roles.items():
            lines.append(f"    {role}: [{', '.join(members)}]")
        for key, value in extra.items():
            lines.append(f"    {key}: {value}")

    for scheme in ("secretbox", "signed", "plaintext"):
        add(f"pair-{scheme}", "pair", {"members": [ALICE, BOB]}, scheme=scheme)
    add("bus-secretbox", "bus", {"members": [ALICE, BOB, CAROL]})
    add("bus-group", "bus", {"members": [ALICE, BOB, CAROL]}, origin="group")
    for scheme in ("signed", "plaintext"):
        add(f"bus-{scheme}", "bus", {"members": [ALICE, BOB, CAROL]}, scheme=scheme)
    for scheme in ("sealed", "signed", "plaintext"):
        add(
            f"pubsub-{scheme}",
            "pubsub",
            {"publishers": [ALICE, BOB], "subscribers": [CAROL, DAVE]},
            scheme=scheme,
            topics='["t.", "u."]',
        )
        add(
            f"pipeline-{scheme}",
            "pipeline",
            {"pushers": [ALICE, BOB], "pullers": [CAROL, DAVE]},
            scheme=scheme,
        )
        add(
            f"survey-{scheme}",
            "survey",
            {"surveyors": [ALICE, BOB], "respondents": [CAROL, DAVE]},
            scheme=scheme,
        )
    add("reqrep-single", "reqrep", {"clients": [ALICE, BOB], "servers": [CAROL]})
    for scheme in ("peerbox", "signed", "plaintext"):
        add(
            f"reqrep-{scheme}",
            "reqrep",
            {"clients": [ALICE, BOB], "servers": [CAROL, DAVE]},
            scheme=scheme,
        )
    return "\n".join(lines) + "\n"


ALL_CHANNELS = _channels()
