"""The repairs read model: repair cases per destination queue, alerts per audience (R-ALR-*)."""

from __future__ import annotations

import pytest

from handlers import PartnerFleet, PolicyRunner
from handlers.access import ForbiddenError
from projections.repair_queues import (
    QueuedRepairCase,
    alert_notifications,
    csdp_queue,
    repair_queue,
    unrouted_repair_cases,
)
from tests.actors import case_submitter
from tests.scenarios import CUSTOMER, report, servers
from tests.scopes import OPERATIONS, partner_at
from tests.unit.views_support import (
    LOC,
    OPS,
    OTHER_SERVICE_LOC,
    SERVICE_LOC,
    Reader,
    admin,
    db,
    fleet,
    link_new_servers,
    new_partner,
    read,
    runner,
)
from tests.views import assert_rebuild_equals_live, memory_runner

__all__ = ["db", "fleet", "read", "runner"]


def alert_and_case(
    fleet: PartnerFleet, serial: str, case_id: str, source: str = "self_service"
) -> None:
    """An alert on the device and a repair case submitted from it."""
    fleet.raise_alert(OPS, serial, f"A-{case_id}", "critical", f"Failure on {serial}")
    by = case_submitter(fleet, serial, source)
    fleet.submit_repair_case(by, serial, f"A-{case_id}", case_id, source)


@pytest.fixture
def world(fleet: PartnerFleet) -> PartnerFleet:
    """Reseller LOC-1 (PC1 in its holding tenant, server S1), service partners LOC-S (S2)
    and LOC-T (S5), S3 without partner; a repair case on each device, all routed."""
    new_partner(fleet, LOC)
    new_partner(fleet, SERVICE_LOC, service=True)
    new_partner(fleet, OTHER_SERVICE_LOC, service=True)
    fleet.receive_e2open_batch(OPS, "b1", [report("PC1", LOC)])
    link_new_servers(fleet, "C1", "S1", to=LOC)
    link_new_servers(fleet, "C1", "S2", to=SERVICE_LOC, role="service_partner")
    link_new_servers(fleet, "C2", "S5", to=OTHER_SERVICE_LOC, role="service_partner")
    fleet.register_devices(CUSTOMER, "C1", servers("S3"))
    cases = [("PC1", "K1"), ("S1", "K2"), ("S2", "K3"), ("S3", "K4"), ("S5", "K5"), ("S2", "K6")]
    for serial, case_id in cases:
        alert_and_case(fleet, serial, case_id)
    PolicyRunner(fleet).catch_up()
    return fleet


def case_ids(cases: list[QueuedRepairCase]) -> list[str]:
    """The case ids listed, in order."""
    return [case.case_id for case in cases]


def test_r_alr_2_each_destination_queue_lists_the_cases_routed_to_it(
    world: PartnerFleet, read: Reader
) -> None:
    with read() as tx:
        assert case_ids(repair_queue(tx, OPERATIONS, "hp_customer_support").rows) == ["K1"]
        assert case_ids(repair_queue(tx, OPERATIONS, "hpe_support").rows) == ["K2", "K4"]
        assert case_ids(repair_queue(tx, OPERATIONS, f"csdp:CSDP-{SERVICE_LOC}").rows) == [
            "K3",
            "K6",
        ]
        assert case_ids(repair_queue(tx, OPERATIONS, f"csdp:CSDP-{OTHER_SERVICE_LOC}").rows) == [
            "K5"
        ]
        assert repair_queue(tx, OPERATIONS, "csdp:CSDP-NOBODY").rows == []


def test_r_alr_2_a_queued_case_shows_serial_alert_reason_and_time(
    world: PartnerFleet, read: Reader
) -> None:
    with read() as tx:
        [case] = repair_queue(tx, OPERATIONS, "hp_customer_support").rows

    assert (case.serial, case.case_id, case.alert_id, case.source) == (
        "PC1",
        "K1",
        "A-K1",
        "self_service",
    )
    assert case.reason == (
        "R-ALR-2: partner LOC-1 is a reseller; HP customer support schedules the repair."
    )
    assert case.partner is None
    assert case.routed_at.endswith("Z")


def test_r_alr_2_a_service_partner_finds_its_csdp_queue_by_its_location_id(
    fleet: PartnerFleet, world: PartnerFleet, read: Reader
) -> None:
    with read() as tx:
        mine = csdp_queue(tx, partner_at(fleet, SERVICE_LOC)).rows
        assert case_ids(mine) == ["K3", "K6"]
        assert {case.serial for case in mine} == {"S2"}
        with pytest.raises(ForbiddenError, match="not a service partner"):
            csdp_queue(tx, partner_at(fleet, LOC))  # R-SVC-1: a reseller has no CSDP queue


def test_r_alr_2_a_case_the_policy_has_not_routed_yet_is_listed_as_unrouted(
    world: PartnerFleet, read: Reader
) -> None:
    alert_and_case(world, "S3", "K7")

    with read() as tx:
        [pending] = unrouted_repair_cases(tx, OPERATIONS).rows
        assert (pending.serial, pending.case_id, pending.source) == ("S3", "K7", "self_service")
        assert "K7" not in case_ids(repair_queue(tx, OPERATIONS, "hpe_support").rows)

    PolicyRunner(world).catch_up()

    with read() as tx:
        assert unrouted_repair_cases(tx, OPERATIONS).rows == []
        assert case_ids(repair_queue(tx, OPERATIONS, "hpe_support").rows) == ["K2", "K4", "K7"]


def test_r_alr_2_an_insight_rs_case_lands_in_the_queue_the_customer_chose(
    fleet: PartnerFleet, world: PartnerFleet, read: Reader
) -> None:
    world.choose_insight_rs_case_routing(CUSTOMER, "C1", ["S2"], to_service_partner=True)
    alert_and_case(world, "S2", "K8", source="insight_rs")
    alert_and_case(world, "S1", "K9", source="insight_rs")
    PolicyRunner(world).catch_up()

    with read() as tx:
        assert case_ids(csdp_queue(tx, partner_at(fleet, SERVICE_LOC)).rows) == ["K3", "K6", "K8"]
        assert [(c.case_id, c.source) for c in repair_queue(tx, OPERATIONS, "hpe_support").rows][
            -1
        ] == (
            "K9",
            "insight_rs",
        )


def test_r_alr_1_r_alr_4_alerts_are_listed_per_audience(world: PartnerFleet, read: Reader) -> None:
    dashboard = world.create_customer_dashboard(admin(LOC), LOC, "C9", "Customer Nine", "4711")
    holding = world.partner(LOC).require_holding_tenant()
    world.receive_e2open_batch(OPS, "b2", [report("PC2", LOC, care_plan="premium")])
    world.transfer_devices(admin(LOC), LOC, ["PC2"], holding, dashboard, "t1")
    world.switch_self_service_notifications(admin(LOC), LOC, dashboard, on=False)
    world.raise_alert(OPS, "PC2", "A-off", "warning", "Fan noise")
    PolicyRunner(world).catch_up()

    with read() as tx:
        assert [
            a.serial for a in alert_notifications(tx, OPERATIONS, audience="end_user").rows
        ] == ["PC1"]
        to_partners = alert_notifications(tx, OPERATIONS, audience="partner").rows
        assert [(a.serial, a.partner) for a in to_partners] == [
            ("S1", LOC),
            ("S2", SERVICE_LOC),
            ("S5", OTHER_SERVICE_LOC),
            ("S2", SERVICE_LOC),
            ("PC2", LOC),
        ]
        [off] = alert_notifications(tx, OPERATIONS, audience="partner", partner=LOC).rows[1:]
        assert (off.alert_id, off.severity, off.message) == ("A-off", "warning", "Fan noise")
        assert off.reason.startswith("R-ALR-4: self-service notifications are off")
        assert [
            a.serial for a in alert_notifications(tx, OPERATIONS, audience="hpe_support").rows
        ] == ["S3"]


def test_the_repairs_view_rebuilds_to_the_same_rows(world: PartnerFleet) -> None:
    """Replaying all events from scratch rebuilds the queues identically."""
    assert_rebuild_equals_live(memory_runner(world, batch_size=3))
