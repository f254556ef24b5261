"""Positions of the followers kept beside the read models: one row per view (or relay shard)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from projections.base import Tx

TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS pf_tracking (view TEXT PRIMARY KEY, position INTEGER NOT NULL)"
)


# Views whose rebuild has not reached its end: the row is written with the rebuild's first
# transaction and deleted in the one of its last batch (ViewRunner.rebuild).
REBUILDS_DDL = "CREATE TABLE IF NOT EXISTS pf_rebuilds (view TEXT PRIMARY KEY)"


def read_position(tx: Tx, name: str, lock: str = "") -> int:
    rows = tx.query(f"SELECT position FROM pf_tracking WHERE view = ?{lock}", (name,))
    return int(rows[0][0]) if rows else 0


def read_positions(tx: Tx, names: Sequence[str]) -> tuple[int, ...]:
    """The positions of the views `names`, in that order (0 for one not tracked yet), in
    one query."""
    marks = ", ".join("?" for _ in names)
    rows = tx.query(f"SELECT view, position FROM pf_tracking WHERE view IN ({marks})", names)
    found = {str(name): int(position) for name, position in rows}
    return tuple(found.get(name, 0) for name in names)


def read_positions_and_version(
    tx: Tx, names: Sequence[str], events_table: str, aggregate_id: UUID
) -> tuple[tuple[int, ...], int | None]:
    """The positions of the views `names` (as `read_positions`) and the last stored version
    of `aggregate_id` in `events_table` (a quoted, schema-qualified name; None when it has
    no events), in one query: PostgreSQL only, the store's events in the views' database."""
    marks = ", ".join("?" for _ in names)
    rows = tx.query(
        f"SELECT view, position FROM pf_tracking WHERE view IN ({marks})"
        f" UNION ALL SELECT NULL, max(originator_version) FROM {events_table}"
        " WHERE originator_id = ?",
        (*names, aggregate_id),
    )
    found = {str(name): int(position) for name, position in rows if name is not None}
    versions = [position for name, position in rows if name is None]
    version = None if not versions or versions[0] is None else int(versions[0])
    return tuple(found.get(name, 0) for name in names), version


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


def read_tracking(tx: Tx, name: str, lock: str = "") -> tuple[int, bool]:
    """(position, whether a rebuild of `name` has not reached its end) in one query."""
    rows = tx.query(
        "SELECT position, (SELECT count(*) FROM pf_rebuilds r WHERE r.view = t.view)"
        f" FROM pf_tracking t WHERE t.view = ?{lock}",
        (name,),
    )
    return (int(rows[0][0]), bool(rows[0][1])) if rows else (0, False)


def start_rebuild(tx: Tx, name: str) -> None:
    """Mark `name` as rebuilding (in the transaction that resets its rows and position)."""
    tx.execute("INSERT INTO pf_rebuilds (view) VALUES (?) ON CONFLICT DO NOTHING", (name,))


def end_rebuild(tx: Tx, name: str) -> None:
    """The rebuild of `name` reached its end (in the transaction of its last batch)."""
    tx.execute("DELETE FROM pf_rebuilds WHERE view = ?", (name,))
