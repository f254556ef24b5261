"""Read versions on the SQLite and in-memory stores: the same refusal as PostgreSQL's.

`insert_events(stored_events, tracking=..., read_versions=...)`: `read_versions`
({aggregate id: version}, or None) names aggregates a command READ but did not write, at the
version read (issue 11: the aggregate cache saves against known versions). When one of them
has a stored event with a later version at commit, the save raises IntegrityError (a
RecordConflictError) and records nothing. Recorders that honour it say
`checks_read_versions = True`. Settings selects the SQLite one with PROCESS_RECORDER_TOPIC;
the in-memory one is selected by the same variable (FleetApplication.construct_recorder).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.popo import POPOProcessRecorder
from eventsourcing.sqlite import SQLiteCursor, SQLiteProcessRecorder
from eventsourcing.utils import get_topic

STALE_READ = "An aggregate read by the command changed since it was read; nothing was recorded."


def stale(read_versions: Mapping[UUID, int] | None, latest: Mapping[UUID, int | None]) -> bool:
    """Whether an aggregate read at `read_versions[id]` has a later stored version."""
    return any((latest.get(i) or 0) > version for i, version in (read_versions or {}).items())


class FleetPOPORecorder(POPOProcessRecorder):
    """The in-memory process recorder, refusing a save whose read versions are stale."""

    checks_read_versions = True

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        # Runs under the store's lock, before anything of the save is written.
        super()._assert_uniqueness(stored_events, **kwargs)
        read_versions: Mapping[UUID, int] | None = kwargs.get("read_versions")
        if read_versions:
            latest = {i: self._latest_version(i) for i in read_versions}
            if stale(read_versions, latest):
                raise IntegrityError(STALE_READ)

    def _latest_version(self, aggregate_id: UUID) -> int | None:
        versions = self._stored_events_index.get(str(aggregate_id))
        return max(versions) if versions else None


class FleetSQLiteRecorder(SQLiteProcessRecorder):
    """The SQLite process recorder, refusing a save whose read versions are stale."""

    checks_read_versions = True

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # Written first: then the transaction holds SQLite's write lock and reads the
        # latest versions; a stale read raises, and the transaction rolls back.
        returning = super()._insert_events(c, stored_events, **kwargs)
        read_versions: Mapping[UUID, int] | None = kwargs.get("read_versions")
        if read_versions:
            latest: dict[UUID, int | None] = {}
            for aggregate_id in read_versions:
                c.execute(
                    f"SELECT MAX(originator_version) FROM {self.events_table_name} "
                    "WHERE originator_id = ?",
                    (aggregate_id.hex,),
                )
                latest[aggregate_id] = c.fetchone()[0]
            if stale(read_versions, latest):
                raise IntegrityError(STALE_READ)
        return returning


POPO_TOPIC = get_topic(FleetPOPORecorder)
SQLITE_TOPIC = get_topic(FleetSQLiteRecorder)
