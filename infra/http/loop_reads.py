"""`LoopReads`: the views' positions and partners' stored versions read on the event loop,
one query for every page request waiting (issue 11, session 19).

The page's plain path needs, per request, the views' positions (the page cache's key) and
the caller's partner's last stored version (`authenticate` against the store). Read in a
worker thread (`in_plain_thread`), that was one thread hop, its GIL hand-offs and one round
trip per request. Here one AsyncConnection of the process's, on the serving loop, reads
them for a group: a request joins the group that has not been sent yet; while one query
is in flight the next requests wait for the next one, which is sent once that query has
answered, so the gathered requests share one round trip.

Why a group's answer is fresh enough for each of its requests: a request joins before its
group's query is sent, so the query's snapshot (autocommit, READ COMMITTED: the state
committed when the statement starts) holds every view state and every partner event
committed before the request arrived, as a query of the request's own would.

Failures are not answered here: a query that fails, or takes longer than QUERY_SECONDS,
fails its group (each request is then answered by the thread path, which reads through the
views' pool and gives the errors it always gave) and closes the connection; no query is
tried for RETRY_SECONDS after that, so a storage outage costs the thread path one failed
attempt at most every RETRY_SECONDS.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

QUERY_SECONDS = 2.0  # a query slower than this fails its group (the thread path answers)
RETRY_SECONDS = 1.0  # after a failure, the thread path only, for this long

Positions = tuple[int, ...]


class LoopReadError(Exception):
    """The group's query failed or is not tried now: answer the request another way."""


class LoopReads:
    """The views `names`' positions and partners' last stored versions in `events_table`
    (schema-qualified, quoted), by one query per group of waiting requests, on the
    running event loop (see the module's docstring). Used by one event loop at a time."""

    def __init__(self, conninfo: str, schema: str, names: Sequence[str], events_table: str):
        self._conninfo, self._schema, self._names = conninfo, schema, list(names)
        self._statement = (
            "SELECT view, position, NULL::uuid FROM pf_tracking WHERE view = ANY(%s)"
            " UNION ALL SELECT NULL, (SELECT max(e.originator_version) FROM "
            f"{events_table} e WHERE e.originator_id = ids.id), ids.id"
            " FROM unnest(%s::uuid[]) AS ids(id)"
        )
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[tuple[UUID, asyncio.Future[tuple[Positions, int | None]]]] = []
        self._sending = False
        self._sender: asyncio.Task[None] | None = None
        self._resting_until = 0.0
        self.queries = 0  # sent, for tests and probes
        self.failures = 0  # queries failed

    async def read(self, aggregate_id: UUID) -> tuple[Positions, int | None]:
        """The views' positions and `aggregate_id`'s last stored version (None: no events),
        read after this call began; LoopReadError when the group's query failed."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # another loop (a test's client): its own connection
            self._drop()
            self._loop, self._waiting, self._sending = loop, [], False
        if time.monotonic() < self._resting_until:
            raise LoopReadError("resting after a failed query")
        answer: asyncio.Future[tuple[Positions, int | None]] = loop.create_future()
        self._waiting.append((aggregate_id, answer))
        if not self._sending:
            self._sending = True
            self._sender = loop.create_task(self._send_groups())  # kept: not collected
        return await answer

    async def _send_groups(self) -> None:
        group: list[tuple[UUID, asyncio.Future[tuple[Positions, int | None]]]] = []
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                if time.monotonic() < self._resting_until:  # joined while a query failed:
                    _fail(group, LoopReadError("resting after a failed query"))  # no retry
                    continue
                try:
                    positions, versions = await self._bounded(
                        {aggregate_id for aggregate_id, _ in group}
                    )
                except Exception as error:  # every waiter answers another way
                    self.failures += 1
                    self._failed()
                    _fail(group, LoopReadError(f"{type(error).__name__}: {error}"))
                    continue
                for aggregate_id, answer in group:
                    if not answer.done():
                        answer.set_result((positions, versions.get(aggregate_id)))
        finally:  # cancelled (the loop ends): no request is left waiting for an answer
            self._sending = False
            _fail([*group, *self._waiting], LoopReadError("the group was not read"))
            self._waiting = []

    async def _bounded(self, ids: set[UUID]) -> tuple[Positions, dict[UUID, int | None]]:
        """`_query(ids)`'s answer, or TimeoutError after QUERY_SECONDS. Not `wait_for`: it
        waits for the cancelled query to end, and psycopg's cancellation of a query opens a
        connection to send the cancel (up to 5 s) then waits for the query's end (up to 5 s
        more), so a server that stops answering held the group ~10 s past the bound
        (session 19's attack). The late query is left to end in the background on the
        connection it holds, closed when it ends; the next query opens another."""
        query = asyncio.get_running_loop().create_task(self._query(ids))
        try:
            done, _ = await asyncio.wait({query}, timeout=QUERY_SECONDS)
        except asyncio.CancelledError:  # the loop ends: the query with it
            query.cancel()
            raise
        if not done:
            conn, self._conn = self._conn, None  # the late query's, not to be used again
            query.cancel()
            query.add_done_callback(lambda task: _ended(task, conn))
            raise TimeoutError(f"no answer within {QUERY_SECONDS:g} s")
        return query.result()

    async def _query(self, ids: set[UUID]) -> tuple[Positions, dict[UUID, int | None]]:
        conn = self._conn
        if conn is None or conn.closed:
            conn = self._conn = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True
            )
            # statement_timeout: a query its client left (timed out, the loop ended) is
            # ended by the server too, not left waiting on a lock (session 19's attack).
            settings = sql.SQL("SET search_path TO {}; SET statement_timeout TO {}").format(
                sql.Identifier(self._schema), sql.Literal(max(1, int(QUERY_SECONDS * 1000)))
            )
            await conn.execute(settings)
        self.queries += 1
        cursor = await conn.execute(self._statement, (self._names, list(ids)))
        rows = await cursor.fetchall()
        found = {str(row[0]): int(row[1]) for row in rows if row[0] is not None}
        versions = {
            row[2]: None if row[1] is None else int(row[1]) for row in rows if row[0] is None
        }
        return tuple(found.get(name, 0) for name in self._names), versions

    def close(self) -> None:
        """Close the connection (the next read opens another)."""
        self._drop()

    def _failed(self) -> None:
        self._resting_until = time.monotonic() + RETRY_SECONDS
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            conn.pgconn.finish()  # no round trip: the server sees the socket close


def _ended(task: asyncio.Task[Any], conn: psycopg.AsyncConnection[Any] | None) -> None:
    """A late query's end: its outcome taken (nothing logged), its connection closed."""
    if not task.cancelled():
        task.exception()
    if conn is not None and not conn.closed:
        conn.pgconn.finish()


def _fail(group: Sequence[tuple[UUID, asyncio.Future[Any]]], failure: LoopReadError) -> None:
    for _, answer in group:
        if not answer.done():
            answer.set_exception(failure)
