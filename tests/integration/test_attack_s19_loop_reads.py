"""Attack on the page on the event loop (infra/http/loop_reads.py, session 19): tenant
isolation within one grouped query, freshness against a query in flight, a query that
hangs behind a lock, and hostile forms answered as the thread path answers them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import psycopg
import pytest

from handlers.access import Claims, claimed_partner
from infra.http import loop_reads as loop_reads_module
from infra.http.loop_reads import LoopReadError, LoopReads
from infra.settings import Settings
from infra.storage import pg_conn
from tests.actors import partner_user
from tests.integration.test_http_loop_reads_pg import (  # noqa: F401 (the fixture)
    on_one_loop,
    pg_world,
    state,
)
from tests.scenarios import OPS
from tests.unit.test_http_customers import C1, GROUPS, TOKENS, World

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
    assert b"C9" in alone[1].content
    assert b"C9" not in alone[0].content
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
    assert len(seen) >= 2
    assert seen[1][0] > seen[0][0]  # the later snapshot: the commit in it
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


class FreezingProxy:
    """A TCP proxy to PostgreSQL that can stop passing bytes (a server or network that
    hangs: no answer, no reset), on the running loop."""

    def __init__(self) -> None:
        self.frozen = False
        self.port = 0
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 5432)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    while self.frozen:
                        await asyncio.sleep(0.05)
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


async def answered_through_a_proxy(
    world: World, schema: str
) -> tuple[FreezingProxy, LoopReads, tuple[tuple[int, ...], int | None]]:
    """A started FreezingProxy, LoopReads of `world`'s views connected through it, and the
    first read's answer (so the connection is open before a test freezes the proxy)."""
    proxy = FreezingProxy()
    await proxy.start()
    conninfo = f"host=127.0.0.1 port={proxy.port} user=postgres dbname=test"
    views = state(world).loop_reads
    reads = LoopReads(conninfo, schema, views._names, state(world).events_table)
    assert LOC1 is not None
    return proxy, reads, await reads.read(LOC1)


def test_a_server_that_stops_answering_fails_the_group_within_its_bound(
    postgres_settings: Settings,
    pg_world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing hangs: a server that stops answering mid-query (no reset) fails the group
    after QUERY_SECONDS, so its requests go to the thread path then, not after psycopg's
    cancel attempt (a new connection to the same silent server, up to 5 s) and its wait
    for the cancelled query's end (up to 5 s more)."""
    monkeypatch.setattr(loop_reads_module, "QUERY_SECONDS", 0.5)
    monkeypatch.setattr(loop_reads_module, "RETRY_SECONDS", 0.0)
    schema = postgres_settings.storage.schema
    outcome: list[object] = []

    async def run() -> None:
        proxy, reads, first = await answered_through_a_proxy(pg_world, schema)
        outcome.append(first)  # connected, answered
        assert LOC1 is not None
        proxy.frozen = True
        started = time.monotonic()
        try:
            await asyncio.wait_for(reads.read(LOC1), 4.0)  # generous: 8 x QUERY_SECONDS
        except LoopReadError:
            outcome.append("failed over")
        except TimeoutError:
            outcome.append("hung")
        outcome.append(time.monotonic() - started)
        reads.close()
        proxy.frozen = False
        proxy.close()

    asyncio.run(run())

    assert outcome[1] == "failed over", outcome


HOSTILE = [
    ("GET", GROUPS, "anna"),
    ("HEAD", GROUPS, "anna"),
    ("GET", GROUPS + "?limit=1&limit=2", "anna"),
    ("GET", GROUPS + "?limit=0", "anna"),
    ("GET", GROUPS + "?limit=%31", "anna"),
    ("GET", GROUPS + "?limit=999999", "anna"),
    ("GET", GROUPS + "?cursor=", "anna"),
    ("GET", GROUPS + "?cursor=x.y.z", "anna"),
    ("GET", GROUPS + "?cursor=a&cursor=b", "anna"),
    ("GET", "/partners/LOC%2D1/customer-groups", "anna"),
    ("GET", "/partners/LOC-1%00/customer-groups", "anna"),
    ("GET", "/partners/LOC-2/customer-groups", "anna"),
    ("GET", GROUPS, "otto"),
    ("GET", GROUPS, "c1"),
    ("GET", GROUPS, "ops"),
    ("GET", GROUPS, "nobody"),
    ("GET", GROUPS, ""),
]


def test_hostile_forms_get_the_thread_paths_answers_on_the_loop(
    pg_world: World,  # noqa: F811
) -> None:
    """Each form twice (the second on a learned path, a warm cache), on the loop and then
    with the loop path off (the thread path of session 18): the same statuses and bodies."""
    app_state = state(pg_world)

    def answers() -> list[tuple[int, Any]]:
        got = []
        for method, path, who in HOSTILE * 2:
            headers = {"Authorization": f"Bearer {who}"} if who else {}
            answer = pg_world.api.request(method, path, headers=headers)
            got.append(seen(answer) if answer.content else (answer.status_code, None))
        return got

    on_loop = answers()
    loop_reads, app_state.loop_reads = app_state.loop_reads, None
    try:
        on_threads = answers()
    finally:
        app_state.loop_reads = loop_reads

    assert on_loop == on_threads
    assert [status for status, _ in on_loop[:4]] == [200, 405, 200, 422]


def test_requests_waiting_behind_a_failed_query_are_not_sent_another(
    postgres_settings: Settings,
    pg_world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request that joined while a query was timing out waits for that query only: once it
    failed, the next group is not sent to the silent server for another QUERY_SECONDS (its
    requests waited twice the bound before the thread path) while the loop path rests."""
    monkeypatch.setattr(loop_reads_module, "QUERY_SECONDS", 0.5)
    schema = postgres_settings.storage.schema
    outcome: list[object] = []

    async def run() -> None:
        proxy, reads, _ = await answered_through_a_proxy(pg_world, schema)  # connected
        assert LOC1 is not None
        proxy.frozen = True
        first = asyncio.ensure_future(reads.read(LOC1))
        await asyncio.sleep(0.1)  # the first group is in flight
        second = asyncio.ensure_future(reads.read(LOC1))
        for waiting in (first, second):
            try:
                await asyncio.wait_for(waiting, 4.0)
            except LoopReadError:
                outcome.append("failed over")
            except TimeoutError:
                outcome.append("hung")
        outcome.append(reads.failures)  # one per group sent and failed
        reads.close()
        proxy.frozen = False
        proxy.close()

    asyncio.run(run())

    assert outcome == ["failed over", "failed over", 1]  # no second try of a silent server


def test_a_default_view_and_favourite_chosen_before_the_request_shape_only_that_users_page(
    pg_world: World,  # noqa: F811
) -> None:
    """R-FAV-2, R-FAV-3, R-FAV-4: anna marks C1 favourite and makes Favorites Only her
    default; her next page (no `view`: her default) shows C1 only, while ben's, in the same
    group of requests and with a cached page from before, still shows every customer."""
    before = {who: pg_world.api.get(GROUPS, headers=bearer(who)) for who in ("anna", "ben")}
    anna = partner_user(pg_world.fleet, "LOC-1", "anna@LOC-1")
    pg_world.fleet.add_favourite(anna, C1)
    pg_world.fleet.choose_default_view(anna, "favorites_only")
    state(pg_world).views.catch_up()  # committed before the requests arrive

    async def together(client: httpx.AsyncClient) -> list[httpx.Response]:
        calls = [client.get(GROUPS, headers=bearer(who)) for who in ("anna", "ben") * 3]
        return list(await asyncio.gather(*calls))

    [answers] = on_one_loop(pg_world, together)

    ids = [[item["customer_id"] for item in a.json()["items"]] for a in answers]
    assert [item["customer_id"] for item in before["anna"].json()["items"]] == ["C1", "C2"]
    assert ids == [["C1"], ["C1", "C2"]] * 3
    assert before["ben"].content == answers[1].content
