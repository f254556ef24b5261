"""The world the access matrix runs on (issue 9): two partners and two customers.

LOC-1 is the partner roles' own tenant, LOC-2 another; C1 the customer roles' own, C2
another. Each side holds the same kinds of things, so a command has an own call and an
other call. It is recorded once; each case starts from a copy of its stored events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain import CustomerGroup, PartnerTenant
from handlers import PartnerFleet
from handlers.access import Actor, Role
from handlers.devices import NewDevice, PartnerChoice
from tests.actors import auditor, customer, end_user, feed, operator, partner_user, policy
from tests.scenarios import in_memory_fleet, report, servers
from tests.unit.conftest import hosted_fleet

CPIN = "4711-C"
OPS = operator()


@dataclass(frozen=True)
class Side:
    """One tenant's things: a partner with its users, a customer with its devices."""

    n: int  # 1: the actors' own tenant, 2: another tenant
    loc: str
    customer: str
    admin: str  # the partner's first user, so its admin
    user: str  # a plain partner user

    @property
    def group(self) -> UUID:
        """The partner's customer group (and dashboard) for the customer."""
        return CustomerGroup.id_for(self.loc, self.customer)

    @property
    def holding(self) -> UUID:
        """The partner's holding tenant."""
        return PartnerTenant.holding_tenant_id_for(self.loc)

    def s(self, name: str) -> str:
        """This side's serial or id `name` (S -> S1 on the own side, S2 on the other)."""
        return f"{name}{self.n}"


OWN = Side(1, "LOC-1", "C1", "anna@LOC-1", "ben@LOC-1")
OTHER = Side(2, "LOC-2", "C2", "otto@LOC-2", "ute@LOC-2")
EMPTY_GROUP = CustomerGroup.id_for(OWN.loc, "C3")  # LOC-1's group of C3, emptied


@cache
def world_events() -> tuple[StoredEvent, ...]:
    """The world's stored events, recorded once; each case starts from a copy of them."""
    fleet = in_memory_fleet()
    for side in (OWN, OTHER):
        fleet.register_partner(OPS, side.loc, f"Partner {side.loc}")
    for spare in ("LOC-3", "LOC-4"):  # registered, not certified
        fleet.register_partner(OPS, spare, f"Partner {spare}")
    fleet.register_partner_user(OPS, OWN.loc, OWN.admin)
    fleet.register_partner_user(OPS, OWN.loc, OWN.user)
    fleet.register_partner_user(OPS, OWN.loc, "cleo@LOC-1")
    fleet.register_partner_user(OPS, OTHER.loc, OTHER.admin)
    fleet.register_partner_user(OPS, OTHER.loc, OTHER.user)
    for side in (OWN, OTHER):
        build_side(fleet, side)
    anna = partner_user(fleet, OWN.loc, OWN.admin)
    fleet.add_group_admin(anna, OWN.group, "cleo@LOC-1")
    c3 = customer("C3")
    fleet.register_devices(c3, "C3", servers("S7"), PartnerChoice(location_id=OWN.loc))
    fleet.unlink_devices(c3, "C3", ["S7"])
    notifications = fleet.recorder.select_notifications(start=1, limit=100_000)
    return tuple(
        StoredEvent(n.originator_id, n.originator_version, n.topic, n.state) for n in notifications
    )


def build_side(fleet: PartnerFleet, side: Side) -> None:
    """One side, its partner's users registered: certified; the customer's servers (S with
    consent, SN without), hosts (H without consent, HC with), a PC (PCC); alerts A1 (open)
    and A9 (with case K9) on S, A1 on PCC; a child group g; the customer's dashboard holding
    PD; PT unassigned in the holding tenant; missing-PC request R1; the group a favourite of
    both users."""
    fleet.certify_partner(OPS, side.loc, "resell_view_monitor")
    admin = partner_user(fleet, side.loc, side.admin)
    owner = customer(side.customer)
    devices = [
        *servers(side.s("S"), side.s("SN")),
        *hosted_fleet(side.s("H"), side.s("CC")),
        *hosted_fleet(side.s("HC"), side.s("CCC")),
        NewDevice(serial=side.s("PCC"), connection="pc_agent"),
    ]
    fleet.register_devices(owner, side.customer, devices, PartnerChoice(location_id=side.loc))
    fleet.grant_consent(owner, side.customer, [side.s("S")])
    fleet.grant_consent_on_host(owner, side.customer, side.s("HC"))
    for serial, alert in ((side.s("S"), "A1"), (side.s("S"), "A9"), (side.s("PCC"), "A1")):
        fleet.raise_alert(OPS, serial, alert, "critical", "Failure predicted")
    fleet.submit_repair_case(owner, side.s("S"), "A9", "K9")
    fleet.create_child_group(admin, side.group, "g", "Racks")
    fleet.create_customer_dashboard(admin, side.loc, side.customer, "Customer", CPIN)
    fleet.receive_e2open_batch(OPS, side.s("b"), [report(side.s("PT"), side.loc)])
    fleet.receive_e2open_batch(OPS, side.s("bd"), [report(side.s("PD"), side.loc)])
    fleet.transfer_devices(admin, side.loc, [side.s("PD")], side.holding, side.group, "t0")
    fleet.report_missing_devices(admin, side.loc, "R1", ["PCX"])
    for passport in (side.admin, side.user):
        fleet.add_favourite(partner_user(fleet, side.loc, passport), side.group)


def world() -> PartnerFleet:
    """A fresh copy of the world, in memory."""
    fleet = in_memory_fleet()
    fleet.recorder.insert_events(list(world_events()))
    return fleet


# --- the actors: one per role, each of the own side ----------------------------------------


def actor_for(fleet: PartnerFleet, role: Role) -> Actor:
    """The own side's actor in `role`; partner users are authenticated against the store."""
    actors: dict[Role, Callable[[], Actor]] = {
        Role.PARTNER_ADMIN: lambda: partner_user(fleet, OWN.loc, OWN.admin),
        Role.PARTNER_USER: lambda: partner_user(fleet, OWN.loc, OWN.user),
        Role.CUSTOMER_ADMIN: lambda: customer(OWN.customer),
        Role.END_USER: lambda: end_user(OWN.customer, [OWN.s("PCC")]),
        Role.AUDITOR: auditor,
        Role.OPERATOR: operator,
        Role.FEED: feed,
        Role.POLICY: policy,
    }
    return actors[role]()


def consent_version(fleet: PartnerFleet, side: Side) -> int:
    """The version of the side's first consent record (on S)."""
    return fleet.device(side.s("S")).consent_versions[0]
