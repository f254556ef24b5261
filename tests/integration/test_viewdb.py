"""View databases: buffered, reordered and merged writes keep the meaning of the statements."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.bootstrap import build_view_db, storage_ready
from infra.settings import Settings
from infra.storage.viewdb import ViewDB


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
