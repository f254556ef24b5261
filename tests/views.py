"""Helpers for read-model tests: a fleet with views, and whole-view dumps for comparison."""

from __future__ import annotations

from typing import Any

from handlers import PartnerFleet
from infra.follow.view_runner import ViewRunner
from infra.storage.viewdb import SQLiteViewDB, ViewDB
from projections import all_views
from projections.base import View


def memory_runner(fleet: PartnerFleet, batch_size: int = 2_000) -> ViewRunner:
    """Every view over `fleet`, in an in-memory SQLite database."""
    return ViewRunner(fleet, SQLiteViewDB(":memory:"), all_views(), batch_size=batch_size)


def dump(db: ViewDB, view: View) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of `view`, sorted, so two states can be compared."""
    with db.transaction() as tx:
        return {
            table: sorted(tx.query(f"SELECT * FROM {table}"), key=repr) for table in view.tables
        }


def assert_rebuild_equals_live(runner: ViewRunner) -> None:
    """R-*: dropping and rebuilding each view from the history gives the live rows again."""
    runner.catch_up()
    for view in runner.views:
        live = dump(runner.db, view)
        runner.rebuild(view)
        assert dump(runner.db, view) == live, f"rebuilt {view.name} differs from live"


def rebuilds_marked(db: ViewDB) -> list[tuple[str]]:
    """The views whose rebuild is under way or was cut short (pf_rebuilds' marks)."""
    with db.transaction() as tx:
        return [(str(row[0]),) for row in tx.query("SELECT view FROM pf_rebuilds")]
