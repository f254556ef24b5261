"""Session 18's attack on the start DDL that skips an existing index (since session 19:
infra/storage/pg_ddl.py).

The look-up is schema-qualified: an index of the same name in another schema (public,
first on a default search_path, or any other) does not make a start skip creating ours;
several processes starting on a fresh schema at once all start, with the tables and the
unique index made once.
"""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from infra.bootstrap import build_fleet
from infra.settings import Settings
from infra.storage.pg_recorder import FleetProcessRecorder
from tests.conftest import POSTGRES_DSN, drop_schema

pytestmark = pytest.mark.postgres


def test_attack_s18_a_same_named_index_elsewhere_does_not_stop_ours(
    postgres_settings: Settings,
) -> None:
    fleet = build_fleet(postgres_settings)
    recorder = fleet.recorder
    assert isinstance(recorder, FleetProcessRecorder)
    schema, index = postgres_settings.storage.schema, recorder.notification_id_index_name
    fleet.close()
    other = f"{schema}_other"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'DROP INDEX "{schema}"."{index}"')
        conn.execute(f'CREATE SCHEMA "{other}"')
        conn.execute(f'CREATE TABLE "{other}".t (x int)')
        conn.execute(f'CREATE INDEX "{index}" ON "{other}".t (x)')
        conn.execute(f'CREATE TABLE public."{other}" (x int)')
        conn.execute(f'CREATE INDEX "{index}" ON public."{other}" (x)')
    try:
        build_fleet(postgres_settings).close()
        with psycopg.connect(POSTGRES_DSN, options="-c search_path=public") as conn:
            made = conn.execute(
                "SELECT indisunique, indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                (f'"{schema}"."{index}"',),
            ).fetchone()
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'DROP TABLE public."{other}"')
            conn.execute(f'DROP SCHEMA "{other}" CASCADE')
    assert made == (True, True)


def test_attack_s18_starts_at_once_on_a_fresh_schema_all_start() -> None:
    schema = f"test_{uuid.uuid4().hex[:12]}"
    settings = Settings(database_url=f"{POSTGRES_DSN}?schema={schema}")
    errors: list[BaseException] = []
    ready = threading.Barrier(3)

    def start() -> None:
        try:
            ready.wait()
            build_fleet(settings).close()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        with psycopg.connect(POSTGRES_DSN) as conn:
            unique = conn.execute(
                "SELECT count(*) FROM pg_indexes WHERE schemaname = %s"
                " AND indexdef LIKE 'CREATE UNIQUE INDEX %%notification_id%%'",
                (schema,),
            ).fetchone()
    finally:
        drop_schema(schema)
    assert errors == []
    assert unique == (1,)
