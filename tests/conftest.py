"""Fixtures shared by every tier: fleets on in-memory, SQLite and PostgreSQL storage."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import structlog
from psycopg import sql

from handlers import PartnerFleet
from handlers.base import COMMANDS
from infra.bootstrap import build_fleet
from infra.settings import Settings
from tests.kafka import Broker

POSTGRES_DSN = os.environ.get("POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
# PostgreSQL settings need a cPIN key (infra/settings.py); this one is for tests only.
os.environ.setdefault("CPIN_KEY", "tests-only-cpin-key-0123456789abcdefghij")

FleetFactory = Callable[[], PartnerFleet]


def drop_schema(schema: str) -> None:
    """Remove a test schema and everything in it."""
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def postgres_settings() -> Iterator[Settings]:
    """Settings for a PostgreSQL schema of this test's own, dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield Settings(database_url=f"{POSTGRES_DSN}?schema={schema}")
    drop_schema(schema)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings for a SQLite file of this test's own."""
    return Settings(database_url=f"sqlite:///{tmp_path / 'events.sqlite3'}")


@pytest.fixture(params=["postgres", "sqlite"])
def stored_settings(request: pytest.FixtureRequest) -> Settings:
    """Each integration scenario runs once on PostgreSQL and once on a SQLite file."""
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    return settings


@pytest.fixture
def fleet_factory(stored_settings: Settings) -> Iterator[FleetFactory]:
    """Open fleets on the same storage (a second one is a concurrent writer or a restart)."""
    opened: list[PartnerFleet] = []

    def open_fleet() -> PartnerFleet:
        fleet = build_fleet(stored_settings)
        opened.append(fleet)
        return fleet

    yield open_fleet
    for fleet in opened:
        fleet.close()


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """A Kafka-protocol broker for the whole session."""
    running = Broker().start()
    yield running
    running.stop()


@pytest.fixture
def own_broker() -> Iterator[Broker]:
    """A broker of this test's own, which the test may stop and start again."""
    running = Broker().start()
    yield running
    running.stop()


@pytest.fixture
def stored_fleet(fleet_factory: FleetFactory) -> PartnerFleet:
    """A fleet on real storage."""
    return fleet_factory()


def url_of(settings: Settings) -> str:
    """The DATABASE_URL a test's settings name (a secret in Settings: it may hold a password)."""
    assert settings.database_url is not None
    return settings.database_url.get_secret_value()


@pytest.fixture(autouse=True, scope="session")
def uncached_loggers() -> Iterator[None]:
    """`structlog.testing.capture_logs` sees every logger: a test that configures logging
    the way a process does (cache_logger_on_first_use) must not freeze module-level
    loggers with its processors for every later test of the session."""
    real = structlog.configure

    def configure(**settings: Any) -> None:
        real(**{**settings, "cache_logger_on_first_use": False})

    structlog.configure = configure  # type: ignore[assignment]
    yield
    structlog.configure = real


@contextmanager
def structlog_config_restored() -> Iterator[None]:
    """structlog's configuration on leaving is what it was on entering, and no context
    variables bound inside (structlog.contextvars) are left bound."""
    before = structlog.get_config()
    try:
        yield
    finally:
        structlog.configure(**before)
        structlog.contextvars.clear_contextvars()


@pytest.fixture(autouse=True)
def logging_as_found() -> Iterator[None]:
    """Each test leaves structlog's configuration as it found it. A test (or a CLI or app
    it runs) that configures logging the way a process does, at level info, would otherwise
    filter the debug events later tests of the same process capture (`command_conflict`):
    which tests share a process depends on pytest-xdist's scheduling."""
    with structlog_config_restored():
        yield


@contextmanager
def commands_kept_local() -> Iterator[None]:
    """Commands declared within (`@command` on a test's own fleet class) stay that test
    module's: the registry of the service's commands (handlers.base.COMMANDS, which the
    access matrix and the text checks cover command by command) is left as it was, so a
    test module imported in the same process adds no command the service does not have."""
    before = dict(COMMANDS)
    try:
        yield
    finally:
        COMMANDS.clear()
        COMMANDS.update(before)
