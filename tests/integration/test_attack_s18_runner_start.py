"""Attack on session 18's rebuild (issue 11): a runner starting while another process
follows. Its start made every table and index again (`CREATE INDEX IF NOT EXISTS` takes
a SHARE lock on the table even when the index exists) and set pf_c_groups' storage
parameter, all in one transaction: a follower's batch writing two of those tables in the
other order deadlocked with it, and one of them failed (the start, or the batch)."""

from __future__ import annotations

import threading

import psycopg
import pytest

from infra.bootstrap import build_fleet, build_view_db
from infra.follow.view_runner import ViewRunner
from infra.settings import Settings
from projections.customers import CustomersView
from tests.conftest import POSTGRES_DSN


def test_a_runner_starting_beside_a_writing_follower_takes_no_lock_it_waits_on(
    postgres_settings: Settings,
) -> None:
    fleet = build_fleet(postgres_settings)
    first = build_view_db(postgres_settings)
    second = build_view_db(postgres_settings)
    ViewRunner(fleet, first, [CustomersView()])  # the tables exist
    schema = postgres_settings.storage.schema
    errors: list[BaseException] = []

    def start() -> None:
        try:
            ViewRunner(fleet, second, [CustomersView()])
        except BaseException as error:
            errors.append(error)

    try:
        with psycopg.connect(POSTGRES_DSN, options=f"-c search_path={schema}") as batch:
            batch.execute("SET lock_timeout = '10s'")
            # A follower's batch: a write to a late table, the starting runner meanwhile,
            # then a write to an early one.
            batch.execute("LOCK TABLE pf_c_members IN ROW EXCLUSIVE MODE")
            starting = threading.Thread(target=start)
            starting.start()
            starting.join(0.5)
            batch.execute("LOCK TABLE pf_c_users IN ROW EXCLUSIVE MODE")
            batch.execute("LOCK TABLE pf_c_groups IN ROW EXCLUSIVE MODE")
            batch.commit()
        starting.join(30)
        assert not starting.is_alive()
        assert errors == []
        with second.read() as tx:
            assert tx.query(
                "SELECT reloptions FROM pg_class WHERE oid = to_regclass('pf_c_groups')"
            ) == [(["fillfactor=50"],)]
    finally:
        first.close()
        second.close()
        fleet.close()


@pytest.mark.parametrize("missing", ["index", "storage"])
def test_a_runner_start_still_makes_what_is_missing(
    postgres_settings: Settings, missing: str
) -> None:
    """What the start skips when present it still makes when absent."""
    fleet = build_fleet(postgres_settings)
    db = build_view_db(postgres_settings)
    try:
        ViewRunner(fleet, db, [CustomersView()])
        with db.transaction() as tx:
            if missing == "index":
                tx.execute("DROP INDEX pf_c_members_device")
            else:
                tx.execute("ALTER TABLE pf_c_groups RESET (fillfactor)")
        ViewRunner(fleet, db, [CustomersView()])
        with db.read() as tx:
            index = tx.query("SELECT to_regclass('pf_c_members_device') IS NOT NULL")
            storage = tx.query(
                "SELECT reloptions FROM pg_class WHERE oid = to_regclass('pf_c_groups')"
            )
        assert (index, storage) == ([(True,)], [(["fillfactor=50"],)])
    finally:
        db.close()
        fleet.close()
