"""A view stuck on an event: what is recorded about it, and parking the event by hand.

When a batch fails, the runner applies its events one at a time to find the one that fails
(the failure path only; a healthy batch costs nothing more). The view's position stops just
before that event, and `pf_view_faults` keeps where and why, so `partnerfleet projections
lag` (another process) can show it. The other views go on.

An operator can park the event for that view (`partnerfleet projections skip`): the view
moves past it, and `pf_parked` keeps the event, the error and the operator's reason. A
parked event is still tried first whenever the view meets it again (a rebuild, a fixed
release); it is passed over only if it still fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Notification

from infra.loops import describe
from infra.storage.tracking import read_position, write_position
from projections.base import Tx

FAULTS_DDL = (
    "CREATE TABLE IF NOT EXISTS pf_view_faults (view TEXT PRIMARY KEY, position BIGINT NOT NULL,"
    " notification_id BIGINT NOT NULL, topic TEXT NOT NULL, error TEXT NOT NULL,"
    " since TEXT NOT NULL, failures INTEGER NOT NULL)"
)
PARKED_DDL = (
    "CREATE TABLE IF NOT EXISTS pf_parked (view TEXT NOT NULL, notification_id BIGINT NOT NULL,"
    " topic TEXT NOT NULL, error TEXT NOT NULL, reason TEXT NOT NULL, parked_at TEXT NOT NULL,"
    " PRIMARY KEY (view, notification_id))"
)


@dataclass(frozen=True)
class Fault:
    """Where a view is stuck: its position, the event it cannot apply, and why."""

    view: str
    position: int
    notification_id: int
    topic: str
    error: str
    since: str = ""  # ISO 8601, UTC: first failure on this event
    failures: int = 1


class ViewStuckError(Exception):
    """A view cannot apply an event; it stays just before it and retries with back-off."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(
            f"view {fault.view} is stuck at notification {fault.notification_id}"
            f" ({fault.topic}): {fault.error}. It retries by itself; if the event can never"
            f" be applied, `partnerfleet projections skip {fault.view} {fault.notification_id}"
            " --reason TEXT` parks it."
        )
        self.fault = fault
        self.detail: dict[str, Any] = {
            "position": fault.position,
            "notification_id": fault.notification_id,
            "topic": fault.topic,
        }


def fault_of(view: str, position: int, notification: Notification, error: Exception) -> Fault:
    """The fault of `view` failing on `notification` after `position`."""
    return Fault(view, position, notification.id, notification.topic, describe(error), _now())


def _now() -> str:
    return datetime.now(UTC).isoformat()


def record_fault(tx: Tx, fault: Fault) -> None:
    """Keep (or update) the view's fault; `since` and the count go on while it is the same event."""
    tx.execute(
        "INSERT INTO pf_view_faults (view, position, notification_id, topic, error, since,"
        " failures) VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (view) DO UPDATE SET"
        " since = CASE WHEN pf_view_faults.notification_id = excluded.notification_id"
        " THEN pf_view_faults.since ELSE excluded.since END,"
        " failures = CASE WHEN pf_view_faults.notification_id = excluded.notification_id"
        " THEN pf_view_faults.failures + 1 ELSE 1 END,"
        " position = excluded.position, notification_id = excluded.notification_id,"
        " topic = excluded.topic, error = excluded.error",
        (fault.view, fault.position, fault.notification_id, fault.topic, fault.error, fault.since),
    )


def clear_fault(tx: Tx, view: str) -> None:
    """The view got past its fault."""
    tx.execute("DELETE FROM pf_view_faults WHERE view = ?", (view,))


def current_faults(tx: Tx) -> dict[str, Fault]:
    """Per view, the fault it is still stuck on (a fault it has moved past is not shown)."""
    rows = tx.query(
        "SELECT f.view, f.position, f.notification_id, f.topic, f.error, f.since, f.failures"
        " FROM pf_view_faults f JOIN pf_tracking t ON t.view = f.view"
        " WHERE t.position < f.notification_id"
    )
    return {row[0]: Fault(*row) for row in rows}


@dataclass(frozen=True)
class Parked:
    """An event an operator told a view to pass over, with the error and the reason."""

    view: str
    notification_id: int
    topic: str
    error: str
    reason: str
    parked_at: str


def is_parked(tx: Tx, view: str, notification_id: int) -> bool:
    """Whether an operator parked this event for this view."""
    return bool(
        tx.query(
            "SELECT 1 FROM pf_parked WHERE view = ? AND notification_id = ?",
            (view, notification_id),
        )
    )


def park(tx: Tx, fault: Fault, reason: str) -> Parked:
    """Record that `fault`'s event is passed over by its view, and why."""
    parked = Parked(fault.view, fault.notification_id, fault.topic, fault.error, reason, _now())
    tx.execute(
        "INSERT INTO pf_parked (view, notification_id, topic, error, reason, parked_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (parked.view, parked.notification_id, parked.topic, parked.error, reason, parked.parked_at),
    )
    clear_fault(tx, fault.view)
    return parked


def parked_events(tx: Tx) -> list[Parked]:
    """Every parked event, by view and notification id."""
    rows = tx.query(
        "SELECT view, notification_id, topic, error, reason, parked_at FROM pf_parked"
        " ORDER BY view, notification_id"
    )
    return [Parked(*row) for row in rows]


def park_stuck(tx: Tx, view: str, notification_id: int, reason: str, lock: str = "") -> Parked:
    """Park the event `view` is recorded as stuck on and move the view past it.

    ValueError, saying where the view is, for any other event: only an event a view
    cannot apply may be passed over.
    """
    position = read_position(tx, view, lock)
    fault = current_faults(tx).get(view)
    if fault is None or fault.notification_id != notification_id or fault.position != position:
        stuck = f"notification {fault.notification_id}" if fault else "no event"
        raise ValueError(
            f"view {view} is at position {position} and stuck on {stuck}: only the event"
            " a view is stuck on can be parked."
        )
    parked = park(tx, fault, reason)
    write_position(tx, view, notification_id)
    return parked


def pass_parked(tx: Tx, fault: Fault, lock: str = "") -> bool:
    """If `fault`'s event was parked for its view, move the view past it; whether it was."""
    if not is_parked(tx, fault.view, fault.notification_id):
        return False
    if read_position(tx, fault.view, lock) == fault.position:
        write_position(tx, fault.view, fault.notification_id)
    return True
