"""Reading the stored events a view follows, as few objects as the mapper needs (issue 11).

The library's `select_notifications` builds a dict per row and a `Notification` per event,
and reads every column; a view needs the rows of its own topics only. On PostgreSQL
`PostgresTopicRows` reads them as tuples, filtered by topic in the server, in notification
order; other stores go through `select_notifications`. Either way a batch is a list of
`(position, originator id, originator version, topic, state)` tuples in the store's order,
which `infra.follow.bulk_decode` turns into events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import (
    ApplicationRecorder,
    InterfaceError,
    OperationalError,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg import sql
from psycopg.rows import tuple_row

# (notification id, originator id, originator version, topic, state)
Rows = list[tuple[Any, ...]]
# (after position, up to position inclusive, limit, topics) → stored rows in order
TopicReader = Callable[[int, int, int, Sequence[str]], Rows]


def topic_reader(recorder: ApplicationRecorder) -> TopicReader:
    """How to read a view's stored events from `recorder`."""
    if isinstance(recorder, PostgresApplicationRecorder):
        return PostgresTopicRows(recorder)

    def via_notifications(after: int, upto: int, limit: int, topics: Sequence[str]) -> Rows:
        found = recorder.select_notifications(
            start=after + 1, limit=limit, stop=upto, topics=list(topics)
        )
        return [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in found]

    return via_notifications


class PostgresTopicRows:
    """The events table read as tuples for a set of topics: the rows and order of
    `select_notifications(start=after + 1, stop=upto, limit=limit, topics=topics)`."""

    def __init__(self, recorder: PostgresApplicationRecorder) -> None:
        self.datastore = recorder.datastore
        self.query = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM {}.{} WHERE notification_id > %s AND notification_id <= %s"
            " AND topic = ANY(%s::text[]) ORDER BY notification_id LIMIT %s"
        ).format(sql.Identifier(self.datastore.schema), sql.Identifier(recorder.events_table_name))

    # The datastore raises eventsourcing's errors for a lost connection, retried as the
    # library's own reads are.
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def __call__(self, after: int, upto: int, limit: int, topics: Sequence[str]) -> Rows:
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row) as cursor,
        ):
            # Results in binary: the states are bytea, which the text format sends as hex
            # that libpq unescapes byte by byte (8 % of a rebuild's Python-side instructions,
            # session 21); binary gives the same values and types with no unescaping.
            cursor.execute(
                self.query, (after, upto, list(topics), limit), prepare=True, binary=True
            )
            rows: Rows = cursor.fetchall()
        return rows
