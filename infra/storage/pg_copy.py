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

import struct
from collections.abc import Mapping, Sequence
from contextlib import ExitStack, suppress
from typing import Any, Protocol
from uuid import UUID

import psycopg.errors
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

# Encoded rows are sent in chunks of about this many bytes (psycopg's own write_row sends
# 32 KiB blocks; larger ones mean fewer calls into libpq, and the server still gets the
# first rows while the command makes the next).
CHUNK_BYTES = 128 * 1024
# PostgreSQL's binary COPY format (the COPY page of its manual): the signature, 32 bits of
# flags and a header extension of length 0; each row's field count and fields, each field
# its length (int32) and bytes; the trailer (a field count of -1).
BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
BINARY_TRAILER = b"\xff\xff"
# A row's start (BinaryRows, a struct per topic): 5 fields; originator_id (16 bytes:
# uuid); originator_version (8: int8); topic (its length and UTF-8); the state's length.
# A row's end: the notification id (8 bytes: int8).
_ROW_END = struct.Struct(">iq").pack


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
        # Rows are encoded here when ids are UUIDs (binary uuid: their 16 bytes), else
        # by psycopg's write_row (text ids).
        self.encodes_rows = recorder.datastore.originator_id_type == "uuid"
        self.stale = sql.SQL(
            "SELECT r.id FROM unnest(%b::{}[], %b::bigint[]) AS r(id, version)"
            " WHERE EXISTS (SELECT FROM {} s WHERE s.originator_id = r.id"
            " AND s.originator_version > r.version) LIMIT 1"
        ).format(sql.Identifier(recorder.datastore.originator_id_type), qualified)
        # Once the sequence's name is known: reserve a block of ids; move to the last.
        self.reserve: sql.Composed | None = None
        self.settle: sql.Composed | None = None


def _statements(recorder: PostgresProcessRecorder) -> CopyStatements:
    """The recorder's statements, made once and kept on it (session 17: a module dict keyed
    by `id(recorder)` gave a recorder made at a freed one's address, of another schema, the
    freed one's table)."""
    found: CopyStatements | None = vars(recorder).get("_copy_statements")
    if found is None:
        found = recorder._copy_statements = CopyStatements(recorder)  # type: ignore[attr-defined]
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
        _open(recorder, curs, tracking)
        _check_read_versions(curs, statements, read_versions)
        first = _reserve(curs, statements, count)
        last = first + count - 1
        with curs.copy(statements.copy) as copy:
            rows = _rows(copy, statements)
            add = rows.add
            for offset, event in enumerate(stored_events, first):
                add(event, offset)
            rows.end()
    return list(range(first, last + 1))


class Rows(Protocol):
    """Where a COPY's rows go: `add(event, notification_id)` each, then `end()` once."""

    def add(self, event: StoredEvent, notification_id: int) -> None: ...

    def end(self) -> None: ...


class BinaryRows:
    """Stored events as binary COPY rows (originator_id uuid, originator_version int8,
    topic text, state bytea, notification_id int8), encoded into a buffer and sent with
    `copy.write` in chunks of CHUNK_BYTES (session 18: a third of write_row's time, which
    formats each value through its psycopg dumper, the uuid's in Python). The bytes are
    those write_row sends for the same values (tests/unit/test_issue_11_fewer_steps.py;
    tests/integration/test_issue_11_fewer_steps_rows.py compares the stored rows). The
    signature goes with the first chunk, the trailer with the last (`end`): psycopg adds
    neither to data given to `write`."""

    def __init__(self, copy: Any) -> None:
        self._write = copy.write
        self._buffer = bytearray(BINARY_SIGNATURE)
        # Per topic: the struct of a row's fields up to the state's length, its topic's
        # field in it (session 18: one pack per row instead of three), the topic's length
        # and UTF-8 bytes.
        self._heads: dict[str, tuple[Any, int, bytes]] = {}

    def add(self, event: StoredEvent, notification_id: int) -> None:
        """Encode one row (raises as psycopg would on a value out of its column's range:
        struct.error, or AttributeError for an id that is no UUID); sent when a chunk fills."""
        head = self._heads.get(event.topic)
        if head is None:
            encoded = event.topic.encode()
            head = self._heads[event.topic] = (
                struct.Struct(f">hi16siqi{len(encoded)}si").pack,
                len(encoded),
                encoded,
            )
        pack, topic_length, topic = head
        state = event.state
        originator_id: UUID = event.originator_id  # type: ignore[assignment]  # uuid ids
        # The row's start, all but the state's bytes and the notification id, in one pack
        # (UUID.bytes is int.to_bytes(16) behind a property: called directly).
        start = pack(
            5,
            16,
            originator_id.int.to_bytes(16),
            8,
            event.originator_version,
            topic_length,
            topic,
            len(state),
        )
        buffer = self._buffer
        buffer += start
        buffer += state
        buffer += _ROW_END(8, notification_id)
        if len(buffer) >= CHUNK_BYTES:
            self._buffer = bytearray()
            self._write(buffer)

    def end(self) -> None:
        """Send the rows still buffered and the trailer (before the COPY ends)."""
        buffer, self._buffer = self._buffer, bytearray()
        buffer += BINARY_TRAILER
        self._write(buffer)


class RowsByPsycopg:
    """Rows given to psycopg's `write_row` (text originator ids)."""

    def __init__(self, copy: Any) -> None:
        self._write_row = copy.write_row

    def add(self, event: StoredEvent, notification_id: int) -> None:
        """Send one row (psycopg buffers it)."""
        self._write_row(
            (
                event.originator_id,
                event.originator_version,
                event.topic,
                event.state,
                notification_id,
            )
        )

    def end(self) -> None:
        """Nothing: psycopg ends the rows itself."""


def _rows(copy: Any, statements: CopyStatements) -> Rows:
    """The COPY's rows, encoded here where the ids are UUIDs."""
    if statements.encodes_rows:
        return BinaryRows(copy)
    copy.set_types(statements.types)
    return RowsByPsycopg(copy)


class CopyStream:
    """Stored events streamed into the events table by binary COPY while a command still
    makes them (issue 11, session 17): the server inserts the first rows while Python
    checks and encodes the next ones, where `insert_by_copy` waits for the whole list.

    The same transaction and guarantees as `insert_by_copy`: the tracking record first,
    the lock (`SET LOCAL lock_timeout`, EXCLUSIVE, held to COMMIT: notification ids in
    commit order), NOTIFY, the read-version check (under the lock, at `finish`), and the
    notification ids known without RETURNING: the first is taken with `nextval` under the
    lock, rows carry `first + offset`, `finish` moves the sequence to the last. The trade:
    the lock is held from the first row to COMMIT, so for as long as the command takes to
    make its rows (about 1 s per 100,000 e2Open reports) instead of the COPY's own time.

    Use: `CopyStream(recorder, tracking)`, then `write(event)` as events are made, then
    `finish(rest, read_versions)` (their notification ids, first to last) or `abort()`.
    An error the client meets (the lock not granted, a lost connection) ends the stream at
    once, rolled back, and sets `failed`; `finish` then returns None and the caller saves by
    the ordinary path, which raises what that error means. An error of the server's while
    it takes the rows (a unique violation: an event version stored already) reaches the
    client only when the COPY ends (libpq reads nothing while it sends), so the rows go on
    to the end meanwhile and the lock stays held; `finish` then raises IntegrityError (the
    ordinary insert would meet the same row), as it does when an aggregate of
    `read_versions` changed. Nothing of a stream that did not commit is stored.
    """

    def __init__(self, recorder: PostgresProcessRecorder, tracking: Tracking | None) -> None:
        self.failed: BaseException | None = None
        self.ended = False
        self.written = 0
        self._statements = _statements(recorder)
        self._stack = ExitStack()
        self._copy: Any = None  # psycopg's Copy context manager, while the COPY is open
        try:
            conn = self._stack.enter_context(recorder.datastore.get_connection())
            self._stack.enter_context(conn.transaction())
            curs = self._curs = self._stack.enter_context(conn.cursor())
            _open(recorder, curs, tracking)
            self.first = _reserve(curs, self._statements, 1)
            self._copy = curs.copy(self._statements.copy)
            self._rows = _rows(self._copy.__enter__(), self._statements)
            self._add = self._rows.add
        except BaseException as error:
            self._fail(error)
            if not isinstance(error, Exception):
                raise

    def write(self, event: StoredEvent) -> None:
        """Send one stored event (buffered, sent in chunks); a no-op once failed."""
        if self.failed is not None:
            return
        try:
            self._add(event, self.first + self.written)
        except BaseException as error:
            self._fail(error)
            if not isinstance(error, Exception):
                raise
            return
        self.written += 1

    def finish(
        self, rest: Sequence[StoredEvent], read_versions: Mapping[UUID, int] | None = None
    ) -> list[int] | None:
        """Write `rest`, end the COPY, check `read_versions`, commit: the notification ids of
        every event written, in order; None when the stream failed (`failed` says why;
        nothing stored). Raises IntegrityError when an event version was stored already or
        an aggregate read changed (nothing stored either)."""
        for event in rest:
            self.write(event)
        if self.failed is not None:
            return None
        self.ended = True
        try:
            self._rows.end()  # the last rows and the trailer
            copy, self._copy = self._copy, None
            copy.__exit__(None, None, None)  # ends the COPY: the server's errors come here
            curs = self._curs
            _check_read_versions(curs, self._statements, read_versions)
            last = self.first + self.written - 1
            assert self._statements.settle is not None  # set by _reserve
            if self.written:  # else the one id reserved stays unused, as after a rollback
                curs.execute(self._statements.settle, (last,))
        except psycopg.errors.UniqueViolation as error:
            # An event version stored already (a PC landed before, another writer first):
            # the ordinary insert would meet the same row, so this is the conflict itself.
            self._fail(error)
            raise IntegrityError(str(error)) from error
        except BaseException as error:
            self._fail(error)
            if isinstance(error, IntegrityError) or not isinstance(error, Exception):
                raise
            return None
        try:
            self._stack.close()  # COMMIT, the connection back to the pool
        except BaseException as error:
            self.failed = error
            if not isinstance(error, Exception):
                raise
            return None
        return list(range(self.first, last + 1))

    def abort(self) -> None:
        """Roll back whatever was written (nothing is stored); a no-op once ended."""
        if not self.ended:
            self._fail(StreamAbortedError("the command ended without saving"))

    def _fail(self, error: BaseException) -> None:
        """End the stream: abort the COPY, roll back, give the connection back."""
        self.failed = error
        self.ended = True
        stack, self._stack = self._stack, ExitStack()
        copy, self._copy = self._copy, None
        # Errors ending a failed COPY and rolling back are dropped: `failed` keeps the cause.
        with suppress(Exception):
            if copy is not None:
                copy.__exit__(type(error), error, error.__traceback__)
        with suppress(Exception):
            stack.__exit__(type(error), error, error.__traceback__)


class StreamAbortedError(Exception):
    """The command ended without saving what it streamed."""


def _open(recorder: PostgresProcessRecorder, curs: Any, tracking: Tracking | None) -> None:
    """A COPY's transaction before its rows, in the stock recorder's order: the tracking
    record, `SET LOCAL lock_timeout` and the EXCLUSIVE table lock, NOTIFY."""
    if tracking is not None:
        recorder._insert_tracking(curs, tracking=tracking)
    recorder._lock_table(curs)
    recorder._notify_channel(curs)


def _check_read_versions(
    curs: Any, statements: CopyStatements, read_versions: Mapping[UUID, int] | None
) -> None:
    """Under the lock: IntegrityError when an aggregate read has a later event."""
    if read_versions:
        found = curs.execute(
            statements.stale, (list(read_versions), list(read_versions.values()))
        ).fetchone()
        if found is not None:
            raise IntegrityError(f"aggregate {found} changed since the command read it")


def _reserve(curs: Any, statements: CopyStatements, count: int) -> int:
    """Under the table lock: reserve `count` notification ids; the first of them."""
    if statements.reserve is None:
        row = curs.execute(statements.sequence).fetchone()
        assert row is not None
        name = str(next(iter(row.values())))
        statements.reserve = sql.SQL("SELECT setval({0}, nextval({0}) + %s - 1)").format(
            sql.Literal(name)
        )
        statements.settle = sql.SQL("SELECT setval({0}, %s)").format(sql.Literal(name))
    row = curs.execute(statements.reserve, (count,)).fetchone()
    assert row is not None
    return int(next(iter(row.values()))) - count + 1
