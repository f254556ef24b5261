"""Session 16 attacked (issue 11): `ViewDB.read()`'s autocommit connections on PostgreSQL when
the server kills them or cancels their query mid-read.

A read runs on a pooled connection in autocommit; the view runner's batches run on the same
pool in transactions, where a failure must leave nothing. Whatever happens to a read (its
backend terminated, its statement cancelled), no later transaction may run in autocommit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import psycopg
import pytest

from infra.bootstrap import build_view_db, storage_ready
from infra.settings import Settings
from infra.storage.viewdb import PostgresViewDB, ViewDB


@pytest.fixture
def pg_db(postgres_settings: Settings) -> Iterator[ViewDB]:
    """A view database in a PostgreSQL schema of this test's own."""
    with storage_ready(postgres_settings.storage):
        view_db = build_view_db(postgres_settings)
    yield view_db
    view_db.close()


def _admin(db: ViewDB) -> Any:
    """A connection of its own to the view database's server, outside the pool."""
    assert isinstance(db, PostgresViewDB)
    conninfo = db._pool.conninfo
    assert isinstance(conninfo, str)
    return psycopg.connect(conninfo, autocommit=True)


def _insert_then_fail(db: ViewDB, n: int) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO s16 VALUES (?)", (n,))
        tx.query("SELECT 1")  # sends the buffered insert
        raise RuntimeError("undo")


def _killed_read(db: ViewDB, admin: Any) -> None:
    with db.read() as tx:
        (pid,) = tx.query("SELECT pg_backend_pid()")[0]
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        tx.query("SELECT count(*) FROM s16")


def _cancelled_read(db: ViewDB) -> None:
    with db.read() as tx:
        tx.query("SELECT set_config('statement_timeout', '50', false)")
        tx.query("SELECT pg_sleep(1)")


def _failed_transactions_leave_nothing(db: ViewDB, times: int) -> None:
    """`times` transactions that write and then fail (more than the pool holds, so every
    pooled connection runs one): none of their rows may stay."""
    for n in range(times):
        with pytest.raises(RuntimeError, match="undo"):
            _insert_then_fail(db, n)
    with db.transaction() as tx:
        assert tx.query("SELECT count(*) FROM s16") == [(0,)]
    assert isinstance(db, PostgresViewDB)
    pool = db._pool
    with ExitStack() as taken:  # every connection the pool holds: none in autocommit
        conns = [taken.enter_context(pool.connection()) for _ in range(pool.max_size)]
        assert [conn.autocommit for conn in conns] == [False] * pool.max_size


def test_session16_a_read_whose_backend_is_killed_leaves_no_autocommit_behind(
    pg_db: ViewDB,
) -> None:
    """The server terminates a read's connection between two of its queries: the read fails,
    and every later transaction on the pool is a transaction again."""
    with pg_db.transaction() as tx:
        tx.execute("CREATE TABLE s16 (k INTEGER PRIMARY KEY)")
    with _admin(pg_db) as admin:
        for _ in range(3):
            with pytest.raises(psycopg.OperationalError):
                _killed_read(pg_db, admin)
    _failed_transactions_leave_nothing(pg_db, 8)
    with pg_db.read() as tx:
        assert tx.query("SELECT count(*) FROM s16") == [(0,)]


def test_session16_a_read_killed_after_its_last_query_leaves_no_autocommit_behind(
    pg_db: ViewDB,
) -> None:
    """The backend dies after the read's last query, unnoticed by the client: the read
    succeeds, the connection is replaced when next taken, transactions stay transactions."""
    with pg_db.transaction() as tx:
        tx.execute("CREATE TABLE s16 (k INTEGER PRIMARY KEY)")
    with _admin(pg_db) as admin, pg_db.read() as tx:
        (pid,) = tx.query("SELECT pg_backend_pid()")[0]
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    _failed_transactions_leave_nothing(pg_db, 8)


def test_session16_a_cancelled_read_leaves_no_autocommit_behind(pg_db: ViewDB) -> None:
    """A read's statement cancelled by the server (statement_timeout): the read fails, the
    pooled connection is back in transactions."""
    with pg_db.transaction() as tx:
        tx.execute("CREATE TABLE s16 (k INTEGER PRIMARY KEY)")
    for _ in range(3):
        with pytest.raises(psycopg.errors.QueryCanceled):
            _cancelled_read(pg_db)
    for _ in range(4):  # the test's own session setting, off again
        with pg_db.read() as tx:
            tx.query("SELECT set_config('statement_timeout', '0', false)")
    _failed_transactions_leave_nothing(pg_db, 8)
