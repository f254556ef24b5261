"""Read-model databases: one small interface over SQLite and PostgreSQL.

Views write portable SQL with `?` placeholders; the PostgreSQL adapter turns them into
`%s`. Every write happens inside `transaction()`, which is also where tracking is kept,
so a view's rows and its position commit together.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import count, groupby
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from projections.base import Params, Tx
from psycopg import sql
from psycopg_pool import ConnectionPool

from infra.storage.pg_conn import check_alive

STREAM_BATCH = 500  # rows fetched at a time by `stream`
POOL_TIMEOUT = 5.0  # seconds; Settings' default POSTGRES_CONNECT_TIMEOUT (eventsourcing's: 30)
_stream_names = count(1)


class ViewDB(Protocol):
    """Where read models live."""

    kind: str

    def transaction(self) -> Any:
        """A context manager yielding a Tx; commits on success, rolls back on error."""

    def read(self) -> Any:
        """A context manager yielding a Tx for queries only, each statement reading the
        latest committed state (as statements in a READ COMMITTED transaction do), without
        a transaction's BEGIN and COMMIT round trips where the database allows it."""

    def ddl(self) -> Any:
        """A transaction for creating tables: one process at a time, as they all start together."""

    def close(self) -> None:
        """Release connections."""


@runtime_checkable
class CopyingTx(Tx, Protocol):
    """A Tx that can also load whole rows in bulk (PostgreSQL's COPY)."""

    def copy(self, table: str, rows: Iterable[Sequence[Any]]) -> int:
        """Append `rows` (every column of `table`, in its column order; values text,
        integers or None) after the writes already given; returns how many were sent.

        Raises what the database raises (a duplicate key, a NOT NULL column given None);
        the transaction then fails whole, as one INSERT of the same rows would."""


class _SQLiteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, statement: str, params: Params = ()) -> None:
        self._conn.execute(statement, tuple(params))

    def executemany(self, statement: str, rows: Iterable[Params]) -> None:
        self._conn.executemany(statement, (tuple(r) for r in rows))

    def query(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(statement, tuple(params)).fetchall())

    def stream(self, statement: str, params: Params = ()) -> Iterator[tuple[Any, ...]]:
        # SQLite steps through the result as it is read: rows are never all in memory.
        cursor = self._conn.execute(statement, tuple(params))
        try:
            while rows := cursor.fetchmany(STREAM_BATCH):
                yield from rows
        finally:
            cursor.close()


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

    def read(self) -> Any:
        """Queries on the one connection: a transaction, as every use of it is serialised."""
        return self.transaction()

    def ddl(self) -> Any:
        """BEGIN IMMEDIATE already lets one writer in at a time, across processes too."""
        return self.transaction()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def _pg(statement: str) -> str:
    # Views write `?` placeholders and never a literal `?` or `%` in SQL text.
    return statement.replace("?", "%s")


Pending = list[tuple[str, tuple[Any, ...]]]
MULTI_ROW_LIMIT = 1_024  # rows per multi-row INSERT


class _PostgresTx:
    """Buffers writes and sends them in few statements: a query, or the end of the
    transaction, sends what is buffered first (see `flush`)."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self._pending: Pending = []

    def execute(self, statement: str, params: Params = ()) -> None:
        self._pending.append((statement, tuple(params)))

    def executemany(self, statement: str, rows: Iterable[Params]) -> None:
        self._pending.extend((statement, tuple(r)) for r in rows)

    def query(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        self.flush()
        self._cursor.execute(_pg(statement), tuple(params))
        return list(self._cursor.fetchall())

    def stream(self, statement: str, params: Params = ()) -> Iterator[tuple[Any, ...]]:
        """A server-side (named) cursor in this transaction, fetched STREAM_BATCH rows at a
        time, so the rows never sit in memory together, here or in the driver."""
        self.flush()
        connection = self._cursor.connection
        with connection.cursor(name=f"pf_stream_{next(_stream_names)}") as named:
            named.itersize = STREAM_BATCH
            named.execute(_pg(statement), tuple(params))
            yield from named

    def copy(self, table: str, rows: Iterable[Sequence[Any]]) -> int:
        """`COPY table FROM STDIN` of whole rows on this transaction's connection, after
        the writes buffered so far (sent first): see `CopyingTx.copy`."""
        self.flush()
        sent = 0
        with self._cursor.copy(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))) as copy:
            write = copy.write_row
            for sent, row in enumerate(rows, 1):  # noqa: B007 (counted in C; rows stream)
                write(row)
        return sent

    def flush(self) -> None:
        """Send buffered writes, pipelined, grouped by table and merged into multi-row INSERTs.

        Views write single-table statements that read no other table, so statements on
        different tables commute and each table's own statements keep their order. DDL and
        statements with subqueries are barriers nothing moves across.
        """
        pending, self._pending = self._pending, []
        if not pending:
            return
        with self._cursor.connection.pipeline():
            for segment in _segments(pending):
                for statement, rows in _runs(sorted(segment, key=lambda p: _table(p[0]))):
                    self._send(statement, rows)

    def _send(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        if not _mergeable(statement) or len(rows) == 1:
            self._cursor.executemany(_pg(statement), rows)
            return
        values = statement[statement.index("VALUES") + len("VALUES") :].strip()
        start = 0
        for size in _chunk_sizes(len(rows)):
            chunk = rows[start : start + size]
            start += size
            merged = statement.replace(values, ", ".join([values] * size))
            self._cursor.execute(_pg(merged), [v for row in chunk for v in row], prepare=True)


class ReadOnlyError(RuntimeError):
    """A write sent through `ViewDB.read()`, which is for queries only."""


class _ReadTx(_PostgresTx):
    """Queries on an autocommit connection; writes are refused, never buffered."""

    def execute(self, statement: str, params: Params = ()) -> None:
        raise ReadOnlyError(f"read() is for queries only, not {statement.split(maxsplit=1)[0]}")

    def executemany(self, statement: str, rows: Iterable[Params]) -> None:
        raise ReadOnlyError(f"read() is for queries only, not {statement.split(maxsplit=1)[0]}")

    def stream(self, statement: str, params: Params = ()) -> Iterator[tuple[Any, ...]]:
        raise ReadOnlyError("read() does not stream: a named cursor needs a transaction")

    def copy(self, table: str, rows: Iterable[Sequence[Any]]) -> int:
        raise ReadOnlyError(f"read() is for queries only, not COPY into {table}")


def _chunk_sizes(rows: int) -> Iterator[int]:
    # Powers of two only: few distinct statement texts, so parsing and plans are cached.
    while rows:
        size = min(MULTI_ROW_LIMIT, 1 << (rows.bit_length() - 1))
        yield size
        rows -= size


def _table(statement: str) -> str:
    words = statement.split()
    return words[2] if words[0] in ("INSERT", "DELETE") else words[1]


def _segments(pending: Pending) -> Iterator[Pending]:
    segment: Pending = []
    for item in pending:
        if _barrier(item[0]):
            yield segment
            yield [item]
            segment = []
        else:
            segment.append(item)
    yield segment


def _barrier(statement: str) -> bool:
    # DDL, and statements with subqueries (they read other tables), keep their place.
    return "SELECT" in statement or not statement.startswith(("INSERT", "DELETE", "UPDATE"))


def _runs(pending: Pending) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    for statement, group in groupby(pending, key=itemgetter(0)):
        yield statement, [params for _, params in group]


def _mergeable(statement: str) -> bool:
    # A plain INSERT … VALUES (…) can carry many rows; ON CONFLICT … DO UPDATE cannot
    # (one statement may not touch a row twice), so those go one row each, pipelined.
    return statement.startswith("INSERT INTO") and "ON CONFLICT" not in statement


class PostgresViewDB:
    """Views in a PostgreSQL schema, through a small connection pool."""

    kind = "postgres"

    def __init__(
        self, conninfo: str, schema: str, max_size: int = 4, timeout: float = POOL_TIMEOUT
    ) -> None:
        """`timeout`: seconds a reader or writer waits for a connection before PoolTimeout
        (an HTTP 503): the store's own pool waits as long (POSTGRES_CONNECT_TIMEOUT, see
        `pool_timeout`); psycopg_pool's 30 s kept a page waiting half a minute for its 503
        while PostgreSQL was down (session 18's found-not-fixed)."""
        search_path = sql.SQL("SET search_path TO {}").format(sql.Identifier(schema))

        def configure(conn: Any) -> None:
            # Page queries must be planned per call: a generic plan assumes an average
            # partner and scans all of a big partner's groups. Merged INSERTs still prepare.
            conn.prepare_threshold = None
            conn.execute(search_path)
            conn.commit()

        # A connection the server closed (restart, pg_terminate_backend) is replaced when
        # it is taken from the pool, before a reader or the runner meets it.
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            configure=configure,
            check=check_alive,
            open=True,
            timeout=timeout,
        )
        self.schema = schema
        self.conninfo = conninfo  # for a connection of its own on an event loop (LoopReads)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A pooled connection in one transaction."""
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            tx = _PostgresTx(cursor)
            yield tx
            tx.flush()

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A pooled connection in autocommit for queries: each statement reads the latest
        committed state, as it would inside a READ COMMITTED transaction, without BEGIN and
        COMMIT (two of a page's four round trips). A write is refused (ReadOnlyError)."""
        with self._pool.connection() as conn:
            conn.autocommit = True
            try:
                with conn.cursor() as cursor:
                    tx = _ReadTx(cursor)
                    yield tx
            finally:
                if not conn.closed and not conn.broken:
                    conn.autocommit = False  # the pool's other users expect transactions

    @contextmanager
    def ddl(self) -> Iterator[Tx]:
        """A transaction holding the schema's DDL lock (see `ddl_lock_key`)."""
        with self.transaction() as tx:
            tx.query("SELECT pg_advisory_xact_lock(hashtext(?))", (ddl_lock_key(self.schema),))
            yield tx

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()


def pool_timeout(env: Mapping[str, str]) -> float:
    """How long the views' pool waits for a connection: the store's POSTGRES_CONNECT_TIMEOUT
    (Settings' `postgres_connect_timeout`, written into the storage variables, which
    eventsourcing's pool waits too), so both pools give up together."""
    return float(env.get("POSTGRES_CONNECT_TIMEOUT") or POOL_TIMEOUT)


def ddl_lock_key(schema: str) -> str:
    """The advisory lock every partnerfleet process takes to create tables in `schema`.

    `CREATE … IF NOT EXISTS` is not safe against itself: two processes creating the same
    table or type at once can fail ("tuple concurrently updated", or a duplicate key in the
    catalog). Processes start together (compose, `--workers`), so DDL takes turns.
    """
    return f"partnerfleet:ddl:{schema}"
