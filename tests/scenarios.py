"""End-to-end command scenarios, run unchanged on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from uuid import UUID

import pytest

from domain import CustomerGroup, DeletionRefusedError, Device, DomainError
from domain.passport import DeviceQuotaExceededError, FavouriteError
from domain.service_level import ServiceLevel
from handlers import PartnerFleet
from handlers.access import Actor
from handlers.devices import NewDevice, PartnerChoice
from handlers.policies import PolicyRunner
from infra.storage.read_versions import POPO_TOPIC
from tests.actors import customer, end_user, operator, partner_user

OPS = operator("hp-ops", "corr-ops")
CUSTOMER = customer("C1", "admin@customer.example", "corr-customer")  # customer C1's admin

Scenario = Callable[[PartnerFleet], None]


# The in-memory recorder that checks read versions, as the other stores' (issue 11).
IN_MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo", "PROCESS_RECORDER_TOPIC": POPO_TOPIC}


def in_memory_fleet() -> PartnerFleet:
    """A fleet on in-memory storage, whatever the environment says."""
    return PartnerFleet(env=IN_MEMORY)


def event_count(fleet: PartnerFleet) -> int:
    """How many events are stored (PostgreSQL's notification ids may have gaps)."""
    return len(fleet.recorder.select_notifications(start=1, limit=10_000_000))


def partner(fleet: PartnerFleet, location_id: str = "LOC-1", *, service: bool = False) -> None:
    """A partner with admin Anna and user Ben; certified for HP Premium."""
    fleet.register_partner(OPS, location_id, f"Partner {location_id}")
    fleet.register_partner_user(OPS, location_id, f"anna@{location_id}")
    fleet.register_partner_user(OPS, location_id, f"ben@{location_id}")
    if service:
        fleet.accredit_service_partner(OPS, location_id, f"CSDP-{location_id}")
    fleet.certify_partner(OPS, location_id, "resell_view_monitor")


def servers(*serials: str) -> list[NewDevice]:
    """Direct-connect servers to register."""
    return [NewDevice(serial=s, connection="direct_connect", model="DL380") for s in serials]


def loads_history(fleet: PartnerFleet) -> list[UUID]:
    """The load tests' store: S1 past its snapshot, S2 without one; with an id never stored."""
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1", "S2"), PartnerChoice(location_id="LOC-1"))
    for _ in range(27):
        fleet.grant_consent(CUSTOMER, "C1", ["S1"])
        fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    return [Device.id_for("S1"), Device.id_for("S2"), uuid.uuid4()]


def report(serial: str, location_id: str = "LOC-1", **extra: str) -> dict[str, str]:
    """An e2Open report of a PC resold by `location_id`."""
    fields = {
        "serial": serial,
        "model": "EliteBook 840",
        "reseller_location_id": location_id,
        "distributor": "Ingram",
        "ship_date": "2026-10-01",
    }
    return fields | extra


def link_relink_and_consent(fleet: PartnerFleet) -> None:
    """R-LNK-1, R-LNK-5, R-LNK-6, R-CON-2, R-CON-3: links, groups and data access follow."""
    partner(fleet, "LOC-1")
    partner(fleet, "LOC-2")
    fleet.register_devices(CUSTOMER, "C1", servers("S1", "S2"), PartnerChoice(location_id="LOC-1"))
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    assert fleet.may_read_configuration("S1", "LOC-1")
    assert not fleet.may_read_configuration("S2", "LOC-1")
    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id="LOC-2"))
    assert not fleet.may_read_configuration("S1", "LOC-1")
    assert fleet.may_read_configuration("S1", "LOC-2")
    assert set(fleet.customer_group(CustomerGroup.id_for("LOC-1", "C1")).devices) == {"S2"}
    assert set(fleet.customer_group(CustomerGroup.id_for("LOC-2", "C1")).devices) == {"S1"}
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    assert not fleet.may_read_configuration("S1", "LOC-2")


def central_connect_follows_host(fleet: PartnerFleet) -> None:
    """R-LNK-2, R-CON-1: partner and consent set once on the Insight RS host apply to all."""
    partner(fleet, "LOC-1")
    host = NewDevice(serial="HOST1", connection="direct_connect", is_hosting_device=True)
    hosted = [
        NewDevice(serial=f"C{n}", connection="central_connect", hosting_serial="HOST1")
        for n in range(3)
    ]
    fleet.register_devices(CUSTOMER, "C1", [host, *hosted])
    fleet.set_hosting_partner(CUSTOMER, "C1", "HOST1", PartnerChoice(location_id="LOC-1"))
    fleet.grant_consent_on_host(CUSTOMER, "C1", "HOST1")
    fleet.register_devices(
        CUSTOMER,
        "C1",
        [NewDevice(serial="C9", connection="central_connect", hosting_serial="HOST1")],
    )
    assert all(fleet.may_read_configuration(s, "LOC-1") for s in ["C0", "C1", "C2", "C9"])
    before = event_count(fleet)
    with pytest.raises(DomainError, match="hosting device HOST1"):
        fleet.grant_consent(CUSTOMER, "C1", ["C0"])
    assert event_count(fleet) == before
    fleet.withdraw_consent_on_host(CUSTOMER, "C1", "HOST1")
    assert not any(fleet.may_read_configuration(s, "LOC-1") for s in ["C0", "C1", "C2", "C9"])


def favourites_limit_and_default_view(fleet: PartnerFleet) -> None:
    """R-FAV-2, R-FAV-3, R-FAV-4: 25 favourites at most; the last removal restores All."""
    partner(fleet, "LOC-1")
    anna = partner_user(fleet, "LOC-1", "anna@LOC-1")
    groups = []
    for n in range(26):
        fleet.register_devices(
            customer(f"C{n}"), f"C{n}", servers(f"S{n}"), PartnerChoice(location_id="LOC-1")
        )
        groups.append(CustomerGroup.id_for("LOC-1", f"C{n}"))
    for group_id in groups[:25]:
        fleet.add_favourite(anna, group_id)
    before = event_count(fleet)
    with pytest.raises(FavouriteError, match="25"):
        fleet.add_favourite(anna, groups[25])
    assert event_count(fleet) == before
    fleet.choose_default_view(anna, "favorites_only")
    for group_id in groups[:25]:
        fleet.remove_favourite(anna, group_id)
    assert fleet.passport("anna@LOC-1").default_view == "all_customers"


def device_quota_per_passport(fleet: PartnerFleet) -> None:
    """R-PAR-3: 1,500 devices per Passport ID in one transaction; the 1,501st is refused."""
    partner(fleet, "LOC-1")
    batch = servers(*(f"Q{n}" for n in range(1_500)))
    fleet.register_devices(CUSTOMER, "C1", batch, PartnerChoice(location_id="LOC-1"))
    assert len(fleet.customer_group(CustomerGroup.id_for("LOC-1", "C1")).devices) == 1_500
    before = event_count(fleet)
    with pytest.raises(DeviceQuotaExceededError, match="1,500"):
        fleet.register_devices(CUSTOMER, "C1", servers("Q1500"))
    assert event_count(fleet) == before


def refused_batch_records_nothing(fleet: PartnerFleet) -> None:
    """R-LNK-3: a bulk link with one unknown device is refused whole; nothing is stored."""
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1", "S2"))
    before = event_count(fleet)
    with pytest.raises(DomainError, match="NOPE"):
        fleet.link_devices(CUSTOMER, "C1", ["S1", "S2", "NOPE"], PartnerChoice(location_id="LOC-1"))
    assert event_count(fleet) == before
    assert fleet.device("S1").links == {}


def group_deletion_names_admins(fleet: PartnerFleet) -> None:
    """R-GRP-1, R-GRP-2, R-GRP-3: unshared child groups block deletion; admins are named."""
    partner(fleet, "LOC-1")
    anna, ben = (
        partner_user(fleet, "LOC-1", "anna@LOC-1"),
        partner_user(fleet, "LOC-1", "ben@LOC-1"),
    )
    fleet.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    group_id = CustomerGroup.id_for("LOC-1", "C1")
    fleet.add_group_admin(anna, group_id, "ben@LOC-1")
    fleet.create_child_group(ben, group_id, "g1", "Ben's racks")
    fleet.unlink_devices(CUSTOMER, "C1", ["S1"])
    with pytest.raises(DeletionRefusedError) as refused:
        fleet.delete_customer_group(anna, group_id)
    assert refused.value.admins == ["anna@LOC-1", "ben@LOC-1"]
    assert "not shared with you" in str(refused.value)
    fleet.delete_child_group(ben, group_id, "g1")
    fleet.delete_customer_group(anna, group_id)
    assert fleet.customer_group(group_id).deleted


def deleted_group_is_nobodys_favourite(fleet: PartnerFleet) -> None:
    """R-GRP-2, R-FAV-2, R-FAV-3, R-LNK-5: deletion unstars; a new link re-opens it clean."""
    partner(fleet, "LOC-1")
    anna, ben = (
        partner_user(fleet, "LOC-1", "anna@LOC-1"),
        partner_user(fleet, "LOC-1", "ben@LOC-1"),
    )
    fleet.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    fleet.register_devices(customer("C2"), "C2", servers("S2"), PartnerChoice(location_id="LOC-1"))
    group_id, other = CustomerGroup.id_for("LOC-1", "C1"), CustomerGroup.id_for("LOC-1", "C2")
    fleet.add_group_admin(anna, group_id, "ben@LOC-1")
    fleet.create_child_group(ben, group_id, "g1", "Ben's racks")
    fleet.create_customer_child_group(CUSTOMER, "C1", group_id, "lab", "Lab")
    for who in (anna, ben):
        fleet.add_favourite(who, group_id)
        fleet.choose_default_view(who, "favorites_only")
    fleet.add_favourite(ben, other)
    fleet.unlink_devices(CUSTOMER, "C1", ["S1"])
    fleet.delete_child_group(ben, group_id, "g1")
    fleet.delete_customer_group(anna, group_id)
    assert fleet.passport("anna@LOC-1").default_view == "all_customers"
    assert fleet.passport("ben@LOC-1").favourites == [other]
    before = event_count(fleet)
    with pytest.raises(DomainError, match="this customer group was deleted"):
        fleet.add_favourite(anna, group_id)
    assert event_count(fleet) == before
    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id="LOC-1"), "C One")
    reopened = fleet.customer_group(group_id)
    assert (reopened.admins, reopened.child_groups, reopened.favourite_of) == (
        ["anna@LOC-1"],
        {},
        [],
    )
    fleet.add_favourite(anna, group_id)


def holding_tenant_to_dashboard(fleet: PartnerFleet) -> None:
    """R-HLD-1, R-HLD-3, R-ALR-3, R-ALR-4: intake, transfer, notifications, transfer back."""
    partner(fleet, "LOC-1")
    anna = partner_user(fleet, "LOC-1", "anna@LOC-1")
    outcome = fleet.receive_e2open_batch(OPS, "b1", [report("PC1"), report("PC2"), {"serial": 1}])
    assert outcome.accepted == ["PC1", "PC2"]
    assert [r.index for r in outcome.rejected] == [2]
    holding = fleet.partner("LOC-1").require_holding_tenant()
    dashboard = fleet.create_customer_dashboard(anna, "LOC-1", "C1", "Customer One", "4711")
    with pytest.raises(DomainError, match="Premium"):
        fleet.switch_self_service_notifications(anna, "LOC-1", dashboard, on=False)
    fleet.transfer_devices(anna, "LOC-1", ["PC1"], holding, dashboard, "t1")
    assert fleet.customer_group(dashboard).self_service_notifications
    fleet.switch_self_service_notifications(anna, "LOC-1", dashboard, on=False)
    assert not fleet.customer_group(dashboard).self_service_notifications
    fleet.transfer_devices(anna, "LOC-1", ["PC1"], dashboard, holding, "t2")
    assert fleet.device("PC1").placement == holding
    again = fleet.receive_e2open_batch(OPS, "b1", [report("PC1"), report("PC2"), {"serial": 1}])
    assert again.redelivered
    assert again.accepted == ["PC1", "PC2"]
    other = fleet.receive_e2open_batch(OPS, "b1", [report("PC3")])  # R-HLD-1: kept, refused
    assert other.refused
    assert [r.reason for r in other.rejected] == [
        "batch id b1 was already received with different content"
    ]


def service_levels_and_alerts(fleet: PartnerFleet) -> None:
    """R-SVC-3, R-ALR-1: levels by date; a repair case is submitted once per alert."""
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    fleet.add_service_level(
        OPS, "S1", ServiceLevel("warranty", "W", date(2025, 1, 1), date(2027, 12, 31))
    )
    fleet.add_service_level(
        OPS, "S1", ServiceLevel("care_pack", "CP", date(2026, 1, 1), date(2026, 12, 31))
    )
    device = fleet.device("S1")
    top = device.highest_service_level(date(2026, 6, 1))
    assert top is not None
    assert top.name == "CP"
    assert [lv.name for lv in device.active_service_levels(date(2027, 6, 1))] == ["W"]
    fleet.raise_alert(OPS, "S1", "A1", "critical", "Disk failure predicted")
    fleet.submit_repair_case(CUSTOMER, "S1", "A1", "CASE-1")
    with pytest.raises(DomainError, match="already has repair case"):
        fleet.submit_repair_case(CUSTOMER, "S1", "A1", "CASE-2")
    assert isinstance(fleet.device("S1"), Device)


def alerts_and_repair_cases_follow_the_policies(fleet: PartnerFleet) -> None:
    """R-ALR-1, R-ALR-2, R-ALR-4: policies tell the end user or the partner; cases are routed."""
    partner(fleet, "LOC-1")
    partner(fleet, "LOC-S", service=True)
    anna = partner_user(fleet, "LOC-1", "anna@LOC-1")
    fleet.receive_e2open_batch(OPS, "b-alr", [report("PC1"), report("PC2")])
    holding = fleet.partner("LOC-1").require_holding_tenant()
    dashboard = fleet.create_customer_dashboard(anna, "LOC-1", "C1", "Customer One", "4711")
    fleet.transfer_devices(anna, "LOC-1", ["PC2"], holding, dashboard, "t1")
    fleet.switch_self_service_notifications(anna, "LOC-1", dashboard, on=False)
    service = PartnerChoice(location_id="LOC-S", role="service_partner")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"), service)
    fleet.choose_insight_rs_case_routing(CUSTOMER, "C1", ["S1"], to_service_partner=True)
    for n, serial in enumerate(("PC1", "PC2", "S1"), start=1):
        fleet.raise_alert(OPS, serial, f"A{n}", "critical", "Failure predicted")
    fleet.submit_repair_case(end_user("C1", ["PC1"]), "PC1", "A1", "K1")
    fleet.submit_repair_case(OPS, "S1", "A3", "K3", source="insight_rs")
    runner = PolicyRunner(fleet, batch_size=2)
    assert runner.catch_up() == 5
    assert runner.catch_up() == 0
    told = [
        fleet.device(s).alerts[a].notified for s, a in (("PC1", "A1"), ("PC2", "A2"), ("S1", "A3"))
    ]
    assert told == ["end_user", "partner", "partner"]
    assert fleet.device("PC1").alerts["A1"].case_routed_to == "hp_customer_support"
    assert fleet.device("S1").alerts["A3"].case_routed_to == "csdp:CSDP-LOC-S"


SCENARIOS: list[Scenario] = [
    link_relink_and_consent,
    central_connect_follows_host,
    favourites_limit_and_default_view,
    device_quota_per_passport,
    refused_batch_records_nothing,
    group_deletion_names_admins,
    deleted_group_is_nobodys_favourite,
    holding_tenant_to_dashboard,
    service_levels_and_alerts,
    alerts_and_repair_cases_follow_the_policies,
]


def pc_transferred_once(app: PartnerFleet) -> tuple[Actor, UUID, UUID]:
    """Partner LOC-1 with user anna@LOC-1; PC1 received into its holding tenant by an
    e2Open batch and transferred once to customer C1's new dashboard: (anna, the holding
    tenant's id, the dashboard's id)."""
    partner(app, "LOC-1")
    anna = partner_user(app, "LOC-1", "anna@LOC-1")
    app.receive_e2open_batch(OPS, "b1", [report("PC1")])
    holding = app.partner("LOC-1").require_holding_tenant()
    dashboard = app.create_customer_dashboard(anna, "LOC-1", "C1", "Customer One", "4711")
    app.transfer_devices(anna, "LOC-1", ["PC1"], holding, dashboard, "t1")
    return anna, holding, dashboard
