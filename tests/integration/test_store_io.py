"""The store's own write and read paths: binary array inserts, tuple reads (PG and SQLite)."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresProcessRecorder

from domain import Device
from handlers import PartnerFleet
from infra.bootstrap import build_fleet
from infra.settings import Settings
from infra.storage.event_rows import EventRow, PostgresRows, row_reader
from infra.storage.pg_recorder import FleetProcessRecorder
from tests.scenarios import CUSTOMER, OPS, partner, report, servers


def history(fleet: PartnerFleet) -> None:
    """Several aggregate types, an upcast-free mix of plain and dated events."""
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1", "S2", "S3"))
    fleet.raise_alert(OPS, "S1", "A-1", "critical", "disk")
    fleet.grant_consent(CUSTOMER, "C1", ["S1", "S2"])
    fleet.receive_e2open_batch(OPS, "batch-1", [report("PC1"), report("PC2"), {"serial": 1}])


def test_rows_read_for_the_relay_are_the_stored_notifications(stored_fleet: PartnerFleet) -> None:
    """Same positions, ids, versions, topics and states, in order, from any start and limit."""
    history(stored_fleet)
    read = row_reader(stored_fleet.recorder)
    if isinstance(stored_fleet.recorder, PostgresProcessRecorder):
        assert isinstance(read, PostgresRows)
    for after, limit in ((0, 1_000), (3, 5), (10, 1)):
        expected = [
            EventRow(n.id, str(n.originator_id), n.originator_version, n.topic, n.state)
            for n in stored_fleet.recorder.select_notifications(after + 1, limit)
        ]
        assert read(after, limit) == expected
        assert expected
    head = stored_fleet.recorder.max_notification_id() or 0
    assert read(head, 10) == []
    row = read(0, 1)[0]
    assert stored_fleet.mapper.to_domain_event(row.stored_event()).originator_version == 1


def test_postgres_stores_through_binary_array_inserts_with_ids_in_commit_order(
    postgres_settings: Settings,
) -> None:
    """The PostgreSQL store uses FleetProcessRecorder; events read back as stored, ids ascend
    without gaps, and a refused batch (duplicate PC) leaves nothing behind."""
    fleet = build_fleet(postgres_settings)
    try:
        history(fleet)
        assert isinstance(fleet.recorder, FleetProcessRecorder)
        notifications = fleet.recorder.select_notifications(1, 10_000)
        ids = [n.id for n in notifications]
        assert ids == list(range(1, len(ids) + 1))
        again = build_fleet(postgres_settings)  # a restart reads every aggregate back
        assert (
            again.repository.get(Device.id_for("S1")).version
            == fleet.repository.get(Device.id_for("S1")).version
        )
        before = fleet.recorder.max_notification_id()
        with pytest.raises(IntegrityError):
            fleet.recorder.insert_events([notifications[0]])  # same aggregate and version
        assert fleet.recorder.max_notification_id() == before
        again.close()
    finally:
        fleet.close()
