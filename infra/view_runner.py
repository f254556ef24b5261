"""Keeps read models up to date: batches of events, rows and tracking in one transaction.

The runner reads the application's notification log after each view's tracked position,
applies a batch of events and moves the position in the same transaction, so an event is
applied exactly once even if the process dies between two batches. It follows the store
live: on PostgreSQL it wakes up on the event table's NOTIFY channel, on SQLite it polls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import structlog
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from domain.base import FleetAggregate
from handlers import PartnerFleet
from infra.viewdb import ViewDB
from projections.base import Tx, View

log = structlog.get_logger("partnerfleet.views")

TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS pf_tracking (view TEXT PRIMARY KEY, position INTEGER NOT NULL)"
)
Progress = Callable[[int, int], None]  # (position reached, head)
ANALYZE_EVERY = 20  # batches between refreshing the view tables' statistics


class ViewRunner:
    """Applies the event history to views; one tracked position per view."""

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
        self._advanced = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        with db.ddl() as tx:
            tx.execute(TRACKING_DDL)
            for view in self.views:
                view.create(tx)
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

    def catch_up(self, progress: Progress | None = None) -> int:
        """Apply everything stored so far to every view; returns events applied."""
        return sum(self._catch_up_view(view, progress) for view in self.views)

    def _catch_up_view(self, view: View, progress: Progress | None) -> int:
        head, applied, batches = self.head(), 0, 0
        position = self.position(view)
        while position < head:
            notifications = self.fleet.recorder.select_notifications(
                start=position + 1, limit=self.batch_size, stop=head, topics=view.topics()
            )
            reached = notifications[-1].id if len(notifications) == self.batch_size else head
            events = [self.fleet.mapper.to_domain_event(n) for n in notifications]
            self._apply(view, position, reached, events)
            position, applied, batches = reached, applied + len(events), batches + 1
            if batches % ANALYZE_EVERY == 0:
                self._analyze(view)
            if progress is not None:
                progress(position, head)
        if applied:
            self._notify()
        return applied

    def _apply(self, view: View, start: int, reached: int, events: list[Any]) -> None:
        with self.db.transaction() as tx:
            # Lock the tracking row (PostgreSQL; SQLite transactions are serial already), so
            # two runners never apply the same batch: the second sees the moved position.
            lock = " FOR UPDATE" if self.db.kind == "postgres" else ""
            if read_position(tx, view.name, lock) != start:
                return
            view.process(tx, [e for e in events if isinstance(e, FleetAggregate.Event)])
            write_position(tx, view.name, reached)

    def _analyze(self, view: View) -> None:
        # A long catch-up grows the tables far past the statistics they started with;
        # fresh statistics keep the per-batch recount on its indexes.
        with self.db.transaction() as tx:
            for table in view.tables:
                tx.execute(f"ANALYZE {table}")

    def _analyze_event_table(self, tx: Tx) -> None:
        # A rebuild reads the whole log by notification id; without statistics (autovacuum
        # off, or a freshly loaded store) PostgreSQL scans the table for every batch.
        recorder = self.fleet.recorder
        if isinstance(recorder, PostgresApplicationRecorder) and self.db.kind == "postgres":
            schema = self.fleet.env.get("POSTGRES_SCHEMA") or "public"
            tx.execute(f'ANALYZE "{schema}"."{recorder.events_table_name}"')

    def rebuild(self, view: View, progress: Progress | None = None) -> int:
        """Drop the view's rows and tracking, then apply the whole history again."""
        with self.db.ddl() as tx:
            view.drop(tx)
            tx.execute("DELETE FROM pf_tracking WHERE view = ?", (view.name,))
            view.create(tx)
            start_tracking(tx, view.name)
            self._analyze_event_table(tx)
        return self._catch_up_view(view, progress)

    def wait_until(self, position: int, timeout: float = 5.0) -> bool:
        """Read-your-writes: block until every view has applied `position` (or time out)."""
        if self._thread is None:
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
        """Follow the store in a background thread until `stop()`."""
        self._thread = threading.Thread(target=self._follow, name="view-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following; returns once the thread has ended."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _follow(self) -> None:
        with self._waiter() as wait:
            while not self._stop.is_set():
                try:
                    self.catch_up()
                except Exception:
                    log.exception("view_runner_failed")
                    self._stop.wait(1.0)
                wait()

    def _poll(self) -> None:
        self._stop.wait(self.poll_seconds)

    @contextmanager
    def _waiter(self) -> Iterator[Callable[[], None]]:
        """Wait for new events: PostgreSQL's NOTIFY channel, or a poll interval on SQLite."""
        recorder = self.fleet.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            yield self._poll
            return
        env = self.fleet.env
        with psycopg.connect(
            host=env.get("POSTGRES_HOST"),
            port=env.get("POSTGRES_PORT"),
            user=env.get("POSTGRES_USER"),
            password=env.get("POSTGRES_PASSWORD") or None,
            dbname=env.get("POSTGRES_DBNAME"),
            autocommit=True,
        ) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(recorder.channel_name)))

            def wait() -> None:
                for _ in conn.notifies(timeout=self.poll_seconds, stop_after=1):
                    pass

            yield wait


def read_position(tx: Tx, name: str, lock: str = "") -> int:
    rows = tx.query(f"SELECT position FROM pf_tracking WHERE view = ?{lock}", (name,))
    return int(rows[0][0]) if rows else 0


def start_tracking(tx: Tx, name: str) -> None:
    tx.execute(
        "INSERT INTO pf_tracking (view, position) VALUES (?, 0) ON CONFLICT DO NOTHING", (name,)
    )


def write_position(tx: Tx, name: str, position: int) -> None:
    tx.execute(
        "INSERT INTO pf_tracking (view, position) VALUES (?, ?)"
        " ON CONFLICT (view) DO UPDATE SET position = excluded.position",
        (name, position),
    )
