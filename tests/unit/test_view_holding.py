"""The holding read model: unassigned PCs, rejected e2Open reports, missing-device requests."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain import E2OpenBatch, NotFoundError, PartnerTenant
from handlers import PartnerFleet
from handlers.access import partner_scope
from projections.base import QueryError, iso
from projections.holding import (
    UnassignedDevice,
    open_missing_device_requests,
    rejected_reports,
    unassigned_devices,
)
from tests.scenarios import report
from tests.scopes import OPERATIONS, partner_actor, partner_at
from tests.unit.views_support import (
    LOC,
    OPS,
    OTHER_LOC,
    Reader,
    admin,
    db,
    fleet,
    new_partner,
    read,
    runner,
    user,
)

__all__ = ["db", "fleet", "read", "runner"]

ANNA = admin(LOC)
UNCERTIFIED_LOC = "LOC-U"


def serials(devices: list[UnassignedDevice]) -> list[str]:
    """The serial numbers listed, in order."""
    return [device.serial for device in devices]


@pytest.fixture
def partners(fleet: PartnerFleet) -> UUID:
    """LOC-1 and LOC-2 certified (with holding tenants), LOC-U not; LOC-1's holding tenant."""
    new_partner(fleet, LOC)
    new_partner(fleet, OTHER_LOC)
    fleet.register_partner(OPS, UNCERTIFIED_LOC, "Partner without holding tenant")
    return fleet.partner(LOC).require_holding_tenant()


BATCH_B1: list[object] = [
    report("PC2", end_customer="C1", care_plan="premium_plus"),
    {"serial": 1},
    report("PC1"),
    report("PC7", "LOC-404"),
    report("PC8", UNCERTIFIED_LOC),
    report("PC9", OTHER_LOC),
    report("bad serial!"),
]


@pytest.fixture
def batch(fleet: PartnerFleet, partners: UUID) -> None:
    """Batch b1: PC2 and PC1 for LOC-1, PC9 for LOC-2, and four reports that cannot land."""
    fleet.receive_e2open_batch(OPS, "b1", BATCH_B1)


def dashboard_of(fleet: PartnerFleet, customer_id: str) -> UUID:
    """Anna creates LOC-1's customer dashboard for the customer."""
    return fleet.create_customer_dashboard(
        ANNA, LOC, customer_id, f"Customer {customer_id}", "4711"
    )


# --- R-HLD-1: PCs reported through e2Open wait as Unassigned Devices ---------------------


def test_r_hld_1_reported_pcs_are_unassigned_devices_of_the_resellers_holding_tenant(
    fleet: PartnerFleet, read: Reader, batch: None
) -> None:
    with read() as tx:
        devices = unassigned_devices(tx, partner_at(fleet, LOC)).rows

    assert devices == [
        UnassignedDevice("PC1", "EliteBook 840", "Ingram", "2026-10-01", None, "premium"),
        UnassignedDevice("PC2", "EliteBook 840", "Ingram", "2026-10-01", "C1", "premium_plus"),
    ]


def test_r_hld_1_other_partners_pcs_are_not_listed(
    fleet: PartnerFleet, read: Reader, batch: None
) -> None:
    with read() as tx:
        own = serials(unassigned_devices(tx, partner_at(fleet, LOC)).rows)
        others = serials(unassigned_devices(tx, partner_at(fleet, OTHER_LOC)).rows)

    assert own == ["PC1", "PC2"]
    assert others == ["PC9"]


def test_r_par_4_an_uncertified_partner_has_no_holding_tenant_to_list_not_an_empty_one(
    fleet: PartnerFleet, read: Reader, batch: None
) -> None:
    """R-PAR-4: the holding tenant comes with HP Premium certification; before it, the list
    is refused saying so, not answered empty (issue 9 attack 7)."""
    with read() as tx, pytest.raises(QueryError, match="not certified") as refused:
        unassigned_devices(tx, partner_at(fleet, UNCERTIFIED_LOC))

    assert refused.value.rule == "R-PAR-4"


def test_r_hld_1_a_partner_user_gets_no_scope_on_another_or_unknown_location_id(
    fleet: PartnerFleet, batch: None
) -> None:
    """R-PAR-4: another partner's holding tenant, or an unknown one, is "not found" alike."""
    anna = partner_actor(fleet, ANNA.principal, LOC)

    with pytest.raises(NotFoundError) as other:
        partner_scope(anna, OTHER_LOC)
    with pytest.raises(NotFoundError) as unknown:
        partner_scope(anna, "LOC-404")

    assert str(other.value) == f"No partner with Location ID {OTHER_LOC!r} found."
    assert str(unknown.value) == "No partner with Location ID 'LOC-404' found."


def test_r_hld_1_a_transferred_pc_leaves_the_list_and_comes_back_when_transferred_back(
    fleet: PartnerFleet, read: Reader, batch: None, partners: UUID
) -> None:
    holding = partners
    dashboard = dashboard_of(fleet, "C1")

    fleet.transfer_devices(ANNA, LOC, ["PC2"], holding, dashboard, "t1")
    with read() as tx:
        after_transfer = serials(unassigned_devices(tx, partner_at(fleet, LOC)).rows)
    fleet.transfer_devices(ANNA, LOC, ["PC2"], dashboard, holding, "t2")
    with read() as tx:
        after_return = serials(unassigned_devices(tx, partner_at(fleet, LOC)).rows)

    assert after_transfer == ["PC1"]
    assert after_return == ["PC1", "PC2"]


def test_r_hld_1_pcs_reported_in_later_batches_join_the_list(
    fleet: PartnerFleet, read: Reader, batch: None
) -> None:
    with read() as tx:
        before = serials(unassigned_devices(tx, partner_at(fleet, LOC)).rows)

    fleet.receive_e2open_batch(OPS, "b2", [report("PC0"), report("PC3")])

    with read() as tx:
        after = serials(unassigned_devices(tx, partner_at(fleet, LOC)).rows)
    assert (before, after) == (["PC1", "PC2"], ["PC0", "PC1", "PC2", "PC3"])


def test_r_hld_1_unassigned_devices_are_paged_by_serial(
    fleet: PartnerFleet, read: Reader, partners: UUID
) -> None:
    fleet.receive_e2open_batch(OPS, "b1", [report(f"PC{n:02}") for n in reversed(range(7))])

    with read() as tx:
        first = serials(unassigned_devices(tx, partner_at(fleet, LOC), limit=3).rows)
        second = serials(
            unassigned_devices(tx, partner_at(fleet, LOC), after=(first[-1],), limit=3).rows
        )
        third = serials(
            unassigned_devices(tx, partner_at(fleet, LOC), after=(second[-1],), limit=3).rows
        )

    assert first + second + third == [f"PC{n:02}" for n in range(7)]
    assert len(third) == 1


def test_r_hld_1_every_rejected_report_is_listed_with_its_batch_index_and_reason(
    fleet: PartnerFleet, read: Reader, batch: None
) -> None:
    [received] = list(fleet.events.get(E2OpenBatch.id_for("b1")))
    assert isinstance(received, E2OpenBatch.Received)

    with read() as tx:
        rejected = rejected_reports(tx, OPERATIONS, batch_id="b1").rows

    assert [(r.batch_id, r.index, r.serial) for r in rejected] == [
        ("b1", 1, "1"),
        ("b1", 3, "PC7"),
        ("b1", 4, "PC8"),
        ("b1", 6, "bad serial!"),
    ]
    reasons = [r.reason for r in rejected]
    assert reasons[0].startswith("malformed report:")
    assert "unknown partner Location ID LOC-404" in reasons[1]
    assert f"partner {UNCERTIFIED_LOC} has no holding tenant" in reasons[2]
    assert reasons[3].startswith("malformed report:")
    assert "serial" in reasons[3]
    assert {r.received_at for r in rejected} == {iso(received.timestamp)}


def test_r_hld_1_a_redelivered_report_is_no_rejection_and_adds_no_pc(
    fleet: PartnerFleet, read: Reader, batch: None
) -> None:
    """R-HLD-1: PC1 reported again for the same reseller is a duplicate, not a rejection."""
    outcome = fleet.receive_e2open_batch(OPS, "b2", [report("PC1"), report("PC3")])

    with read() as tx:
        rejected = rejected_reports(tx, OPERATIONS, batch_id="b2").rows
        devices = serials(unassigned_devices(tx, partner_at(fleet, LOC)).rows)

    assert outcome.duplicates == ["PC1"]
    assert rejected == []
    assert devices == ["PC1", "PC2", "PC3"]


def test_r_hld_1_rejections_of_all_batches_are_listed_oldest_first(
    fleet: PartnerFleet, read: Reader, batch: None
) -> None:
    fleet.receive_e2open_batch(OPS, "b0", [report("PC5", "LOC-404")])

    with read() as tx:
        everything = rejected_reports(tx, OPERATIONS).rows
        only_b0 = rejected_reports(tx, OPERATIONS, batch_id="b0").rows

    assert [(r.batch_id, r.index) for r in everything] == [
        ("b1", 1),
        ("b1", 3),
        ("b1", 4),
        ("b1", 6),
        ("b0", 0),
    ]
    assert [(r.batch_id, r.serial) for r in only_b0] == [("b0", "PC5")]


def test_r_hld_1_a_redelivered_batch_neither_duplicates_nor_drops_rejections(
    fleet: PartnerFleet, read: Reader, batch: None
) -> None:
    with read() as tx:
        before = rejected_reports(tx, OPERATIONS).rows
    [received] = list(fleet.events.get(E2OpenBatch.id_for("b1")))
    assert isinstance(received, E2OpenBatch.Received)

    again = fleet.receive_e2open_batch(OPS, "b1", BATCH_B1)

    with read() as tx:
        after = rejected_reports(tx, OPERATIONS).rows
        devices = serials(unassigned_devices(tx, partner_at(fleet, LOC)).rows)
    assert again.redelivered
    assert after == before
    assert devices == ["PC1", "PC2"]


def test_r_hld_1_a_delivery_refused_for_its_reused_batch_id_is_listed_with_the_reason(
    fleet: PartnerFleet, read: Reader, batch: None
) -> None:
    """R-HLD-1 (issue 8, kind 3): b1 again with other reports: each listed as rejected, why."""
    fleet.receive_e2open_batch(OPS, "b1", [report("PC1"), report("PC3")])
    fleet.receive_e2open_batch(OPS, "b1", [report("PC1"), report("PC3")])  # the same again

    with read() as tx:
        listed = rejected_reports(tx, OPERATIONS, batch_id="b1").rows
        devices = serials(unassigned_devices(tx, partner_at(fleet, LOC)).rows)

    reason = "batch id b1 was already received with different content"
    assert [(r.batch_id, r.index, r.serial, r.reason) for r in listed[-2:]] == [
        ("b1", 0, "PC1", reason),
        ("b1", 1, "PC3", reason),
    ]
    assert len(listed) == 4 + 2  # the first delivery's four, then the refused two, once
    assert devices == ["PC1", "PC2"]


# --- R-HLD-2: missing-device requests are tracked to resolution --------------------------


@pytest.fixture
def requests(fleet: PartnerFleet, partners: UUID) -> None:
    """LOC-1 opens r1 and r2; LOC-2 opens r9."""
    fleet.report_missing_devices(ANNA, LOC, "r1", ["pcx2", " PCX1 "])
    fleet.report_missing_devices(user(LOC), LOC, "r2", ["PCX3"])
    fleet.report_missing_devices(admin(OTHER_LOC), OTHER_LOC, "r9", ["PCX9"])


def test_r_hld_2_open_missing_device_requests_are_listed_with_their_serials(
    fleet: PartnerFleet, read: Reader, requests: None
) -> None:
    opened = [
        iso(e.timestamp)
        for e in fleet.events.get(fleet.partner(LOC).id)
        if isinstance(e, PartnerTenant.MissingDevicesReported)
    ]

    with read() as tx:
        listed = open_missing_device_requests(tx, partner_at(fleet, LOC)).rows

    assert [(r.request_id, r.serials) for r in listed] == [
        ("r1", ["PCX1", "PCX2"]),
        ("r2", ["PCX3"]),
    ]
    assert [r.opened_at for r in listed] == opened


def test_r_hld_2_a_partner_sees_only_its_own_requests(
    fleet: PartnerFleet, read: Reader, requests: None
) -> None:
    with read() as tx:
        others = open_missing_device_requests(tx, partner_at(fleet, OTHER_LOC)).rows
        uncertified = open_missing_device_requests(tx, partner_at(fleet, UNCERTIFIED_LOC)).rows

    assert [(r.request_id, r.serials) for r in others] == [("r9", ["PCX9"])]
    assert uncertified == []


def test_r_hld_2_a_resolved_request_is_no_longer_open(
    fleet: PartnerFleet, read: Reader, requests: None
) -> None:
    with read() as tx:
        before = [
            r.request_id for r in open_missing_device_requests(tx, partner_at(fleet, LOC)).rows
        ]

    fleet.resolve_missing_devices(OPS, LOC, "r1", "Reported again through e2Open")

    with read() as tx:
        after = [
            r.request_id for r in open_missing_device_requests(tx, partner_at(fleet, LOC)).rows
        ]
        others = [
            r.request_id
            for r in open_missing_device_requests(tx, partner_at(fleet, OTHER_LOC)).rows
        ]
    assert (before, after, others) == (["r1", "r2"], ["r2"], ["r9"])
