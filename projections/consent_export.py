"""R-CON-4: consent history exports, streamed in store order from a server-side cursor.

An export is checked when it is asked for (the scope, the device, the period), before its
first row: a caller starting a download learns of a refusal before any byte is sent. Its
rows then come from `Tx.stream` as records one at a time (`consent_export`) or as tuples
in lists of BATCH_ROWS (`export_batches`, which `export_lines.encoded` writes a batch at a
time), so memory stays flat however long the history is. Each row carries its store
`position`; an export resumed `after` the last position received continues where a broken
download stopped.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from domain.base import Msg
from handlers.access import AuditScope, CustomerScope
from projections.base import QueryError, Tx
from projections.consent_queries import (
    ConsentAnswer,
    Row,
    Selection,
    history_statement,
    record_of,
)
from projections.export_lines import (
    FORMATS,
    Chunk,
    csv_lines,
    encoded,
    export_csv,
    export_jsonl,
    jsonl_lines,
    lines,
)

__all__ = [  # the text writers are export_lines'; imported from here too
    "ANSWER_COLUMNS",
    "BATCH_ROWS",
    "FORMATS",
    "Chunk",
    "Selection",
    "answer_row",
    "consent_export",
    "count_export",
    "csv_lines",
    "encoded",
    "export_batches",
    "export_csv",
    "export_jsonl",
    "jsonl_lines",
    "lines",
]
BATCH_ROWS = 2_000  # rows an export encodes at a time (issue 11: about 1 MB of text)
READ_AHEAD = 2  # batches read ahead of the writer: memory holds at most 2 + 2 of them
B = TypeVar("B")
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
    tx: Tx, scope: AuditScope | CustomerScope, selection: Selection, *, after: int = 0
) -> Iterator[Row]:
    """R-CON-4: every history record of `selection` `consent_queries.history` would page
    through, in store order, after store position `after` (0: from the start).

    Raises, on the call and before any row, what `history` raises (`NotFoundError`,
    `MomentError`, `QueryError`) and `QueryError` for a negative or non-integer `after`.
    Read the rows inside the transaction `tx` belongs to.
    """
    return _records(_rows(tx, scope, selection, after))


def export_batches(
    tx: Tx,
    scope: AuditScope | CustomerScope,
    selection: Selection,
    *,
    after: int = 0,
    size: int = BATCH_ROWS,
) -> Iterator[list[tuple[Any, ...]]]:
    """R-CON-4: the rows `consent_export` gives as records, as tuples in HISTORY_COLUMNS'
    order, in lists of up to `size` rows, for `encoded` to write a batch at a time (issue
    11). The batches are read on a thread of their own, up to READ_AHEAD batches ahead of
    the caller, so the database's work and the caller's overlap; memory holds a few
    batches, however long the history.

    Raises, on the call and before any row, what `consent_export` raises, and `QueryError`
    for a `size` that is not a positive int; an error while reading (a lost connection)
    is raised to the caller after the batches before it. Read the batches inside the
    transaction `tx` belongs to, and use `tx` for nothing else until they are read or the
    iterator is closed (closing it ends the reading thread and the server-side cursor).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise QueryError(Msg("Read at least one row a batch, not {size!r}.", size=size))
    return read_ahead(_batches(_rows(tx, scope, selection, after), size), READ_AHEAD)


def _rows(
    tx: Tx, scope: AuditScope | CustomerScope, selection: Selection, after: int
) -> Iterator[tuple[Any, ...]]:
    """The export's rows (not yet read), after every check."""
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise QueryError(
            Msg("Resume after a store position (0 or more), not {after!r}.", after=after)
        )
    statement, params = history_statement(tx, scope, selection)
    return tx.stream(f"{statement} AND h.position > ? ORDER BY h.position", [*params, after])


def _batches(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    try:
        while batch := list(islice(rows, size)):
            yield batch
    finally:
        _close(rows)  # ends the server-side cursor at once


def read_ahead(items: Iterator[B], depth: int) -> Iterator[B]:
    """The items, read on a thread of their own up to `depth` (1 or more) ahead of the
    caller, in order. The thread starts with the first `next`; an error it meets is
    raised by the `next` after the items before it; closing the iterator (or finishing
    it) stops the thread and then closes `items` (so a cursor under them ends on time)."""
    handoff: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    reader = threading.Thread(
        target=_read_into, args=(items, handoff, stop), name="export-read-ahead", daemon=True
    )
    reader.start()
    try:
        while (item := handoff.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        reader.join()
        _close(items)


_END = object()


def _close(items: Iterator[Any]) -> None:
    close = getattr(items, "close", None)  # a generator's or a cursor's
    if close is not None:
        close()


@dataclass(frozen=True)
class _Failed:
    error: BaseException


def _read_into(items: Iterator[Any], handoff: queue.Queue[Any], stop: threading.Event) -> None:
    try:
        for item in items:
            if not _handed(handoff, item, stop):
                return
        last: Any = _END
    except BaseException as error:  # raised again on the caller's thread
        last = _Failed(error)
    _handed(handoff, last, stop)


def _handed(handoff: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put `item` once there is room; False if the caller stopped reading first."""
    while not stop.is_set():
        try:
            handoff.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def count_export(
    tx: Tx, scope: AuditScope | CustomerScope, selection: Selection, *, after: int = 0
) -> int:
    """How many records `consent_export` with the same arguments would give (for a
    progress bar); raises what it raises."""
    statement, params = history_statement(tx, scope, selection)
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


def _records(rows: Iterator[tuple[Any, ...]]) -> Iterator[Row]:
    for row in rows:
        yield record_of(row)
