"""Policies on PostgreSQL and on a SQLite file: the same decisions, each recorded once."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain import Device
from handlers import PartnerFleet, PolicyRunner
from handlers.base import Working
from handlers.devices import PartnerChoice, load_device
from handlers.policies import AlertsPolicy, RepairRoutingPolicy
from infra.bootstrap import build_fleet, build_view_runner
from infra.follow.policy_follower import PolicyFollower
from infra.settings import Settings
from projections.repair_queues import alert_notifications, csdp_queue, repair_queue
from tests.actors import case_submitter
from tests.conftest import FleetFactory
from tests.pg_faults import eventually, terminate_backends
from tests.scenarios import CUSTOMER, OPS, partner, report, servers
from tests.scopes import OPERATIONS, partner_at

POLICIES = [AlertsPolicy.name, RepairRoutingPolicy.name]


def routing_world(fleet: PartnerFleet) -> None:
    """Reseller LOC-1 with PC1 held; S1 with service partner LOC-S (Insight RS to it); S2
    with reseller LOC-1; S3 without partner; an alert and a repair case on each."""
    partner(fleet, "LOC-1")
    partner(fleet, "LOC-S", service=True)
    fleet.receive_e2open_batch(OPS, "b1", [report("PC1")])
    fleet.register_devices(
        CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-S", role="service_partner")
    )
    fleet.choose_insight_rs_case_routing(CUSTOMER, "C1", ["S1"], to_service_partner=True)
    fleet.register_devices(CUSTOMER, "C1", servers("S2"), PartnerChoice(location_id="LOC-1"))
    fleet.register_devices(CUSTOMER, "C1", servers("S3"))
    for serial in ("PC1", "S1", "S2", "S3"):
        fleet.raise_alert(OPS, serial, "A1", "critical", "Failure predicted")
        fleet.submit_repair_case(case_submitter(fleet, serial), serial, "A1", "K1")
    fleet.raise_alert(OPS, "S1", "A2", "critical", "Fan failure")
    fleet.submit_repair_case(OPS, "S1", "A2", "K2", source="insight_rs")


def decisions(fleet: PartnerFleet, serial: str) -> list[tuple[str, str]]:
    """The device's recorded decisions: ("notified", audience) and ("routed", destination)."""
    found = []
    for event in fleet.events.get(Device.id_for(serial)):
        if isinstance(event, Device.AlertNotified):
            found.append(("notified", event.audience))
        if isinstance(event, Device.RepairCaseRouted):
            found.append(("routed", event.destination))
    return found


EXPECTED = {
    "PC1": [("notified", "end_user"), ("routed", "hp_customer_support")],
    "S1": [
        ("notified", "partner"),
        ("notified", "partner"),
        ("routed", "csdp:CSDP-LOC-S"),
        ("routed", "csdp:CSDP-LOC-S"),
    ],
    "S2": [("notified", "partner"), ("routed", "hpe_support")],
    "S3": [("notified", "hpe_support"), ("routed", "hpe_support")],
}


def test_r_alr_1_r_alr_2_the_policies_decide_the_same_on_stored_events(
    stored_fleet: PartnerFleet,
) -> None:
    routing_world(stored_fleet)
    runner = PolicyRunner(stored_fleet, batch_size=3)

    assert runner.catch_up() == 10
    runner.catch_up()

    assert {serial: decisions(stored_fleet, serial) for serial in EXPECTED} == EXPECTED
    assert runner.lag() == dict.fromkeys(POLICIES, 0)


def test_a_restarted_runner_goes_on_from_the_stored_position(fleet_factory: FleetFactory) -> None:
    """Tracking is stored with the decisions: a new process decides only what is new."""
    first = fleet_factory()
    routing_world(first)
    assert PolicyRunner(first).catch_up() == 10
    first.raise_alert(OPS, "S3", "A9", "info", "Firmware update available")

    restarted = fleet_factory()

    assert PolicyRunner(restarted).catch_up() == 1
    assert decisions(restarted, "S3")[-1] == ("notified", "hpe_support")


def test_two_runners_racing_record_each_decision_once(fleet_factory: FleetFactory) -> None:
    """Two processes following the same store: every alert and case is decided exactly once."""
    first, second = fleet_factory(), fleet_factory()
    serials = [f"R{n}" for n in range(15)]
    partner(first, "LOC-S", service=True)
    first.register_devices(
        CUSTOMER,
        "C1",
        servers(*serials),
        PartnerChoice(location_id="LOC-S", role="service_partner"),
    )
    for serial in serials:
        first.raise_alert(OPS, serial, "A1", "critical", "Failure predicted")
        first.submit_repair_case(CUSTOMER, serial, "A1", "K1")
    runners = [PolicyRunner(first, batch_size=4), PolicyRunner(second, batch_size=4)]
    counts: list[int] = []
    errors: list[Exception] = []

    def run(runner: PolicyRunner) -> None:
        try:
            counts.append(runner.catch_up())
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(runner,)) for runner in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(counts) == 30
    expected = [("notified", "partner"), ("routed", "csdp:CSDP-LOC-S")]
    assert all(decisions(first, serial) == expected for serial in serials)


def test_a_notification_decided_without_events_still_records_the_position(
    stored_fleet: PartnerFleet,
) -> None:
    """A refused decision saves the tracking record alone, in a transaction of its own."""
    stored_fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    stored_fleet.raise_alert(OPS, "S1", "A1", "critical", "Failure predicted")
    stored_fleet.raise_alert(OPS, "S1", "A2", "info", "Firmware update available")

    def told_by_hand(w: Working) -> None:
        load_device(w, "S1").notify_alert(OPS, "A1", "hpe_support", "told by phone", None)

    stored_fleet._run("notify_alert", OPS, told_by_hand)  # decided outside the policy
    first, second = [
        n
        for n in stored_fleet.recorder.select_notifications(1, 100)
        if n.topic.endswith("Device.AlertRaised")
    ]
    runner = PolicyRunner(stored_fleet, [AlertsPolicy()])

    assert not runner._process(runner.policies[0], first)  # refused: A1 was told by hand
    assert stored_fleet.recorder.max_tracking_id(AlertsPolicy.name) == first.id
    assert runner.catch_up() == 1  # A2 only
    assert runner.position(runner.policies[0]) > second.id
    assert decisions(stored_fleet, "S1") == [("notified", "hpe_support")] * 2


@pytest.fixture
def view_settings(stored_settings: Settings, tmp_path: Path) -> Settings:
    """The stored settings, with SQLite read models in this test's own file."""
    return stored_settings.model_copy(update={"views_sqlite_path": tmp_path / "views.sqlite3"})


def test_r_alr_2_the_repair_queues_on_stored_events(
    fleet_factory: FleetFactory, view_settings: Settings
) -> None:
    fleet = fleet_factory()
    views = build_view_runner(view_settings, fleet)
    try:
        routing_world(fleet)
        PolicyRunner(fleet).catch_up()
        views.catch_up()
        with views.db.transaction() as tx:
            assert [c.serial for c in repair_queue(tx, OPERATIONS, "hp_customer_support").rows] == [
                "PC1"
            ]
            assert [c.serial for c in repair_queue(tx, OPERATIONS, "hpe_support").rows] == [
                "S2",
                "S3",
            ]
            assert [
                (c.case_id, c.source) for c in csdp_queue(tx, partner_at(fleet, "LOC-S")).rows
            ] == [
                ("K1", "self_service"),
                ("K2", "insight_rs"),
            ]
            assert [
                a.serial for a in alert_notifications(tx, OPERATIONS, audience="end_user").rows
            ] == ["PC1"]
    finally:
        views.db.close()


@pytest.fixture
def fleet(postgres_settings: Settings) -> Iterator[PartnerFleet]:
    """A fleet on a PostgreSQL store."""
    opened = build_fleet(postgres_settings)
    yield opened
    opened.close()


@pytest.fixture
def pg_policies(fleet: PartnerFleet) -> Iterator[PolicyFollower]:
    """The policies followed live on the PostgreSQL store, as `serve` runs them."""
    follower = PolicyFollower(PolicyRunner(fleet), poll_seconds=0.05).start()
    yield follower
    follower.stop()


def decided(follower: PolicyFollower) -> bool:
    """Every policy has considered every stored notification."""
    return not any(follower.lag().values())


def test_kind6_policies_survive_every_connection_of_the_service_being_terminated(
    pg_policies: PolicyFollower, fleet: PartnerFleet, postgres_settings: Settings
) -> None:
    """R-ALR-1: the store's pooled connections all ended: the next alert is still decided,
    by the same running loop, which says it is running."""
    fleet.register_devices(CUSTOMER, "C1", servers("S3"))
    fleet.raise_alert(OPS, "S3", "A1", "critical", "Failure predicted")
    assert eventually(lambda: decided(pg_policies))

    assert terminate_backends(postgres_settings.storage.schema) >= 1
    fleet.raise_alert(OPS, "S3", "A2", "critical", "Fan failure")

    assert eventually(lambda: decided(pg_policies))
    assert decisions(fleet, "S3") == [("notified", "hpe_support")] * 2
    status = pg_policies.runner_status()
    assert status is not None
    assert status.state == "running"


def test_kind5_a_policy_failing_on_an_event_does_not_stop_the_other_policy(
    pg_policies: PolicyFollower, fleet: PartnerFleet
) -> None:
    """R-ALR-2: an alert in the store that cannot be read stops only the alerts policy, which
    says where and why and retries; repair cases are still routed."""
    fleet.register_devices(CUSTOMER, "C1", servers("S3"))
    topic = get_topic(Device.AlertRaised)
    poison = fleet.recorder.insert_events([StoredEvent(uuid.uuid4(), 1, topic, b"{not json")])
    assert poison
    fleet.raise_alert(OPS, "S3", "A1", "critical", "Failure predicted")
    fleet.submit_repair_case(CUSTOMER, "S3", "A1", "K1")

    assert eventually(lambda: ("routed", "hpe_support") in decisions(fleet, "S3"))
    assert eventually(lambda: not pg_policies.health()[AlertsPolicy.name].healthy)
    stuck = pg_policies.health()[AlertsPolicy.name]
    assert stuck.state == "retrying"
    assert stuck.detail == {"notification_id": poison[-1], "topic": topic}
    assert pg_policies.health()[RepairRoutingPolicy.name].healthy
    assert eventually(lambda: pg_policies.lag()[RepairRoutingPolicy.name] == 0)
    assert ("notified", "hpe_support") not in decisions(fleet, "S3")  # behind the poison
