"""CREATE_TABLE=no honoured by every table a start makes (infra/storage/start_ddl.py,
session 19; session 18's found-not-fixed: only eventsourcing's own tables honoured it, so a
role without CREATE rights on the schema could not start the service whatever it said)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from pydantic import ValidationError

from infra.bootstrap import build_fleet, build_view_runner, relay_records
from infra.settings import Settings
from infra.storage.start_ddl import MissingTablesError
from tests.conftest import POSTGRES_DSN, drop_schema
from tests.e2e.test_serve import run_cli, unconfigured
from tests.scenarios import partner

pytestmark = pytest.mark.postgres


def _made_by_a_full_start(settings: Settings) -> None:
    fleet = build_fleet(settings)
    try:
        build_view_runner(settings, fleet).db.close()
        relay_records(settings)
    finally:
        fleet.close()


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    drop_schema(name)


@pytest.fixture
def reader_writer(schema: str) -> Iterator[str]:
    """A login role that may read and write the schema's tables but create nothing."""
    role = f"pf_rw_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    yield role
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _grant_reads_and_writes(schema: str, role: str) -> None:
    names = {"s": sql.Identifier(schema), "r": sql.Identifier(role)}
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        for statement in (
            "GRANT USAGE ON SCHEMA {s} TO {r}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}",
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
        ):
            conn.execute(sql.SQL(statement).format(**names))


def _settings(schema: str, *, user: str = "postgres", create_table: bool) -> Settings:
    dsn = POSTGRES_DSN.replace("postgres@", f"{user}@", 1)
    return Settings(database_url=f"{dsn}?schema={schema}", create_table=create_table)


def test_a_role_that_may_not_create_starts_with_create_table_off(
    schema: str, reader_writer: str
) -> None:
    _made_by_a_full_start(_settings(schema, create_table=True))
    _grant_reads_and_writes(schema, reader_writer)  # PostgreSQL 15: no CREATE on public
    limited = _settings(schema, user=reader_writer, create_table=True)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _made_by_a_full_start(limited)  # the kind of fault: every start made its tables

    settings = _settings(schema, user=reader_writer, create_table=False)
    fleet = build_fleet(settings)
    try:
        runner = build_view_runner(settings, fleet)
        partner(fleet, "LOC-RW")  # commands are stored by the role
        runner.catch_up()
        assert fleet.partner("LOC-RW").location_id == "LOC-RW"
        positions, parked = relay_records(settings)
        assert (positions, parked) == ({}, {})
        runner.db.close()
    finally:
        fleet.close()


def test_a_missing_schema_is_named(schema: str) -> None:
    with pytest.raises(MissingTablesError, match=f"schema '{schema}'") as raised:
        build_fleet(_settings(schema, create_table=False))
    assert "CREATE_TABLE=yes" in str(raised.value)
    with psycopg.connect(POSTGRES_DSN) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        assert found.fetchone() is None  # nothing was made


def test_a_missing_events_table_is_named(schema: str) -> None:
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    with pytest.raises(MissingTablesError, match="table partnerfleet_events is missing"):
        build_fleet(_settings(schema, create_table=False))


def test_missing_view_tables_are_named_and_nothing_is_made(schema: str) -> None:
    build_fleet(_settings(schema, create_table=True)).close()  # the store's tables only
    settings = _settings(schema, create_table=False)
    fleet = build_fleet(settings)
    try:
        with pytest.raises(MissingTablesError, match="table pf_tracking is missing"):
            build_view_runner(settings, fleet)
        with pytest.raises(MissingTablesError, match="table pf_tracking is missing"):
            relay_records(settings)
    finally:
        fleet.close()
    with psycopg.connect(POSTGRES_DSN) as conn:
        made = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s",
            (schema, "pf_%"),
        ).fetchone()
    assert made == (0,)


def test_a_missing_view_index_is_named(schema: str) -> None:
    _made_by_a_full_start(_settings(schema, create_table=True))
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP INDEX {}.pf_c_groups_page").format(sql.Identifier(schema)))
    settings = _settings(schema, create_table=False)
    fleet = build_fleet(settings)
    try:
        with pytest.raises(MissingTablesError, match="index pf_c_groups_page is missing"):
            build_view_runner(settings, fleet)
    finally:
        fleet.close()


def test_sqlite_with_create_table_off_names_the_missing_events_table(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'events.sqlite3'}", create_table=False)
    with pytest.raises(MissingTablesError, match=r"table .* is missing in SQLite"):
        build_fleet(settings)


def test_sqlite_starts_with_create_table_off_once_its_tables_exist(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.sqlite3'}"
    _made_by_a_full_start(Settings(database_url=url))
    settings = Settings(database_url=url, create_table=False)
    fleet = build_fleet(settings)
    try:
        runner = build_view_runner(settings, fleet)
        partner(fleet, "LOC-SQ")
        runner.catch_up()
        assert fleet.partner("LOC-SQ").location_id == "LOC-SQ"
        runner.db.close()
    finally:
        fleet.close()


@pytest.mark.parametrize(("given", "creates"), [("no", False), ("FALSE", False), ("on", True)])
def test_create_table_is_read_in_eventsourcings_words(
    monkeypatch: pytest.MonkeyPatch, given: str, creates: bool
) -> None:
    monkeypatch.setenv("CREATE_TABLE", given)
    storage = Settings().storage
    assert storage.create_tables is creates
    assert storage.env["CREATE_TABLE"] == ("yes" if creates else "no")


def test_create_table_that_is_no_yes_or_no_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREATE_TABLE", "maybe")
    with pytest.raises(ValidationError, match="create_table"):
        Settings()


def test_create_table_under_the_applications_name_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARTNERFLEET_CREATE_TABLE", "no")
    with pytest.raises(ValidationError, match="PARTNERFLEET_CREATE_TABLE='no' is not supported"):
        Settings()


def test_the_cli_names_what_is_missing_without_a_traceback(tmp_path: Path, schema: str) -> None:
    env = {
        **unconfigured(),
        "DATABASE_URL": f"{POSTGRES_DSN}?schema={schema}",
        "CREATE_TABLE": "no",
    }
    done = run_cli(tmp_path, env, "projections", "lag")
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"partnerfleet: CREATE_TABLE is off and the PostgreSQL schema '{schema}' is missing:"
    )
    assert "start this command once with CREATE_TABLE=yes" in done.stderr
    assert "Traceback" not in done.stderr


def test_create_table_on_for_a_role_that_may_not_create_is_one_line_saying_so(
    tmp_path: Path, schema: str, reader_writer: str
) -> None:
    """Session 19 walkthrough: the default CREATE_TABLE=yes with a read/write role was a
    traceback (InsufficientPrivilege, exit code 1); it is one line naming CREATE_TABLE=no."""
    _made_by_a_full_start(_settings(schema, create_table=True))
    _grant_reads_and_writes(schema, reader_writer)
    dsn = POSTGRES_DSN.replace("postgres@", f"{reader_writer}@", 1)
    env = {**unconfigured(), "DATABASE_URL": f"{dsn}?schema={schema}"}
    done = run_cli(tmp_path, env, "projections", "lag")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith(f"partnerfleet: the postgres store {dsn} schema {schema} refused")
    assert "permission denied" in done.stderr
    assert "needs CREATE_TABLE=no" in done.stderr
    allowed = run_cli(tmp_path, {**env, "CREATE_TABLE": "no"}, "projections", "lag")
    assert allowed.returncode == 0, allowed.stderr
