"""Issue 11 (session 18): a process start beside running saves. eventsourcing's start DDL
ran `CREATE UNIQUE INDEX IF NOT EXISTS` of the events table's notification index, which
takes a SHARE lock on the table even when the index exists: a start (`serve`, a CLI
command, a Kafka consumer) waited behind every save holding the events table's EXCLUSIVE
lock, and saves requested after it queued behind its request. FleetProcessRecorder now
leaves out the statements of indexes that exist; what is missing is still made."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from infra.bootstrap import build_fleet
from infra.follow.view_faults import FAULTS_DDL
from infra.follow.view_faults import PARKED_DDL as VIEW_PARKED_DDL
from infra.kafka.parking import PARKED_DDL as RELAY_PARKED_DDL
from infra.settings import Settings
from infra.storage.pg_recorder import FleetProcessRecorder
from infra.storage.tracking import REBUILDS_DDL, TRACKING_DDL
from tests.conftest import POSTGRES_DSN


def _names(settings: Settings) -> tuple[str, str, str, str]:
    fleet = build_fleet(settings)  # the tables exist
    try:
        recorder = fleet.recorder
        assert isinstance(recorder, FleetProcessRecorder)
        return (
            settings.storage.schema,
            recorder.events_table_name,
            recorder.tracking_table_name,
            recorder.notification_id_index_name,
        )
    finally:
        fleet.close()


@contextmanager
def _starting(settings: Settings) -> Iterator[threading.Thread]:
    """A fleet starting in a thread; its error, if any, raised at the end."""
    errors: list[BaseException] = []

    def start() -> None:
        try:
            build_fleet(settings).close()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=start)
    thread.start()
    try:
        yield thread
    finally:
        thread.join(60)
    assert errors == []


@pytest.mark.parametrize("order", ["tracking first", "events first"])
def test_a_start_beside_a_save_holding_both_tables_does_not_wait(
    postgres_settings: Settings, order: str
) -> None:
    """A save (the COPY path writes tracking first, the group committer locks the events
    table first) holds the tracking table's ROW EXCLUSIVE and the events table's
    EXCLUSIVE lock; a process starting meanwhile finishes without waiting for it."""
    schema, events, tracking, _ = _names(postgres_settings)
    with psycopg.connect(POSTGRES_DSN, options=f"-c search_path={schema}") as save:
        save.execute("SET lock_timeout = '10s'")
        statements = [
            f"INSERT INTO {tracking} VALUES ('policy', 1)",
            f"LOCK TABLE {events} IN EXCLUSIVE MODE",
        ]
        for statement in statements if order == "tracking first" else statements[::-1]:
            save.execute(statement)
        with _starting(postgres_settings) as starting:
            starting.join(20)
            # Before the fix the start waited here for SHARE on the events table.
            assert not starting.is_alive()
            save.commit()


def test_a_start_waiting_nowhere_leaves_later_saves_their_turn(
    postgres_settings: Settings,
) -> None:
    """A long save holds the events table; a start, then a later save: the later save
    gets the lock when the long save commits, and the start never queued on the table."""
    schema, events, _, _ = _names(postgres_settings)
    options = f"-c search_path={schema}"
    with (
        psycopg.connect(POSTGRES_DSN, options=options) as long_save,
        psycopg.connect(POSTGRES_DSN, options=options, autocommit=True) as watch,
    ):
        long_save.execute(f"LOCK TABLE {events} IN EXCLUSIVE MODE")
        with _starting(postgres_settings) as starting:
            starting.join(20)
            assert not starting.is_alive()
        waiting = watch.execute(
            "SELECT count(*) FROM pg_locks WHERE relation = to_regclass(%s) AND NOT granted",
            (events,),
        ).fetchone()
        assert waiting == (0,)
        later: list[str] = []

        def save() -> None:
            with psycopg.connect(POSTGRES_DSN, options=options) as conn:
                conn.execute("SET lock_timeout = '20s'")
                conn.execute(f"LOCK TABLE {events} IN EXCLUSIVE MODE")
                later.append("locked")

        thread = threading.Thread(target=save)
        thread.start()
        long_save.commit()
        thread.join(30)
        assert later == ["locked"]


@pytest.mark.parametrize("missing", ["index", "tracking table"])
def test_a_start_still_makes_what_is_missing(postgres_settings: Settings, missing: str) -> None:
    schema, _, tracking, index = _names(postgres_settings)
    with psycopg.connect(POSTGRES_DSN, options=f"-c search_path={schema}") as conn:
        if missing == "index":
            conn.execute(f"DROP INDEX {index}")
        else:
            conn.execute(f"DROP TABLE {tracking}")
        conn.commit()
    build_fleet(postgres_settings).close()
    with psycopg.connect(POSTGRES_DSN, options=f"-c search_path={schema}") as conn:
        present = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL, to_regclass(%s) IS NOT NULL",
            (index, tracking),
        ).fetchone()
        unique = conn.execute(
            "SELECT indisunique FROM pg_index WHERE indexrelid = to_regclass(%s)", (index,)
        ).fetchone()
        migration = conn.execute(
            f"SELECT notification_id FROM {tracking} WHERE application_name = '__migration__'"
        ).fetchone()
    assert (present, unique, migration) == ((True, True), (True,), (1,))


def test_a_fresh_schema_is_made_from_nothing(postgres_settings: Settings) -> None:
    schema, events, tracking, index = _names(postgres_settings)
    with psycopg.connect(POSTGRES_DSN) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
            (schema, events),
        ).fetchall()
    assert {events, tracking} <= {t for (t,) in tables}
    assert index in {i for (i,) in indexes}


def test_eventsourcing_tracking_migration_still_runs(postgres_settings: Settings) -> None:
    """A tracking table without eventsourcing's migration row is migrated at start as
    before: renamed to bkup1_…, made again, each application's position carried over."""
    schema, _, tracking, _ = _names(postgres_settings)
    with psycopg.connect(POSTGRES_DSN, options=f"-c search_path={schema}") as conn:
        conn.execute(f"DELETE FROM {tracking} WHERE application_name = '__migration__'")
        conn.execute(f"INSERT INTO {tracking} VALUES ('policy', 7)")
        conn.commit()
    build_fleet(postgres_settings).close()
    with psycopg.connect(POSTGRES_DSN, options=f"-c search_path={schema}") as conn:
        rows = conn.execute(f"SELECT * FROM {tracking} ORDER BY 1").fetchall()
        backup = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"bkup1_{tracking}",))
        assert backup.fetchone() == (True,)
    assert rows == [("__migration__", 1), ("policy", 7)]


def test_our_own_start_ddl_takes_no_lock_on_existing_tables(postgres_settings: Settings) -> None:
    """The tables partnerfleet makes at start outside the views (tracking, rebuilds,
    faults, parked, relay parking) are `CREATE TABLE IF NOT EXISTS` alone, which takes no
    lock on a table that exists: each runs while another transaction holds its table in
    ACCESS EXCLUSIVE mode. An index added to one of them would fail this test."""
    schema = postgres_settings.storage.schema
    statements = [TRACKING_DDL, REBUILDS_DDL, FAULTS_DDL, VIEW_PARKED_DDL, RELAY_PARKED_DDL]
    options = f"-c search_path={schema}"
    with psycopg.connect(POSTGRES_DSN, options=f"-c search_path={schema}") as setup:
        setup.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for statement in statements:
            setup.execute(statement)
        setup.commit()
        tables = [
            t
            for (t,) in setup.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            ).fetchall()
        ]
    assert len(tables) == len(statements)
    with (
        psycopg.connect(POSTGRES_DSN, options=options) as holder,
        psycopg.connect(POSTGRES_DSN, options=options) as starter,
    ):
        for table in tables:
            holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        starter.execute("SET lock_timeout = '2s'")
        for statement in statements:
            starter.execute(statement)  # LockNotAvailable if it locked its table
        starter.commit()
        holder.rollback()
