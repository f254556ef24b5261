"""Attack on the page on the event loop (infra/http/loop_reads.py, session 19): tenant
isolation within one grouped query, freshness against a query in flight, a query that
hangs behind a lock, and hostile forms answered as the thread path answers them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from handlers.access import Claims, claimed_partner
from infra.http import loop_reads as loop_reads_module
from infra.http.loop_reads import LoopReadError, LoopReads
from infra.settings import Settings
from infra.storage import pg_conn
from tests.integration.test_http_loop_reads_pg import (  # noqa: F401 (the fixture)
    on_one_loop,
    pg_world,
    state,
)
from tests.scenarios import OPS
from tests.unit.test_http_customers import GROUPS, TOKENS, World

pytestmark = pytest.mark.postgres
LOC1 = claimed_partner(Claims("anna@LOC-1", "partner_user", "LOC-1"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def seen(answer: httpx.Response) -> tuple[int, Any]:
    """The status and body, less a problem's per-request `instance`."""
    body = answer.json()
    if isinstance(body, dict):
        body.pop("instance", None)
    return answer.status_code, body


# --- tenant isolation inside one group ------------------------------------------------


def test_requests_of_several_partners_in_one_group_get_only_their_own_answer(
    pg_world: World,  # noqa: F811
) -> None:
    """R-LNK-1: anna (LOC-1), ben (LOC-1, not admin) and anna@LOC-2 asking together, each
    for her own page and for the other partner's: every answer is what the request asks
    for alone (another partner's page is 404, never its body)."""
    asks = [
        ("anna", GROUPS),
        ("otto", "/partners/LOC-2/customer-groups"),
        ("ben", GROUPS),
        ("otto", GROUPS),  # LOC-2's user, LOC-1's page
        ("anna", "/partners/LOC-2/customer-groups"),
        ("ben", GROUPS + "?limit=1"),
        ("otto", "/partners/LOC-2/customer-groups?limit=1"),
    ]
    alone = [pg_world.api.get(path, headers=bearer(who)) for who, path in asks]
    queries = state(pg_world).loop_reads.queries

    async def together(client: httpx.AsyncClient) -> list[httpx.Response]:
        calls = [client.get(path, headers=bearer(who)) for who, path in asks * 5]
        return list(await asyncio.gather(*calls))

    [answers] = on_one_loop(pg_world, together)

    expected = [seen(a) for a in alone] * 5
    assert [seen(a) for a in answers] == expected
    assert [a.status_code for a in alone] == [200, 200, 200, 404, 404, 200, 200]
    assert b"C9" in alone[1].content and b"C9" not in alone[0].content
    assert state(pg_world).loop_reads.queries - queries < len(answers)  # grouped


# --- freshness against a query in flight -----------------------------------------------


def test_a_request_arriving_while_a_query_runs_is_not_given_that_querys_answer(
    pg_world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read-your-writes: a user registered (and the views caught up) while the group's
    query is in flight; a request arriving after that commit must be admitted and see
    the positions after it, not the answer of the query that started before."""
    reads = state(pg_world).loop_reads
    real_query = LoopReads._query
    gate: list[asyncio.Event] = []
    seen: list[tuple[tuple[int, ...], dict[Any, Any]]] = []

    async def held(self: LoopReads, ids: set[Any]) -> Any:
        answer = await real_query(self, ids)
        seen.append(answer)
        if len(seen) == 1:
            await gate[0].wait()  # the statement has run: its snapshot is taken
        return answer

    pg_world.api.get(GROUPS, headers=bearer("anna"))  # warm the partner and page
    monkeypatch.setattr(LoopReads, "_query", held)
    monkeypatch.setitem(TOKENS, "cleo", Claims("cleo@LOC-1", "partner_user", "LOC-1"))

    async def race(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        gate.append(asyncio.Event())
        first = asyncio.ensure_future(client.get(GROUPS, headers=bearer("anna")))
        for _ in range(500):  # the first group's statement answered, its result held
            if seen:
                break
            await asyncio.sleep(0.01)
        pg_world.fleet.register_partner_user(OPS, "LOC-1", "cleo@LOC-1")  # committed
        state(pg_world).views.catch_up()
        second = asyncio.ensure_future(client.get(GROUPS, headers=bearer("cleo")))
        await asyncio.sleep(0.05)  # the second request has joined
        gate[0].set()
        return await first, await second

    [(first, second)] = on_one_loop(pg_world, race)

    assert first.status_code == 200
    assert second.status_code == 200, second.text  # admitted: the commit came before it
    assert len(seen) >= 2 and seen[1][0] >= seen[0][0]
    assert reads.failures == 0


# --- a query that hangs behind a lock ------------------------------------------------


def waiting_on_lock(conn: psycopg.Connection[Any], locker: int) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND pid <> %s AND query LIKE %s",
        (locker, "%unnest(%::uuid[])%"),
    ).fetchone()
    return 0 if row is None else int(row[0])


def test_timed_out_loop_queries_leave_no_backend_waiting_on_the_server(
    pg_world: World,  # noqa: F811
    postgres_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lock held on pf_tracking (a migration, a rebuild's TRUNCATE): each loop query times
    out client-side and the connection is dropped; the server must not keep one backend
    per attempt waiting on the lock (they would pile up, one every QUERY_SECONDS +
    RETRY_SECONDS, until max_connections is reached and every service is refused)."""
    monkeypatch.setattr(loop_reads_module, "QUERY_SECONDS", 0.3)
    monkeypatch.setattr(loop_reads_module, "RETRY_SECONDS", 0.0)
    reads = state(pg_world).loop_reads
    conninfo = pg_conn.conninfo(postgres_settings.storage.env, "test")
    schema = postgres_settings.storage.schema
    failed: list[str] = []

    async def attempts() -> None:
        for _ in range(4):
            try:
                assert LOC1 is not None
                await reads.read(LOC1)
            except LoopReadError as error:
                failed.append(str(error))

    with psycopg.connect(conninfo) as locker, psycopg.connect(conninfo, autocommit=True) as probe:
        locker.execute(f'LOCK TABLE "{schema}".pf_tracking IN ACCESS EXCLUSIVE MODE')
        locker_pid = locker.info.backend_pid
        try:
            asyncio.run(attempts())
            left = waiting_on_lock(probe, locker_pid)
            for _ in range(100):  # the server's own timeout ends them a moment later
                if left <= 0:
                    break
                time.sleep(0.05)
                left = waiting_on_lock(probe, locker_pid)
        finally:
            locker.rollback()

    assert len(failed) == 4  # every attempt answered by the thread path, none hung
    assert left == 0, f"{left} backends still waiting on the lock"


@pytest.fixture
def loop_reads_alone(pg_world: World) -> Iterator[LoopReads]:  # noqa: F811
    reads = state(pg_world).loop_reads
    yield reads
    reads.close()
