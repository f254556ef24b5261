"""Read-model databases: one small interface over SQLite and PostgreSQL.

Views write portable SQL with `?` placeholders; the PostgreSQL adapter turns them into
`%s`. Every write happens inside `transaction()`, which is also where tracking is kept,
so a view's rows and its position commit together.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from psycopg import sql
from psycopg_pool import ConnectionPool

from projections.base import Params, Tx


class ViewDB(Protocol):
    """Where read models live."""

    kind: str

    def transaction(self) -> Any:
        """A context manager yielding a Tx; commits on success, rolls back on error."""

    def close(self) -> None:
        """Release connections."""


class _SQLiteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, statement: str, params: Params = ()) -> None:
        self._conn.execute(statement, tuple(params))

    def executemany(self, statement: str, rows: Iterable[Params]) -> None:
        self._conn.executemany(statement, (tuple(r) for r in rows))

    def query(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(statement, tuple(params)).fetchall())


class SQLiteViewDB:
    """Views in a SQLite file (or in memory for unit tests); one connection, serialised."""

    kind = "sqlite"

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Serialised: SQLite has one writer; readers share the same connection here."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def _pg(statement: str) -> str:
    # Views write `?` placeholders and never a literal `?` or `%` in SQL text.
    return statement.replace("?", "%s")


class _PostgresTx:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, statement: str, params: Params = ()) -> None:
        self._cursor.execute(_pg(statement), tuple(params))

    def executemany(self, statement: str, rows: Iterable[Params]) -> None:
        self._cursor.executemany(_pg(statement), [tuple(r) for r in rows])

    def query(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(_pg(statement), tuple(params))
        return list(self._cursor.fetchall())


class PostgresViewDB:
    """Views in a PostgreSQL schema, through a small connection pool."""

    kind = "postgres"

    def __init__(self, conninfo: str, schema: str, max_size: int = 4) -> None:
        search_path = sql.SQL("SET search_path TO {}").format(sql.Identifier(schema))

        def configure(conn: Any) -> None:
            conn.execute(search_path)
            conn.commit()

        self._pool = ConnectionPool(
            conninfo, min_size=1, max_size=max_size, configure=configure, open=True
        )

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A pooled connection in one transaction."""
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield _PostgresTx(cursor)

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()
