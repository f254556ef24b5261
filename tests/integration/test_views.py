"""Read models on PostgreSQL and on a SQLite file: scenarios, rebuilds, live following."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from fastapi.testclient import TestClient
from structlog.testing import capture_logs
from typer.testing import CliRunner

from domain.customer_group import CustomerGroup
from handlers.devices import PartnerChoice
from infra.bootstrap import build_fleet, build_view_runner
from infra.cli.app import cli as app
from infra.follow.view_runner import ViewRunner
from infra.http.app import create_api
from infra.settings import Settings
from infra.storage import pg_conn
from projections import all_views
from projections.consent_queries import Selection, history
from projections.customer_queries import list_customers
from projections.holding import unassigned_devices
from tests.actors import customer, feed
from tests.conftest import url_of
from tests.pg_faults import eventually, store_customer_group_named, terminate_backends
from tests.scenarios import SCENARIOS, Scenario, partner, report, servers
from tests.scopes import AUDIT, partner_at
from tests.views import assert_rebuild_equals_live

VIEWS = [view.name for view in all_views()]


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
            customer("C1", "it@c1", "x"),
            "C1",
            servers("S1"),
            PartnerChoice(location_id="LOC-1"),
            customer_name="First Customer",
        )
        fleet.receive_e2open_batch(feed("e2open", "x"), "b1", [report("PC1")])
        fleet.grant_consent(customer("C1", "it@c1", "x"), "C1", ["S1"])
        assert runner.wait_until(runner.head(), timeout=10)
        with runner.db.transaction() as tx:
            assert [r.name for r in list_customers(tx, partner_at(fleet, "LOC-1")).rows] == [
                "First Customer"
            ]
            assert [d.serial for d in unassigned_devices(tx, partner_at(fleet, "LOC-1")).rows] == [
                "PC1"
            ]
            assert [r["action"] for r in history(tx, AUDIT, Selection(serial="S1")).rows] == [
                "linked",
                "granted",
            ]
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
            fleet.register_devices(customer(f"C{n}", f"it@c{n}", "x"), f"C{n}", servers(f"S{n}"))
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


@pytest.fixture
def following(postgres_settings: Settings) -> Iterator[ViewRunner]:
    """A view runner following a PostgreSQL store live, as `serve` runs it."""
    fleet = build_fleet(postgres_settings)
    runner = build_view_runner(postgres_settings, fleet)
    runner.start()
    yield runner
    runner.stop()
    runner.db.close()
    fleet.close()


def caught_up(runner: ViewRunner) -> bool:
    """Every view has applied every stored event."""
    return not any(runner.lag().values())


def test_kind6_a_terminated_listen_connection_never_ends_the_view_runner(
    following: ViewRunner, postgres_settings: Settings
) -> None:
    """Given input: the LISTEN connection is ended, then a partner registered: the runner
    reconnects with back-off, applies the event, and logs the failure and the recovery."""
    schema = postgres_settings.storage.schema

    with capture_logs() as logs:
        for location_id in ("LOC-1", "LOC-2"):  # twice: a reconnected runner survives again
            assert eventually(lambda: terminate_backends(schema, pg_conn.LISTEN) == 1)
            partner(following.fleet, location_id)
            assert eventually(lambda: caught_up(following))
        assert eventually(lambda: getattr(following.runner_status(), "state", "") == "running")

    events = [(log["event"], log.get("loop")) for log in logs]
    assert events.count(("follower_retrying", "views")) >= 2
    assert ("follower_recovered", "views") in events


def test_kind6_views_survive_every_connection_of_the_service_being_terminated(
    following: ViewRunner, postgres_settings: Settings
) -> None:
    """The store's pool, the views' pool and the LISTEN connection all ended at once: the
    next command is stored and every view applies it, without a restart."""
    schema = postgres_settings.storage.schema
    partner(following.fleet, "LOC-1")
    assert eventually(lambda: caught_up(following))

    assert terminate_backends(schema) >= 3
    partner(following.fleet, "LOC-2")

    assert eventually(lambda: caught_up(following))
    assert all(status.healthy for status in following.health().values())


NAMED = ("customers", "dashboards")  # the views that keep customer names


def test_kind5_a_view_failing_on_an_event_does_not_stop_the_other_views(
    following: ViewRunner, postgres_settings: Settings
) -> None:
    """A customer name with a NUL in the store (PostgreSQL refuses it in a view): only the
    views keeping customer names (customers, dashboards) stop, just before it, and say
    where and why in /healthz and `lag`; the others keep up; parked by an operator, each
    goes on."""
    fleet = following.fleet
    partner(fleet, "LOC-1")
    fleet.register_devices(
        customer("C1", "it@c1", "x"), "C1", servers("S1"), PartnerChoice(location_id="LOC-1")
    )
    poison = store_customer_group_named(fleet, "ACME\x00 Corp")
    partner(fleet, "LOC-2")
    api = TestClient(create_api(fleet, postgres_settings, following))

    assert eventually(lambda: set(NAMED) <= set(following.faults()))
    assert eventually(lambda: all(not following.lag()[v] for v in VIEWS if v not in NAMED))
    health = api.get("/healthz")
    stuck = health.json()["views"]["customers"]
    assert health.status_code == 503
    assert health.json()["status"] == "degraded"
    assert (stuck["state"], stuck["notification_id"]) == ("retrying", poison)
    assert stuck["topic"].endswith("CustomerGroup.Created")
    assert "NUL" in stuck["error"] or "0x00" in stuck["error"]
    assert following.faults()["customers"].position == poison - 1

    parked = following.park("customers", poison, "NUL in a name; refused at the command now")
    following.park("dashboards", poison, "NUL in a name; refused at the command now")

    assert eventually(lambda: caught_up(following))
    assert eventually(lambda: api.get("/healthz").status_code == 200)
    assert sorted((p.view, p.notification_id) for p in following.parked()) == [
        (view, poison) for view in sorted(NAMED)
    ]
    assert parked.error == stuck["error"]


def test_kind5_projections_lag_shows_where_a_view_is_stuck_and_skip_parks_the_event(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    """`projections rebuild` stops at an event the customers view cannot read, naming it;
    `projections lag` shows the stuck position and the error; `projections skip` parks it
    (refusing any other event); a rebuild then passes over it, `lag` is 0 and lists what
    was parked."""
    env = {
        "DATABASE_URL": url_of(sqlite_settings),
        "VIEWS_SQLITE_PATH": str(tmp_path / "views.sqlite3"),
    }
    fleet = build_fleet(sqlite_settings)
    partner(fleet, "LOC-1")
    topic = get_topic(CustomerGroup.Created)
    poison = fleet.recorder.insert_events([StoredEvent(uuid.uuid4(), 1, topic, b"{not json")])
    assert poison
    partner(fleet, "LOC-2")
    fleet.close()
    cli = CliRunner()

    rebuilt = cli.invoke(app, ["projections", "rebuild", "customers"], env=env)
    stuck = cli.invoke(app, ["projections", "lag"], env=env)
    wrong = cli.invoke(app, ["projections", "skip", "customers", "1", "--reason", "x"], env=env)
    skipped = cli.invoke(
        app, ["projections", "skip", "customers", str(poison[-1]), "--reason", "corrupt"], env=env
    )
    again = cli.invoke(app, ["projections", "rebuild", "customers"], env=env)
    after = cli.invoke(app, ["projections", "lag"], env=env)

    assert rebuilt.exit_code == 1, rebuilt.output
    assert f"skip customers {poison[-1]}" in rebuilt.output
    assert f"stuck at notification {poison[-1]} ({topic})" in stuck.output
    assert "MapperDeserialisationError" in stuck.output
    assert wrong.exit_code == 2
    assert "only the event a view is stuck on can be parked" in wrong.output
    assert skipped.exit_code == 0
    assert again.exit_code == 0
    assert "customers: 0" in after.output.splitlines()
    assert "stuck at" not in after.output
    assert f"parked: customers notification {poison[-1]} ({topic})" in after.output
    assert "corrupt" in after.output
