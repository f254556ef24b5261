"""A customer group's refusals, child groups, and who marked it as favourite.

The marks are a mixin of CustomerGroup, kept apart so each module stays readable; its
events are CustomerGroup's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from domain.base import Cause, DomainError, FleetAggregate, Msg


class CustomerGroupError(DomainError):
    """A customer-group command was refused."""


class GroupDeletedError(CustomerGroupError):
    """R-GRP-2: the customer group was deleted; only a new link or dashboard re-opens it."""


class DeletionRefusedError(CustomerGroupError):
    """R-GRP-2: the group still has devices or partner-created child groups."""

    def __init__(self, reasons: list[Msg], admins: list[str]) -> None:
        self.reasons = [str(reason) for reason in reasons]
        self.admins = admins
        super().__init__(
            Msg(
                "The customer group cannot be deleted: {reasons}. Contact the group's admins "
                "to resolve this: {contact}.",
                reasons=joined(reasons),
                contact=", ".join(admins) if admins else Msg("none recorded"),
            ),
            rule="R-GRP-2",
            extensions={"reasons": list(self.reasons), "admins": list(admins)},
        )


def joined(parts: list[Msg]) -> Msg:
    """Parts of a sentence, each translatable, joined by semicolons."""
    whole = parts[0]
    for part in parts[1:]:
        whole = Msg("{first}; {then}", first=whole, then=part)
    return whole


@dataclass
class ChildGroup:
    """A child device group inside a customer group (R-GRP-1)."""

    name: str
    created_by: str
    by_partner: bool
    shared_with: list[str] = field(default_factory=list)

    def visible_to(self, admin: str) -> bool:
        """R-GRP-1: seen by creator and sharees; customer-created groups by no partner."""
        return self.by_partner and (admin == self.created_by or admin in self.shared_with)


class GroupLifecycle:
    """Whether the group is deleted, and which partner users have it as favourite (R-FAV-2).

    The group keeps the marks so that deleting it knows whose favourite to remove, and so
    that a favourite added while the group is being deleted conflicts with the deletion
    (both change the group) instead of outliving it.
    """

    partner_location_id: str
    customer_name: str
    is_dashboard: bool
    deleted: bool
    favourite_of: list[str]  # Passport IDs, sorted

    if TYPE_CHECKING:

        def _record(
            self, event_class: type[FleetAggregate.Event], cause: Cause, **fields: Any
        ) -> None: ...

    def require_open(self) -> None:
        """R-GRP-2: refuse any command on a deleted group, saying how it comes back."""
        if not self.deleted:
            return
        names = {"name": self.customer_name, "partner": self.partner_location_id}
        raise GroupDeletedError(
            Msg(
                "{name}: this customer dashboard was deleted. It comes back, empty, when the "
                "customer links a device to partner {partner} again or the partner creates a "
                "customer dashboard for the customer.",
                **names,
            )
            if self.is_dashboard
            else Msg(
                "{name}: this customer group was deleted. It comes back, empty, when the "
                "customer links a device to partner {partner} again or the partner creates a "
                "customer dashboard for the customer.",
                **names,
            ),
            rule="R-GRP-2",
        )

    class FavoriteMarked(FleetAggregate.Event):
        passport_id: str

        def apply(self, aggregate: GroupLifecycle) -> None:
            aggregate.favourite_of = sorted({*aggregate.favourite_of, self.passport_id})

    def mark_favourite(self, cause: Cause, passport_id: str) -> None:
        """R-FAV-2: a partner user marked this group as favourite; refused once it is deleted."""
        self.require_open()
        self._record(self.FavoriteMarked, cause, passport_id=passport_id)

    class FavoriteUnmarked(FleetAggregate.Event):
        passport_id: str

        def apply(self, aggregate: GroupLifecycle) -> None:
            aggregate.favourite_of = [p for p in aggregate.favourite_of if p != self.passport_id]

    def unmark_favourite(self, cause: Cause, passport_id: str) -> None:
        """R-FAV-2: the user unmarked it; nothing to record if the group never had the mark."""
        if passport_id in self.favourite_of:
            self._record(self.FavoriteUnmarked, cause, passport_id=passport_id)
