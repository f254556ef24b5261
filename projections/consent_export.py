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
from collections.abc import Iterable, Iterator
from datetime import datetime

from handlers.access import AuditScope, CustomerScope
from projections.base import QueryError, Tx
from projections.consent import HISTORY_COLUMNS
from projections.consent_queries import Row, history_statement, record_of

FORMATS = ("jsonl", "csv")


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
        raise QueryError(f"Resume after a store position (0 or more), not {after!r}.")
    statement, params = history_statement(
        tx, scope, serial=serial, customer_id=customer_id, partner=partner, since=since, until=until
    )
    return _records(tx, f"{statement} AND h.position > ? ORDER BY h.position", [*params, after])


def _records(tx: Tx, statement: str, params: list[object]) -> Iterator[Row]:
    for row in tx.stream(statement, params):
        yield record_of(row)


def lines(records: Iterable[Row], form: str) -> Iterator[str]:
    """The records as lines of `form` ("jsonl" or "csv"); QueryError for another form."""
    if form == "jsonl":
        return jsonl_lines(records)
    if form == "csv":
        return csv_lines(records)
    raise QueryError(f"Unknown export format {form!r}; use one of {', '.join(FORMATS)}.")


def jsonl_lines(records: Iterable[Row]) -> Iterator[str]:
    """R-CON-4: one JSON object a line (keys sorted, ending in a newline), as records come."""
    for record in records:
        yield json.dumps(record, sort_keys=True) + "\n"


def csv_lines(records: Iterable[Row]) -> Iterator[str]:
    """R-CON-4: a CSV header line (HISTORY_COLUMNS), then one line a record, as they come."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    yield _taken(out)
    for record in records:
        writer.writerow(record)
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
