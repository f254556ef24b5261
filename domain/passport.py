"""Passport: one person's login, its device quota, its favourites and default view.

A separate aggregate because two rules count per person, across partners and
customers: R-PAR-3 (1,500 devices per Passport ID) and R-FAV-2…4 (25 favourites
and the default view per user). See docs/decisions.md.
"""

from __future__ import annotations

from typing import Literal, cast
from uuid import UUID

from domain.base import Cause, DomainError, FleetAggregate, Msg, NotAllowedError, natural_id

MAX_DEVICES_PER_PASSPORT = 1_500
MAX_FAVOURITES = 25
View = Literal["all_customers", "favorites_only"]
VIEWS: tuple[View, ...] = ("all_customers", "favorites_only")


class DeviceQuotaExceededError(DomainError):
    """R-PAR-3: the Passport ID would hold more than 1,500 devices."""


class FavouriteError(DomainError):
    """R-FAV-2…4: a favourite or view change was refused."""


class Passport(FleetAggregate):
    """A person identified by a Passport ID (partner user, partner admin or customer admin)."""

    passport_id: str
    partner_location_id: str | None
    registered_devices: int
    favourites: list[UUID]
    default_view: View

    def __init__(self) -> None:
        """A new person: no partner, no devices, no favourites, All Customers by default."""
        self.partner_location_id = None
        self.registered_devices = 0
        self.favourites = []
        self.default_view = "all_customers"

    @staticmethod
    def id_for(passport_id: str) -> UUID:
        """The aggregate id derived from the Passport ID."""
        return natural_id("passport", passport_id)

    class Opened(FleetAggregate.Created):
        passport_id: str

        def apply(self, aggregate: Passport) -> None:
            aggregate.passport_id = self.passport_id

    @classmethod
    def open(cls, cause: Cause, passport_id: str) -> Passport:
        """Start keeping a person's quota and preferences."""
        if not passport_id.strip():
            raise DomainError(Msg("A Passport ID must not be empty."))
        return cls._start(cls.Opened, cause, cls.id_for(passport_id), passport_id=passport_id)

    class JoinedPartner(FleetAggregate.Event):
        location_id: str

        def apply(self, aggregate: Passport) -> None:
            aggregate.partner_location_id = self.location_id

    def join_partner(self, cause: Cause, location_id: str) -> None:
        """R-PAR-1: the Passport ID is linked to its partner's Location ID."""
        if self.partner_location_id is not None:
            raise DomainError(
                Msg(
                    "{passport_id} is already a user of partner {partner_location_id}.",
                    passport_id=self.passport_id,
                    partner_location_id=self.partner_location_id,
                ),
                rule="R-PAR-1",
            )
        self._record(self.JoinedPartner, cause, location_id=location_id)

    @property
    def is_partner_user(self) -> bool:
        """R-PAR-2: recognised as a partner user."""
        return self.partner_location_id is not None

    class DevicesRegistered(FleetAggregate.Event):
        serials: list[str]

        def apply(self, aggregate: Passport) -> None:
            aggregate.registered_devices += len(self.serials)

    def register_devices(self, cause: Cause, serials: list[str]) -> None:
        """R-PAR-3: count devices registered under this Passport ID, at most 1,500."""
        total = self.registered_devices + len(serials)
        if total > MAX_DEVICES_PER_PASSPORT:
            raise DeviceQuotaExceededError(
                Msg(
                    "Passport ID {passport_id} holds {registered_devices} devices; "
                    "registering {more} more would exceed the limit of "
                    "{limit:,} devices per Passport ID. Register them "
                    "under another Passport ID.",
                    passport_id=self.passport_id,
                    registered_devices=self.registered_devices,
                    more=len(serials),
                    limit=MAX_DEVICES_PER_PASSPORT,
                ),
                rule="R-PAR-3",
            )
        self._record(self.DevicesRegistered, cause, serials=list(serials))

    class FavoriteAdded(FleetAggregate.Event):
        customer_group_id: UUID

        def apply(self, aggregate: Passport) -> None:
            aggregate.favourites.append(self.customer_group_id)

    def add_favourite(
        self, cause: Cause, customer_group_id: UUID, partner_location_id: str
    ) -> None:
        """R-FAV-2: mark a customer group of the user's own partner as favourite, at most 25."""
        self.require_user_of(partner_location_id)
        if customer_group_id in self.favourites:
            raise FavouriteError(Msg("This customer group is already one of your favourites."))
        if len(self.favourites) >= MAX_FAVOURITES:
            raise FavouriteError(
                Msg(
                    "You already have {most} favourites, the most allowed; remove "
                    "one before adding another.",
                    most=MAX_FAVOURITES,
                ),
                rule="R-FAV-2",
            )
        self._record(self.FavoriteAdded, cause, customer_group_id=customer_group_id)

    class FavoriteRemoved(FleetAggregate.Event):
        customer_group_id: UUID

        def apply(self, aggregate: Passport) -> None:
            aggregate.favourites.remove(self.customer_group_id)

    def remove_favourite(self, cause: Cause, customer_group_id: UUID) -> None:
        """R-FAV-2, R-FAV-3: unmark; removing the last one falls back to All Customers."""
        if customer_group_id not in self.favourites:
            raise FavouriteError(Msg("This customer group is not one of your favourites."))
        self._unmark(cause, customer_group_id)

    def forget_deleted_group(self, cause: Cause, customer_group_id: UUID) -> None:
        """R-GRP-2, R-FAV-3: a deleted group is nobody's favourite; its slot is free again."""
        if customer_group_id in self.favourites:
            self._unmark(cause, customer_group_id)

    def _unmark(self, cause: Cause, customer_group_id: UUID) -> None:
        self._record(self.FavoriteRemoved, cause, customer_group_id=customer_group_id)
        if not self.favourites and self.default_view == "favorites_only":
            self._record(self.DefaultViewChanged, cause, view="all_customers")

    class DefaultViewChanged(FleetAggregate.Event):
        view: str

        def apply(self, aggregate: Passport) -> None:
            aggregate.default_view = cast(View, self.view)

    def choose_view(self, cause: Cause, view: str) -> None:
        """R-FAV-3, R-FAV-4: remember the chosen view as the user's default."""
        self.require_user_of(self.partner_location_id)
        if view not in VIEWS:
            raise FavouriteError(
                Msg(
                    "Unknown view {view!r}; choose one of {views}.",
                    view=view,
                    views=", ".join(VIEWS),
                )
            )
        if view == "favorites_only" and not self.favourites:
            raise FavouriteError(
                Msg("Favorites Only is available once you have at least one favourite."),
                rule="R-FAV-3",
            )
        if view == self.default_view:
            return
        self._record(self.DefaultViewChanged, cause, view=view)

    @property
    def favorites_only_available(self) -> bool:
        """R-FAV-3: Favorites Only needs at least one favourite."""
        return bool(self.favourites)

    def require_user_of(self, location_id: str | None) -> None:
        """R-PAR-2: refuse unless this person is a user of that partner."""
        if self.partner_location_id is None or self.partner_location_id != location_id:
            raise NotAllowedError(
                Msg(
                    "{passport_id} is not a user of partner {location_id}: only its partner "
                    "users see My Customers.",
                    passport_id=self.passport_id,
                    location_id=location_id,
                ),
                rule="R-PAR-2",
            )
