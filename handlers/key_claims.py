"""Claims for identifiers stored before KeyClaims existed (issue 8, kind 4; R-PAR-1, R-PAR-3)."""

from __future__ import annotations

from collections.abc import Iterator

from eventsourcing.utils import get_topic

from domain.key_claim import ClaimKind, KeyTakenError
from domain.partner import PartnerTenant
from domain.passport import Passport
from handlers.access import Actor, Role
from handlers.base import FleetApplication, Working, command
from handlers.partners import claim_key

PAGE = 1_000
# The first event of each aggregate whose natural key is a case-insensitive identifier.
KEYED_TOPICS: dict[str, tuple[ClaimKind, str]] = {
    get_topic(Passport.Opened): ("passport", "passport_id"),
    get_topic(PartnerTenant.Registered): ("location", "location_id"),
}


class KeyClaimCommands(FleetApplication):
    """The one-off claiming of stored Passport IDs and Location IDs."""

    @command(Role.OPERATOR)
    def claim_stored_keys(self, w: Working, actor: Actor) -> list[str]:
        """Issue 8, kind 4: give every stored Passport ID and Location ID its KeyClaim.

        One transaction per key, each its own `claim_stored_key` (one already claimed is
        left as it is); `w` stays empty. Returns the collisions found: two spellings of one
        folded key stored before claims existed, each as the refusal naming both, for an
        operator to resolve. Running it again changes nothing."""
        collisions = []
        for kind, spelling in self._stored_keys():
            try:
                self._claim(actor, kind, spelling)
            except KeyTakenError as taken:
                collisions.append(str(taken))
        return collisions

    def _claim(self, actor: Actor, kind: ClaimKind, spelling: str) -> None:
        self._run("claim_stored_key", actor, lambda w: claim_key(w, actor, kind, spelling))

    def _stored_keys(self) -> Iterator[tuple[ClaimKind, str]]:
        """(kind, spelling) of every stored Passport and partner, oldest first."""
        start = 1
        while page := self.recorder.select_notifications(start, PAGE, topics=list(KEYED_TOPICS)):
            for notification in page:
                kind, field = KEYED_TOPICS[notification.topic]
                event = self.mapper.to_domain_event(notification)
                yield kind, getattr(event, field)
            start = page[-1].id + 1
