"""The PostgreSQL process recorder partnerfleet uses: the stock one, with a quicker insert.

eventsourcing's recorder sends a transaction's events as one array of a composite type,
which psycopg renders as text in Python: a fifth of the time of a 5,000-device e2Open
batch. This one sends the same rows as four typed arrays (ids, versions, topics, states)
that psycopg dumps in C. Everything else is the stock recorder's: the EXCLUSIVE table lock
that keeps notification ids in commit order, the NOTIFY, the tracking row in the same
transaction, `RETURNING notification_id`. Settings selects it with PROCESS_RECORDER_TOPIC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from infra.storage.pg_conn import name_store_connections
from infra.storage.pg_copy import COPY_MIN_ROWS, insert_by_copy


class FleetProcessRecorder(PostgresProcessRecorder):
    """PostgresProcessRecorder inserting stored events from four arrays, not composites."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        tracking_table_name: str = "notification_tracking",
    ) -> None:
        name_store_connections(datastore)
        super().__init__(
            datastore,
            events_table_name=events_table_name,
            tracking_table_name=tracking_table_name,
        )
        self.insert_events_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[])"
            " RETURNING notification_id"
        ).format(
            schema=Identifier(datastore.schema),
            table=Identifier(events_table_name),
            id_type=Identifier(datastore.originator_id_type),
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """As the stock recorder; from COPY_MIN_ROWS events on, by binary COPY with the same
        guarantees (infra/storage/pg_copy.py, issue 11: an e2Open batch)."""
        ids: Sequence[int] | None
        if len(stored_events) >= COPY_MIN_ROWS and not self.datastore.enable_db_functions:
            ids = insert_by_copy(
                self, stored_events, kwargs.get("tracking"), kwargs.get("read_versions")
            )
        else:
            ids = super().insert_events(stored_events, **kwargs)
        return ids

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self.insert_events_statement,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
        )


TOPIC = get_topic(FleetProcessRecorder)
