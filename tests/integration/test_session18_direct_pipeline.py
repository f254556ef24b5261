"""The save's transaction on libpq's pipeline directly (issue 11, session 18):
`FleetProcessRecorder._send_directly` prepares its statements once per connection, and
must survive them being deallocated behind its back (psycopg runs DEALLOCATE ALL after a
ROLLBACK, DROP or ALTER of its own), roll back without psycopg, and answer each outcome
as the psycopg path did."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking

from handlers import PartnerFleet
from infra.bootstrap import build_fleet
from infra.settings import Settings
from infra.storage.group_commit import Unit
from infra.storage.pg_recorder import FleetProcessRecorder
from tests.integration.streams import recorder_of

pytestmark = pytest.mark.postgres


@pytest.fixture
def fleets(postgres_settings: Settings) -> Iterator[Callable[[], PartnerFleet]]:
    opened: list[PartnerFleet] = []

    def open_fleet() -> PartnerFleet:
        opened.append(build_fleet(postgres_settings))
        return opened[-1]

    yield open_fleet
    for fleet in opened:
        fleet.close()


def event(aggregate_id: uuid.UUID, version: int = 1) -> StoredEvent:
    return StoredEvent(aggregate_id, version, "tests:Event", b"{}")


def prepared_names(recorder: FleetProcessRecorder) -> set[str]:
    """The statements prepared on every pooled connection of the recorder (its own
    names only), read on each connection while the pool is idle."""
    names: set[str] = set()
    for conn in list(recorder._prepared_on):
        if conn.closed:
            continue
        rows = conn.execute(
            "SELECT name FROM pg_prepared_statements WHERE name LIKE 'partnerfleet%'"
        ).fetchall()
        names |= {row["name"] for row in rows}
    return names


def test_session18_saves_go_directly_and_prepare_once(
    fleets: Callable[[], PartnerFleet],
) -> None:
    recorder = recorder_of(fleets())
    assert recorder.packs_arrays  # UUID ids: the direct path
    first = recorder.insert_events([event(uuid.uuid4())])
    second = recorder.insert_events([event(uuid.uuid4())], read_versions={uuid.uuid4(): 1})
    assert first
    assert second
    assert second[0] > first[0]
    names = prepared_names(recorder)
    # The settings and NOTIFY, the lock, the plain insert, the insert with reads.
    assert len(names) == 4, names
    recorder.insert_events([event(uuid.uuid4())])
    assert prepared_names(recorder) == names  # nothing prepared twice


@pytest.mark.parametrize("statement", ["DEALLOCATE ALL", "DISCARD ALL", "ROLLBACK"])
def test_session18_statements_deallocated_behind_the_recorder_are_prepared_again(
    fleets: Callable[[], PartnerFleet], statement: str
) -> None:
    """Whatever empties a connection's prepared statements (DEALLOCATE ALL, DISCARD ALL,
    psycopg's own reaction to a ROLLBACK it runs after its prepared queries), the next
    save is recorded once, with its id, and nothing of the failed first try stays."""
    recorder = recorder_of(fleets())
    pool = recorder.datastore.pool
    for _ in range(2 * pool.max_size):  # every pooled connection used once at least
        recorder.insert_events([event(uuid.uuid4())], read_versions={uuid.uuid4(): 3})
    connections = [c for c in recorder._prepared_on if not c.closed]
    assert len(connections) == pool.get_stats()["pool_size"]
    for conn in connections:
        # psycopg prepares this query (prepare=True), then deallocates all after ROLLBACK.
        conn.execute("SELECT 1", prepare=True)
        conn.execute(statement)
        conn.execute("SELECT 1")  # psycopg's pending DEALLOCATE ALL, if any, runs here
        rows = conn.execute(
            "SELECT name FROM pg_prepared_statements WHERE name LIKE 'partnerfleet%'"
        ).fetchall()
        assert rows == []
    for _ in range(2 * pool.max_size):  # on each of those connections
        mine = uuid.uuid4()
        ids = recorder.insert_events([event(mine)], read_versions={uuid.uuid4(): 3})
        assert ids is not None
        assert len(ids) == 1
        stored = recorder.select_events(mine)
        assert [e.originator_version for e in stored] == [1]
        assert recorder.max_notification_id() == ids[0]
    assert prepared_names(recorder)  # prepared again


def test_session18_a_refused_save_rolls_back_and_keeps_the_connection_usable(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """A unit's own unique violation (the plain insert) and a group with a refused unit:
    each outcome as before; the connection's transaction is idle afterwards and later
    saves on it go through (the rollback did not go through psycopg, so its prepared
    statements stay)."""
    recorder = recorder_of(fleets())
    taken = uuid.uuid4()
    recorder.insert_events([event(taken)])
    names = prepared_names(recorder)
    with pytest.raises(IntegrityError):
        recorder.insert_events([event(taken)])
    for conn in recorder._prepared_on:
        if not conn.closed:
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert names <= prepared_names(recorder)
    units = [Unit([event(uuid.uuid4())], Tracking("p", 1)), Unit([event(taken)])]
    recorder.committer._lead(units)
    assert units[0].error is None
    assert len(units[0].notification_ids) == 1
    assert isinstance(units[1].error, IntegrityError)
    assert [e.originator_version for e in recorder.select_events(taken)] == [1]
    assert recorder.max_tracking_id("p") == 1
