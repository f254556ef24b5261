"""Issue 11: large saves by binary COPY keep the recorder's guarantees (PostgreSQL).

infra/storage/pg_copy.py stores a save of COPY_MIN_ROWS events or more (an e2Open batch):
notification ids returned in order (read-your-writes), the tracking record in the same
transaction, conflicts refused as a whole (RecordConflictError, nothing stored), read
versions checked, NOTIFY sent, and the intake's R-HLD-1 outcomes unchanged.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import RecordConflictError, StoredEvent, Tracking
from psycopg import sql

from domain import Device
from handlers import PartnerFleet
from infra.bootstrap import build_fleet
from infra.settings import Settings
from infra.storage.pg_copy import COPY_MIN_ROWS, insert_by_copy
from tests.conftest import POSTGRES_DSN
from tests.integration.streams import recorder_of
from tests.scenarios import OPS, partner, report

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_fleet(postgres_settings: Settings) -> Any:
    fleet = build_fleet(postgres_settings)
    yield fleet
    fleet.close()


def rows(count: int, version: int = 1) -> list[StoredEvent]:
    return [StoredEvent(uuid4(), version, "bench:Row", b'{"n":%d}' % i) for i in range(count)]


def stored_count(fleet: PartnerFleet) -> int:
    return len(fleet.recorder.select_notifications(start=1, limit=1_000_000))


def test_issue_11_copy_returns_ids_in_row_order_read_your_writes(pg_fleet: PartnerFleet) -> None:
    """The ids come back in the rows' order, follow what was stored before, and are the
    rows' notification ids in the table."""
    first = rows(3)
    pg_fleet.recorder.insert_events(first)
    batch = rows(COPY_MIN_ROWS)
    ids = pg_fleet.recorder.insert_events(batch)
    assert ids is not None
    assert len(ids) == COPY_MIN_ROWS
    head = pg_fleet.recorder.max_notification_id()
    assert list(ids) == list(range(ids[0], ids[0] + COPY_MIN_ROWS))
    assert ids[-1] == head
    found = pg_fleet.recorder.select_notifications(start=ids[0], limit=COPY_MIN_ROWS)
    assert [(n.id, n.originator_id, n.state) for n in found] == [
        (i, r.originator_id, r.state) for i, r in zip(ids, batch, strict=True)
    ]
    later = pg_fleet.recorder.insert_events(rows(2))
    assert later is not None
    assert later[0] > head


def test_issue_11_copy_conflict_stores_nothing(pg_fleet: PartnerFleet) -> None:
    """An aggregate version stored before refuses the whole COPY (RecordConflictError)."""
    taken = rows(1)
    pg_fleet.recorder.insert_events(taken)
    before = stored_count(pg_fleet)
    with pytest.raises(RecordConflictError):
        pg_fleet.recorder.insert_events([*rows(COPY_MIN_ROWS), taken[0]])
    assert stored_count(pg_fleet) == before


def test_issue_11_copy_tracking_in_the_same_transaction(pg_fleet: PartnerFleet) -> None:
    """A policy's position is recorded with the events; the same position again refuses
    the events too (exactly once)."""
    recorder = recorder_of(pg_fleet)
    insert_by_copy(recorder, rows(COPY_MIN_ROWS), Tracking("policy-x", 7))
    assert recorder.max_tracking_id("policy-x") == 7
    before = stored_count(pg_fleet)
    with pytest.raises(RecordConflictError):
        insert_by_copy(recorder, rows(COPY_MIN_ROWS), Tracking("policy-x", 7))
    assert stored_count(pg_fleet) == before


def test_issue_11_copy_refuses_stale_read_versions(pg_fleet: PartnerFleet) -> None:
    """An aggregate read at a version that is no longer its last refuses the save."""
    recorder = recorder_of(pg_fleet)
    [one] = rows(1)
    recorder.insert_events([one, StoredEvent(one.originator_id, 2, one.topic, one.state)])
    before = stored_count(pg_fleet)
    with pytest.raises(RecordConflictError):
        insert_by_copy(recorder, rows(COPY_MIN_ROWS), read_versions={one.originator_id: 1})
    assert stored_count(pg_fleet) == before
    insert_by_copy(recorder, rows(COPY_MIN_ROWS), read_versions={one.originator_id: 2})
    assert stored_count(pg_fleet) == before + COPY_MIN_ROWS


def test_issue_11_copy_notifies_followers(
    pg_fleet: PartnerFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """View runners wake up on the events table's channel after a COPY too (the channel
    is shared by every schema of the database, so the NOTIFY is counted at the source)."""
    recorder = recorder_of(pg_fleet)
    sent: list[str] = []
    notify = recorder._notify_channel

    def counted(curs: Any) -> None:
        sent.append(recorder.channel_name)
        notify(curs)

    monkeypatch.setattr(recorder, "_notify_channel", counted)
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as listener:
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(recorder.channel_name)))
        pg_fleet.recorder.insert_events(rows(COPY_MIN_ROWS))
        heard = list(listener.notifies(timeout=5, stop_after=1))
    assert sent == [recorder.channel_name]
    assert recorder.channel_name in [n.channel for n in heard]


def test_issue_11_e2open_batch_by_copy_r_hld_1(pg_fleet: PartnerFleet) -> None:
    """R-HLD-1 over COPY: a big batch lands every PC once; a later batch with one known PC
    conflicts, retries with lookups and lands the rest; read-your-writes is its last id."""
    partner(pg_fleet, "LOC-1")
    size = COPY_MIN_ROWS + 10
    first = pg_fleet.receive_e2open_batch(
        OPS, "copy-1", [report(f"PCA{i:05d}") for i in range(size)]
    )
    assert len(first.accepted) == size
    assert pg_fleet.last_position() == pg_fleet.recorder.max_notification_id()
    pc: Device = pg_fleet.repository.get(Device.id_for("PCA00042"))
    assert pc.placement_owner == "LOC-1"
    assert pc.version == 1
    again = [report("PCA00000"), *(report(f"PCB{i:05d}") for i in range(size))]
    second = pg_fleet.receive_e2open_batch(OPS, "copy-2", again)
    assert second.duplicates == ["PCA00000"]
    assert len(second.accepted) == size
    landed = [
        n
        for n in pg_fleet.recorder.select_notifications(start=1, limit=1_000_000)
        if n.topic.endswith("Device.ReportedByE2Open")
    ]
    assert len(landed) == 2 * size  # every PC once, none twice
