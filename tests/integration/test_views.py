"""Read models on PostgreSQL and on a SQLite file: scenarios, rebuilds, live following."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from domain import Cause
from handlers.devices import PartnerChoice
from infra.bootstrap import build_fleet, build_view_runner
from infra.settings import Settings
from projections.consent_queries import history
from projections.customer_queries import list_customers
from projections.holding import unassigned_devices
from tests.scenarios import SCENARIOS, Scenario, partner, report, servers
from tests.views import assert_rebuild_equals_live


@pytest.fixture
def view_settings(stored_settings: Settings, tmp_path: Path) -> Settings:
    """The stored settings, with SQLite read models in this test's own file."""
    return stored_settings.model_copy(update={"views_sqlite_path": tmp_path / "views.sqlite3"})


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_views_of_every_scenario_rebuild_to_the_same_rows(
    scenario: Scenario, view_settings: Settings
) -> None:
    """Followed in batches of 3 and rebuilt from scratch, every view holds the same rows."""
    fleet = build_fleet(view_settings)
    runner = build_view_runner(view_settings, fleet)
    runner.batch_size = 3
    try:
        scenario(fleet)
        runner.catch_up()
        assert runner.lag() == dict.fromkeys([v.name for v in runner.views], 0)
        assert_rebuild_equals_live(runner)
    finally:
        runner.db.close()
        fleet.close()


def test_a_following_runner_gives_read_your_writes(view_settings: Settings) -> None:
    """R-FAV-1, R-HLD-1: a command's effects are queryable once wait_until returns."""
    fleet = build_fleet(view_settings)
    runner = build_view_runner(view_settings, fleet)
    runner.poll_seconds = 0.05
    runner.start()
    try:
        partner(fleet, "LOC-1")
        fleet.register_devices(
            Cause("it@c1", "x"),
            "C1",
            servers("S1"),
            PartnerChoice(location_id="LOC-1"),
            customer_name="First Customer",
        )
        fleet.receive_e2open_batch(Cause("e2open", "x"), "b1", [report("PC1")])
        fleet.grant_consent(Cause("it@c1", "x"), "C1", ["S1"])
        assert runner.wait_until(runner.head(), timeout=10)
        with runner.db.transaction() as tx:
            assert [r.name for r in list_customers(tx, "anna@LOC-1").rows] == ["First Customer"]
            assert [d.serial for d in unassigned_devices(tx, "LOC-1")] == ["PC1"]
            assert [r["action"] for r in history(tx, serial="S1")] == ["linked", "granted"]
    finally:
        runner.stop()
        runner.db.close()
        fleet.close()


def test_two_runners_on_one_view_database_apply_each_event_once(view_settings: Settings) -> None:
    """Two processes following the same views never apply a batch twice."""
    fleet = build_fleet(view_settings)
    first = build_view_runner(view_settings, fleet)
    second = build_view_runner(view_settings, fleet)
    first.batch_size = second.batch_size = 2
    try:
        for n in range(6):
            fleet.register_devices(Cause(f"it@c{n}", "x"), f"C{n}", servers(f"S{n}"))
        threads = [threading.Thread(target=r.catch_up) for r in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert first.lag() == dict.fromkeys([v.name for v in first.views], 0)
        assert_rebuild_equals_live(first)
    finally:
        first.db.close()
        second.db.close()
        fleet.close()
