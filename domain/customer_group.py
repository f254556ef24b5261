"""CustomerGroup: one end customer as one partner sees it (and, for HP, its customer dashboard)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.base import Cause, FleetAggregate, Msg, NotAllowedError, natural_id
from domain.cpin import cpin_matches, legacy_verifier, normalise_cpin, require_key_of
from domain.group_support import (
    ChildGroup,
    CustomerGroupError,
    DeletionRefusedError,
    GroupLifecycle,
)

# Moved to group_support; still importable from here, where they were first defined.
__all__ = ["ChildGroup", "CustomerGroupError", "DeletionRefusedError"]

# Why a device is in a group: a link role (R-LNK-4) or PLACED in a dashboard (R-HLD-3).
PLACED = "placed"


class CustomerGroup(FleetAggregate, GroupLifecycle):
    """A partner's customer object: linked devices, child groups, admins, dashboard settings.

    Version 2 of its state (snapshots) holds `cpin_verifier` instead of `cpin_digest`, and
    `favourite_of`; snapshots of version 1 load with no marks and a legacy verifier.
    """

    class_version = 2
    partner_location_id: str
    customer_id: str
    customer_name: str
    devices: dict[str, list[str]]  # serial -> why it is in the group (link roles, "placed")
    premium_devices: list[str]
    admins: list[str]
    child_groups: dict[str, ChildGroup]
    is_dashboard: bool
    had_pcs: bool  # a PC was ever placed here: R-ALR-3 switches notifications on only then
    cpin_verifier: str | None  # domain/cpin.py; never published
    self_service_notifications: bool
    deleted: bool
    favourite_of: list[str]  # Passport IDs of the partner users who marked it (R-FAV-2)

    def __init__(self) -> None:
        """A new group: empty, not a dashboard, notifications off until its first device."""
        self.devices = {}
        self.premium_devices = []
        self.child_groups = {}
        self.is_dashboard = False
        self.had_pcs = False
        self.cpin_verifier = None
        self.self_service_notifications = False
        self.deleted = False
        self.favourite_of = []

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """Snapshot state of version 1: the unsalted cPIN digest, favourites on Passports only."""
        digest = state.pop("cpin_digest", None)
        state["cpin_verifier"] = None if digest is None else legacy_verifier(digest)
        state["favourite_of"] = []

    @staticmethod
    def id_for(partner_location_id: str, customer_id: str) -> UUID:
        """The group id derived from partner Location ID and customer id."""
        return natural_id("customer-group", partner_location_id, customer_id)

    class Created(FleetAggregate.Created):
        partner_location_id: str
        customer_id: str
        customer_name: str
        admins: list[str]

        def apply(self, aggregate: CustomerGroup) -> None:
            aggregate.partner_location_id = self.partner_location_id
            aggregate.customer_id = self.customer_id
            aggregate.customer_name = self.customer_name
            aggregate.devices = {}
            aggregate.premium_devices = []
            aggregate.admins = list(self.admins)
            aggregate.child_groups = {}
            aggregate.is_dashboard = False
            aggregate.cpin_verifier = None
            aggregate.self_service_notifications = False
            aggregate.deleted = False

    @classmethod
    def create(
        cls,
        cause: Cause,
        partner_location_id: str,
        customer_id: str,
        customer_name: str,
        admins: list[str],
    ) -> CustomerGroup:
        """R-LNK-5: the partner's group for a customer; the partner's admins administer it."""
        if not customer_id.strip():
            raise CustomerGroupError(Msg("A customer group needs a customer id."))
        group_id = cls.id_for(partner_location_id, customer_id)
        return cls._start(
            cls.Created,
            cause,
            group_id,
            partner_location_id=partner_location_id,
            customer_id=customer_id,
            customer_name=customer_name.strip() or customer_id,
            admins=sorted(admins),
        )

    class Reopened(FleetAggregate.Event):
        """Version 2 starts the group clean, named and administered as if created now.

        `None` in both fields: a version 1 reopening, which kept what the group held.
        """

        class_version = 2
        customer_name: str | None
        admins: list[str] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["customer_name"] = state["admins"] = None

        def apply(self, aggregate: CustomerGroup) -> None:
            aggregate.deleted = False
            if self.admins is None or self.customer_name is None:
                return
            aggregate.__init__()  # type: ignore[misc]
            aggregate.customer_name, aggregate.admins = self.customer_name, list(self.admins)

    def reopen(self, cause: Cause, customer_name: str, admins: list[str]) -> None:
        """R-LNK-5, R-HLD-3: a deleted group comes back clean; an open group is left as it is.

        Nothing of the deleted group returns: no child groups (the customer's included),
        no extra admins, no dashboard settings or cPIN, no favourites.
        """
        if self.deleted:
            name = customer_name.strip() or self.customer_name
            self._record(self.Reopened, cause, customer_name=name, admins=sorted(admins))

    class DeviceAdded(FleetAggregate.Event):
        serial: str
        reason: str
        premium: bool

        def apply(self, aggregate: CustomerGroup) -> None:
            aggregate.devices.setdefault(self.serial, []).append(self.reason)
            if self.premium and self.serial not in aggregate.premium_devices:
                aggregate.premium_devices.append(self.serial)
            aggregate.had_pcs = aggregate.had_pcs or self.reason == PLACED

    def add_device(self, cause: Cause, serial: str, reason: str, premium: bool = False) -> None:
        """R-LNK-1, R-HLD-3: the device appears in this group; R-ALR-3 on the first one."""
        if reason in self.devices.get(serial, []):
            return
        self.require_open()
        first_pc = reason == PLACED and not self.had_pcs
        self._record(self.DeviceAdded, cause, serial=serial, reason=reason, premium=premium)
        if first_pc and self.is_dashboard and not self.self_service_notifications:
            self._record(self.SelfServiceNotificationsSwitched, cause, on=True)

    class DeviceRemoved(FleetAggregate.Event):
        serial: str
        reason: str

        def apply(self, aggregate: CustomerGroup) -> None:
            reasons = aggregate.devices[self.serial]
            reasons.remove(self.reason)
            if not reasons:
                del aggregate.devices[self.serial]
                if self.serial in aggregate.premium_devices:
                    aggregate.premium_devices.remove(self.serial)

    @property
    def placed_devices(self) -> list[str]:
        """R-HLD-3: PCs placed in the dashboard by transfer or cPIN enrolment."""
        return [serial for serial, reasons in self.devices.items() if PLACED in reasons]

    def remove_device(self, cause: Cause, serial: str, reason: str) -> None:
        """R-LNK-6: the device leaves this partner's group at once."""
        if reason in self.devices.get(serial, []):
            self._record(self.DeviceRemoved, cause, serial=serial, reason=reason)

    class CustomerDashboardCreated(FleetAggregate.Event):
        """Version 2 keeps a keyed, salted `cpin_verifier` (never published); version 1 kept
        `cpin_digest`, an unsalted SHA-256 that gave the cPIN away to anyone who read it."""

        class_version = 2
        internal_fields = ("cpin_verifier",)
        cpin_verifier: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["cpin_verifier"] = legacy_verifier(state.pop("cpin_digest"))

        def apply(self, aggregate: CustomerGroup) -> None:
            aggregate.is_dashboard = True
            aggregate.cpin_verifier = self.cpin_verifier

    def make_dashboard(self, cause: Cause, cpin: str, verifier: str) -> None:
        """R-HLD-3: turn the customer group into a customer dashboard with the customer's cPIN.

        `verifier` is `domain.cpin.cpin_verifier(cpin, key, salt)`: the handler holds the key
        and draws the salt. Raises CustomerGroupError for a second dashboard or a short cPIN.
        """
        self.require_open()
        if self.is_dashboard:
            raise CustomerGroupError(
                Msg(
                    "{customer_name} already has a customer dashboard.",
                    customer_name=self.customer_name,
                )
            )
        if len(normalise_cpin(cpin)) < 4:
            raise CustomerGroupError(Msg("A cPIN has at least 4 characters."))
        self._record(self.CustomerDashboardCreated, cause, cpin_verifier=verifier)

    def check_cpin(self, cpin: str, key: bytes) -> None:
        """R-HLD-3: a customer enrols PCs only into the dashboard its cPIN opens.

        `key` is the server's cPIN key (see domain/cpin.py). Raises NotAllowedError, or
        CpinKeyMismatchError when the cPIN was set under another key.
        """
        verifier = self.cpin_verifier
        if self.is_dashboard and verifier is not None:
            require_key_of(verifier, key)
        if not self.is_dashboard or verifier is None or not cpin_matches(verifier, cpin, key):
            raise NotAllowedError(
                Msg("The cPIN does not match this customer dashboard."), rule="R-HLD-3"
            )

    class SelfServiceNotificationsSwitched(FleetAggregate.Event):
        on: bool

        def apply(self, aggregate: CustomerGroup) -> None:
            aggregate.self_service_notifications = self.on

    def switch_self_service_notifications(self, cause: Cause, on: bool) -> None:
        """R-ALR-4: off only for a dashboard that holds at least one Premium/Premium+ PC."""
        self.require_open()
        if not self.is_dashboard:
            raise CustomerGroupError(
                Msg(
                    "Self-service notifications belong to customer dashboards; "
                    "{customer_name} has none.",
                    customer_name=self.customer_name,
                ),
                rule="R-ALR-4",
            )
        if not on and not self.premium_devices:
            raise CustomerGroupError(
                Msg(
                    "Self-service notifications can be switched off only once at least one "
                    "HP Premium/Premium+ PC is in the customer dashboard."
                ),
                rule="R-ALR-4",
            )
        if on != self.self_service_notifications:
            self._record(self.SelfServiceNotificationsSwitched, cause, on=on)

    class AdminAdded(FleetAggregate.Event):
        passport_id: str

        def apply(self, aggregate: CustomerGroup) -> None:
            aggregate.admins.append(self.passport_id)
            aggregate.admins.sort()

    def add_admin(self, cause: Cause, by: str, passport_id: str) -> None:
        """R-GRP-3: an admin of the group makes another partner user an admin of it."""
        self.require_open()
        self.require_admin(by)
        if passport_id in self.admins:
            raise CustomerGroupError(
                Msg(
                    "{passport_id} is already an admin of {customer_name}.",
                    passport_id=passport_id,
                    customer_name=self.customer_name,
                )
            )
        self._record(self.AdminAdded, cause, passport_id=passport_id)

    def admit_partner_admin(self, cause: Cause) -> None:
        """R-GRP-3: a partner admin registered after the group was created joins its admins."""
        self.require_open()
        if cause.principal not in self.admins:
            self._record(self.AdminAdded, cause, passport_id=cause.principal)

    def require_admin(self, passport_id: str) -> None:
        """R-GRP-3: only admins of the customer group act on its child groups."""
        if passport_id not in self.admins:
            raise NotAllowedError(
                Msg(
                    "{passport_id} is not an admin of customer group {customer_name}.",
                    passport_id=passport_id,
                    customer_name=self.customer_name,
                ),
                rule="R-GRP-3",
            )

    class ChildGroupCreated(FleetAggregate.Event):
        child_id: str
        name: str
        by_partner: bool

        def apply(self, aggregate: CustomerGroup) -> None:
            child = ChildGroup(self.name, self.principal, self.by_partner)
            aggregate.child_groups[self.child_id] = child

    def create_child_group(self, cause: Cause, child_id: str, name: str, by_partner: bool) -> None:
        """R-GRP-1, R-GRP-3: partner admins (or the customer) create child device groups."""
        self.require_open()
        if by_partner:
            self.require_admin(cause.principal)
        if child_id in self.child_groups:
            raise CustomerGroupError(
                Msg("Child group {child_id} already exists.", child_id=child_id)
            )
        if not name.strip():
            raise CustomerGroupError(Msg("A child group needs a name."))
        self._record(
            self.ChildGroupCreated,
            cause,
            child_id=child_id,
            name=name.strip(),
            by_partner=by_partner,
        )

    class ChildGroupShared(FleetAggregate.Event):
        child_id: str
        with_admin: str

        def apply(self, aggregate: CustomerGroup) -> None:
            aggregate.child_groups[self.child_id].shared_with.append(self.with_admin)

    def share_child_group(self, cause: Cause, child_id: str, with_admin: str) -> None:
        """R-GRP-1: the creator shares a child group with another admin of the group."""
        self.require_open()
        child = self._visible_child(cause.principal, child_id)
        if child.created_by != cause.principal:
            raise NotAllowedError(
                Msg(
                    "Only {created_by} can share child group {name}.",
                    created_by=child.created_by,
                    name=child.name,
                ),
                rule="R-GRP-1",
            )
        self.require_admin(with_admin)
        if with_admin == child.created_by or with_admin in child.shared_with:
            raise CustomerGroupError(
                Msg(
                    "Child group {name} is already visible to {with_admin}.",
                    name=child.name,
                    with_admin=with_admin,
                )
            )
        self._record(self.ChildGroupShared, cause, child_id=child_id, with_admin=with_admin)

    class ChildGroupDeleted(FleetAggregate.Event):
        child_id: str

        def apply(self, aggregate: CustomerGroup) -> None:
            del aggregate.child_groups[self.child_id]

    def delete_child_group(self, cause: Cause, child_id: str) -> None:
        """R-GRP-1: an admin who can see a child group may delete it."""
        self.require_open()
        self._visible_child(cause.principal, child_id)
        self._record(self.ChildGroupDeleted, cause, child_id=child_id)

    def child_groups_visible_to(self, admin: str) -> dict[str, ChildGroup]:
        """R-GRP-1: the child groups this admin may see."""
        return {cid: c for cid, c in self.child_groups.items() if c.visible_to(admin)}

    def _visible_child(self, admin: str, child_id: str) -> ChildGroup:
        child = self.child_groups.get(child_id)
        if child is None or not child.visible_to(admin):
            raise CustomerGroupError(
                Msg(
                    "{admin} has no visible child group {child_id}.", admin=admin, child_id=child_id
                ),
                rule="R-GRP-1",
            )
        return child

    class Deleted(FleetAggregate.Event):
        def apply(self, aggregate: CustomerGroup) -> None:
            aggregate.deleted = True
            aggregate.favourite_of = []  # R-FAV-2: the Passports lose it in the same transaction

    def delete(self, cause: Cause) -> list[str]:
        """R-GRP-2: delete only when no devices and no partner-created child groups remain.

        Returns the Passport IDs whose favourite it was, for the caller to remove it there.
        """
        self.require_open()
        self.require_admin(cause.principal)
        reasons = []
        if self.devices:
            reasons.append(Msg("{count} device(s) are still linked to it", count=len(self.devices)))
        partner_children = [c for c in self.child_groups.values() if c.by_partner]
        if partner_children:
            hidden = sum(not c.visible_to(cause.principal) for c in partner_children)
            reasons.append(
                Msg(
                    "{count} partner-created child group(s) remain, {hidden} of them not "
                    "shared with you",
                    count=len(partner_children),
                    hidden=hidden,
                )
            )
        if reasons:
            raise DeletionRefusedError(reasons, self.admins)
        favourite_of = self.favourite_of
        self._record(self.Deleted, cause)
        return favourite_of
