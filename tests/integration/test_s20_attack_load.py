"""Session 20's attack on the cold load's read on libpq (infra/storage/pg_loads.py):
concurrent loads, prepared statements dropped by the server, a statement cancelled by
statement_timeout, a backend ended while it waits, a schema change after preparing, a
closed pool; each gives what psycopg's cursor (the old path) gave."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import OperationalError
from psycopg.rows import tuple_row

from handlers import PartnerFleet
from handlers.stored_loads import _pg_statement, select_latest
from infra.storage.pg_arrays import packed_uuid, use_packed_arrays
from infra.storage.pg_conn import STORE, application_name
from infra.storage.pg_loads import load_rows
from tests.conftest import POSTGRES_DSN
from tests.integration.test_session20_direct_load import by_cursor, ours_prepared, seeded_store

pytestmark = pytest.mark.postgres


def test_s20_attack_eight_threads_load_the_same_rows(fleets: Callable[[], PartnerFleet]) -> None:
    recorder, snapshots, ids = seeded_store(fleets())
    expected = select_latest(recorder, snapshots, ids)
    one = _pg_statement(recorder, snapshots, one=True)
    with recorder.datastore.get_connection() as conn:
        expected_one = [by_cursor(conn, one, i) for i in ids]
    failures: list[BaseException] = []

    def loads() -> None:
        try:
            for _ in range(15):
                assert select_latest(recorder, snapshots, ids) == expected
                assert [recorder.latest_rows(one, [i], one=True) for i in ids] == expected_one
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=loads) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures


def test_s20_attack_deallocate_all_on_the_server_is_prepared_again(
    fleets: Callable[[], PartnerFleet],
) -> None:
    recorder, snapshots, ids = seeded_store(fleets())
    one = _pg_statement(recorder, snapshots, one=True)
    many = _pg_statement(recorder, snapshots)
    with recorder.datastore.get_connection() as conn:
        expected = load_rows(conn, one, ids[:1], one=True)
        expected_many = load_rows(conn, many, ids, one=False)
        assert ours_prepared(conn)
        conn.execute("DEALLOCATE ALL")
        assert ours_prepared(conn) == set()
        assert load_rows(conn, many, ids, one=False) == expected_many
        assert load_rows(conn, one, ids[:1], one=True) == expected
        # psycopg's own prepared statement on the same connection still works after ours
        assert conn.execute("SELECT 1 AS one", prepare=True).fetchone() == {"one": 1}
        assert load_rows(conn, one, ids[:1], one=True) == expected


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("rows", call())
    except psycopg.Error as error:
        return (type(error), error.sqlstate)


def test_s20_attack_a_statement_cancelled_by_its_timeout_leaves_the_connection_usable(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """A lock held elsewhere and a statement_timeout: the direct read is cancelled with
    the error psycopg's cursor gets (QueryCanceled), the connection stays idle, the next
    read gives the rows."""
    recorder, snapshots, ids = seeded_store(fleets())
    one = _pg_statement(recorder, snapshots, one=True)
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    with recorder.datastore.get_connection() as conn:
        expected = load_rows(conn, one, ids[:1], one=True)
        conn.execute("SET statement_timeout = '300ms'")
        with psycopg.connect(POSTGRES_DSN) as locker:
            locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            mine = _outcome(lambda: load_rows(conn, one, ids[:1], one=True))
            theirs = _outcome(lambda: by_cursor(conn, one, ids[0]))
            locker.rollback()
        assert mine == theirs == (psycopg.errors.QueryCanceled, "57014")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert load_rows(conn, one, ids[:1], one=True) == expected
        conn.execute("RESET statement_timeout")


def test_s20_attack_a_backend_ended_while_its_load_waits_is_retried(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """The server ends the backend of a load blocked on a lock: the load fails over
    (eventsourcing's OperationalError past latest_rows, retried by `select_latest`'s
    caller as before) and the pool's next connection reads the rows."""
    recorder, snapshots, ids = seeded_store(fleets())
    one = _pg_statement(recorder, snapshots, one=True)
    expected = recorder.latest_rows(one, ids[:1], one=True)
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    name = application_name(STORE, recorder.datastore.schema)
    outcome: list[Any] = []

    def load() -> None:
        try:
            outcome.append(("rows", recorder.latest_rows(one, ids[:1], one=True)))
        except BaseException as error:
            outcome.append(error)

    with psycopg.connect(POSTGRES_DSN) as locker:
        locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        loader = threading.Thread(target=load)
        loader.start()
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
            for _ in range(200):
                waiting = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
                    " AND wait_event_type = 'Lock'",
                    (name,),
                ).fetchall()
                if waiting:
                    break
                time.sleep(0.05)
            assert waiting
            for (pid,) in waiting:
                admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
        loader.join(60)
        locker.rollback()
    (error,) = outcome
    assert isinstance(error, OperationalError)
    assert recorder.latest_rows(one, ids[:1], one=True) == expected


def _prepared_cursor(conn: psycopg.Connection[Any], statement: bytes, parameter: Any) -> Any:
    with conn.cursor(binary=True) as cursor:
        return cursor.execute(statement, (parameter,), prepare=True).fetchall()


def test_s20_attack_a_column_type_changed_after_preparing_reads_after_preparing_again(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """A schema change after the statements were prepared ("cached plan must not change
    result type", 0A000, refused by the server until the statement is prepared again):
    the direct read prepares its statements again and reads what an unprepared statement
    reads, each time (session 21; session 20's read failed as psycopg's prepared cursor
    can)."""
    recorder, snapshots, ids = seeded_store(fleets())
    one = _pg_statement(recorder, snapshots, one=True)
    many = _pg_statement(recorder, snapshots)
    # both tables the statement reads (events, snapshots): the result's column changes
    # type only when every branch of its UNION does
    tables = [f'"{r.datastore.schema}"."{r.events_table_name}"' for r in (recorder, snapshots) if r]
    with recorder.datastore.get_connection() as conn:
        assert load_rows(conn, one, ids[:1], one=True)
        assert load_rows(conn, many, ids, one=False)
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
            for table in tables:
                admin.execute(f"ALTER TABLE {table} ALTER COLUMN topic TYPE varchar(1000)")
        for _ in range(2):
            assert load_rows(conn, one, ids[:1], one=True) == by_cursor(conn, one, ids[0])
            packed = by_cursor_many(conn, many, ids)
            assert load_rows(conn, many, ids, one=False) == packed


def by_cursor_many(conn: psycopg.Connection[Any], statement: bytes, ids: list[Any]) -> Any:
    """The rows of the array form, read through a fresh (unprepared) psycopg cursor."""
    use_packed_arrays(conn)
    with conn.cursor(row_factory=tuple_row, binary=True) as cursor:
        return cursor.execute(statement, (packed_uuid(ids),)).fetchall()


def test_s20_attack_a_closed_pool_says_so_as_before(fleets: Callable[[], PartnerFleet]) -> None:
    recorder, snapshots, ids = seeded_store(fleets())
    one = _pg_statement(recorder, snapshots, one=True)
    recorder.datastore.pool.close()
    with pytest.raises(Exception, match="closed") as mine:
        recorder.latest_rows(one, ids[:1], one=True)
    with pytest.raises(Exception, match="closed") as theirs, recorder.datastore.get_connection():
        pass
    assert type(mine.value) is type(theirs.value)
    assert str(mine.value) == str(theirs.value)


def test_s20_attack_an_interrupt_mid_load_leaves_a_connection_that_reads_again(
    fleets: Callable[[], PartnerFleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyboardInterrupt while the direct read waits for its rows: it comes out as it
    would from psycopg's cursor (the query cancelled by psycopg's wait), the pool keeps
    a usable connection or replaces it, and the next load reads the same rows."""
    from psycopg import waiting

    recorder, snapshots, ids = seeded_store(fleets())
    one = _pg_statement(recorder, snapshots, one=True)
    expected = recorder.latest_rows(one, ids[:1], one=True)
    real = waiting.wait
    interrupts = [1]

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        if interrupts:
            interrupts.pop()
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(waiting, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        recorder.latest_rows(one, ids[:1], one=True)
    monkeypatch.setattr(waiting, "wait", real)
    for _ in range(3):  # whichever pooled connection comes next
        assert recorder.latest_rows(one, ids[:1], one=True) == expected
    with recorder.datastore.get_connection() as conn:
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
