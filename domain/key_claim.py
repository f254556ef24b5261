"""KeyClaim: one spelling per case-insensitive identifier (issue 8, kind 4).

Passport IDs and Partner Location IDs are compared in one folded form (NFKC, case-folded:
`domain.text.fold`), but the ids of their aggregates are derived from the spelling first
registered, so stored histories keep their ids. A claim, keyed by the folded form and saved
in the same transaction as the Passport or partner it guards, makes "IT@acme" after
"it@acme" a refusal that names the registered spelling instead of a second person with a
quota of its own (R-PAR-3).
"""

from __future__ import annotations

import unicodedata
from typing import Literal
from uuid import UUID

from domain.base import Cause, DomainError, FleetAggregate, Msg, natural_id
from domain.text import fold

ClaimKind = Literal["passport", "location"]
LABELS: dict[str, str] = {"passport": "Passport ID", "location": "Partner Location ID"}


class KeyTakenError(DomainError):
    """An identifier differs only in case or Unicode form from one already registered."""


class KeyClaim(FleetAggregate):
    """The registered spelling of one identifier of `kind`, whatever its case or form."""

    kind: str
    spelling: str

    @staticmethod
    def id_for(kind: ClaimKind, key: str) -> UUID:
        """The claim's id: derived from the folded key, so every spelling finds it."""
        return natural_id("key-claim", kind, fold(key))

    class Claimed(FleetAggregate.Created):
        kind: str
        spelling: str

        def apply(self, aggregate: KeyClaim) -> None:
            aggregate.kind, aggregate.spelling = self.kind, self.spelling

    @classmethod
    def claim(cls, cause: Cause, kind: ClaimKind, spelling: str) -> KeyClaim:
        """Record `spelling` (NFC) as the one spelling of its folded key."""
        exact = unicodedata.normalize("NFC", spelling)
        return cls._start(cls.Claimed, cause, cls.id_for(kind, exact), kind=kind, spelling=exact)

    def require_spelling(self, spelling: str) -> None:
        """Refuse (KeyTakenError) a spelling other than the registered one."""
        if unicodedata.normalize("NFC", spelling) != self.spelling:
            label = LABELS[self.kind]
            raise KeyTakenError(
                Msg(
                    "{label} {spelling!r} is already registered as {registered!r} ({label}s are "
                    "compared without regard to case); use {registered!r}.",
                    label=label,
                    spelling=spelling,
                    registered=self.spelling,
                )
            )
