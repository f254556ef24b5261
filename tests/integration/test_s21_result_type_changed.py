"""A column's type changed under the running service (ALTER TABLE ... TYPE) after the save's
statements were prepared on the committer's connection: PostgreSQL refuses a prepared
statement whose result columns changed type ("cached plan must not change result type",
SQLSTATE 0A000) until it is prepared again. The save prepares its statements again and
commits, nothing written twice (session 21; before, every save failed with
NotSupportedError until the connection was replaced)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest
from eventsourcing.persistence import NotSupportedError, Tracking

from handlers import PartnerFleet
from infra.follow.view_reads import PostgresTopicRows
from infra.storage.event_rows import PostgresRows
from infra.storage.group_commit import Unit
from tests.conftest import POSTGRES_DSN
from tests.integration.streams import event, recorder_of

pytestmark = pytest.mark.postgres


def test_s21_every_save_statement_commits_after_its_result_type_changed(
    fleets: Callable[[], PartnerFleet],
) -> None:
    recorder = recorder_of(fleets())
    first, alone, read, grouped, tracked = (uuid.uuid4() for _ in range(5))
    # each statement prepared once on the committer's connection: alone, with reads, a
    # plain group, a group with a policy position (session 22)
    recorder.insert_events([event(first)])
    recorder.insert_events([event(uuid.uuid4())], read_versions={first: 1})
    recorder._commit_group([Unit([event(uuid.uuid4())]), Unit([event(uuid.uuid4())])])
    position = Tracking("s21", 1)
    recorder._commit_group([Unit([event(uuid.uuid4())]), Unit([event(uuid.uuid4())], position)])
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
        # the statements return notification_id: int8 -> int4 changes their result type
        admin.execute(f"ALTER TABLE {table} ALTER COLUMN notification_id TYPE integer")

    ids = recorder.insert_events([event(alone)])
    assert ids
    assert len(ids) == 1
    assert recorder.insert_events([event(read)], read_versions={first: 1})
    units = [Unit([event(grouped)]), Unit([event(grouped, 2)])]
    recorder._commit_group(units)
    assert [len(unit.result()) for unit in units] == [1, 1]
    units = [Unit([event(tracked)]), Unit([event(tracked, 2)], Tracking("s21", 2))]
    recorder._commit_group(units)
    assert [len(unit.result()) for unit in units] == [1, 1]

    for aggregate_id, versions in ((alone, [1]), (read, [1]), (grouped, [1, 2]), (tracked, [1, 2])):
        stored = recorder.select_events(aggregate_id)
        assert [e.originator_version for e in stored] == versions


def test_s21_psycopgs_prepared_reads_are_prepared_again_after_a_type_change(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """The reads psycopg prepares on the store's pool (eventsourcing's `select_events` and
    `select_notifications`, the views' and the relay's reads) each read the same rows
    after the change as before it, on every pooled connection: a refused statement's
    connection deallocates its statements and the read is retried (before, each such
    connection refused them for as long as it lived)."""
    recorder = recorder_of(fleets())
    aggregate_id = uuid.uuid4()
    recorder.insert_events([event(aggregate_id), event(aggregate_id, 2)])
    topic_rows, event_rows = PostgresTopicRows(recorder), PostgresRows(recorder)
    reads: list[Callable[[], object]] = [
        lambda: [(e.originator_version, e.topic) for e in recorder.select_events(aggregate_id)],
        lambda: [(n.id, n.topic) for n in recorder.select_notifications(start=1, limit=10)],
        lambda: [(r[0], r[3]) for r in topic_rows(0, 10**9, 10, ["tests:Event"])],
        lambda: [(r.position, r.topic) for r in event_rows(0, 10)],
    ]
    # more rounds than the pool holds connections: each read prepared on every one
    rounds = recorder.datastore.pool.max_size + 1
    before = [[read() for _ in range(rounds)] for read in reads]
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
        admin.execute(f"ALTER TABLE {table} ALTER COLUMN topic TYPE varchar(1000)")
    after = [[read() for _ in range(rounds)] for read in reads]
    assert after == before
    assert all(rows for rows in before)


def test_s21_another_unsupported_feature_is_raised_as_before(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """Only the result-type refusal becomes a retried OperationalError: another
    feature_not_supported error keeps its type, and the connection keeps working."""
    recorder = recorder_of(fleets())
    with pytest.raises(NotSupportedError), recorder.datastore.get_connection() as conn:
        # 0A000 raised by another function of the server's than the prepared
        # statement's check
        conn.execute("DO $$ BEGIN RAISE feature_not_supported USING MESSAGE = 'no'; END $$")
    with recorder.datastore.get_connection() as conn:
        assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}
