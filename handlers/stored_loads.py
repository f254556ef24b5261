"""One round trip per load: an aggregate's latest snapshot and the events after it (issue 11).

The stock repository asks the store twice per aggregate: for the latest snapshot (which
finds nothing for most aggregates, younger than the snapshot interval) and then for the
events after it. `select_latest` asks once, for any number of aggregates:

- PostgreSQL: one statement over `unnest(ids)`, a lateral index scan for each id's latest
  snapshot and one for the events after it (or all of them), in one MVCC snapshot, so the
  snapshot and its events are consistent;
- SQLite: one statement per id in one read transaction (in-process, no network);
- anything else (the in-memory POPO store, a store whose snapshots live elsewhere): the two
  stock calls per id.

Shapes: `select_latest(events, snapshots, ids)` returns `{id: Latest}` for the ids that have
a snapshot or an event; an id with neither is absent (the aggregate does not exist).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier


@dataclass
class Latest:
    """One aggregate as stored: its latest snapshot (None if it has none) and the events
    after that snapshot (all its events without one), oldest first."""

    snapshot: StoredEvent | None = None
    events: list[StoredEvent] = field(default_factory=list)


def select_latest(
    events: AggregateRecorder, snapshots: AggregateRecorder | None, ids: Sequence[UUID]
) -> dict[UUID, Latest]:
    """The stored state of each aggregate in `ids`: PostgreSQL in one round trip, SQLite in
    one statement per id, other stores with the stock calls (see the module's docstring)."""
    if not ids:
        return {}
    if isinstance(events, PostgresAggregateRecorder) and _same_store(
        PostgresAggregateRecorder, events, snapshots
    ):
        found: dict[UUID, Latest] = _postgres(events, snapshots, ids)
        return found
    if isinstance(events, SQLiteAggregateRecorder) and _same_store(
        SQLiteAggregateRecorder, events, snapshots
    ):
        return _sqlite(events, snapshots, ids)
    return _stock(events, snapshots, ids)


def _same_store(kind: type, events: Any, snapshots: AggregateRecorder | None) -> bool:
    """The snapshots are in a table of the same database (or there are none)."""
    return snapshots is None or (
        isinstance(snapshots, kind) and getattr(snapshots, "datastore", None) is events.datastore
    )


def _stock(
    events: AggregateRecorder, snapshots: AggregateRecorder | None, ids: Sequence[UUID]
) -> dict[UUID, Latest]:
    found: dict[UUID, Latest] = {}
    for aggregate_id in dict.fromkeys(ids):
        snapshot = None
        if snapshots is not None:
            latest = snapshots.select_events(aggregate_id, desc=True, limit=1)
            snapshot = latest[0] if latest else None
        after = None if snapshot is None else snapshot.originator_version
        stored = list(events.select_events(aggregate_id, gt=after))
        if snapshot is not None or stored:
            found[aggregate_id] = Latest(snapshot, stored)
    return found


# --- PostgreSQL ---------------------------------------------------------------------------

_PG_WITH_SNAPSHOTS = """
WITH ids AS ({ids}),
latest AS (
    SELECT s.originator_id, s.originator_version, s.topic, s.state
    FROM ids CROSS JOIN LATERAL (
        SELECT originator_id, originator_version, topic, state FROM {schema}.{snapshots}
        WHERE originator_id = ids.id ORDER BY originator_version DESC LIMIT 1
    ) AS s
)
SELECT true AS is_snapshot, originator_id, originator_version, topic, state FROM latest
UNION ALL
SELECT false, e.originator_id, e.originator_version, e.topic, e.state
FROM ids LEFT JOIN latest ON latest.originator_id = ids.id
CROSS JOIN LATERAL (
    SELECT originator_id, originator_version, topic, state FROM {schema}.{events}
    WHERE originator_id = ids.id
    AND originator_version > COALESCE(latest.originator_version, 0)
    ORDER BY originator_version
) AS e
"""

_PG_EVENTS_ONLY = """
SELECT false AS is_snapshot, originator_id, originator_version, topic, state
FROM {schema}.{events} WHERE {ids_match}
ORDER BY originator_id, originator_version
"""

# The ids as an array (any number of them), or one id alone. A load of one id (a cache
# miss: a transfer's PC) has its own statement: PostgreSQL plans the array's statement
# afresh on every execution (a custom plan: a constant array is estimated at its length,
# the generic plan at ten rows, so the generic one never looks as cheap), about 120 us of
# the server's CPU of a 150 us load; the one-id statement's generic plan costs what a
# custom one does, so after five executions it is kept (session 19).
_IDS = {False: "SELECT DISTINCT unnest(%s::{id_type}[]) AS id", True: "SELECT %s::{id_type} AS id"}
_IDS_MATCH = {False: "originator_id = ANY(%s::{id_type}[])", True: "originator_id = %s::{id_type}"}

# Rendered once to bytes: psycopg renders a Composed again on every execute (a third of a
# load's client CPU; session 17). Identifiers only, so no connection is needed to render.
_PG_STATEMENTS: dict[tuple[str, str, str | None, str, bool], bytes] = {}


def _pg_statement(events: PostgresAggregateRecorder, snapshots: Any, one: bool = False) -> bytes:
    """The load's statement over an array of ids, or over one id (`one`)."""
    store = events.datastore
    snapshot_table = None if snapshots is None else snapshots.events_table_name
    key = (store.schema, events.events_table_name, snapshot_table, store.originator_id_type, one)
    statement = _PG_STATEMENTS.get(key)
    if statement is None:
        text = _PG_EVENTS_ONLY if snapshot_table is None else _PG_WITH_SNAPSHOTS
        id_type = Identifier(store.originator_id_type)
        composed = SQL(text).format(
            schema=Identifier(store.schema),
            events=Identifier(events.events_table_name),
            snapshots=Identifier(snapshot_table or ""),
            ids=SQL(_IDS[one]).format(id_type=id_type),
            ids_match=SQL(_IDS_MATCH[one]).format(id_type=id_type),
            id_type=id_type,
        )
        statement = _PG_STATEMENTS[key] = composed.as_bytes(None)
    return statement


# As the stock recorders' reads: a lost connection (a restarted server, a terminated
# backend) is retried on a fresh one, up to 10 times 0.2 s apart.
@retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
def _postgres(
    events: PostgresAggregateRecorder, snapshots: Any, ids: Sequence[UUID]
) -> dict[UUID, Latest]:
    one = len(ids) == 1
    statement = _pg_statement(events, snapshots, one)
    # A recorder that reads a load's rows on libpq directly (the fleet's,
    # infra/storage/pg_recorder.py: a third of a load's client CPU; session 18); None
    # when it cannot (ids that are not UUIDs).
    direct = getattr(events, "latest_rows", None)
    rows = None if direct is None else direct(statement, ids, one=one)
    if rows is not None:
        return _collect(rows, convert=None)
    with events.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
        curs.execute(statement, (ids[0] if one else list(ids),), prepare=True)
        return _collect(curs.fetchall(), convert=None)


# --- SQLite -------------------------------------------------------------------------------


def _sqlite(
    events: SQLiteAggregateRecorder, snapshots: Any, ids: Sequence[UUID]
) -> dict[UUID, Latest]:
    if snapshots is None:
        statement = (
            "SELECT 0 AS is_snapshot, originator_id, originator_version, topic, state "
            f"FROM {events.events_table_name} WHERE originator_id=? ORDER BY originator_version"
        )
    else:
        table, shots = events.events_table_name, snapshots.events_table_name
        statement = (
            "SELECT 1 AS is_snapshot, originator_id, originator_version, topic, state FROM "
            f"(SELECT * FROM {shots} WHERE originator_id=? "
            "ORDER BY originator_version DESC LIMIT 1) "
            "UNION ALL "
            "SELECT 0, originator_id, originator_version, topic, state "
            f"FROM {table} WHERE originator_id=? AND originator_version > COALESCE("
            f"(SELECT MAX(originator_version) FROM {shots} WHERE originator_id=?), 0)"
        )
    rows: list[Any] = []
    with events.datastore.transaction(commit=False) as cursor:
        for aggregate_id in dict.fromkeys(ids):
            key = aggregate_id.hex if isinstance(aggregate_id, UUID) else str(aggregate_id)
            cursor.execute(statement, [key] * statement.count("?"))
            rows.extend(cursor.fetchall())
    return _collect(rows, convert=events.convert_originator_id)


# --- both -----------------------------------------------------------------------------------


def _collect(rows: Sequence[Any], convert: Any) -> dict[UUID, Latest]:
    """Rows (is_snapshot, originator_id, originator_version, topic, state), by position."""
    found: dict[UUID, Latest] = {}
    for row in rows:
        originator_id = row[1] if convert is None else convert(row[1])
        state = row[4]
        stored = StoredEvent(
            originator_id=originator_id,
            originator_version=row[2],
            topic=row[3],
            state=state if isinstance(state, bytes) else bytes(state),
        )
        latest = found.get(originator_id)
        if latest is None:
            latest = found[originator_id] = Latest()
        if row[0]:
            latest.snapshot = stored
        else:
            latest.events.append(stored)
    for latest in found.values():  # each id's events oldest first, whatever the plan did
        latest.events.sort(key=lambda e: e.originator_version)
    return found


__all__ = ["Latest", "select_latest"]
