"""Positions of the followers kept beside the read models: one row per view (or relay shard)."""

from __future__ import annotations

from collections.abc import Sequence

from projections.base import Tx

TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS pf_tracking (view TEXT PRIMARY KEY, position INTEGER NOT NULL)"
)


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
