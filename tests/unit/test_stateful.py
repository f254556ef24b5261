"""Random command sequences keep the invariants (R-FAV-2, R-CON-2, R-LNK-6, R-GRP-2) and replay.

Deleting customer groups and re-opening them (R-LNK-5, R-HLD-3) is part of the machine: a
deleted group is nobody's favourite and accepts no group command.
"""

from __future__ import annotations

from functools import reduce
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain import CustomerGroup, DomainError
from domain.group_support import GroupDeletedError
from domain.passport import MAX_FAVOURITES
from handlers import PartnerFleet
from handlers.devices import PartnerChoice
from tests.actors import customer as customer_admin
from tests.actors import partner_user
from tests.scenarios import OPS, partner, report, servers

PARTNERS = {"LOC-A": "reseller", "LOC-B": "service_partner"}
CUSTOMERS = [f"C{n}" for n in range(30)]
SERIALS = [f"S{n}" for n in range(30)]  # S<n> belongs to C<n>, linked to LOC-A at the start
PCS = ["PC0", "PC1", "PC2"]
USERS = ["anna@LOC-A", "ben@LOC-A"]
ROLES = ["reseller", "service_partner"]
GROUPS = [CustomerGroup.id_for(loc, c) for loc in PARTNERS for c in CUSTOMERS]
# Often one of the first few customers, so a customer's devices are unlinked, its group
# deleted and re-opened within one run (R-GRP-2, R-LNK-5); any of them now and then.
INDEX = st.integers(0, 3) | st.integers(0, len(SERIALS) - 1)
GROUP = st.sampled_from(GROUPS[:4]) | st.sampled_from(GROUPS)


def replayed(fleet: PartnerFleet, aggregate_id: UUID) -> Any:
    """The aggregate rebuilt from its stored events alone."""
    events: list[Any] = list(fleet.events.get(aggregate_id))
    return reduce(lambda agg, event: event.mutate(agg), events, None)


def state_of(aggregate: Any) -> dict[str, Any]:
    """Comparable state of an aggregate (pending events are not state)."""
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


class FleetMachine(RuleBasedStateMachine):
    """Link / unlink / consent / favourite / view / transfer commands against a simple model."""

    def __init__(self) -> None:
        super().__init__()
        # An unbounded cache without fast-forward keeps the live aggregates each command saved.
        self.fleet = PartnerFleet(
            env={
                "PERSISTENCE_MODULE": "eventsourcing.popo",
                "AGGREGATE_CACHE_MAXSIZE": "0",
                "AGGREGATE_CACHE_FASTFORWARD": "n",
            }
        )
        partner(self.fleet, "LOC-A")
        partner(self.fleet, "LOC-B", service=True)
        for serial, customer in zip(SERIALS, CUSTOMERS, strict=True):
            self.fleet.register_devices(
                customer_admin(customer, f"admin@{customer}", "setup"),
                customer,
                servers(serial),
                PartnerChoice(location_id="LOC-A"),
            )
        self.fleet.receive_e2open_batch(OPS, "setup", [report(pc, "LOC-A") for pc in PCS])
        self.holding = self.fleet.partner("LOC-A").require_holding_tenant()
        anna = partner_user(self.fleet, "LOC-A", "anna@LOC-A", "setup")
        self.dashboard = self.fleet.create_customer_dashboard(anna, "LOC-A", "C0", "C0", "4711")
        self.links: dict[str, dict[str, str]] = {s: {"reseller": "LOC-A"} for s in SERIALS}
        self.consent: dict[str, bool] = dict.fromkeys(SERIALS, False)
        self.placement: dict[str, UUID] = dict.fromkeys(PCS, self.holding)
        self.favourites: dict[str, list[UUID]] = {user: [] for user in USERS}
        self.groups_of_loc_a = {CustomerGroup.id_for("LOC-A", c) for c in CUSTOMERS}
        self.deleted: set[UUID] = set()
        self.partner_children: dict[UUID, list[str]] = {}
        self.dashboard_state = "open"  # "deleted", or "plain" once a link re-opened it
        self.children_made = 0

    def _attempt(self, expect_ok: bool, command: Any, *args: Any) -> None:
        before = len(self.fleet.recorder.select_notifications(start=1, limit=1_000_000))
        try:
            command(*args)
        except DomainError:
            after = len(self.fleet.recorder.select_notifications(start=1, limit=1_000_000))
            assert after == before, "a refused command recorded events"
            assert not expect_ok, "the model expected this command to be accepted"
            return
        assert expect_ok, "the model expected this command to be refused"

    @rule(
        index=INDEX,
        location=st.sampled_from(list(PARTNERS)),
        role=st.sampled_from(ROLES),
    )
    def link(self, index: int, location: str, role: str) -> None:
        """R-LNK-1, R-LNK-4, R-LNK-6: link (or relink) a partner in a role."""
        serial, customer = SERIALS[index], CUSTOMERS[index]
        ok = role == "reseller" or PARTNERS[location] == "service_partner"
        choice = PartnerChoice(location_id=location, role=role)
        self._attempt(
            ok,
            self.fleet.link_devices,
            customer_admin(customer, f"admin@{customer}", "l"),
            customer,
            [serial],
            choice,
        )
        if ok:
            self.links[serial][role] = location
            self._reopened(CustomerGroup.id_for(location, customer))

    def _reopened(self, group: UUID) -> None:
        if group in self.deleted:
            self.deleted.remove(group)
            if group == self.dashboard:
                self.dashboard_state = "plain"

    @rule(index=INDEX, role=st.sampled_from(ROLES))
    def unlink(self, index: int, role: str) -> None:
        """R-LNK-6: unlink the partner of a role."""
        serial, customer = SERIALS[index], CUSTOMERS[index]
        ok = role in self.links[serial]
        self._attempt(
            ok,
            self.fleet.unlink_devices,
            customer_admin(customer, f"admin@{customer}", "u"),
            customer,
            [serial],
            role,
        )
        if ok:
            del self.links[serial][role]

    @rule(index=INDEX, grant=st.booleans())
    def consent_change(self, index: int, grant: bool) -> None:
        """R-CON-1, R-CON-3: grant or withdraw consent for a direct-connect device."""
        serial, customer = SERIALS[index], CUSTOMERS[index]
        command = self.fleet.grant_consent if grant else self.fleet.withdraw_consent
        ok = self.consent[serial] != grant
        self._attempt(
            ok, command, customer_admin(customer, f"admin@{customer}", "c"), customer, [serial]
        )
        if ok:
            self.consent[serial] = grant

    @rule(user=st.sampled_from(USERS), group=GROUP, add=st.booleans())
    def favourite(self, user: str, group: UUID, add: bool) -> None:
        """R-FAV-2, R-FAV-3: mark or unmark a favourite of the user's own partner, at most 25."""
        favourites = self.favourites[user]
        if add:
            ok = (
                group in self.groups_of_loc_a
                and group not in self.deleted
                and group not in favourites
                and len(favourites) < MAX_FAVOURITES
            )
            self._attempt(
                ok, self.fleet.add_favourite, partner_user(self.fleet, "LOC-A", user, "f"), group
            )
            if ok:
                favourites.append(group)
        else:
            ok = group in favourites
            self._attempt(
                ok, self.fleet.remove_favourite, partner_user(self.fleet, "LOC-A", user, "f"), group
            )
            if ok:
                favourites.remove(group)

    @rule(user=st.sampled_from(USERS), view=st.sampled_from(["all_customers", "favorites_only"]))
    def choose_view(self, user: str, view: str) -> None:
        """R-FAV-3, R-FAV-4: Favorites Only only with at least one favourite."""
        ok = view == "all_customers" or bool(self.favourites[user])
        self._attempt(
            ok, self.fleet.choose_default_view, partner_user(self.fleet, "LOC-A", user, "v"), view
        )

    @rule(pc=st.sampled_from(PCS))
    def transfer(self, pc: str) -> None:
        """R-HLD-3: move a PC between the holding tenant and the dashboard, and back."""
        source = self.placement[pc]
        target = self.dashboard if source == self.holding else self.holding
        ok = target == self.holding or self.dashboard_state == "open"
        transfer = self.fleet.transfer_devices
        self._attempt(
            ok,
            transfer,
            partner_user(self.fleet, "LOC-A", "ben@LOC-A", "t"),
            "LOC-A",
            [pc],
            source,
            target,
            "t",
        )
        if ok:
            self.placement[pc] = target

    def _empty(self, index: int) -> bool:
        group = CustomerGroup.id_for("LOC-A", CUSTOMERS[index])
        placed = group == self.dashboard and self.dashboard in self.placement.values()
        return "LOC-A" not in self.links[SERIALS[index]].values() and not placed

    @rule(index=INDEX, empty_it_first=st.booleans())
    def delete_group(self, index: int, empty_it_first: bool) -> None:
        """R-GRP-2: Anna deletes LOC-A's group of a customer; only an empty one is deleted.

        With `empty_it_first` the customer first unlinks the device from LOC-A, so that
        deletions (and re-openings after them) happen in most runs.
        """
        if empty_it_first:
            for role, location in list(self.links[SERIALS[index]].items()):
                if location == "LOC-A":
                    self.unlink(index, role)
        group = CustomerGroup.id_for("LOC-A", CUSTOMERS[index])
        ok = group not in self.deleted and self._empty(index)
        ok = ok and not self.partner_children.get(group)
        self._attempt(
            ok,
            self.fleet.delete_customer_group,
            partner_user(self.fleet, "LOC-A", USERS[0], "d"),
            group,
        )
        if ok:
            self.deleted.add(group)
            for favourites in self.favourites.values():
                if group in favourites:
                    favourites.remove(group)
            if group == self.dashboard:
                self.dashboard_state = "deleted"

    @rule(index=INDEX, by_partner=st.booleans())
    def create_child_group(self, index: int, by_partner: bool) -> None:
        """R-GRP-1: Anna (an admin) or the customer makes a child group; not in a deleted group."""
        customer, group = CUSTOMERS[index], CustomerGroup.id_for("LOC-A", CUSTOMERS[index])
        self.children_made += 1
        child = f"k{self.children_made}"
        ok = group not in self.deleted
        if by_partner:
            by_anna = self.fleet.create_child_group
            self._attempt(
                ok, by_anna, partner_user(self.fleet, "LOC-A", USERS[0], "k"), group, child, "Racks"
            )
        else:
            by_customer = self.fleet.create_customer_child_group
            owner = customer_admin(customer, f"admin@{customer}", "k")
            self._attempt(ok, by_customer, owner, customer, group, child, "Lab")
        if ok and by_partner:
            self.partner_children.setdefault(group, []).append(child)

    @rule(index=INDEX)
    def delete_child_group(self, index: int) -> None:
        """R-GRP-1: Anna deletes the oldest child group she made in the group, if any."""
        group = CustomerGroup.id_for("LOC-A", CUSTOMERS[index])
        children = self.partner_children.get(group)
        if children:
            self.fleet.delete_child_group(
                partner_user(self.fleet, "LOC-A", USERS[0], "k"), group, children.pop(0)
            )

    @precondition(lambda self: bool(self.deleted))
    @rule(data=st.data())
    def relink_to_a_deleted_group(self, data: st.DataObject) -> None:
        """R-LNK-5: the customer links a device to LOC-A again; its deleted group re-opens."""
        deleted = [
            i for i, c in enumerate(CUSTOMERS) if CustomerGroup.id_for("LOC-A", c) in self.deleted
        ]
        self.link(data.draw(st.sampled_from(deleted)), "LOC-A", "reseller")

    @precondition(lambda self: self.dashboard_state != "open")
    @rule()
    def create_dashboard(self) -> None:
        """R-HLD-3: Anna creates C0's dashboard again; a deleted one comes back clean."""
        create = self.fleet.create_customer_dashboard
        self._attempt(
            True,
            create,
            partner_user(self.fleet, "LOC-A", USERS[0], "cd"),
            "LOC-A",
            "C0",
            "C0",
            "0815",
        )
        self.deleted.discard(self.dashboard)
        self.dashboard_state = "open"

    @invariant()
    def favourites_stay_within_the_limit(self) -> None:
        """R-FAV-2: never more than 25 favourites; R-FAV-3: Favorites Only needs one."""
        for user in USERS:
            passport = self.fleet.passport(user)
            assert len(passport.favourites) <= MAX_FAVOURITES
            assert passport.favourites == self.favourites[user]
            assert passport.favourites or passport.default_view == "all_customers"

    @invariant()
    def a_deleted_group_is_nobodys_favourite_and_accepts_no_group_command(self) -> None:
        """R-GRP-2, R-FAV-2: no Passport and no mark keeps it; stars and child groups refused."""
        for group_id in self.deleted:
            group = self.fleet.customer_group(group_id)
            assert group.deleted
            assert group.favourite_of == []
            assert all(group_id not in self.fleet.passport(u).favourites for u in USERS)
            anna = partner_user(self.fleet, "LOC-A", USERS[0], "i")
            for command, args in (
                (self.fleet.add_favourite, (anna, group_id)),
                (self.fleet.create_child_group, (anna, group_id, "kx", "Racks")),
            ):
                self._attempt_refused(command, *args)

    def _attempt_refused(self, command: Any, *args: Any) -> None:
        before = len(self.fleet.recorder.select_notifications(start=1, limit=1_000_000))
        try:
            command(*args)
        except GroupDeletedError:
            after = len(self.fleet.recorder.select_notifications(start=1, limit=1_000_000))
            assert after == before, "a refused command recorded events"
            return
        raise AssertionError("a deleted group accepted a command")

    @invariant()
    def each_group_knows_whose_favourite_it_is(self) -> None:
        """R-FAV-2: a group's marks are exactly the users whose favourite it is."""
        for group_id in self.groups_of_loc_a:
            fans = sorted(u for u in USERS if group_id in self.favourites[u])
            assert self.fleet.customer_group(group_id).favourite_of == fans

    @invariant()
    def configuration_readable_iff_linked_and_consented(self) -> None:
        """R-CON-2: a partner reads configuration data iff linked and consent granted."""
        for serial in SERIALS:
            for location in PARTNERS:
                expected = self.consent[serial] and location in self.links[serial].values()
                assert self.fleet.may_read_configuration(serial, location) == expected

    @invariant()
    def groups_hold_exactly_the_linked_devices(self) -> None:
        """R-LNK-1, R-LNK-6: a partner's group lists a device iff it is linked to the partner."""
        for serial, customer in zip(SERIALS, CUSTOMERS, strict=True):
            for location in PARTNERS:
                group = self._live(CustomerGroup.id_for(location, customer))
                listed = group is not None and serial in group.devices
                assert listed == (location in self.links[serial].values())

    @invariant()
    def replay_rebuilds_every_live_aggregate(self) -> None:
        """Replaying the stored events rebuilds every aggregate equal to the live one."""
        ids = {n.originator_id for n in self.fleet.recorder.select_notifications(1, 1_000_000)}
        for aggregate_id in ids:
            assert isinstance(aggregate_id, UUID)
            live = self._live(aggregate_id)
            assert state_of(replayed(self.fleet, aggregate_id)) == state_of(live)

    def _live(self, aggregate_id: UUID) -> Any:
        """The aggregate object the last accepted command saved, or None if none did."""
        cache = self.fleet.repository.cache
        assert cache is not None
        try:
            return cache.get(aggregate_id)
        except KeyError:
            return None


FleetMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_command_sequences_keep_the_rules = FleetMachine.TestCase
