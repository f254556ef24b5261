"""Test doubles of recorders that honour `read_versions` (issue 11), and fleets using them.

The save path (branch i11-save) gives the real recorders `read_versions`: a unit naming
aggregates a command read at some version is refused with a RecordConflictError when any of
them has a later event at commit. Until then these doubles let the aggregate cache be
tested (handlers/aggregate_cache.py): in memory (`CachingFleet`) and on PostgreSQL
(`ReadCheckingPostgresRecorder`, selected with PROCESS_RECORDER_TOPIC). Each also counts
the reads that reach it, so a test can say a cache hit cost no round trip.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import EventStore, IntegrityError, ProcessRecorder, StoredEvent
from eventsourcing.popo import POPOAggregateRecorder, POPOProcessRecorder
from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from handlers import PartnerFleet
from infra.storage.pg_recorder import FleetProcessRecorder


def stale_reads(read_versions: Mapping[UUID, int] | None, latest: Mapping[UUID, int]) -> list[UUID]:
    """The aggregates read at a version older than the one stored (`latest`)."""
    return [i for i, v in (read_versions or {}).items() if latest.get(i, 0) > v]


class ReadCounter:
    """How many times stored events or snapshots were read (`select_events` calls)."""

    def __init__(self) -> None:
        self.reads = 0
        self._lock = threading.Lock()

    def count(self) -> None:
        with self._lock:
            self.reads += 1


class CountingSnapshotRecorder(POPOAggregateRecorder):
    """The in-memory snapshot recorder, counting its reads on a shared `ReadCounter`."""

    def __init__(self, counter: ReadCounter) -> None:
        super().__init__()
        self.counter = counter

    def select_events(self, originator_id: UUID | str, **kwargs: Any) -> Sequence[StoredEvent]:
        self.counter.count()
        return super().select_events(originator_id, **kwargs)


class ReadCheckingPOPORecorder(POPOProcessRecorder):
    """The in-memory process recorder, refusing a unit whose reads went stale; counts its
    `select_events` calls (store reads) on `counter`."""

    checks_read_versions = True

    def __init__(self) -> None:
        super().__init__()
        self.counter = ReadCounter()

    @property
    def reads(self) -> int:
        """Reads of events and snapshots so far."""
        return self.counter.reads

    def select_events(self, originator_id: UUID | str, **kwargs: Any) -> Sequence[StoredEvent]:
        self.counter.count()
        return super().select_events(originator_id, **kwargs)

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        read_versions: Mapping[UUID, int] | None = kwargs.get("read_versions")
        latest = {i: max(self._stored_events_index[str(i)], default=0) for i in read_versions or {}}
        stale = stale_reads(read_versions, latest)
        if stale:
            raise IntegrityError(f"Read versions are stale: {stale}")
        super()._assert_uniqueness(stored_events, **kwargs)


class CachingFleet(PartnerFleet):
    """A PartnerFleet in memory whose recorder checks read versions, so commands use the
    aggregate cache; `recorder.reads` counts the store reads."""

    recorder: ReadCheckingPOPORecorder

    def construct_recorder(self) -> ProcessRecorder:
        return ReadCheckingPOPORecorder()

    def construct_snapshot_store(self) -> EventStore[UUID]:
        recorder = CountingSnapshotRecorder(self.recorder.counter)
        return self.factory.event_store(mapper=self.mapper, recorder=recorder)


def caching_fleet(cache_size: int | None = None) -> CachingFleet:
    """A CachingFleet in memory (cache size: the default unless given)."""
    env = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if cache_size is not None:
        env["FLEET_AGGREGATE_CACHE_SIZE"] = str(cache_size)
    return CachingFleet(env=env)


class ReadCheckingPostgresRecorder(FleetProcessRecorder):
    """partnerfleet's PostgreSQL recorder, refusing a unit whose reads went stale: checked
    under the table lock, before the tracking row and the events are written (one more
    statement in the transaction; the save path's recorder folds it into its round trip)."""

    checks_read_versions = True

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        read_versions: Mapping[UUID, int] | None = kwargs.get("read_versions")
        if read_versions:
            self._lock_table(curs)
            statement = SQL(
                "SELECT e.originator_id FROM unnest(%s::uuid[], %s::bigint[]) AS r(id, v)"
                " JOIN {schema}.{table} AS e"
                " ON e.originator_id = r.id AND e.originator_version = r.v + 1 LIMIT 1"
            ).format(
                schema=Identifier(self.datastore.schema),
                table=Identifier(self.events_table_name),
            )
            curs.execute(statement, (list(read_versions), list(read_versions.values())))
            stale = curs.fetchone()
            if stale is not None:
                raise IntegrityError(f"Read version of {stale['originator_id']} is stale")
        super()._insert_events(curs, stored_events, **kwargs)


READ_CHECKING_POSTGRES_TOPIC = get_topic(ReadCheckingPostgresRecorder)


def events_reads(fleet: PartnerFleet, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The ids of the aggregates whose events `fleet` reads from the store since."""
    seen: list[Any] = []
    real = fleet.events.get

    def spy(originator_id: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(originator_id)
        return real(originator_id, *args, **kwargs)

    monkeypatch.setattr(fleet.events, "get", spy)
    return seen
