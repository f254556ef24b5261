"""R-CON-4, R-PAR-2 over HTTP: consent exports streamed as JSON Lines and CSV, checked before
the first byte, resumed `after` a position, read on one thread (infra/http/streaming.py)."""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from handlers import PartnerFleet
from infra.http.streaming import streamed
from projections.consent import HISTORY_COLUMNS
from tests.unit.audit_http import api_of, read, world
from tests.unit.http_client import problem_of


@pytest.fixture
def fleet() -> PartnerFleet:
    """The world, in memory."""
    return world()


@pytest.fixture
def api(fleet: PartnerFleet) -> TestClient:
    """A client of the world."""
    return api_of(fleet)


def export(api: TestClient, fleet: PartnerFleet, path: str, name: str, **params: Any) -> Any:
    """The answer of an export, caught up."""
    return read(api, fleet, path, name, **params)


def test_r_con_4_a_json_lines_export_carries_positions_and_resumes_after_one(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-CON-4: one record a line, store order; `after` the second line gives the rest."""
    whole = export(api, fleet, "/audit/consent-history/export", "auditor", customer_id="C1")
    lines = [json.loads(line) for line in whole.text.splitlines()]

    rest = export(
        api,
        fleet,
        "/audit/consent-history/export",
        "auditor",
        customer_id="C1",
        after=lines[1]["position"],
    )

    assert whole.headers["content-type"] == "application/jsonl"
    assert len(lines) == 5
    assert set(lines[0]) == set(HISTORY_COLUMNS)
    assert [json.loads(line) for line in rest.text.splitlines()] == lines[2:]


def test_r_con_4_a_customer_exports_its_own_history_as_csv(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-PAR-2, R-CON-4: CSV with the history columns first, one record a line."""
    answer = export(api, fleet, "/customers/C2/consent-history/export", "globex", format="csv")

    table = list(csv.DictReader(io.StringIO(answer.text)))
    assert answer.headers["content-disposition"] == 'attachment; filename="consent-history.csv"'
    assert answer.text.splitlines()[0] == ",".join(HISTORY_COLUMNS)
    assert [(r["serial"], r["action"]) for r in table] == [("S9", "linked"), ("S9", "granted")]


@pytest.mark.parametrize(
    ("path", "name", "params", "status"),
    [
        ("/audit/consent-history/export", "anna", {"serial": "S1"}, 403),
        ("/audit/consent-history/export", "auditor", {"serial": "S404"}, 404),
        ("/customers/C2/consent-history/export", "acme", {}, 404),
        ("/audit/consent-history/export", "auditor", {"serial": "S1", "after": "-1"}, 422),
    ],
    ids=["partner", "unknown device", "other customer", "negative after"],
)
def test_r_con_4_a_refused_export_is_a_problem_before_the_first_byte(
    api: TestClient,
    fleet: PartnerFleet,
    path: str,
    name: str,
    params: dict[str, str],
    status: int,
) -> None:
    """R-CON-4: checked before streaming: a problem document, never a broken 200."""
    answer = export(api, fleet, path, name, **params)

    assert problem_of(answer)["status"] == status


def test_r_con_4_the_views_are_free_again_after_an_export_on_sqlite(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-CON-4: the export's transaction is opened and closed on its own thread, so SQLite's
    lock is released when it ends (and a read after it is answered)."""
    for _ in range(3):
        done = export(api, fleet, "/audit/consent-history/export", "auditor", serial="S1")
        assert done.status_code == 200

    after = read(api, fleet, "/audit/consent-history", "auditor", serial="S2")

    assert [r["action"] for r in after.json()["items"]] == ["linked"]


class Traced:
    """Rows that note the thread of each step (first row, each next, the close)."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []  # objects: an ident is reused
        self.closed = threading.Event()

    def rows(self) -> Iterator[dict[str, int]]:
        """Three rows, as a query generator holding a transaction would give them."""
        try:
            for position in (1, 2, 3):
                self.threads.append(threading.current_thread())
                yield {"position": position}
        finally:
            self.threads.append(threading.current_thread())
            self.closed.set()


def started_elsewhere(rows: Iterator[dict[str, int]]) -> StreamingResponse:
    """`streamed(rows)` called on another thread, as a route runs on one of a pool's."""
    with ThreadPoolExecutor(1) as route:
        return route.submit(streamed, rows, "jsonl", "export").result()


async def body_of(response: StreamingResponse) -> list[str]:
    """The body's chunks, as Starlette would take them."""
    return [str(chunk) async for chunk in response.body_iterator]


def test_r_con_4_an_exports_rows_are_read_and_closed_on_one_thread() -> None:
    """R-CON-4: a read-model transaction belongs to the thread that opened it (SQLite's lock
    is a thread's): the first row, every next one and the close run on one thread."""
    traced = Traced()
    response = started_elsewhere(traced.rows())

    chunks = asyncio.run(body_of(response))

    assert [json.loads(c)["position"] for c in chunks] == [1, 2, 3]
    assert len(traced.threads) == 4
    assert all(thread is traced.threads[0] for thread in traced.threads)


def test_r_con_4_an_export_dropped_unsent_closes_its_rows_on_their_thread() -> None:
    """R-CON-4: a response never sent (the client went away first) still ends the export's
    transaction, on the thread that opened it."""
    traced = Traced()
    response = started_elsewhere(traced.rows())

    del response
    gc.collect()

    assert traced.closed.wait(timeout=10)
    assert all(thread is traced.threads[0] for thread in traced.threads)
