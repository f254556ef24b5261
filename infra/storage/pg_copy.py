"""Large inserts of stored events by binary COPY, with the recorder's guarantees (issue 11).

An e2Open batch stores up to 100,000 events in one transaction. `INSERT ... SELECT FROM
unnest(...) RETURNING notification_id` parses four arrays and returns a row per event;
binary COPY streams the rows and returns nothing, about twice as fast on the server.
`insert_by_copy` keeps everything the recorder promises (FleetProcessRecorder, the stock
PostgresProcessRecorder's transaction):

- the tracking record first, in the same transaction (a policy's position, exactly once);
- `SET LOCAL lock_timeout` and the EXCLUSIVE table lock, held to COMMIT, so notification
  ids are in commit order (followers never skip an id committed late);
- NOTIFY on the events table's channel (the view runners wake up);
- the notification ids, for read-your-writes: reserved under the lock as one block
  (`setval(seq, nextval(seq) + n - 1)`) and written with the rows, in the rows' order, so
  they are known without RETURNING; a writer that bypassed the lock would collide on the
  unique index and fail loudly, never interleave;
- `read_versions` (aggregate id → the version a command read, as the save path's group
  commit takes them): checked under the lock; a later stored event of one refuses the
  whole insert (IntegrityError), so a command that read stale state retries;
- a second event of an aggregate version (another writer got there first, or a serial
  twice) fails the COPY with a unique violation, raised as eventsourcing's IntegrityError
  (a RecordConflictError: the command retries, as with INSERT).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    StoredEvent,
    Tracking,
)
from eventsourcing.postgres import PostgresProcessRecorder
from eventsourcing.utils import retry
from psycopg import sql

# From this many rows on, FleetProcessRecorder.insert_events uses COPY. Commands save a
# few rows, where the pipelined INSERT is one round trip and COPY needs several; an e2Open
# poll of Kafka is up to 5,000 rows. The threshold is a choice, not a measured crossover.
COPY_MIN_ROWS = 500


class CopyStatements:
    """The statements of one events table: reserve a block of ids, COPY the rows."""

    def __init__(self, recorder: PostgresProcessRecorder) -> None:
        schema, table = recorder.datastore.schema, recorder.events_table_name
        qualified = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        self.sequence = sql.SQL("SELECT pg_get_serial_sequence({}, 'notification_id')").format(
            sql.Literal(f'"{schema}"."{table}"')
        )
        self.copy = sql.SQL(
            "COPY {} (originator_id, originator_version, topic, state, notification_id)"
            " FROM STDIN (FORMAT BINARY)"
        ).format(qualified)
        self.types = [recorder.datastore.originator_id_type, "int8", "text", "bytea", "int8"]
        self.stale = sql.SQL(
            "SELECT r.id FROM unnest(%b::{}[], %b::bigint[]) AS r(id, version)"
            " WHERE EXISTS (SELECT FROM {} s WHERE s.originator_id = r.id"
            " AND s.originator_version > r.version) LIMIT 1"
        ).format(sql.Identifier(recorder.datastore.originator_id_type), qualified)
        self.reserve: sql.Composed | None = None  # once the sequence's name is known


_STATEMENTS: dict[int, CopyStatements] = {}


def _statements(recorder: PostgresProcessRecorder) -> CopyStatements:
    found = _STATEMENTS.get(id(recorder))
    if found is None:
        found = _STATEMENTS[id(recorder)] = CopyStatements(recorder)
    return found


@retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
def insert_by_copy(
    recorder: PostgresProcessRecorder,
    stored_events: Sequence[StoredEvent],
    tracking: Tracking | None = None,
    read_versions: Mapping[UUID, int] | None = None,
) -> list[int]:
    """Insert `stored_events` (and `tracking`) in one transaction by binary COPY; their
    notification ids, in order. Raises eventsourcing's IntegrityError (a RecordConflictError)
    when an aggregate version or the tracking record exists already or an aggregate of
    `read_versions` has a later event, its OperationalError
    when the table lock is not granted within the datastore's lock_timeout; nothing is
    stored then. Retried like the recorder's insert_events when the connection is lost
    before the commit."""
    count = len(stored_events)
    if count == 0:
        return []
    statements = _statements(recorder)
    with (
        recorder.datastore.get_connection() as conn,  # psycopg errors → eventsourcing's
        conn.transaction(),
        conn.cursor() as curs,
    ):
        if tracking is not None:
            recorder._insert_tracking(curs, tracking=tracking)
        recorder._lock_table(curs)
        recorder._notify_channel(curs)
        if read_versions:
            found = curs.execute(
                statements.stale, (list(read_versions), list(read_versions.values()))
            ).fetchone()
            if found is not None:
                raise IntegrityError(f"aggregate {found} changed since the command read it")
        if statements.reserve is None:
            row = curs.execute(statements.sequence).fetchone()
            assert row is not None
            name = str(next(iter(row.values())))
            statements.reserve = sql.SQL("SELECT setval({0}, nextval({0}) + %s - 1)").format(
                sql.Literal(name)
            )
        row = curs.execute(statements.reserve, (count,)).fetchone()
        assert row is not None
        last = int(next(iter(row.values())))
        first = last - count + 1
        with curs.copy(statements.copy) as copy:
            copy.set_types(statements.types)
            for offset, event in enumerate(stored_events):
                copy.write_row(
                    (
                        event.originator_id,
                        event.originator_version,
                        event.topic,
                        event.state,
                        first + offset,
                    )
                )
    return list(range(first, last + 1))
