"""The save's transaction on libpq's pipeline directly, on the committer's own connection
(issue 11, session 18): `FleetProcessRecorder._send_directly` prepares its statements once
on that connection, prepares them again if they were deallocated all the same, rolls back
without psycopg, opens the connection again once lost and closes it with the store; a
load's rows (`latest_rows`) are psycopg's rows for the same statement."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import reduce
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from domain import Device
from handlers import PartnerFleet
from handlers.devices import PartnerChoice
from handlers.stored_loads import _pg_statement
from infra.bootstrap import build_fleet
from infra.settings import Settings
from infra.storage.group_commit import Unit
from infra.storage.pg_recorder import FleetProcessRecorder
from tests.conftest import POSTGRES_DSN
from tests.integration.streams import event, recorder_of
from tests.scenarios import CUSTOMER, partner, servers

pytestmark = pytest.mark.postgres


def committer_connection(recorder: FleetProcessRecorder) -> psycopg.Connection[Any]:
    conn = recorder._commit_conn
    assert conn is not None
    assert not conn.closed
    return conn


def prepared_names(recorder: FleetProcessRecorder) -> set[str]:
    rows = committer_connection(recorder).execute(
        "SELECT name FROM pg_prepared_statements WHERE name LIKE 'partnerfleet%'"
    )
    return {row["name"] for row in rows.fetchall()}


def test_session18_saves_go_on_the_committers_connection_and_prepare_once(
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
    conn = committer_connection(recorder)
    recorder.insert_events([event(uuid.uuid4())])
    assert committer_connection(recorder) is conn
    assert prepared_names(recorder) == names  # nothing prepared twice
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


@pytest.mark.parametrize("statement", ["DEALLOCATE ALL", "DISCARD ALL", "ROLLBACK"])
def test_session18_statements_deallocated_behind_the_recorder_are_prepared_again(
    fleets: Callable[[], PartnerFleet], statement: str
) -> None:
    """Whatever empties the connection's prepared statements (DEALLOCATE ALL, DISCARD
    ALL, psycopg's own DEALLOCATE ALL after a ROLLBACK following its prepared queries),
    the next saves are recorded once each, with their ids."""
    recorder = recorder_of(fleets())
    recorder.insert_events([event(uuid.uuid4())], read_versions={uuid.uuid4(): 3})
    conn = committer_connection(recorder)
    conn.execute("SELECT 1", prepare=True)  # psycopg prepares it: it deallocates after ROLLBACK
    conn.execute(statement)
    conn.execute("SELECT 1")  # psycopg's pending DEALLOCATE ALL, if any, runs here
    assert prepared_names(recorder) == set()
    for _ in range(3):
        mine = uuid.uuid4()
        ids = recorder.insert_events([event(mine)], read_versions={uuid.uuid4(): 3})
        assert ids is not None
        assert len(ids) == 1
        assert [e.originator_version for e in recorder.select_events(mine)] == [1]
        assert recorder.max_notification_id() == ids[0]
    assert len(prepared_names(recorder)) == 3


def test_session18_a_refused_save_rolls_back_and_keeps_the_connection(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """A unit's own unique violation (the plain insert) and a group with a refused unit:
    each outcome as before; the connection is idle afterwards, kept, its statements too
    (the rollback did not go through psycopg)."""
    recorder = recorder_of(fleets())
    taken = uuid.uuid4()
    recorder.insert_events([event(taken)])
    conn = committer_connection(recorder)
    names = prepared_names(recorder)
    with pytest.raises(IntegrityError):
        recorder.insert_events([event(taken)])
    assert committer_connection(recorder) is conn
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert names <= prepared_names(recorder)
    units = [Unit([event(uuid.uuid4())], Tracking("p", 1)), Unit([event(taken)])]
    recorder.committer._lead(units)
    assert units[0].error is None
    assert len(units[0].notification_ids) == 1
    assert isinstance(units[1].error, IntegrityError)
    assert [e.originator_version for e in recorder.select_events(taken)] == [1]
    assert recorder.max_tracking_id("p") == 1


def test_session18_a_lost_committer_connection_is_opened_again(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """The server ends the committer's connection between saves: the next save is
    retried on a new one (as the stock recorder retries a lost connection) and recorded
    once."""
    recorder = recorder_of(fleets())
    recorder.insert_events([event(uuid.uuid4())])
    lost = committer_connection(recorder)
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 10000)", (lost.info.backend_pid,))
    mine = uuid.uuid4()
    ids = recorder.insert_events([event(mine)])
    assert ids is not None
    assert len(ids) == 1
    assert committer_connection(recorder) is not lost
    assert [e.originator_version for e in recorder.select_events(mine)] == [1]


def test_session18_the_committers_connection_closes_with_the_store(
    postgres_settings: Settings,
) -> None:
    fleet = build_fleet(postgres_settings)
    recorder = recorder_of(fleet)
    recorder.insert_events([event(uuid.uuid4())])
    conn = committer_connection(recorder)
    fleet.close()
    assert conn.closed
    assert recorder._commit_conn is None


def test_session18_a_load_read_with_packed_ids_equals_psycopgs_rows(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """`latest_rows` (packed ids, binary tuples) gives what psycopg's cursor gives for
    the same statement with a list: a device past its snapshot (the snapshot row and the
    events after it), another without one, an id never stored; and the repository loads
    the same state as a replay of every event."""
    fleet = fleets()
    recorder = recorder_of(fleet)
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1", "S2"), PartnerChoice(location_id="LOC-1"))
    for _ in range(27):
        fleet.grant_consent(CUSTOMER, "C1", ["S1"])
        fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    ids = [Device.id_for("S1"), Device.id_for("S2"), uuid.uuid4()]
    statement = _pg_statement(recorder, fleet.snapshots.recorder if fleet.snapshots else None)
    direct = recorder.latest_rows(statement, ids)
    assert direct is not None
    with recorder.datastore.get_connection() as conn:
        cursor = conn.cursor(row_factory=psycopg.rows.tuple_row)
        expected = cursor.execute(statement, (ids,)).fetchall()

    def key(row: Any) -> tuple[str, bool, int]:
        return (str(row[1]), row[0], row[2])

    assert sorted(direct, key=key) == sorted(expected, key=key)
    assert any(row[0] for row in direct)  # S1's snapshot is among them
    assert {row[1] for row in direct} == set(ids[:2])
    for aggregate_id in ids[:2]:
        loaded = fleet.repository.get(aggregate_id)
        events: list[Any] = list(fleet.events.get(aggregate_id))
        replayed = reduce(lambda a, e: e.mutate(a), events, None)
        assert vars(loaded) == vars(replayed)
