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

from collections.abc import Mapping
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Mapper
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic
from psycopg.rows import tuple_row

from handlers.transcoding import free_form_fields
from infra.storage.viewdb import ViewDB
from projections.base import Tx, View

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
