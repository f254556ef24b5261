"""Settings: SQLite by default, PostgreSQL by URL or POSTGRES_*, bad values refused at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No storage variables leak in from the machine running the tests."""
    for name in (
        "DATABASE_URL",
        "POSTGRES_HOST",
        "POSTGRES_DBNAME",
        "POSTGRES_SCHEMA",
        "POSTGRES_PORT",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "SQLITE_PATH",
        "PORT",
    ):
        monkeypatch.delenv(name, raising=False)


def test_no_configuration_means_sqlite_under_var() -> None:
    """The embedded default: SQLite at var/partnerfleet.sqlite3."""
    storage = Settings().storage
    assert storage.kind == "sqlite"
    assert storage.env == {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(Path("var/partnerfleet.sqlite3")),
    }


def test_database_url_selects_postgresql_with_schema_and_hides_the_password() -> None:
    """DATABASE_URL=postgresql://… fills the event store's POSTGRES_* settings."""
    storage = Settings(database_url="postgresql://app:s%40cret@db:5433/fleet?schema=pf").storage
    assert storage.kind == "postgres"
    assert storage.env["POSTGRES_PASSWORD"] == "s@cret"
    assert storage.env["POSTGRES_PORT"] == "5433"
    assert storage.env["POSTGRES_SCHEMA"] == "pf"
    assert "s@cret" not in storage.location


def test_postgres_variables_select_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    """POSTGRES_HOST / POSTGRES_DBNAME in the environment select PostgreSQL."""
    monkeypatch.setenv("POSTGRES_HOST", "127.0.0.1")
    monkeypatch.setenv("POSTGRES_DBNAME", "test")
    storage = Settings().storage
    assert storage.kind == "postgres"
    assert storage.env["POSTGRES_DBNAME"] == "test"


def test_port_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """PORT overrides the default 8000."""
    monkeypatch.setenv("PORT", "9123")
    assert Settings().port == 9123


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/x", "scheme 'mysql' is not supported"),
        ("sqlite://", "needs a file path"),
        ("postgresql://db/x?schema=Bad-Name", "must match"),
    ],
)
def test_bad_storage_configuration_is_refused_with_a_specific_message(
    url: str, message: str
) -> None:
    """A DATABASE_URL the service cannot use fails when settings are read, saying why."""
    with pytest.raises(ValidationError, match=message):
        Settings(database_url=url)


def test_a_port_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """PORT must be 1…65535."""
    monkeypatch.setenv("PORT", "70000")
    with pytest.raises(ValidationError, match="port"):
        Settings()
