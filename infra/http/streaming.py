"""Streamed exports (JSON Lines, CSV), checked before the first byte (R-CON-4).

An export route builds its row iterator (a generator that checks the scope and opens its
server-side cursor before its first row) and returns `streamed(rows, fmt, filename)`.
`streamed` takes the first row *now*: a refusal (403, 404), a bad argument or a store that
is away raises before any byte is sent and becomes a problem response like any other
error. After that the status is sent; a failure later ends the body early and is logged
with the request id (a client sees a truncated download and resumes with `after`, each line
carrying its store position).

Rows are mappings, dataclasses or pydantic models; values are written as JSON values
(times ISO 8601, ids as text). CSV has a header line of the columns (those given, else the
first row's keys); nested values are written as JSON text, and a cell a spreadsheet would
run as a formula after an apostrophe (`projections.export_lines.spreadsheet_cell`).

The rows are read on one thread of the export's own, first row to last and the close: a
read-model transaction is held by the thread that opened it (SQLite's lock is a thread's),
while Starlette would step a plain iterator on any thread of its pool. `in_transaction`
holds one read-model transaction open while the rows stream.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from typing import Any, Literal, TypeVar

from fastapi.responses import StreamingResponse
from pydantic_core import to_jsonable_python
from starlette.types import Receive, Scope, Send

from infra.storage.viewdb import ViewDB
from projections.base import Tx
from projections.export_lines import spreadsheet_cell

Format = Literal["jsonl", "csv"]
MEDIA_TYPES: dict[str, str] = {"jsonl": "application/jsonl", "csv": "text/csv; charset=utf-8"}
T = TypeVar("T")


def streamed(
    rows: Iterable[Any], fmt: Format, filename: str, columns: Sequence[str] | None = None
) -> StreamingResponse:
    """The rows as a streamed download; the first row is read before answering."""
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export")
    iterator = iter(rows)
    try:
        first = reader.submit(next, iterator, None).result()
    except BaseException:
        reader.shutdown(wait=False)
        raise
    ahead = [] if first is None else [first]
    lines = _jsonl(chain(ahead, iterator)) if fmt == "jsonl" else _csv(ahead, iterator, columns)
    return _Download(
        _closing(lines, iterator),
        reader,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'},
    )


def in_transaction(views: ViewDB, rows: Callable[[Tx], Iterable[T]]) -> Iterator[T]:
    """The rows `rows(tx)` gives, read within one read-model transaction that stays open
    until the last row is taken or the iterator is closed (R-CON-4: one consistent export)."""
    with views.transaction() as tx:
        yield from rows(tx)


class _Download(StreamingResponse):
    """A streamed body whose lines are made on the `reader` thread alone, and closed there
    however the response ends (finished, broken off, or never sent)."""

    def __init__(self, lines: Iterator[str], reader: ThreadPoolExecutor, **kwargs: Any) -> None:
        super().__init__(_on_reader(lines, reader), **kwargs)
        # Once: when the response has been sent or broke off, or when it is dropped unsent.
        self._close = weakref.finalize(self, _close_on, reader, lines)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._close()


def _close_on(reader: ThreadPoolExecutor, lines: Iterator[str]) -> None:
    """Close the lines (and the rows under them) on their reader, queued after a line still
    being read, and let the reader's thread end."""
    close = getattr(lines, "close", None)
    if close is not None:
        reader.submit(close)
    reader.shutdown(wait=False)


async def _on_reader(lines: Iterator[str], reader: ThreadPoolExecutor) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    while (line := await loop.run_in_executor(reader, next, lines, None)) is not None:
        yield line


def _plain(row: Any) -> dict[str, Any]:
    value = to_jsonable_python(row)
    if not isinstance(value, dict):
        raise TypeError(f"An export row must be a mapping, dataclass or model, not {type(row)}.")
    return value


def _jsonl(rows: Iterator[Any]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(_plain(row), ensure_ascii=False, separators=(",", ":")) + "\n"


def _csv(ahead: list[Any], rest: Iterator[Any], columns: Sequence[str] | None) -> Iterator[str]:
    names = list(columns or (_plain(ahead[0]) if ahead else []))
    yield _csv_line(names)
    for row in chain(ahead, rest):
        plain = _plain(row)
        yield _csv_line([_cell(plain.get(name)) for name in names])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text: str = spreadsheet_cell(str(value))
    return text


def _csv_line(cells: Sequence[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


def _closing(lines: Iterator[str], source: Iterator[Any]) -> Iterator[str]:
    """The lines; the source (a generator holding a transaction) is closed however it ends."""
    try:
        yield from lines
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
