"""R-CON-4: consent history exports, streamed in store order from a server-side cursor.

An export is checked when it is asked for (the scope, the device, the period), before its
first row: a caller starting a download learns of a refusal before any byte is sent. Its
rows then come from `Tx.stream` one at a time, so memory stays flat however long the
history is. Each row carries its store `position`; an export resumed `after` the last
position received continues where a broken download stopped.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from json.encoder import (  # type: ignore[attr-defined]
    c_make_encoder,
    encode_basestring_ascii,
)
from typing import Any

from domain.base import Msg
from handlers.access import AuditScope, CustomerScope
from projections.base import QueryError, Tx
from projections.consent import HISTORY_COLUMNS
from projections.consent_queries import ConsentAnswer, Row, history_statement, record_of

FORMATS = ("jsonl", "csv")
# R-CON-3: an answer to "was consent in effect for D and P at T?" as one flat row; the
# deciding records and later corrections are named by their store positions.
ANSWER_COLUMNS = (
    "serial",
    "partner",
    "at",
    "in_effect",
    "consent_granted",
    "partner_linked",
    "link_role",
    "linked_since",
    "deciding_positions",
    "later_correction_positions",
)


def consent_export(
    tx: Tx,
    scope: AuditScope | CustomerScope,
    *,
    serial: str | None = None,
    customer_id: str | None = None,
    partner: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: int = 0,
) -> Iterator[Row]:
    """R-CON-4: every history record `consent_queries.history` would page through, in store
    order, after store position `after` (0: from the start).

    Raises, on the call and before any row, what `history` raises (`NotFoundError`,
    `MomentError`, `QueryError`) and `QueryError` for a negative or non-integer `after`.
    Read the rows inside the transaction `tx` belongs to.
    """
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise QueryError(
            Msg("Resume after a store position (0 or more), not {after!r}.", after=after)
        )
    statement, params = history_statement(
        tx, scope, serial=serial, customer_id=customer_id, partner=partner, since=since, until=until
    )
    return _records(tx, f"{statement} AND h.position > ? ORDER BY h.position", [*params, after])


def count_export(
    tx: Tx,
    scope: AuditScope | CustomerScope,
    *,
    serial: str | None = None,
    customer_id: str | None = None,
    partner: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: int = 0,
) -> int:
    """How many records `consent_export` with the same arguments would give (for a
    progress bar); raises what it raises."""
    statement, params = history_statement(
        tx, scope, serial=serial, customer_id=customer_id, partner=partner, since=since, until=until
    )
    [(count,)] = tx.query(
        f"SELECT count(*) FROM ({statement} AND h.position > ?) AS counted", [*params, after]
    )
    return int(count)


def answer_row(answer: ConsentAnswer) -> Row:
    """R-CON-3: the answer as one flat row of ANSWER_COLUMNS (positions joined by ";" so
    a CSV cell holds them)."""
    return {
        "serial": answer.serial,
        "partner": answer.partner,
        "at": answer.at,
        "in_effect": answer.in_effect,
        "consent_granted": answer.consent_granted,
        "partner_linked": answer.partner_linked,
        "link_role": None if answer.link is None else answer.link.role,
        "linked_since": None if answer.link is None else answer.link.since,
        "deciding_positions": _positions(answer.deciding_records),
        "later_correction_positions": _positions(answer.later_corrections),
    }


def _positions(records: list[Row]) -> str:
    return ";".join(str(r["position"]) for r in records)


def _records(tx: Tx, statement: str, params: list[object]) -> Iterator[Row]:
    for row in tx.stream(statement, params):
        yield record_of(row)


def lines(
    records: Iterable[Row],
    form: str,
    columns: Sequence[str] = HISTORY_COLUMNS,
    *,
    header: bool = True,
) -> Iterator[str]:
    """The records as lines of `form` ("jsonl" or "csv", with a header line unless
    `header` is False); QueryError for another form."""
    if form == "jsonl":
        return jsonl_lines(records)
    if form == "csv":
        return csv_lines(records, columns, header=header)
    raise QueryError(
        Msg(
            "Unknown export format {form!r}; use one of {formats}.",
            form=form,
            formats=", ".join(FORMATS),
        )
    )


def jsonl_lines(records: Iterable[Row]) -> Iterator[str]:
    """R-CON-4: one JSON object a line (keys sorted, ending in a newline), as records come.

    Each line is what `json.dumps(record, sort_keys=True)` writes, from one C encoder made
    once per export (json.dumps builds a new encoder for every call: issue 11).
    """
    encode = _sorted_json()
    for record in records:
        yield "".join(encode(record, 0)) + "\n"


def _sorted_json() -> Any:
    """json.dumps(…, sort_keys=True)'s C encoder (no circular check: records are flat)."""
    if c_make_encoder is None:  # an interpreter without json's C speedups
        encoder = json.JSONEncoder(sort_keys=True)
        return lambda value, _level: [encoder.encode(value)]
    default = json.JSONEncoder().default  # raises TypeError, as json.dumps does
    return c_make_encoder(
        None, default, encode_basestring_ascii, None, ": ", ", ", True, False, True
    )


def csv_lines(
    records: Iterable[Row], columns: Sequence[str] = HISTORY_COLUMNS, *, header: bool = True
) -> Iterator[str]:
    """R-CON-4: a CSV header line (`columns`, unless `header` is False: a resumed export
    appends to a file that has it), then one line a record, as they come (the lines
    `csv.DictWriter` writes: a missing column is empty, an unknown one a ValueError)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    known = frozenset(columns)
    if header:
        writer.writerow(columns)
        yield _taken(out)
    for record in records:
        if not known.issuperset(record):
            raise ValueError(f"dict contains fields not in fieldnames: {set(record) - known}")
        writer.writerow([record.get(column, "") for column in columns])
        yield _taken(out)


def _taken(out: io.StringIO) -> str:
    line = out.getvalue()
    out.seek(0)
    out.truncate()
    return line


def export_jsonl(records: Iterable[Row]) -> str:
    """R-CON-4: the records as JSON Lines, one record a line."""
    return "".join(jsonl_lines(records))


def export_csv(records: Iterable[Row]) -> str:
    """R-CON-4: the records as CSV with a header row."""
    return "".join(csv_lines(records))
