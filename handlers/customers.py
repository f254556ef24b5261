"""Partner users' commands on customer groups and their own favourites (R-GRP-*, R-FAV-*)."""

from __future__ import annotations

from uuid import UUID

from domain.base import Cause, NotAllowedError, NotFoundError
from domain.customer_group import CustomerGroup
from domain.passport import MAX_FAVOURITES, Passport
from handlers.base import FleetApplication, Working
from handlers.partners import load_partner


def missing_group(group_id: UUID) -> str:
    """The refusal for a customer group that does not exist, or is another tenant's."""
    return f"No customer group {group_id}."


def load_group(w: Working, group_id: UUID) -> CustomerGroup:
    """The customer group, or a refusal that says it does not exist."""
    return w.load(CustomerGroup, group_id, missing_group(group_id))


def load_group_of_user(w: Working, cause: Cause, group_id: UUID) -> tuple[CustomerGroup, str]:
    """R-PAR-2: the group and the principal's role in its partner ("admin" or "user").

    A group of a partner the principal is no user of is `NotFoundError`, in the words used
    for a group that never existed: ids derive from (Location ID, customer id), so any other
    answer would let one partner learn another's customers.
    """
    group = w.find(CustomerGroup, group_id)
    role = (
        None
        if group is None
        else load_partner(w, group.partner_location_id).users.get(cause.principal)
    )
    if group is None or role is None:
        raise NotFoundError(missing_group(group_id))
    return group, role


def passport_and_group(w: Working, cause: Cause, group_id: UUID) -> tuple[Passport, CustomerGroup]:
    """The principal's Passport and a group of its partner; any other group is not found.

    R-PAR-2 as `load_group_of_user`, without loading the partner tenant: the Passport of a
    partner user names its partner (R-PAR-1).
    """
    passport = w.find(Passport, Passport.id_for(cause.principal))
    group = w.find(CustomerGroup, group_id)
    if passport is None or group is None or not passport.is_partner_user:
        raise NotFoundError(missing_group(group_id))
    if group.partner_location_id != passport.partner_location_id:
        raise NotFoundError(missing_group(group_id))
    return passport, group


def load_group_as_admin(w: Working, cause: Cause, group_id: UUID) -> CustomerGroup:
    """The group; a partner admin who is not yet one of its admins joins them first (R-GRP-3)."""
    group, role = load_group_of_user(w, cause, group_id)
    if role == "admin":
        group.admit_partner_admin(cause)
    return group


def load_partner_user(w: Working, passport_id: str) -> Passport:
    """R-PAR-2: the Passport of a recognised partner user, or a refusal."""
    passport = w.find(Passport, Passport.id_for(passport_id))
    if passport is None or not passport.is_partner_user:
        raise NotAllowedError(f"{passport_id} is not recognised as a partner user.")
    return passport


def forget_deleted_favourites(w: Working, cause: Cause, passport: Passport) -> None:
    """R-FAV-2, R-FAV-3: drop favourites of groups deleted before deletions removed them.

    Histories recorded before that kept such favourites; this frees their slots.
    """
    for group_id in list(passport.favourites):
        group = w.find(CustomerGroup, group_id)
        if group is None or group.deleted:
            passport.forget_deleted_group(cause, group_id)


class CustomerGroupCommands(FleetApplication):
    """Child device groups, group admins, deleting groups, favourites and the default view."""

    def create_child_group(self, cause: Cause, group_id: UUID, child_id: str, name: str) -> None:
        """R-GRP-1, R-GRP-3: a partner admin of the group creates a child device group."""
        self._execute(
            "create_child_group",
            cause,
            lambda w: load_group_as_admin(w, cause, group_id).create_child_group(
                cause, child_id, name, True
            ),
        )

    def create_customer_child_group(
        self, cause: Cause, customer_id: str, group_id: UUID, child_id: str, name: str
    ) -> None:
        """R-GRP-1: the customer creates its own subgroup, invisible to partners."""

        def work(w: Working) -> None:
            group = load_group(w, group_id)
            if group.customer_id != customer_id:  # another customer's group is not found
                raise NotFoundError(missing_group(group_id))
            group.create_child_group(cause, child_id, name, by_partner=False)

        self._execute("create_customer_child_group", cause, work)

    def share_child_group(
        self, cause: Cause, group_id: UUID, child_id: str, with_admin: str
    ) -> None:
        """R-GRP-1: share a child group with another admin of the customer group."""
        self._execute(
            "share_child_group",
            cause,
            lambda w: load_group_of_user(w, cause, group_id)[0].share_child_group(
                cause, child_id, with_admin
            ),
        )

    def delete_child_group(self, cause: Cause, group_id: UUID, child_id: str) -> None:
        """R-GRP-1: delete a child group the principal can see."""
        self._execute(
            "delete_child_group",
            cause,
            lambda w: load_group_of_user(w, cause, group_id)[0].delete_child_group(cause, child_id),
        )

    def add_group_admin(self, cause: Cause, group_id: UUID, passport_id: str) -> None:
        """R-GRP-3: make another user of the same partner an admin of the customer group."""

        def work(w: Working) -> None:
            group = load_group_as_admin(w, cause, group_id)
            if passport_id not in load_partner(w, group.partner_location_id).users:
                raise NotAllowedError(
                    f"{passport_id} is not a user of partner {group.partner_location_id}."
                )
            group.add_admin(cause, cause.principal, passport_id)

        self._execute("add_group_admin", cause, work)

    def delete_customer_group(self, cause: Cause, group_id: UUID) -> None:
        """R-GRP-2: delete an empty customer group; a refusal names the admins to contact.

        R-FAV-2, R-FAV-3: in the same transaction it stops being anyone's favourite.
        """

        def work(w: Working) -> None:
            group = load_group_as_admin(w, cause, group_id)
            for passport_id in group.delete(cause):
                passport = w.load(Passport, Passport.id_for(passport_id), passport_id)
                passport.forget_deleted_group(cause, group.id)

        self._execute("delete_customer_group", cause, work)

    def add_favourite(self, cause: Cause, group_id: UUID) -> None:
        """R-FAV-2: the principal marks a customer group of its partner as favourite."""

        def work(w: Working) -> None:
            passport, group = passport_and_group(w, cause, group_id)
            group.mark_favourite(cause, passport.passport_id)
            if len(passport.favourites) >= MAX_FAVOURITES:
                forget_deleted_favourites(w, cause, passport)
            passport.add_favourite(cause, group.id, group.partner_location_id)

        self._execute("add_favourite", cause, work)

    def remove_favourite(self, cause: Cause, group_id: UUID) -> None:
        """R-FAV-2, R-FAV-3: unmark a favourite; without favourites the view is All Customers."""

        def work(w: Working) -> None:
            load_partner_user(w, cause.principal).remove_favourite(cause, group_id)
            group = w.find(CustomerGroup, group_id)
            if group is not None:
                group.unmark_favourite(cause, cause.principal)

        self._execute("remove_favourite", cause, work)

    def choose_default_view(self, cause: Cause, view: str) -> None:
        """R-FAV-4: remember All Customers or Favorites Only as the principal's default."""

        def work(w: Working) -> None:
            passport = load_partner_user(w, cause.principal)
            if view == "favorites_only":
                forget_deleted_favourites(w, cause, passport)
            passport.choose_view(cause, view)

        self._execute("choose_default_view", cause, work)

    def customer_group(self, group_id: UUID) -> CustomerGroup:
        """The customer group as recorded now."""
        return load_group(Working(self), group_id)

    def passport(self, passport_id: str) -> Passport:
        """The person's quota, favourites and default view as recorded now."""
        return Working(self).load(
            Passport, Passport.id_for(passport_id), f"No Passport ID {passport_id!r} is known."
        )
