"""A rebuild's insert-only events written by PostgreSQL itself (issue 11, session 16).

Some handlers only insert one row made of the event's plain fields (All Customers' devices
and service events: `Device.Registered`, `Device.ReportedByE2Open`,
`Device.ServiceEventRecorded`, 46 % of its events in the benchmark's history; nothing in
the view updates or deletes those rows, so their place in the batch does not matter, and
what `finish_batch` would do with them a rebuild leaves to its end). A view lists them in
`View.rebuild_inserts`; while a rebuild runs on PostgreSQL, and the view database is the
event store's own database, the runner neither reads nor decodes those events: each
batch's transaction runs, for its range of notification ids, one
`INSERT … SELECT … FROM (the events table, state as jsonb)` per class, before the batch's
other writes. Rows and position still commit together.

Used only when the rows are what the handler would write: the store's states are plain
JSON (no compressor or cipher, a JSON transcoder), each class is at version 1 (no
upcasting to repeat) and has no free-form fields, and both connections reach the same
database of the same cluster (`pg_control_system().system_identifier`,
`current_database()`). Otherwise `stored_inserts` answers None and the handlers run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Mapper
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic
from psycopg.rows import tuple_row

from handlers.transcoding import free_form_fields
from infra.storage.viewdb import CopyingTx, ViewDB
from projections.base import Params, Tx, View

_WHICH = "SELECT system_identifier::text, current_database() FROM pg_control_system()"


class StoredInserts:
    """`insert(tx, after, upto)`: the view's `rebuild_inserts` for that range of ids, in
    one statement (one scan of the range; an INSERT per class reading it)."""

    def __init__(self, events_table: str, statements: Mapping[str, str]) -> None:
        self.topics = frozenset(statements)
        self._topics = list(statements)
        inserts = [
            f"i{n} AS ("
            + statement.format(id="e.originator_id::text", state="e.state")
            + " FROM e WHERE e.topic = ? RETURNING 1)"
            for n, statement in enumerate(statements.values())
        ]
        counts = " + ".join(f"(SELECT count(*) FROM i{n})" for n in range(len(inserts)))
        self._statement = (
            "WITH e AS (SELECT originator_id, topic, convert_from(state, 'UTF8')::jsonb AS state"
            f" FROM {events_table} WHERE notification_id > ? AND notification_id <= ?"
            f" AND topic = ANY(?)), {', '.join(inserts)} SELECT {counts}"
        )

    def insert(self, tx: Tx, after: int, upto: int) -> int:
        """Insert the rows of the events after `after` up to `upto`; how many events."""
        params = (after, upto, self._topics, *self._topics)
        return int(tx.query(self._statement, params)[0][0])

    def beside(
        self, tx: CopyingTx, after: int, upto: int, thread: ThreadPoolExecutor
    ) -> InsertGate:
        """Start `insert(tx, after, upto)` on `thread` and answer the Tx the batch's other
        writes go through: each of its statements waits for the insert first (see InsertGate).

        `tx` must hold no buffered writes (they would race with the insert's own flush)."""
        return InsertGate(tx, thread.submit(self.insert, tx, after, upto))


class InsertGate:
    """A `CopyingTx` over a transaction whose stored inserts run on another thread.

    PostgreSQL works on the inserts (the batch's longest statement) while Python applies
    the batch's other events into a buffering Tx (`SetWrites`) above this one. Every call
    that reaches this Tx (a handler's query, the buffered writes, a COPY) first waits for
    the inserts, so the database still sees them before any other statement of the batch,
    in the same transaction; an error of the inserts is raised there. `inserted()` waits
    and answers how many events they applied; the caller calls `settle()` before leaving
    the transaction, even on an error, so no statement is left running on its connection.
    """

    def __init__(self, tx: CopyingTx, pending: Future[int]) -> None:
        self._tx, self._pending = tx, pending

    def inserted(self) -> int:
        """How many events the inserts applied (waits for them; raises their error)."""
        return self._pending.result()

    def settle(self) -> None:
        """Wait for the inserts to end, whatever they raised (used on the way out)."""
        self._pending.exception()

    def execute(self, statement: str, params: Params = ()) -> None:
        """Buffer one write, after the inserts."""
        self.inserted()
        self._tx.execute(statement, params)

    def executemany(self, statement: str, rows: Iterable[Params]) -> None:
        """Buffer one write per row, after the inserts."""
        self.inserted()
        self._tx.executemany(statement, rows)

    def query(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Rows of one query, after the inserts."""
        self.inserted()
        return self._tx.query(statement, params)

    def stream(self, statement: str, params: Params = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of one query as they are read, after the inserts."""
        self.inserted()
        return self._tx.stream(statement, params)

    def copy(self, table: str, rows: Iterable[Sequence[Any]]) -> int:
        """COPY whole rows, after the inserts."""
        self.inserted()
        return self._tx.copy(table, rows)

    def flush(self) -> None:
        """Send what the wrapped Tx buffered, after the inserts."""
        self.inserted()
        flush = getattr(self._tx, "flush", None)
        if flush is not None:
            flush()


def stored_inserts(
    recorder: Any, mapper: Mapper[Any], db: ViewDB, view: View
) -> StoredInserts | None:
    """The set-based inserts of `view` for a rebuild, or None when they would not write
    exactly what its handlers write (see the module's docstring)."""
    if not view.rebuild_inserts or not _plain(recorder, mapper, db):
        return None
    statements: dict[str, str] = {}
    for cls, statement in view.rebuild_inserts.items():
        topic = get_topic(cls)
        if getattr(cls, "class_version", 1) != 1 or free_form_fields(topic):
            return None
        statements[topic] = statement
    if not _same_database(recorder, db):
        return None
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    return StoredInserts(table, statements)


def _plain(recorder: Any, mapper: Mapper[Any], db: ViewDB) -> bool:
    return (
        isinstance(recorder, PostgresApplicationRecorder)
        and db.kind == "postgres"
        and mapper.cipher is None
        and mapper.compressor is None
        and isinstance(mapper.transcoder, JSONTranscoder)
    )


def _same_database(recorder: PostgresApplicationRecorder, db: ViewDB) -> bool:
    """Whether the view database's connections reach the event store's database."""
    with (
        recorder.datastore.get_connection() as connection,
        connection.cursor(row_factory=tuple_row) as cursor,
    ):
        cursor.execute(_WHICH)
        store = cursor.fetchone()
    with db.transaction() as tx:
        views = tx.query(_WHICH)
    return store is not None and tuple(store) == tuple(views[0])
