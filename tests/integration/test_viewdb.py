"""View databases: buffered, reordered and merged writes keep the meaning of the statements."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.bootstrap import build_view_db, storage_ready
from infra.settings import Settings
from infra.storage.tracking import TRACKING_DDL, read_positions, start_tracking, write_position
from infra.storage.viewdb import ReadOnlyError, ViewDB


@pytest.fixture
def db(stored_settings: Settings, tmp_path: Path) -> Iterator[ViewDB]:
    """A view database on PostgreSQL (own schema) or a SQLite file."""
    settings = stored_settings.model_copy(update={"views_sqlite_path": tmp_path / "v.sqlite3"})
    with storage_ready(settings.storage):
        view_db = build_view_db(settings)
    yield view_db
    view_db.close()


def test_statements_on_one_table_keep_their_order_around_other_tables(db: ViewDB) -> None:
    """Insert, delete and re-insert of one key in one transaction, interleaved with others."""
    with db.transaction() as tx:
        tx.execute("CREATE TABLE t1 (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
        tx.execute("CREATE INDEX t1_v ON t1 (v)")
        tx.execute("CREATE TABLE t2 (k TEXT PRIMARY KEY)")
        tx.execute("INSERT INTO t1 VALUES (?, ?)", ("a", 1))
        tx.execute("INSERT INTO t2 VALUES (?)", ("x",))
        tx.execute("DELETE FROM t1 WHERE k = ?", ("a",))
        tx.execute("INSERT INTO t2 VALUES (?)", ("y",))
        tx.execute("INSERT INTO t1 VALUES (?, ?)", ("a", 2))
        tx.execute("UPDATE t1 SET v = v + 10 WHERE k = ?", ("a",))
        assert tx.query("SELECT k, v FROM t1") == [("a", 12)]
        tx.execute("UPDATE t1 SET v = (SELECT count(*) FROM t2) WHERE k = ?", ("a",))
        tx.execute("INSERT INTO t2 VALUES (?)", ("z",))
    with db.transaction() as tx:
        assert tx.query("SELECT k, v FROM t1") == [("a", 2)]
        assert sorted(tx.query("SELECT k FROM t2")) == [("x",), ("y",), ("z",)]


def test_thousands_of_rows_in_one_transaction_all_arrive(db: ViewDB) -> None:
    """Many INSERTs of one statement (merged into multi-row statements on PostgreSQL)."""
    with db.transaction() as tx:
        tx.execute("CREATE TABLE t3 (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        tx.executemany("INSERT INTO t3 VALUES (?, ?)", [(n, f"v{n}") for n in range(2_500)])
    with db.transaction() as tx:
        assert tx.query("SELECT count(*), sum(k) FROM t3") == [(2_500, sum(range(2_500)))]


def test_a_failed_transaction_leaves_nothing(db: ViewDB) -> None:
    """Rows buffered before an error are never written."""
    with db.transaction() as tx:
        tx.execute("CREATE TABLE t4 (k TEXT PRIMARY KEY)")

    def insert_then_fail() -> None:
        with db.transaction() as tx:
            tx.execute("INSERT INTO t4 VALUES (?)", ("lost",))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        insert_then_fail()
    with db.transaction() as tx:
        assert tx.query("SELECT count(*) FROM t4") == [(0,)]


def test_r_con_4_a_stream_yields_every_row_in_order_and_leaves_the_tx_usable(db: ViewDB) -> None:
    """`Tx.stream` (the consent export's reader) gives the query's rows in its order, also
    after buffered writes of the same transaction; the transaction goes on after it."""
    with db.transaction() as tx:
        tx.execute("CREATE TABLE t6 (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        tx.executemany("INSERT INTO t6 VALUES (?, ?)", [(n, f"v{n}") for n in range(1_234)])
        streamed = list(tx.stream("SELECT k, v FROM t6 WHERE k >= ? ORDER BY k", (10,)))
        tx.execute("INSERT INTO t6 VALUES (?, ?)", (5_000, "after"))
        after = tx.query("SELECT count(*) FROM t6")
    assert streamed == [(n, f"v{n}") for n in range(10, 1_234)]
    assert after == [(1_235,)]


def test_r_con_4_on_postgresql_a_stream_reads_through_a_server_side_cursor(
    pg_db: ViewDB,
) -> None:
    """R-CON-4: the rows stay on the server until read (a named cursor, fetched in batches),
    so an export's memory does not grow with the history."""
    with pg_db.transaction() as tx:
        tx.execute("CREATE TABLE t7 (k INTEGER PRIMARY KEY)")
        tx.executemany("INSERT INTO t7 VALUES (?)", [(n,) for n in range(2_000)])
        rows = tx.stream("SELECT k FROM t7 ORDER BY k")
        first = next(rows)
        cursors = tx.query("SELECT count(*) FROM pg_cursors WHERE left(name, 10) = 'pf_stream_'")
        rest = list(rows)
    assert first == (0,)
    assert cursors == [(1,)]
    assert len(rest) == 1_999


def test_a_read_sees_what_is_committed_and_positions_come_in_one_query(db: ViewDB) -> None:
    """`read()` (autocommit on PostgreSQL) sees each committed write, and the positions of
    several views come back in the order asked, 0 for one not tracked."""
    with db.transaction() as tx:
        tx.execute(TRACKING_DDL)
        tx.execute("CREATE TABLE t8 (k INTEGER PRIMARY KEY)")
        start_tracking(tx, "a")
        start_tracking(tx, "b")
    with db.read() as tx:
        assert read_positions(tx, ["b", "a", "new"]) == (0, 0, 0)
    with db.transaction() as tx:
        write_position(tx, "b", 7)
        tx.execute("INSERT INTO t8 VALUES (1)")
    with db.read() as tx:
        assert read_positions(tx, ["a", "b"]) == (0, 7)
        assert tx.query("SELECT k FROM t8") == [(1,)]


def _write_in_read(db: ViewDB) -> None:
    with db.read() as tx:
        tx.execute("INSERT INTO t9 VALUES (1)")


def _failed_read(db: ViewDB) -> None:
    with db.read() as tx:
        tx.query("SELECT count(*) FROM t9")
        raise RuntimeError("boom")


def _failed_transaction(db: ViewDB) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO t9 VALUES (2)")
        tx.query("SELECT 1")  # sends the buffered insert
        raise RuntimeError("undo")


def test_on_postgresql_a_read_refuses_writes_and_leaves_the_pool_in_transactions(
    pg_db: ViewDB,
) -> None:
    """A write through `read()` is refused before it reaches the server; after a read (and
    after one that failed) the pooled connection runs transactions again: a failed
    transaction leaves nothing, as the view runner's batches need."""
    with pg_db.transaction() as tx:
        tx.execute("CREATE TABLE t9 (k INTEGER PRIMARY KEY)")
    with pytest.raises(ReadOnlyError, match="queries only"):
        _write_in_read(pg_db)
    with pytest.raises(ReadOnlyError, match="queries only, not COPY into t9"), pg_db.read() as tx:
        tx.copy("t9", [(1,)])
    with pytest.raises(RuntimeError, match="boom"):
        _failed_read(pg_db)
    with pytest.raises(RuntimeError, match="undo"):
        _failed_transaction(pg_db)
    with pg_db.read() as tx:
        assert tx.query("SELECT count(*) FROM t9") == [(0,)]
