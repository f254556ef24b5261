"""HP Premium holding tenant: e2Open intake, missing PCs, dashboards, transfers (R-HLD-1…3)."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain import (
    CustomerGroup,
    Device,
    E2OpenBatch,
    NotAllowedError,
    NotFoundError,
    PartnerTenant,
)
from domain.cpin import cpin_matches
from domain.customer_group import PLACED, CustomerGroupError
from domain.device import DeviceError
from domain.intake import IntakeError, Unreadable
from domain.partner import PartnerError
from handlers import PartnerFleet
from handlers.devices import NewDevice
from tests.actors import customer
from tests.unit.conftest import (
    ANNA,
    BEN,
    CUSTOMER,
    CUSTOMER_ID,
    OPS,
    OTTO,
    e2open_report,
    event_count,
    events_of,
    events_since,
    names,
    of_type,
    refused,
    servers,
    to,
)

CPIN = "4711-C1"


@pytest.fixture
def landed(app: PartnerFleet, holding_tenant: UUID) -> list[str]:
    """PC1 and PC2 reported through e2Open, unassigned in LOC-1's holding tenant."""
    app.receive_e2open_batch(OPS, "batch-1", [e2open_report("PC1"), e2open_report("PC2")])
    return ["PC1", "PC2"]


@pytest.fixture
def dashboard(app: PartnerFleet, partner: str, holding_tenant: UUID) -> UUID:
    """LOC-1's customer dashboard for C1, opened by cPIN 4711-C1."""
    return app.create_customer_dashboard(ANNA, partner, CUSTOMER_ID, "Customer One", CPIN)


# --- R-HLD-1: e2Open reports land in the holding tenant; rejections are kept -------------


def test_r_hld_1_reported_pcs_land_unassigned_in_the_resellers_holding_tenant(
    app: PartnerFleet, partner: str, holding_tenant: UUID
) -> None:
    position = event_count(app)

    outcome = app.receive_e2open_batch(OPS, "batch-1", [e2open_report(" pc1 ")])

    assert (outcome.accepted, outcome.rejected) == (["PC1"], [])
    landed = of_type(events_since(app, position), Device.ReportedByE2Open)
    assert [(e.serial, e.reseller_location_id, e.holding_tenant_id) for e in landed] == [
        ("PC1", partner, holding_tenant)
    ]
    device = app.device("PC1")
    assert (device.placement, device.placement_owner) == (holding_tenant, partner)
    assert device.connection == "pc_agent"


def test_r_hld_1_the_batch_is_kept_with_what_landed_and_what_was_rejected(
    app: PartnerFleet, partner: str, holding_tenant: UUID
) -> None:
    reports = [e2open_report("PC1"), e2open_report("PC2", "LOC-404")]

    app.receive_e2open_batch(OPS, "batch-1", reports)

    received = of_type(events_of(app, E2OpenBatch.id_for("batch-1")), E2OpenBatch.Received)
    assert len(received) == 1
    assert received[0].accepted == ["PC1"]
    assert received[0].rejected == [
        {"index": 1, "serial": "PC2", "reason": "unknown partner Location ID LOC-404"}
    ]


def test_r_hld_1_a_report_for_a_partner_without_holding_tenant_is_kept_as_rejected(
    app: PartnerFleet, partner: str, other_partner: str, holding_tenant: UUID
) -> None:
    position = event_count(app)

    outcome = app.receive_e2open_batch(OPS, "batch-1", [e2open_report("PC1", other_partner)])

    assert outcome.accepted == []
    assert [(r.index, r.serial, r.reason) for r in outcome.rejected] == [
        (0, "PC1", f"partner {other_partner} has no holding tenant (not certified)")
    ]
    assert names(events_since(app, position)) == ["E2OpenBatch.Received"]


def test_r_hld_1_a_malformed_report_is_kept_as_rejected_with_its_reason(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    reports = [
        e2open_report("PC1"),
        e2open_report("PC 2"),
        {"serial": "PC3"},
        e2open_report("PC4", ship_date="soon"),
    ]

    outcome = app.receive_e2open_batch(OPS, "batch-1", reports)

    assert outcome.accepted == ["PC1"]
    by_index = {r.index: r for r in outcome.rejected}
    assert set(by_index) == {1, 2, 3}
    assert all(r.reason.startswith("malformed report: ") for r in outcome.rejected)
    assert "serial" in by_index[1].reason
    assert "model: Field required" in by_index[2].reason
    assert "ship_date" in by_index[3].reason
    stored = of_type(events_of(app, E2OpenBatch.id_for("batch-1")), E2OpenBatch.Received)[0]
    assert [r["index"] for r in stored.rejected] == [1, 2, 3]


def test_r_hld_1_a_pc_reported_twice_for_its_reseller_lands_once_and_is_a_duplicate(
    app: PartnerFleet, landed: list[str]
) -> None:
    """R-HLD-1: a redelivered report creates no second device and is not a rejection."""
    outcome = app.receive_e2open_batch(OPS, "batch-2", [e2open_report("PC3"), e2open_report("pc3")])

    assert outcome.accepted == ["PC3"]
    assert outcome.duplicates == ["PC3"]
    assert outcome.rejected == []
    again = app.receive_e2open_batch(OPS, "batch-3", [e2open_report("PC1")])
    assert (again.accepted, again.duplicates, again.rejected) == ([], ["PC1"], [])


def test_r_hld_1_a_pc_registered_by_a_customer_is_rejected_when_e2open_reports_it(
    app: PartnerFleet, landed: list[str]
) -> None:
    """R-HLD-1: a serial that exists outside this reseller's holding tenant is rejected."""
    app.register_devices(customer("C9"), "C9", [NewDevice(serial="PC9", connection="pc_agent")])
    outcome = app.receive_e2open_batch(OPS, "batch-4", [e2open_report("PC9")])
    assert [r.reason for r in outcome.rejected] == ["device PC9 is already registered"]


def test_r_hld_1_an_unreadable_message_is_rejected_with_its_reason(
    app: PartnerFleet, landed: list[str]
) -> None:
    """R-HLD-1: a feed message that is not even JSON is kept as rejected, saying why."""
    outcome = app.receive_e2open_batch(OPS, "batch-5", [Unreadable("not JSON: line 1")])
    assert [(r.index, r.serial, r.reason) for r in outcome.rejected] == [
        (0, None, "not JSON: line 1")
    ]


def test_r_hld_1_a_batch_with_only_rejected_reports_is_still_kept(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    app.receive_e2open_batch(OPS, "batch-1", [{"serial": "???"}])

    received = of_type(events_of(app, E2OpenBatch.id_for("batch-1")), E2OpenBatch.Received)
    assert [(r["index"], r["serial"]) for r in received[0].rejected] == [(0, "???")]


def test_r_hld_1_a_redelivered_batch_records_nothing_and_repeats_the_first_outcome(
    app: PartnerFleet, landed: list[str]
) -> None:
    """R-HLD-1: the same reports under the same batch id (key order aside) are a redelivery."""
    position = event_count(app)
    reordered = [dict(reversed(e2open_report(s).items())) for s in landed]

    outcome = app.receive_e2open_batch(OPS, "batch-1", reordered)

    assert outcome.redelivered
    assert not outcome.refused
    assert outcome.accepted == ["PC1", "PC2"]
    assert event_count(app) == position


def test_r_hld_1_a_batch_id_received_again_with_other_reports_is_refused_and_kept(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """R-HLD-1 (issue 8, kind 3): b1 with PC1, then b1 with PC1 and PC2: never a silent success."""
    app.receive_e2open_batch(OPS, "b1", [e2open_report("PC1")])
    position = event_count(app)

    outcome = app.receive_e2open_batch(OPS, "b1", [e2open_report("PC1"), e2open_report("PC2")])

    reason = "batch id b1 was already received with different content"
    assert outcome.refused
    assert not outcome.redelivered
    assert [(r.index, r.serial, r.reason) for r in outcome.rejected] == [
        (0, "PC1", reason),
        (1, "PC2", reason),
    ]
    assert outcome.accepted == []
    [refusal] = events_since(app, position)
    assert isinstance(refusal, E2OpenBatch.DeliveryRefused)
    assert refusal.batch_id == "b1"
    assert refusal.fingerprint.startswith("sha256v2:")  # version 2 since session 19
    assert [r["serial"] for r in refusal.rejected] == ["PC1", "PC2"]
    assert Device.id_for("PC2") not in {e.originator_id for e in events_since(app, 0)}


def test_r_hld_1_a_batch_without_id_is_refused(app: PartnerFleet, holding_tenant: UUID) -> None:
    with refused(app, IntakeError, "needs a batch id"):
        app.receive_e2open_batch(OPS, " ", [e2open_report("PC1")])


# --- R-HLD-2: missing PCs are reported and tracked to resolution -------------------------


def test_r_hld_2_a_support_request_records_the_missing_serial_numbers(
    app: PartnerFleet, partner: str, holding_tenant: UUID
) -> None:
    position = event_count(app)

    app.report_missing_devices(BEN, partner, "REQ-1", ["pc7", " PC5 ", "PC7", ""])

    reported = of_type(events_since(app, position), PartnerTenant.MissingDevicesReported)
    assert [(e.request_id, e.serials, e.principal) for e in reported] == [
        ("REQ-1", ["PC5", "PC7"], BEN.principal)
    ]
    request = app.partner(partner).missing_device_requests["REQ-1"]
    assert (request.serials, request.resolution) == (["PC5", "PC7"], None)


def test_r_hld_2_a_support_request_is_tracked_to_its_resolution(
    app: PartnerFleet, partner: str, holding_tenant: UUID
) -> None:
    app.report_missing_devices(BEN, partner, "REQ-1", ["PC5"])
    position = event_count(app)

    app.resolve_missing_devices(OPS, partner, "REQ-1", "Re-sent by distributor in batch-7")

    resolved = of_type(events_since(app, position), PartnerTenant.MissingDevicesResolved)
    assert [(e.request_id, e.resolution) for e in resolved] == [
        ("REQ-1", "Re-sent by distributor in batch-7")
    ]
    request = app.partner(partner).missing_device_requests["REQ-1"]
    assert request.resolution == "Re-sent by distributor in batch-7"


def test_r_hld_2_a_partner_without_holding_tenant_cannot_report_missing_pcs(
    app: PartnerFleet, partner: str
) -> None:
    with refused(app, PartnerError, "has no holding tenant: it is not certified"):
        app.report_missing_devices(BEN, partner, "REQ-1", ["PC5"])


def test_r_hld_2_a_request_must_list_a_serial_number(
    app: PartnerFleet, partner: str, holding_tenant: UUID
) -> None:
    with refused(app, PartnerError, "must list at least one serial number"):
        app.report_missing_devices(BEN, partner, "REQ-1", [" ", ""])


def test_r_hld_2_a_request_id_is_used_once(
    app: PartnerFleet, partner: str, holding_tenant: UUID
) -> None:
    app.report_missing_devices(BEN, partner, "REQ-1", ["PC5"])

    with refused(app, PartnerError, "Support request REQ-1 already exists"):
        app.report_missing_devices(ANNA, partner, "REQ-1", ["PC6"])


def test_r_hld_2_a_resolved_request_cannot_be_resolved_again(
    app: PartnerFleet, partner: str, holding_tenant: UUID
) -> None:
    app.report_missing_devices(BEN, partner, "REQ-1", ["PC5"])
    app.resolve_missing_devices(OPS, partner, "REQ-1", "Found")

    with refused(app, PartnerError, "REQ-1 is already resolved"):
        app.resolve_missing_devices(OPS, partner, "REQ-1", "Found again")


def test_r_hld_2_resolving_an_unknown_request_or_without_saying_how_is_refused(
    app: PartnerFleet, partner: str, holding_tenant: UUID
) -> None:
    app.report_missing_devices(BEN, partner, "REQ-1", ["PC5"])

    with refused(app, PartnerError, "has no support request REQ-404"):
        app.resolve_missing_devices(OPS, partner, "REQ-404", "Found")
    with refused(app, PartnerError, "Say how the missing-device request was resolved"):
        app.resolve_missing_devices(OPS, partner, "REQ-1", "  ")


# --- R-HLD-3: customer dashboards -------------------------------------------------------


def test_r_hld_3_a_partner_creates_a_customer_dashboard_keeping_only_a_keyed_cpin_verifier(
    app: PartnerFleet, partner: str, holding_tenant: UUID
) -> None:
    position = event_count(app)

    dashboard = app.create_customer_dashboard(BEN, partner, CUSTOMER_ID, "Customer One", CPIN)

    events = events_since(app, position)
    assert names(events) == ["CustomerGroup.Created", "CustomerGroup.CustomerDashboardCreated"]
    created = of_type(events, CustomerGroup.CustomerDashboardCreated)[0]
    assert created.cpin_verifier.startswith("hmac-sha256$")
    assert cpin_matches(created.cpin_verifier, CPIN, app.cpin_key)
    assert all(CPIN not in str(vars(e)) for e in events)
    assert dashboard == CustomerGroup.id_for(partner, CUSTOMER_ID)
    assert app.customer_group(dashboard).is_dashboard


def test_r_hld_3_an_existing_customer_group_becomes_the_dashboard(
    app: PartnerFleet, linked_group: UUID, partner: str, holding_tenant: UUID
) -> None:
    dashboard = app.create_customer_dashboard(ANNA, partner, CUSTOMER_ID, "Customer One", CPIN)

    assert dashboard == linked_group
    assert set(app.customer_group(dashboard).devices) == {"S1", "S2"}


def test_r_hld_3_a_dashboard_needs_a_holding_tenant(app: PartnerFleet, partner: str) -> None:
    with refused(app, PartnerError, "no holding tenant"):
        app.create_customer_dashboard(ANNA, partner, CUSTOMER_ID, "Customer One", CPIN)


def test_r_hld_3_only_the_partners_users_create_its_dashboards(
    app: PartnerFleet, partner: str, other_partner: str, holding_tenant: UUID
) -> None:
    """R-HLD-3, issue 9: another partner's Location ID is not found (404)."""
    with refused(app, NotFoundError, f"No partner with Location ID '{partner}' found"):
        app.create_customer_dashboard(OTTO, partner, CUSTOMER_ID, "Customer One", CPIN)


def test_r_hld_3_a_second_dashboard_for_the_customer_or_a_short_cpin_is_refused(
    app: PartnerFleet, partner: str, dashboard: UUID
) -> None:
    with refused(app, CustomerGroupError, "Customer One already has a customer dashboard"):
        app.create_customer_dashboard(ANNA, partner, CUSTOMER_ID, "Customer One", "9999")
    with refused(app, CustomerGroupError, "A cPIN has at least 4 characters"):
        app.create_customer_dashboard(ANNA, partner, "C2", "Customer Two", "123")


# --- R-HLD-3: transfers -----------------------------------------------------------------


def test_r_hld_3_a_partner_transfers_pcs_from_its_holding_tenant_into_a_dashboard(
    app: PartnerFleet, partner: str, holding_tenant: UUID, landed: list[str], dashboard: UUID
) -> None:
    position = event_count(app)

    app.transfer_devices(BEN, partner, ["PC1"], holding_tenant, dashboard, "T-1")

    events = events_since(app, position)
    moved = of_type(events, Device.DeviceTransferred)
    assert [(e.transfer_id, e.source_id, e.target_id) for e in moved] == [
        ("T-1", holding_tenant, dashboard)
    ]
    added = of_type(events, CustomerGroup.DeviceAdded)
    assert [(e.serial, e.reason, e.premium) for e in added] == [("PC1", PLACED, True)]
    assert app.device("PC1").placement == dashboard
    assert app.device("PC2").placement == holding_tenant


def test_r_hld_3_a_transfer_is_reversed_the_same_way(
    app: PartnerFleet, partner: str, holding_tenant: UUID, landed: list[str], dashboard: UUID
) -> None:
    app.transfer_devices(ANNA, partner, ["PC1", "PC2"], holding_tenant, dashboard, "T-1")
    position = event_count(app)

    app.transfer_devices(ANNA, partner, ["PC1"], dashboard, holding_tenant, "T-2")

    events = events_since(app, position)
    moved = of_type(events, Device.DeviceTransferred)
    assert [(e.source_id, e.target_id) for e in moved] == [(dashboard, holding_tenant)]
    removed = of_type(events, CustomerGroup.DeviceRemoved)
    assert [(e.serial, e.reason) for e in removed] == [("PC1", PLACED)]
    assert app.device("PC1").placement == holding_tenant
    assert set(app.customer_group(dashboard).devices) == {"PC2"}


def test_r_hld_3_a_transfer_needs_a_target_other_than_its_source(
    app: PartnerFleet, partner: str, holding_tenant: UUID, landed: list[str]
) -> None:
    with refused(app, DeviceError, "needs a target other than its source"):
        app.transfer_devices(ANNA, partner, ["PC1"], holding_tenant, holding_tenant, "T-1")


def test_r_hld_3_a_transfer_of_no_pcs_is_refused(
    app: PartnerFleet, partner: str, holding_tenant: UUID, dashboard: UUID
) -> None:
    with refused(app, DeviceError, "Choose at least one PC to transfer"):
        app.transfer_devices(ANNA, partner, [], holding_tenant, dashboard, "T-1")


def test_r_hld_3_a_pc_not_in_the_source_is_not_transferred(
    app: PartnerFleet, partner: str, holding_tenant: UUID, landed: list[str], dashboard: UUID
) -> None:
    app.transfer_devices(ANNA, partner, ["PC1"], holding_tenant, dashboard, "T-1")

    with refused(app, DeviceError, "PC PC1 is not in the transfer's source"):
        app.transfer_devices(ANNA, partner, ["PC2", "PC1"], holding_tenant, dashboard, "T-2")

    assert app.device("PC2").placement == holding_tenant


def test_r_hld_3_a_partner_cannot_transfer_pcs_it_cannot_see(
    app: PartnerFleet, partner: str, other_partner: str, landed: list[str]
) -> None:
    other_holding = app.certify_partner(OPS, other_partner, "resell_view_monitor")
    other_dashboard = app.create_customer_dashboard(OTTO, other_partner, "C2", "C Two", "0000")

    with refused(app, NotFoundError, "No device with serial number .PC1."):
        app.transfer_devices(OTTO, other_partner, ["PC1"], other_holding, other_dashboard, "T")


def test_r_hld_3_a_partner_cannot_transfer_into_another_partners_dashboard(
    app: PartnerFleet,
    partner: str,
    other_partner: str,
    holding_tenant: UUID,
    landed: list[str],
) -> None:
    app.certify_partner(OPS, other_partner, "resell_view_monitor")
    foreign = app.create_customer_dashboard(OTTO, other_partner, "C2", "C Two", "0000")

    with refused(app, NotFoundError, f"Partner {partner} has no tenant {foreign}"):
        app.transfer_devices(ANNA, partner, ["PC1"], holding_tenant, foreign, "T-1")


def test_r_hld_3_pcs_are_transferred_only_into_a_customer_dashboard(
    app: PartnerFleet,
    linked_group: UUID,
    partner: str,
    holding_tenant: UUID,
    landed: list[str],
) -> None:
    with refused(app, CustomerGroupError, "has no customer dashboard yet"):
        app.transfer_devices(ANNA, partner, ["PC1"], holding_tenant, linked_group, "T-1")


# --- R-HLD-3: enrolment with the customer's cPIN ----------------------------------------


def test_r_hld_3_the_customer_enrols_a_pc_into_its_dashboard_with_its_cpin(
    app: PartnerFleet, partner: str, dashboard: UUID
) -> None:
    position = event_count(app)

    app.enrol_with_cpin(CUSTOMER, CUSTOMER_ID, dashboard, CPIN, "PC7", care_plan="premium_plus")

    events = events_since(app, position)
    enrolled = of_type(events, Device.EnrolledWithCpin)
    assert [(e.dashboard_id, e.location_id, e.customer_id) for e in enrolled] == [
        (dashboard, partner, CUSTOMER_ID)
    ]
    added = of_type(events, CustomerGroup.DeviceAdded)
    assert [(e.serial, e.reason, e.premium) for e in added] == [("PC7", PLACED, True)]
    device = app.device("PC7")
    assert (device.placement, device.customer_id, device.connection) == (
        dashboard,
        CUSTOMER_ID,
        "pc_agent",
    )


def test_r_hld_3_a_wrong_cpin_is_refused(app: PartnerFleet, dashboard: UUID) -> None:
    with refused(app, NotAllowedError, "The cPIN does not match this customer dashboard"):
        app.enrol_with_cpin(CUSTOMER, CUSTOMER_ID, dashboard, "0000", "PC7")


def test_r_hld_3_a_customer_cannot_enrol_into_another_customers_dashboard(
    app: PartnerFleet, dashboard: UUID
) -> None:
    """R-HLD-3, issue 9: another customer's dashboard is not found (404), as a missing one."""
    with refused(app, NotFoundError, f"No customer group {dashboard}"):
        app.enrol_with_cpin(customer("C2", "admin@c2", "c"), "C2", dashboard, CPIN, "PC7")


def test_r_hld_3_a_pc_in_the_holding_tenant_is_transferred_not_enrolled(
    app: PartnerFleet, landed: list[str], dashboard: UUID
) -> None:
    with refused(app, DeviceError, "already in a tenant; its partner transfers it instead"):
        app.enrol_with_cpin(CUSTOMER, CUSTOMER_ID, dashboard, CPIN, "PC1")


def test_r_hld_3_only_pcs_are_enrolled_by_cpin(
    app: PartnerFleet, customer_devices: list[str], dashboard: UUID
) -> None:
    with refused(app, DeviceError, "Device S1 is not a PC; only PCs are enrolled by cPIN"):
        app.enrol_with_cpin(CUSTOMER, CUSTOMER_ID, dashboard, CPIN, "S1")


def test_r_hld_3_a_customer_cannot_enrol_another_customers_pc_with_its_cpin(
    app: PartnerFleet, partner: str, dashboard: UUID
) -> None:
    """R-HLD-3: a customer enrols its own PCs; another customer's PC stays that customer's."""
    other = customer("C2", "admin@c2.example", "corr-c2")
    app.register_devices(other, "C2", [NewDevice(serial="PCX", connection="pc_agent")], to(partner))

    with refused(app, NotAllowedError, "PCX"):
        app.enrol_with_cpin(CUSTOMER, CUSTOMER_ID, dashboard, CPIN, "PCX")

    assert app.device("PCX").customer_id == "C2"


def test_r_hld_3_servers_linked_to_the_partner_are_not_placed_by_linking(
    app: PartnerFleet, partner: str, dashboard: UUID
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers("S1"), to(partner))

    group = app.customer_group(dashboard)
    assert group.devices == {"S1": ["reseller"]}
    assert group.placed_devices == []
