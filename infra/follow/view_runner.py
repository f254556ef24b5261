"""Keeps read models up to date: batches of events, rows and tracking in one transaction.

The runner reads the application's notification log after each view's tracked position,
applies a batch of events and moves the position in the same transaction, so an event is
applied exactly once even if the process dies between two batches. It follows the store
live: on PostgreSQL it wakes up on the event table's NOTIFY channel, on SQLite it polls.

Each view is a lane of its own (`infra.loops.Lanes`): a view that fails on an event stops
just before it, says so (`health()`, `pf_view_faults`) and retries with back-off, while the
other views go on. A lost connection (the LISTEN one, or the database's) never ends the
runner: it reconnects after a back-off and catches up.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import compress, repeat
from operator import itemgetter
from typing import Any

import structlog
from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresApplicationRecorder

from domain.base import FleetAggregate
from domain.text import FREE_TEXT, checked
from handlers import PartnerFleet
from infra.follow.bulk_decode import batch_decoder
from infra.follow.set_writes import SetWrites
from infra.follow.stored_inserts import StoredInserts, stored_inserts
from infra.follow.view_faults import (
    FAULTS_DDL,
    PARKED_DDL,
    Fault,
    Parked,
    ViewStuckError,
    clear_fault,
    current_faults,
    fault_of,
    park_stuck,
    parked_events,
    pass_parked,
    record_fault,
)
from infra.follow.view_reads import Rows, topic_reader
from infra.loops import Follower, Lanes, Status, Waiter
from infra.storage.pg_conn import listening
from infra.storage.pg_ddl import start_statement, validity_query
from infra.storage.start_ddl import creates_tables, start_ddl
from infra.storage.tracking import (
    REBUILDS_DDL,
    TRACKING_DDL,
    end_rebuild,
    read_position,
    read_positions,
    read_tracking,
    start_rebuild,
    start_tracking,
    write_position,
)
from infra.storage.viewdb import CopyingTx, ViewDB
from projections.base import Tx, View

log = structlog.get_logger("partnerfleet.views")

Progress = Callable[[int, int], None]  # (position reached, head)
ANALYZE_EVERY = 20  # batches between refreshing the view tables' statistics
REBUILD_BATCH = 10_000  # events per transaction in a rebuild (fewer recounts and round trips)


class ViewRunner:
    """Applies the event history to views; one tracked position and one lane per view."""

    def __init__(
        self,
        fleet: PartnerFleet,
        db: ViewDB,
        views: Sequence[View],
        batch_size: int = 2_000,
        poll_seconds: float = 0.2,
    ) -> None:
        self.fleet, self.db, self.views = fleet, db, list(views)
        self.batch_size, self.poll_seconds = batch_size, poll_seconds
        self.rebuild_batch_size = max(batch_size, REBUILD_BATCH)
        self._read = topic_reader(fleet.recorder)
        self._decode = batch_decoder(fleet.mapper)
        self.lanes = Lanes("views", [view.name for view in self.views])
        self._advanced = threading.Condition()
        self._follower: Follower | None = None
        with start_ddl(db, creates_tables(fleet.env)) as tx:
            for ddl in (TRACKING_DDL, REBUILDS_DDL, FAULTS_DDL, PARKED_DDL):
                tx.execute(ddl)
            for view in self.views:
                self._create(tx, view)
                start_tracking(tx, view.name)

    def view(self, name: str) -> View:
        """The view called `name`, or a clear error naming the known ones."""
        for view in self.views:
            if view.name == name:
                return view
        known = ", ".join(v.name for v in self.views)
        raise KeyError(f"No view {name!r}; known views: {known}.")

    def position(self, view: View) -> int:
        """The last notification id applied to `view`."""
        with self.db.transaction() as tx:
            return read_position(tx, view.name)

    def head(self) -> int:
        """The last notification id in the event store."""
        return self.fleet.recorder.max_notification_id() or 0

    def lag(self) -> dict[str, int]:
        """Per view: events in the store not yet applied to it."""
        head = self.head()
        return {view.name: head - self.position(view) for view in self.views}

    def health(self) -> dict[str, Status]:
        """Per view: running, or retrying with the error and where it is stuck."""
        return self.lanes.statuses()

    def runner_status(self) -> Status | None:
        """The following thread's status (None when this runner is not following)."""
        return None if self._follower is None else self._follower.status()

    def faults(self) -> dict[str, Fault]:
        """Per view still stuck on an event (as recorded by any runner): where and why."""
        with self.db.transaction() as tx:
            return current_faults(tx)

    def parked(self) -> list[Parked]:
        """Every event an operator parked, by view."""
        with self.db.transaction() as tx:
            return parked_events(tx)

    def catch_up(self, progress: Progress | None = None) -> int:
        """Apply everything stored so far to every view; returns events applied.

        A view that fails is left just before the failing event, recorded, and skipped
        until its back-off is over; the other views go on (see `health()`). A view already
        at the head whose lane is running is passed over after one query of every view's
        position: following an idle store costs two queries a pass, not a transaction a view.
        """
        head = self.head()
        at = self._positions()
        return sum(
            self._guarded(view, head, progress)
            for view, position in zip(self.views, at, strict=True)
            if position < head or not self.lanes.lanes[view.name].status.healthy
        )

    def _positions(self) -> Sequence[int]:
        """Every view's position in one query; where that fails, 0 for each (every view is
        then visited, and its lane meets and reports the failure itself, as before)."""
        try:
            with self.db.read() as tx:
                return read_positions(tx, [view.name for view in self.views])
        except Exception:  # the views' own reads raise it again, each in its lane
            return [0] * len(self.views)

    def _guarded(self, view: View, head: int, progress: Progress | None) -> int:
        lane = self.lanes.lanes[view.name]
        was_failing = not lane.status.healthy
        applied = self.lanes.run(view.name, lambda: self._catch_up_view(view, progress, head))
        if was_failing and lane.status.healthy:
            with self.db.transaction() as tx:
                clear_fault(tx, view.name)
        return applied

    def _catch_up_view(
        self,
        view: View,
        progress: Progress | None,
        head: int | None = None,
        batch_size: int | None = None,
        inserts: StoredInserts | None = None,
        analyze: bool = True,
    ) -> int:
        """Apply the view's events up to `head`; raises ViewStuckError on an event it cannot
        apply (having applied those before it), passing over the events parked for it.
        `inserts`: a rebuild's set-based inserts (their events are not read here);
        `analyze`: refresh the view tables' statistics every so many batches."""
        head = self.head() if head is None else head
        size = batch_size or self.batch_size
        while True:
            try:
                return self._apply_up_to(view, head, progress, size, inserts, analyze)
            except Exception as error:
                fault = self._isolate(view, head, error)
                if fault is not None and not self._pass_parked(fault):
                    self._record(fault)
                    raise ViewStuckError(fault) from error

    def _apply_up_to(
        self,
        view: View,
        head: int,
        progress: Progress | None,
        size: int,
        inserts: StoredInserts | None = None,
        analyze: bool = True,
    ) -> int:
        applied, batches = 0, 0
        position = self.position(view)
        fetch = self._fetcher(view, head, size, frozenset() if inserts is None else inserts.topics)
        # A rebuild reads and decodes the next batch on a thread of its own while this
        # one is written (the GIL is free while PostgreSQL works); following live does
        # not (its batches are small).
        ahead = ThreadPoolExecutor(1, "view-read") if size >= REBUILD_BATCH else None
        # A rebuild's stored inserts run on a thread of their own while the batch's other
        # events are applied (stored_inserts.InsertGate).
        beside = None if inserts is None else ThreadPoolExecutor(1, "view-insert")
        try:
            pending = None if ahead is None else ahead.submit(fetch, position)
            while position < head:
                reached, events = fetch(position) if pending is None else pending.result()
                if ahead is not None and reached < head:
                    pending = ahead.submit(fetch, reached)
                inserted = self._apply(
                    view, position, reached, events, reached >= head, inserts, beside
                )
                position, batches = reached, batches + 1
                applied += len(events) + inserted
                if analyze and (batches % ANALYZE_EVERY == 0 or batches in (1, 4, 16)):
                    # and early on: a rebuild's tables start empty (and grow from there)
                    self._analyze(view)
                if progress is not None:
                    progress(position, head)
        finally:
            for thread in (ahead, beside):
                if thread is not None:
                    thread.shutdown(cancel_futures=True)
        if applied:
            self._notify()
        return applied

    def _fetcher(
        self, view: View, head: int, size: int, skipped: frozenset[str]
    ) -> Callable[[int], tuple[int, list[tuple[int, Any]]]]:
        """Reads and decodes the batch after a position: (position it reaches, events);
        the `skipped` topics are left to set-based inserts."""
        topics = [topic for topic in view.topics() if topic not in skipped]

        def fetch(after: int) -> tuple[int, list[tuple[int, Any]]]:
            stored: Rows = self._read(after, head, size, topics)
            reached = stored[-1][0] if len(stored) == size else head
            return reached, self._decode(stored)

        return fetch

    def _select(self, view: View, position: int, head: int) -> Sequence[Notification]:
        return self.fleet.recorder.select_notifications(
            start=position + 1, limit=self.batch_size, stop=head, topics=view.topics()
        )

    def _isolate(self, view: View, head: int, error: Exception) -> Fault | None:
        """After a failed batch: apply its events one by one; the fault of the first that
        fails, or None if they all went through (the failure was passing)."""
        position = self.position(view)
        for notification in self._select(view, position, head):
            try:
                event = self.fleet.mapper.to_domain_event(notification)
                self._apply(
                    view,
                    position,
                    notification.id,
                    [(notification.id, event)],
                    last=notification.id >= head,
                )
            except Exception as failure:
                return fault_of(view.name, position, notification, failure)
            position = notification.id
        log.info("view_batch_retried_event_by_event", view=view.name, error=repr(error))
        return None

    def _pass_parked(self, fault: Fault) -> bool:
        """Move past the failing event if an operator parked it for this view."""
        with self.db.transaction() as tx:
            passed = pass_parked(tx, fault, self._lock())
        if passed:
            log.warning("view_passed_parked_event", **fault.__dict__)
        return passed

    def _record(self, fault: Fault) -> None:
        with self.db.transaction() as tx:
            record_fault(tx, fault)

    def park(self, name: str, notification_id: int, reason: str) -> Parked:
        """Operator's order: `name` passes over the event it is stuck on, for `reason`.

        Only the event the view is recorded as stuck on can be parked (ValueError
        otherwise, saying where the view is); the view moves past it in the same transaction.
        The reason is an operator's free text (a command-line argument): TextError before
        any row if it holds what no store keeps (a NUL, a lone surrogate; session 18).
        """
        reason = checked("reason", reason, FREE_TEXT)
        self.view(name)
        with self.db.transaction() as tx:
            parked = park_stuck(tx, name, notification_id, reason, self._lock())
        log.warning("view_event_parked", **parked.__dict__)
        return parked

    def _lock(self) -> str:
        # Lock the tracking row (PostgreSQL; SQLite transactions are serial already), so
        # two runners never apply the same batch: the second sees the moved position.
        return " FOR UPDATE" if self.db.kind == "postgres" else ""

    def _apply(
        self,
        view: View,
        start: int,
        reached: int,
        events: list[tuple[int, Any]],
        last: bool,
        inserts: StoredInserts | None = None,
        beside: ThreadPoolExecutor | None = None,
    ) -> int:
        """Apply `events` (store position, event) and move the view's position to `reached`;
        `last`: `reached` is the head this catch-up goes to (a rebuild's end, if one runs);
        `inserts`: the rebuild's set-based inserts for the same range, run on `beside` (if
        given) while the events are applied. Returns how many events those inserted (0
        when the batch was applied by another runner already)."""
        positions, events_of = _ours(events)
        inserted = 0
        with self.db.transaction() as tx:
            position, rebuilding = read_tracking(tx, view.name, self._lock())
            if position != start or (inserts is not None and not rebuilding):
                return 0  # another runner applied it (or ended the rebuild: it follows on)
            if rebuilding and self.db.kind == "postgres":
                # The batch and its position are lost together or kept together: a crash
                # may only send the view back to an earlier position, so no flush to wait for.
                tx.execute("SET LOCAL synchronous_commit = off")
            gate = None
            if inserts is not None and beside is not None and isinstance(tx, CopyingTx):
                gate = inserts.beside(tx, start, reached, beside)  # nothing touches tx till it ends
            try:
                base = tx if gate is None else gate
                writes = SetWrites(base) if isinstance(base, CopyingTx) else tx
                if inserts is not None and gate is None:
                    inserted = inserts.insert(writes, start, reached)
                view.process(writes, events_of, positions, rebuilding=rebuilding)
                if rebuilding and last:
                    view.finish_rebuild(writes)
                    end_rebuild(writes, view.name)
                write_position(writes, view.name, reached)
                if isinstance(writes, SetWrites):
                    writes.flush()
                if gate is not None:
                    inserted = gate.inserted()
            finally:
                if gate is not None:
                    gate.settle()  # no statement left running when the transaction ends
        return inserted

    def _analyze(self, view: View) -> None:
        # A long catch-up grows the tables far past the statistics they started with;
        # fresh statistics keep the per-batch recount on its indexes.
        with self.db.transaction() as tx:
            for table in view.tables:
                tx.execute(f"ANALYZE {table}")

    def _analyze_event_table(self, tx: Tx) -> None:
        # A rebuild reads the whole log by notification id; without statistics (autovacuum
        # off, or a freshly loaded store) PostgreSQL scans the table for every batch. Where
        # the statistics are recent (autovacuum's own rule, `statistics_fresh`), the ANALYZE
        # (0.25 s of server CPU for 1,000,000 events, before the first batch) is left out.
        recorder = self.fleet.recorder
        if isinstance(recorder, PostgresApplicationRecorder) and self.db.kind == "postgres":
            schema = self.fleet.env.get("POSTGRES_SCHEMA") or "public"
            table = f'"{schema}"."{recorder.events_table_name}"'
            rows = tx.query(EVENT_STATISTICS, (table,))
            if not (rows and statistics_fresh(*rows[0])):
                tx.execute(f"ANALYZE {table}")

    def _create(self, tx: Tx, view: View) -> None:
        """Create the view's tables if missing, with its PostgreSQL storage parameters.

        On PostgreSQL what is there already is left alone: `CREATE INDEX IF NOT EXISTS`
        takes a SHARE lock on its table even when the index exists, and a start does all
        views in one transaction, so a follower's batch writing two tables in the other
        order deadlocked with it (session 18 attack); the storage parameter is set only
        where it is not (its lock waited for the table's readers of a rebuild's ANALYZE).
        """
        if self.db.kind != "postgres":
            view.create(tx)
            return
        view.create(_MissingOnly(tx))
        for table, parameters in view.postgres_storage.items():
            wanted = {p.replace(" ", "") for p in parameters.split(",")}
            rows = tx.query("SELECT reloptions FROM pg_class WHERE oid = to_regclass(?)", (table,))
            if not (rows and wanted <= set(rows[0][0] or ())):
                tx.execute(f"ALTER TABLE {table} SET ({parameters})")

    def rebuild(self, view: View, progress: Progress | None = None) -> int:
        """Drop the view's rows and tracking, then apply the whole history again.

        Raises ViewStuckError (the view left just before the event) on an event it cannot
        apply that was not parked for it.
        """
        with self.db.ddl() as tx:
            # The tracking row first, as every batch locks it before the view's tables: a
            # runner following the view meanwhile then waits for the rebuild (or it for
            # that runner's batch) instead of a deadlock, dropping the tables first and
            # the row after (session 16 attack).
            read_tracking(tx, view.name, self._lock())
            view.drop(tx)
            tx.execute("DELETE FROM pf_tracking WHERE view = ?", (view.name,))
            clear_fault(tx, view.name)
            self._create(tx, view)
            start_tracking(tx, view.name)
            start_rebuild(tx, view.name)  # ended in the transaction of the last batch
            self._analyze_event_table(tx)
        head = self.head()
        inserts = stored_inserts(self.fleet.recorder, self.fleet.mapper, self.db, view)
        # A view whose rebuild batches only write (`View.rebuild_reads` False) needs no
        # statistics of its growing tables during them: analyzed once, at the end.
        reads = view.rebuild_reads
        with collector_paused():
            applied = self._catch_up_view(
                view, progress, head, self.rebuild_batch_size, inserts, analyze=reads
            )
        self._end_rebuild(view, head)
        if not reads:
            self._analyze(view)
        return applied

    def _end_rebuild(self, view: View, head: int) -> None:
        """Finish a rebuild no batch finished: nothing to apply, or its last event parked."""
        with self.db.transaction() as tx:
            position, rebuilding = read_tracking(tx, view.name, self._lock())
            if rebuilding and position >= head:
                view.finish_rebuild(tx)
                end_rebuild(tx, view.name)

    def wait_until(self, position: int, timeout: float = 5.0) -> bool:
        """Read-your-writes: block until every view has applied `position` (or time out)."""
        if self._follower is None:
            self.catch_up()
            return self._applied(position)
        deadline = time.monotonic() + timeout
        with self._advanced:
            while not self._applied(position):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._advanced.wait(min(remaining, self.poll_seconds))
        return True

    def _applied(self, position: int) -> bool:
        return all(self.position(view) >= position for view in self.views)

    def _notify(self) -> None:
        with self._advanced:
            self._advanced.notify_all()

    def start(self) -> None:
        """Follow the store in a background thread until `stop()`; it survives lost
        connections (reconnects with back-off) and failing views (see `catch_up`)."""
        self._follower = Follower(
            "views", self.catch_up, self._waiter(), poll_seconds=self.poll_seconds
        )
        self._follower.start()

    def stop(self) -> None:
        """Stop following; returns once the thread has ended."""
        if self._follower is not None:
            self._follower.stop()
            self._follower = None

    def _waiter(self) -> Waiter | None:
        """PostgreSQL's NOTIFY channel of the event table, or polling on SQLite."""
        recorder = self.fleet.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            return None
        env, channel = self.fleet.env, recorder.channel_name
        return lambda: listening(env, channel, self.poll_seconds)


_first, _second = itemgetter(0), itemgetter(1)


def _ours(events: list[tuple[int, Any]]) -> tuple[list[int], list[Any]]:
    """(positions, events) of the batch's events of this application's aggregates, in
    order (the others are passed over); with no Python step per event."""
    kept = list(
        compress(events, map(isinstance, map(_second, events), repeat(FleetAggregate.Event)))
    )
    return list(map(_first, kept)), list(map(_second, kept))


class _MissingOnly:
    """A PostgreSQL Tx for a view's DDL that runs `CREATE INDEX IF NOT EXISTS` only for an
    index that is missing, and rebuilds an invalid one (infra/storage/pg_ddl.py, see
    `ViewRunner._create`); everything else goes through."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        run = start_statement(statement, self._valid)
        if run == statement:
            self._tx.execute(statement, params)
        elif run is not None:
            self._tx.execute(run)

    def _valid(self, index: str) -> bool | None:
        rows = self._tx.query(validity_query("?"), (index,))
        return bool(rows[0][0]) if rows else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


# The events table's statistics as `statistics_fresh` reads them: rows estimated by the
# last ANALYZE (-1: never), rows changed since, whether it was ever analyzed.
EVENT_STATISTICS = (
    "SELECT c.reltuples, coalesce(s.n_mod_since_analyze, 0),"
    " s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL"
    " FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid"
    " WHERE c.oid = to_regclass(?)"
)


def statistics_fresh(estimated: float, changed: int, analyzed: bool | None) -> bool:
    """Whether a table's planner statistics are recent enough to skip an ANALYZE: it was
    analyzed (by hand or by autovacuum), and fewer rows changed since than autovacuum's
    default threshold for analyzing again (50 + 10 % of the rows estimated then)."""
    return bool(analyzed) and estimated >= 0 and changed < 50 + 0.1 * estimated


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, as it was afterwards (also on
    an error). A rebuild's batches make and drop many objects an event (rows, decoded
    states, events, buffered writes), freed by reference counting; the collector kept
    passing over them and every live object (issue 11, session 16: half of a rebuild's
    Python CPU; peak memory the same without it, 180 MB for 504,227 view events).
    Process-wide: meant for the rebuild's own process (`partnerfleet projections
    rebuild`, the benchmarks), not for a serving process."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
