"""A start rebuilds an index left invalid (infra/storage/pg_ddl.py, session 19).

A `CREATE INDEX CONCURRENTLY` or `REINDEX CONCURRENTLY` that fails leaves its index in the
catalog with `indisvalid` false. Queries do not use such an index, and `CREATE INDEX IF NOT
EXISTS` leaves it as it is, so before this a start never repaired it (session 18's
found-not-fixed). Marking the index invalid in `pg_index` stands in for the failed build.
"""

from __future__ import annotations

import psycopg
import pytest

from infra.bootstrap import build_fleet, build_view_db
from infra.follow.view_runner import ViewRunner
from infra.settings import Settings
from infra.storage.pg_ddl import created_index, start_statement
from infra.storage.pg_recorder import FleetProcessRecorder
from projections.customers import CustomersView
from tests.conftest import POSTGRES_DSN

pytestmark = pytest.mark.postgres


def _validity(index: str) -> bool | None:
    with psycopg.connect(POSTGRES_DSN) as conn:
        row = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (index,)
        ).fetchone()
    return None if row is None else bool(row[0])


def _invalidate(index: str) -> None:
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass(%s)", (index,)
        )
    assert _validity(index) is False


def test_a_start_rebuilds_the_events_tables_invalid_notification_index(
    postgres_settings: Settings,
) -> None:
    fleet = build_fleet(postgres_settings)
    recorder = fleet.recorder
    assert isinstance(recorder, FleetProcessRecorder)
    index = f'"{postgres_settings.storage.schema}"."{recorder.notification_id_index_name}"'
    fleet.close()
    _invalidate(index)

    build_fleet(postgres_settings).close()

    assert _validity(index) is True


def test_a_start_rebuilds_a_views_invalid_index(postgres_settings: Settings) -> None:
    fleet = build_fleet(postgres_settings)
    views = build_view_db(postgres_settings)
    try:
        ViewRunner(fleet, views, [CustomersView()])  # the tables exist
        schema = postgres_settings.storage.schema
        index = "pf_c_groups_page"  # the page's index (projections/customers.py)
        qualified = f'"{schema}"."{index}"'
        _invalidate(qualified)

        ViewRunner(fleet, views, [CustomersView()])

        assert _validity(qualified) is True
    finally:
        views.close()
        fleet.close()


@pytest.mark.parametrize(
    ("statement", "index"),
    [
        ('CREATE UNIQUE INDEX IF NOT EXISTS "ix" ON "s"."t" (a)', '"s"."ix"'),
        ('create index if not exists "a""b" on "s ""x"."t" (a)', '"s ""x"."a""b"'),
        ("CREATE INDEX IF NOT EXISTS pf_x ON pf_t (a, b)", "pf_x"),
        ("\n  CREATE INDEX  IF  NOT\nEXISTS pf_x\nON s.pf_t (a)", "s.pf_x"),
    ],
)
def test_one_parser_names_the_index_of_both_callers_forms(statement: str, index: str) -> None:
    assert created_index(statement) == index


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE INDEX pf_x ON pf_t (a)",  # no IF NOT EXISTS: never skipped
        "CREATE TABLE IF NOT EXISTS pf_t (a int)",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS pf_x ON pf_t (a)",
        "-- CREATE INDEX IF NOT EXISTS pf_x ON pf_t (a)",
    ],
)
def test_other_statements_run_as_they_are(statement: str) -> None:
    asked: list[str] = []

    def valid(index: str) -> bool:
        asked.append(index)
        return True

    assert created_index(statement) is None
    assert start_statement(statement, valid) == statement
    assert asked == []


@pytest.mark.parametrize(
    ("valid", "runs"),
    [
        (None, "CREATE INDEX IF NOT EXISTS pf_x ON pf_t (a)"),
        (True, None),
        (False, "REINDEX INDEX pf_x"),
    ],
)
def test_what_a_start_runs_by_the_index_state(valid: bool | None, runs: str | None) -> None:
    assert start_statement("CREATE INDEX IF NOT EXISTS pf_x ON pf_t (a)", lambda _: valid) == runs
