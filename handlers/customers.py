"""Partner users' commands on customer groups and their own favourites (R-GRP-*, R-FAV-*)."""

from __future__ import annotations

from uuid import UUID

from domain.base import Cause, Msg, NotAllowedError, NotFoundError
from domain.customer_group import CustomerGroup
from domain.passport import MAX_FAVOURITES, Passport
from handlers.access import Actor, Role
from handlers.base import FleetApplication, Working, command
from handlers.partners import load_partner


def missing_group(group_id: UUID) -> Msg:
    """The refusal for a customer group that does not exist, or is another tenant's."""
    return Msg("No customer group {group_id}.", group_id=group_id)


def missing_passport(passport_id: str) -> Msg:
    """The refusal for a Passport ID no one has used yet."""
    return Msg("No Passport ID {passport_id!r} is known.", passport_id=passport_id)


def load_group(w: Working, group_id: UUID) -> CustomerGroup:
    """The customer group, or a refusal that says it does not exist."""
    return w.load(CustomerGroup, group_id, missing_group(group_id))


def partner_group(w: Working, actor: Actor, group_id: UUID) -> CustomerGroup:
    """R-PAR-2, R-LNK-1: a customer group of the actor's own partner.

    A group of another partner is `NotFoundError`, in the words used for a group that never
    existed: ids derive from (Location ID, customer id), so any other answer would let one
    partner learn another's customers.
    """
    group = w.find(CustomerGroup, group_id)
    if group is None or group.partner_location_id != actor.tenant:
        raise NotFoundError(missing_group(group_id))
    return group


def passport_and_group(w: Working, actor: Actor, group_id: UUID) -> tuple[Passport, CustomerGroup]:
    """The actor's Passport and a group of its partner; any other group is not found."""
    passport = w.find(Passport, Passport.id_for(actor.subject))
    group = partner_group(w, actor, group_id)
    if passport is None or not passport.is_partner_user:
        raise NotFoundError(missing_group(group_id))
    return passport, group


def group_as_admin(w: Working, actor: Actor, group_id: UUID) -> CustomerGroup:
    """The group; a partner admin who is not yet one of its admins joins them first (R-GRP-3)."""
    group = partner_group(w, actor, group_id)
    if actor.role is Role.PARTNER_ADMIN:
        group.admit_partner_admin(actor)
    return group


def load_partner_user(w: Working, passport_id: str) -> Passport:
    """R-PAR-2: the Passport of a recognised partner user, or a refusal."""
    passport = w.find(Passport, Passport.id_for(passport_id))
    if passport is None or not passport.is_partner_user:
        raise NotAllowedError(
            Msg("{passport_id} is not recognised as a partner user.", passport_id=passport_id),
            rule="R-PAR-2",
        )
    return passport


def forget_deleted_favourites(w: Working, cause: Cause, passport: Passport) -> None:
    """R-FAV-2, R-FAV-3: drop favourites of groups deleted before deletions removed them.

    Histories recorded before that kept such favourites; this frees their slots.
    """
    for group_id in list(passport.favourites):
        group = w.find(CustomerGroup, group_id)
        if group is None or group.deleted:
            passport.forget_deleted_group(cause, group_id)


PARTNER = (Role.PARTNER_ADMIN, Role.PARTNER_USER)


class CustomerGroupCommands(FleetApplication):
    """Child device groups, group admins, deleting groups, favourites and the default view.

    Partner users act on their own partner's groups only (`partner_group`); which of them
    may do what inside a group stays the group's rule (R-GRP-1…3)."""

    @command(*PARTNER)
    def create_child_group(
        self, w: Working, actor: Actor, group_id: UUID, child_id: str, name: str
    ) -> None:
        """R-GRP-1, R-GRP-3: an admin of the customer group creates a child device group."""
        group_as_admin(w, actor, group_id).create_child_group(actor, child_id, name, True)

    @command(Role.CUSTOMER_ADMIN, tenant="customer_id")
    def create_customer_child_group(
        self, w: Working, actor: Actor, customer_id: str, group_id: UUID, child_id: str, name: str
    ) -> None:
        """R-GRP-1: the customer creates its own subgroup, invisible to partners."""
        group = load_group(w, group_id)
        if group.customer_id != customer_id:  # another customer's group is not found
            raise NotFoundError(missing_group(group_id))
        group.create_child_group(actor, child_id, name, by_partner=False)

    @command(*PARTNER)
    def share_child_group(
        self, w: Working, actor: Actor, group_id: UUID, child_id: str, with_admin: str
    ) -> None:
        """R-GRP-1: share a child group with another admin of the customer group."""
        partner_group(w, actor, group_id).share_child_group(actor, child_id, with_admin)

    @command(*PARTNER)
    def delete_child_group(self, w: Working, actor: Actor, group_id: UUID, child_id: str) -> None:
        """R-GRP-1: delete a child group the actor can see."""
        partner_group(w, actor, group_id).delete_child_group(actor, child_id)

    @command(*PARTNER)
    def add_group_admin(self, w: Working, actor: Actor, group_id: UUID, passport_id: str) -> None:
        """R-GRP-3: make another user of the same partner an admin of the customer group."""
        group = group_as_admin(w, actor, group_id)
        if passport_id not in load_partner(w, group.partner_location_id).users:
            raise NotAllowedError(
                Msg(
                    "{passport_id} is not a user of partner {partner_location_id}.",
                    passport_id=passport_id,
                    partner_location_id=group.partner_location_id,
                ),
                rule="R-GRP-3",
            )
        group.add_admin(actor, actor.subject, passport_id)

    @command(*PARTNER)
    def delete_customer_group(self, w: Working, actor: Actor, group_id: UUID) -> None:
        """R-GRP-2: delete an empty customer group; a refusal names the admins to contact.

        R-FAV-2, R-FAV-3: in the same transaction it stops being anyone's favourite.
        """
        group = group_as_admin(w, actor, group_id)
        for passport_id in group.delete(actor):
            passport = w.load(Passport, Passport.id_for(passport_id), missing_passport(passport_id))
            passport.forget_deleted_group(actor, group.id)

    @command(*PARTNER)
    def add_favourite(self, w: Working, actor: Actor, group_id: UUID) -> None:
        """R-FAV-2: the actor marks a customer group of its partner as favourite."""
        w.prefetch(Passport.id_for(actor.subject), group_id)
        passport, group = passport_and_group(w, actor, group_id)
        group.mark_favourite(actor, passport.passport_id)
        if len(passport.favourites) >= MAX_FAVOURITES:
            forget_deleted_favourites(w, actor, passport)
        passport.add_favourite(actor, group.id, group.partner_location_id)

    @command(*PARTNER)
    def remove_favourite(self, w: Working, actor: Actor, group_id: UUID) -> None:
        """R-FAV-2, R-FAV-3: unmark a favourite; without favourites the view is All Customers."""
        w.prefetch(Passport.id_for(actor.subject), group_id)
        passport = load_partner_user(w, actor.subject)
        group = partner_group(w, actor, group_id)
        passport.remove_favourite(actor, group_id)
        group.unmark_favourite(actor, actor.subject)

    @command(*PARTNER)
    def choose_default_view(self, w: Working, actor: Actor, view: str) -> None:
        """R-FAV-4: remember All Customers or Favorites Only as the actor's default."""
        passport = load_partner_user(w, actor.subject)
        if view == "favorites_only":
            forget_deleted_favourites(w, actor, passport)
        passport.choose_view(actor, view)

    def customer_group(self, group_id: UUID) -> CustomerGroup:
        """The customer group as recorded now."""
        return load_group(Working(self), group_id)

    def passport(self, passport_id: str) -> Passport:
        """The person's quota, favourites and default view as recorded now."""
        return Working(self).load(
            Passport, Passport.id_for(passport_id), missing_passport(passport_id)
        )
