"""Session 18's attack on the save's pipeline on libpq (issue 11): a policy's position
saved alone (no events) whose reply is lost after its commit is answered as saved, not as
a tracking conflict; the committer's connection is never opened again once the store is
closing (no connection left behind by a save racing the fleet's close)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import psycopg
import pytest
from eventsourcing.persistence import (
    DataError,
    IntegrityError,
    PersistenceError,
    StoredEvent,
    Tracking,
)

from handlers import PartnerFleet
from infra.bootstrap import build_fleet
from infra.settings import Settings
from infra.storage.group_commit import Unit
from infra.storage.pg_copy import COPY_MIN_ROWS
from infra.storage.pg_recorder import FleetProcessRecorder
from tests.conftest import POSTGRES_DSN
from tests.integration.streams import event, lock_is_free, lose_first_reply, recorder_of

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("shape", ["alone", "group"])
def test_session18_a_position_saved_alone_whose_reply_is_lost_is_answered_saved(
    fleets: Callable[[], PartnerFleet], shape: str
) -> None:
    """A policy that processed a notification making no event saves its position alone.
    Its commit's reply lost, the retry finds the position recorded: that is its own
    commit, not a conflict (IntegrityError said "nothing was recorded", a lie). A position
    really behind the recorded one is still refused."""
    recorder = recorder_of(fleets())
    recorder.insert_events([], tracking=Tracking("attack3-policy", 4))
    lose_first_reply(recorder)
    if shape == "group":
        units = [Unit([], Tracking("attack3-policy", 5)), Unit([event(uuid.uuid4())])]
        recorder._commit_group(units)
        assert units[0].result() == []
        assert len(units[1].result()) == 1
    else:
        assert recorder.insert_events([], tracking=Tracking("attack3-policy", 5)) == []
    assert recorder.max_tracking_id("attack3-policy") == 5
    lose_first_reply(recorder)
    with pytest.raises(IntegrityError):  # behind the recorded position: a real conflict
        recorder.insert_events([], tracking=Tracking("attack3-policy", 3))
    assert recorder.max_tracking_id("attack3-policy") == 5


def connections_of(recorder: FleetProcessRecorder) -> int:
    """The server's connections of this store (its schema's application name), once
    those closed have left (a backend ends a moment after its client closes; 5 s at
    most)."""
    kwargs = recorder.datastore.pool.kwargs
    assert isinstance(kwargs, dict)
    name = kwargs["application_name"]
    count = -1
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
        for _ in range(50):
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
            ).fetchone()
            assert row is not None
            count = int(row[0])
            if count == 0:
                break
            time.sleep(0.1)
    return count


def test_session18_a_save_racing_the_close_leaves_no_connection(
    postgres_settings: Settings,
) -> None:
    """A leader taking the committer's lock just after the close closed the committer's
    connection, the pool not closed yet: it must not open a new connection that nobody
    closes (it is refused as after the close)."""
    fleet = build_fleet(postgres_settings)
    recorder = recorder_of(fleet)
    recorder.insert_events([event(uuid.uuid4())])
    closing = recorder._close_commit_connection
    raced: list[BaseException | None] = []

    def close_then_a_save_slips_in() -> None:
        closing()
        try:
            recorder._send_directly(recorder._commit_connection(), b"SELECT 1", {})
            raced.append(None)
        except (PersistenceError, psycopg.Error) as error:
            raced.append(error)

    recorder._close_commit_connection = close_then_a_save_slips_in  # type: ignore[method-assign]
    fleet.close()
    leftover = recorder._commit_conn
    assert raced
    assert raced[0] is not None, "a save after the close opened a connection"
    assert leftover is None or leftover.closed
    assert connections_of(recorder) == 0


@pytest.mark.parametrize("bad", ["topic", "position name", "version", "NUL"])
def test_session18_data_the_arrays_cannot_carry_refuses_its_unit_alone(
    fleets: Callable[[], PartnerFleet], bad: str
) -> None:
    """One unit of a group with data that cannot be packed (a lone surrogate in a topic
    or a policy's name: no UTF-8 for it; a version beyond bigint) or that the server
    refuses (NUL in text): that unit alone is refused, with DataError (a PersistenceError,
    not UnicodeEncodeError or struct.error), and its neighbours are recorded."""
    recorder = recorder_of(fleets())
    aggregate_id = uuid.uuid4()
    if bad == "topic":
        refused = Unit([StoredEvent(aggregate_id, 1, "tests:\ud800", b"{}")])
    elif bad == "position name":
        refused = Unit([event(aggregate_id)], Tracking("policy-\udcff", 1))
    elif bad == "version":
        refused = Unit([event(aggregate_id, 2**63)])
    else:
        refused = Unit([StoredEvent(aggregate_id, 1, "tests:\x00", b"{}")])
    neighbours = [Unit([event(uuid.uuid4())]), Unit([event(uuid.uuid4())], Tracking("ok", 1))]
    units = [neighbours[0], refused, neighbours[1]]
    recorder.committer._lead(units)
    assert isinstance(refused.error, DataError), repr(refused.error)
    assert recorder.select_events(aggregate_id) == []
    for unit in neighbours:
        [notification_id] = unit.result()
        [stored] = recorder.select_notifications(start=notification_id, limit=1)
        assert stored.originator_id == unit.stored_events[0].originator_id
    assert recorder.max_tracking_id("ok") == 1
    with pytest.raises(DataError):  # alone, the same refusal
        recorder.insert_events(refused.stored_events, tracking=refused.tracking)


@pytest.mark.parametrize("bad", ["topic", "position name", "version"])
def test_session18_a_batch_the_copy_cannot_carry_is_refused_cleanly(
    fleets: Callable[[], PartnerFleet], bad: str
) -> None:
    """The same data in an e2Open-sized batch (saved by COPY): DataError, nothing of the
    batch stored, the table's lock free, the next save recorded."""
    fleet = fleets()
    recorder = recorder_of(fleet)
    events = [event(uuid.uuid4()) for _ in range(COPY_MIN_ROWS)]
    tracking = Tracking("policy-\ud800" if bad == "position name" else "copy-policy", 1)
    if bad == "topic":
        events[-1] = StoredEvent(uuid.uuid4(), 1, "tests:\ud800", b"{}")
    elif bad == "version":
        events[-1] = StoredEvent(uuid.uuid4(), 2**63, "tests:Event", b"{}")
    with pytest.raises(DataError):
        recorder.insert_events(events, tracking=tracking)
    assert recorder.max_notification_id() is None
    assert lock_is_free(fleet)
    assert recorder.insert_events([event(uuid.uuid4())])


@pytest.mark.parametrize("gone", [0, 1, 2])
def test_session18_one_statement_deallocated_alone_is_prepared_again(
    fleets: Callable[[], PartnerFleet], gone: int
) -> None:
    """One of the committer's prepared statements deallocated by name (the others kept):
    the resend prepared all again, and the kept ones failed "already exists" (42P05) on
    every later save, for good. Now each save is recorded once, with its id."""
    recorder = recorder_of(fleets())
    recorder.insert_events([event(uuid.uuid4())], read_versions={uuid.uuid4(): 1})
    conn = recorder._commit_conn
    assert conn is not None
    conn.execute(f"DEALLOCATE partnerfleet_{gone}")
    for _ in range(3):
        mine = uuid.uuid4()
        ids = recorder.insert_events([event(mine)], read_versions={uuid.uuid4(): 1})
        assert ids is not None
        assert len(ids) == 1
        assert [e.originator_version for e in recorder.select_events(mine)] == [1]
        assert recorder.max_notification_id() == ids[0]
