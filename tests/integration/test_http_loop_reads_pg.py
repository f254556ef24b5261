"""The page's plain path on the event loop (infra/http/loop_reads.py, session 19): the views'
positions and the partner's stored version read by one query for every request waiting,
the partner from the aggregate cache, the body from the page cache, no worker thread.
What must hold: the page shows every view state committed before the request; access is
checked against the partner's stored version on every request; a failed query is answered
by the thread path (as before this session); requests waiting together share a query."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from handlers.devices import PartnerChoice
from infra.bootstrap import build_fleet, build_view_db
from infra.http import loop_reads as loop_reads_module
from infra.http.deps import in_plain_thread
from infra.http.routes import customers
from infra.settings import Settings
from infra.storage import pg_conn
from tests.actors import customer
from tests.unit.test_http_customers import GROUPS, World, devices, world

pytestmark = pytest.mark.postgres
ANNA = {"Authorization": "Bearer anna"}


@pytest.fixture
def pg_world(postgres_settings: Settings) -> Iterator[World]:
    fleet = build_fleet(postgres_settings)
    made = world(fleet, build_view_db(postgres_settings))
    state = made.api.app.state  # type: ignore[attr-defined]
    state.verifier.never_waits = True  # as TokenVerifier over a JWKS file
    state.views.catch_up()
    yield made
    state.loop_reads.close()
    state.views.db.close()
    fleet.close()


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The work the page's route gave a worker thread (`in_plain_thread`), by name."""
    given: list[str] = []
    real = in_plain_thread

    async def counted(work: Callable[[], Any]) -> Any:
        given.append(getattr(work, "__name__", "?"))
        return await real(work)

    monkeypatch.setattr(customers, "in_plain_thread", counted)
    return given


def state(w: World) -> Any:
    return w.api.app.state  # type: ignore[attr-defined]


def on_one_loop(w: World, *calls: Callable[[httpx.AsyncClient], Any]) -> list[Any]:
    """Each call's result, in order, made with one client on one event loop (as uvicorn's)."""

    async def run() -> list[Any]:
        transport = httpx.ASGITransport(app=w.api.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await call(client) for call in calls]

    return asyncio.run(run())


async def page(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get(GROUPS, headers=ANNA)


def test_a_page_hit_is_answered_on_the_loop_by_one_query(
    pg_world: World, threads: list[str]
) -> None:
    first = pg_world.api.get(GROUPS, headers=ANNA)  # the body built and cached
    given, queries = len(threads), state(pg_world).loop_reads.queries

    again = [pg_world.api.get(GROUPS, headers=ANNA) for _ in range(3)]

    assert first.status_code == 200
    assert [(a.status_code, a.content) for a in again] == [(200, first.content)] * 3
    assert len(threads) == given  # no worker thread for a hit
    assert state(pg_world).loop_reads.queries == queries + 3


def test_a_view_state_committed_before_the_request_is_on_the_page(
    pg_world: World, threads: list[str]
) -> None:
    before = pg_world.api.get(GROUPS, headers=ANNA)
    c3 = customer("C3", "it@c3.example")
    choice = PartnerChoice(location_id="LOC-1")
    pg_world.fleet.register_devices(c3, "C3", devices("S3"), choice, customer_name="Initech")
    state(pg_world).views.catch_up()  # committed before the next request arrives

    after = pg_world.api.get(GROUPS, headers=ANNA)

    assert b"Initech" not in before.content
    assert after.status_code == 200
    assert b"Initech" in after.content
    assert threads[-1] == "<lambda>"  # the new positions: built in a thread, not a hit


def test_requests_waiting_together_share_one_query(pg_world: World) -> None:
    expected = pg_world.api.get(GROUPS, headers=ANNA).content
    queries = state(pg_world).loop_reads.queries

    async def twenty(client: httpx.AsyncClient) -> list[httpx.Response]:
        return list(await asyncio.gather(*(page(client) for _ in range(20))))

    [answers] = on_one_loop(pg_world, twenty)

    assert [(a.status_code, a.content) for a in answers] == [(200, expected)] * 20
    assert state(pg_world).loop_reads.queries - queries < 20


def terminate_views_connections(settings: Settings) -> int:
    """pg_terminate_backend for every views connection of this test's schema, returning once
    they are gone (the signal is sent at once, the backends end a moment later: a pool's
    liveness check could still pass in between)."""
    name = pg_conn.application_name(pg_conn.VIEWS, settings.storage.schema)
    conninfo = pg_conn.conninfo(settings.storage.env, "test")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        pids = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
            ).fetchall()
        ]
        # with a timeout, pg_terminate_backend returns once each backend has ended
        conn.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM unnest(%s::int[]) AS t(pid)", (pids,)
        )
    return len(pids)


def test_a_failed_query_is_answered_by_the_thread_path_then_reconnects(
    pg_world: World,
    postgres_settings: Settings,
    threads: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loop_reads_module, "RETRY_SECONDS", 0.0)  # try again at once
    reads = state(pg_world).loop_reads
    ended: list[int] = []

    async def end_connections(client: httpx.AsyncClient) -> None:
        ended.append(terminate_views_connections(postgres_settings))

    first, _, failed, recovered = on_one_loop(pg_world, page, end_connections, page, page)

    assert ended[0] >= 1
    assert [first.status_code, failed.status_code, recovered.status_code] == [200] * 3
    assert failed.content == first.content == recovered.content
    assert reads.failures == 1
    assert "answer" in threads  # the failed group's request: the thread path, whole
    assert reads.queries >= 3  # the recovered request: a new connection, a query again
