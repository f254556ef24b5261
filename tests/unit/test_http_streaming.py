"""Issue 9 / R-CON-4: exports stream as JSON Lines or CSV, checked before the first byte."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from structlog.testing import capture_logs

from handlers.access import ForbiddenError
from infra.http.routing import FleetRoute
from infra.http.streaming import Format, streamed
from tests.scenarios import in_memory_fleet
from tests.unit.http_client import client, problem_of

exports = APIRouter(route_class=FleetRoute)
AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class HistoryRow:
    """A stand-in for a consent history row: its store position first."""

    position: int
    serial: str
    at: datetime
    devices: list[str]


def rows(kind: str) -> Iterator[HistoryRow]:
    """Rows the way a query generator yields them: the scope check runs at the first next()."""
    if kind == "forbidden":
        raise ForbiddenError("The role partner_user may not read consent history (R-CON-3).")
    yield HistoryRow(1, "S1", AT, ["S1", "S2"])
    if kind == "breaks":
        raise RuntimeError("the store went away mid-export")
    yield HistoryRow(2, 'S"2,', AT, [])


@exports.get("/test-exports/{kind}")
def export(kind: str, fmt: Format = "jsonl") -> StreamingResponse:
    """Streams the rows of `kind`."""
    return streamed(rows(kind), fmt, "consent-history")


def test_r_con_4_a_refused_export_is_a_problem_not_a_broken_download() -> None:
    """R-CON-4: the check raises before the first byte: 403 problem+json, no 200."""
    answer = client(in_memory_fleet(), None, exports).get("/test-exports/forbidden")

    assert (answer.status_code, problem_of(answer)["rule"]) == (403, "R-CON-3")


def test_r_con_4_json_lines_carry_each_row_with_its_position() -> None:
    """R-CON-4: one JSON object per line, times ISO 8601, positions to resume `after`."""
    answer = client(in_memory_fleet(), None, exports).get("/test-exports/all")

    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert answer.headers["content-type"] == "application/jsonl"
    assert [line["position"] for line in lines] == [1, 2]
    assert lines[0] == {
        "position": 1,
        "serial": "S1",
        "at": "2025-06-01T12:00:00Z",
        "devices": ["S1", "S2"],
    }


def test_r_con_4_csv_has_a_header_and_quotes_what_needs_quoting() -> None:
    """R-CON-4: CSV with the columns first; commas and quotes survive a round trip."""
    answer = client(in_memory_fleet(), None, exports).get(
        "/test-exports/all", params={"fmt": "csv"}
    )

    table = list(csv.reader(io.StringIO(answer.text)))
    assert answer.headers["content-disposition"] == 'attachment; filename="consent-history.csv"'
    assert table[0] == ["position", "serial", "at", "devices"]
    assert table[1] == ["1", "S1", "2025-06-01T12:00:00Z", '["S1","S2"]']
    assert table[2][1] == 'S"2,'


def test_r_con_4_a_failure_after_the_first_byte_ends_the_body_and_is_logged() -> None:
    """R-CON-4: the status is sent already: the download stops after the rows sent, and the
    error is logged with the request id (the client resumes `after` the last position)."""
    with capture_logs() as logs:
        answer = client(in_memory_fleet(), None, exports).get("/test-exports/breaks")

    assert answer.status_code == 200
    assert [json.loads(line)["position"] for line in answer.text.splitlines()] == [1]
    assert [e["request_id"] for e in logs if e["event"] == "response_broken_off"] == [
        answer.headers["x-request-id"]
    ]
