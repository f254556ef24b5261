"""The views' pool gives up as soon as the store's (session 18's found-not-fixed: a page
waited psycopg_pool's 30 s for its 503 while PostgreSQL was down)."""

from __future__ import annotations

import socket
import threading

import pytest
from psycopg_pool import PoolTimeout
from pydantic import ValidationError

from infra.bootstrap import build_fleet, build_view_db
from infra.settings import Settings
from infra.storage.viewdb import POOL_TIMEOUT, PostgresViewDB, pool_timeout

pytestmark = pytest.mark.postgres


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


def test_both_pools_wait_as_long_by_default(
    postgres_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POSTGRES_CONNECT_TIMEOUT", raising=False)
    fleet = build_fleet(postgres_settings)
    views = build_view_db(postgres_settings)
    try:
        store_wait = fleet.recorder.datastore.pool.timeout  # type: ignore[attr-defined]
        assert views._pool.timeout == store_wait == POOL_TIMEOUT  # type: ignore[attr-defined]
    finally:
        views.close()
        fleet.close()


def test_postgres_connect_timeout_sets_the_views_wait_too(
    postgres_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTGRES_CONNECT_TIMEOUT", "7")
    settings = Settings(database_url=postgres_settings.storage.location + "?schema=s19_unused")
    assert settings.storage.env["POSTGRES_CONNECT_TIMEOUT"] == "7"
    assert pool_timeout(settings.storage.env) == 7.0


@pytest.mark.parametrize("given", ["soon", "0", "-1", "3601", "1.5"])
def test_a_wait_that_is_no_whole_number_of_seconds_is_refused(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.setenv("POSTGRES_CONNECT_TIMEOUT", given)
    with pytest.raises(ValidationError, match="postgres_connect_timeout"):
        Settings(database_url="postgresql://postgres@127.0.0.1:5432/test")


def test_a_read_while_postgresql_is_down_fails_within_the_wait() -> None:
    db = PostgresViewDB(
        f"host=127.0.0.1 port={_closed_port()} user=postgres dbname=test connect_timeout=1",
        "public",
        timeout=0.3,
    )
    failed: list[BaseException] = []

    def read() -> None:
        try:
            with db.read() as tx:
                tx.query("SELECT 1")
        except BaseException as error:
            failed.append(error)

    reader = threading.Thread(target=read, daemon=True)
    try:
        reader.start()
        reader.join(10)  # psycopg_pool's own default would have held it 30 s
        assert not reader.is_alive()
        assert len(failed) == 1
        assert isinstance(failed[0], PoolTimeout)
    finally:
        db.close()
