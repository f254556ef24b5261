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
first row's keys); nested values are written as JSON text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any, Literal

from fastapi.responses import StreamingResponse
from pydantic_core import to_jsonable_python

Format = Literal["jsonl", "csv"]
MEDIA_TYPES: dict[str, str] = {"jsonl": "application/jsonl", "csv": "text/csv; charset=utf-8"}


def streamed(
    rows: Iterable[Any], fmt: Format, filename: str, columns: Sequence[str] | None = None
) -> StreamingResponse:
    """The rows as a streamed download; the first row is read before answering."""
    iterator = iter(rows)
    first = next(iterator, None)
    ahead = [] if first is None else [first]
    lines = _jsonl(chain(ahead, iterator)) if fmt == "jsonl" else _csv(ahead, iterator, columns)
    return StreamingResponse(
        _closing(lines, iterator),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'},
    )


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
    return str(value)


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
