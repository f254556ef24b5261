"""Service levels of a device: warranties, support agreements, Care Packs (R-SVC-3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from domain.base import DomainError, Msg

ServiceLevelKind = Literal["warranty", "care_pack", "support_agreement"]
# Higher ranks first when asked for "the highest active service level".
RANKS: dict[str, int] = {"warranty": 1, "care_pack": 2, "support_agreement": 3}


class ServiceLevelError(DomainError):
    """A service level was refused."""


@dataclass(frozen=True)
class ServiceLevel:
    """One service level with its validity, both ends inclusive."""

    kind: str
    name: str
    starts: date
    ends: date

    def __post_init__(self) -> None:
        if self.kind not in RANKS:
            known = ", ".join(RANKS)
            raise ServiceLevelError(
                Msg(
                    "Unknown service level kind {kind!r}; known: {known}.",
                    kind=self.kind,
                    known=known,
                )
            )
        if self.ends < self.starts:
            raise ServiceLevelError(
                Msg(
                    "Service level {name!r} ends ({ends}) before it starts ({starts}).",
                    name=self.name,
                    ends=self.ends,
                    starts=self.starts,
                )
            )
        if not self.name.strip():
            raise ServiceLevelError(Msg("A service level needs a name."))

    def active_on(self, day: date) -> bool:
        """Active from its first to its last day; expired levels are not active."""
        return self.starts <= day <= self.ends

    @property
    def rank(self) -> int:
        """Warranty < Care Pack < support agreement."""
        return RANKS[self.kind]


def active_levels(levels: list[ServiceLevel], day: date) -> list[ServiceLevel]:
    """R-SVC-3: all levels active on `day`, highest first (then latest ending)."""
    active = [level for level in levels if level.active_on(day)]
    return sorted(active, key=lambda level: (level.rank, level.ends), reverse=True)


def highest_level(levels: list[ServiceLevel], day: date) -> ServiceLevel | None:
    """R-SVC-3: the highest level active on `day`, if any."""
    active = active_levels(levels, day)
    return active[0] if active else None
