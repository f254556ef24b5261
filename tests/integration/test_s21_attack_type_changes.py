"""Attack on session 21's recovery from a column type changed under the running service
(infra/storage/pg_conn.py `replan_after_type_changes`): the type changed again and again,
each pooled connection must read after every change, as after the first."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from handlers import PartnerFleet
from infra.follow.view_reads import PostgresTopicRows
from infra.storage.pg_conn import replan_after_type_changes
from tests.conftest import POSTGRES_DSN
from tests.integration.streams import event, recorder_of

pytestmark = pytest.mark.postgres


def test_s21_attack_reads_recover_after_every_one_of_many_type_changes(
    fleets: Callable[[], PartnerFleet],
) -> None:
    recorder = recorder_of(fleets())
    aggregate_id = uuid.uuid4()
    recorder.insert_events([event(aggregate_id), event(aggregate_id, 2)])
    topic_rows = PostgresTopicRows(recorder)
    reads: list[Callable[[], object]] = [
        lambda: [(e.originator_version, e.topic) for e in recorder.select_events(aggregate_id)],
        lambda: [(n.id, n.topic) for n in recorder.select_notifications(start=1, limit=10)],
        lambda: [(r[0], r[3]) for r in topic_rows(0, 10**9, 10, ["tests:Event"])],
    ]
    rounds = recorder.datastore.pool.max_size + 1
    before = [[read() for _ in range(rounds)] for read in reads]
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    for change, kind in enumerate(["varchar(1000)", "text"] * 4):
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
            admin.execute(f"ALTER TABLE {table} ALTER COLUMN topic TYPE {kind}")
        after = [[read() for _ in range(rounds)] for read in reads]
        assert after == before, f"change {change + 1} ({kind})"


class _OneConnection:
    """A datastore whose `get_connection` always gives the same connection (as a pool of
    one does), for `replan_after_type_changes` to wrap."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @contextmanager
    def get_connection(self) -> Iterator[psycopg.Connection[Any]]:
        yield self.conn


def test_s21_attack_a_second_type_change_after_one_met_in_a_transaction() -> None:
    """The first change met inside a transaction (its rollback made psycopg forget its
    statements, so the DEALLOCATE ALL that followed was one psycopg saw with nothing
    prepared and only counted), the second by a read in autocommit: psycopg must forget
    the statements the second DEALLOCATE ALL removed. Found: it kept them, and the read
    retried failed with 26000 'prepared statement "_pg3_0" does not exist' (not retried,
    and so on that connection for as long as it lived)."""
    table = f"s21_attack_{uuid.uuid4().hex}"
    query = f"SELECT a FROM {table}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
        admin.execute(f"CREATE TABLE {table} (a text)")
        admin.execute(f"INSERT INTO {table} VALUES ('x')")
        try:
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
                store = _OneConnection(conn)
                replan_after_type_changes(store)  # type: ignore[arg-type]

                def read(*, in_transaction: bool = False) -> list[Any]:
                    with store.get_connection() as c:
                        if in_transaction:
                            with c.transaction():
                                return c.execute(query, prepare=True).fetchall()
                        return c.execute(query, prepare=True).fetchall()

                assert read() == [("x",)]
                admin.execute(f"ALTER TABLE {table} ALTER COLUMN a TYPE varchar(100)")
                with pytest.raises(psycopg.OperationalError):
                    read(in_transaction=True)
                assert read() == [("x",)]  # prepared again
                admin.execute(f"ALTER TABLE {table} ALTER COLUMN a TYPE text")
                with pytest.raises(psycopg.OperationalError):
                    read()
                assert read() == [("x",)]  # prepared again, not 26000
                assert read(in_transaction=True) == [("x",)]
        finally:
            admin.execute(f"DROP TABLE {table}")
