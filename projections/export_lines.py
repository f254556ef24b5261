"""R-CON-4: export text (JSON Lines, CSV) of flat records, or of rows a batch at a time.

`lines` writes records (dicts) a line each; `encoded` writes batches of rows (tuples in the
columns' order) a chunk each, byte for byte the same text, made a column at a time rather
than a row at a time (issue 11: the consent export of 1,000,000 records). JSON Lines are
what `json.dumps(record, sort_keys=True)` writes, a line a record; CSV what
`csv.DictWriter(…, lineterminator="\n")` writes, with a cell a spreadsheet would run as a
formula written after an apostrophe (`spreadsheet_cell`) and a cell holding a carriage
return quoted (`_write`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from json.encoder import (  # type: ignore[attr-defined]
    c_make_encoder,
    encode_basestring_ascii,
)
from typing import Any, NamedTuple

from domain.base import Msg
from projections.base import QueryError
from projections.consent import HISTORY_COLUMNS

FORMATS = ("jsonl", "csv")
Row = dict[str, Any]

# A CSV cell a spreadsheet would take for a formula: text starting with one of these
# (OWASP, "CSV Injection"). Written with a leading apostrophe, so that it is shown as the
# text it is; JSON Lines carry every text exactly (session 21: an auditor's correction
# `reason` of `=HYPERLINK(...)` reached the customer's CSV export as a live formula).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """`value` as a CSV cell: text a spreadsheet would run as a formula (`FORMULA_STARTS`)
    with "'" before it; anything else as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _spreadsheet_rows(rows: Iterable[Sequence[Any]]) -> list[Sequence[Any]]:
    """The rows with each cell as `spreadsheet_cell` writes it (a row with none to change
    is kept as it is)."""
    return [
        [spreadsheet_cell(value) for value in row]
        if any(isinstance(v, str) and v.startswith(FORMULA_STARTS) for v in row)
        else row
        for row in rows
    ]


def _has_cr(row: Sequence[Any]) -> bool:
    return any(isinstance(value, str) and "\r" in value for value in row)


def _write(writer: Any, out: io.StringIO, row: Sequence[Any]) -> None:
    """`row` as a CSV line ending in "\n", a cell holding a carriage return quoted.

    csv's writer quotes a cell holding a character of its line terminator ("\n" here),
    not a lone "\r": such a cell was written bare and split its line in two for every
    reader (session 21). Written as a "\r\n" writer writes it (which quotes it), ending
    in "\n"; any other row as before.
    """
    if not _has_cr(row):
        writer.writerow(row)
        return
    line = io.StringIO()
    csv.writer(line, lineterminator="\r\n").writerow(row)
    out.write(line.getvalue()[:-2] + "\n")


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
    raise _unknown(form)


def _unknown(form: str) -> QueryError:
    return QueryError(
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
    `csv.DictWriter` writes: a missing column is empty, an unknown one a ValueError), each
    cell as `spreadsheet_cell` writes it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    known = frozenset(columns)
    if header:
        writer.writerow(columns)
        yield _taken(out)
    for record in records:
        if not known.issuperset(record):
            raise ValueError(f"dict contains fields not in fieldnames: {set(record) - known}")
        _write(writer, out, [spreadsheet_cell(record.get(column, "")) for column in columns])
        yield _taken(out)


def _taken(out: io.StringIO) -> str:
    line = out.getvalue()
    out.seek(0)
    out.truncate()
    return line


class Chunk(NamedTuple):
    """Export text of `records` whole records (a header line counts none)."""

    text: str
    records: int


def encoded(
    batches: Iterable[Sequence[Sequence[Any]]],
    form: str,
    columns: Sequence[str] = HISTORY_COLUMNS,
    *,
    header: bool = True,
) -> Iterator[Chunk]:
    """R-CON-4: batches of rows (values in `columns`' order) as chunks of `form` text, a
    chunk a batch: byte for byte what `lines(…)` writes for the same rows as records
    (`header` as there), made a column at a time (issue 11). QueryError for another form,
    ValueError for a row whose length is not that of `columns`."""
    if form == "csv":
        return _csv_chunks(batches, columns, header=header)
    if form == "jsonl":
        return (Chunk(_jsonl_text(batch, columns), len(batch)) for batch in batches)
    raise _unknown(form)


def _csv_chunks(
    batches: Iterable[Sequence[Sequence[Any]]], columns: Sequence[str], *, header: bool
) -> Iterator[Chunk]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(columns)
        yield Chunk(_taken(out), 0)
    for batch in batches:
        _check_widths(batch, len(columns))
        rows = _spreadsheet_rows(batch)
        if any(map(_has_cr, rows)):
            for row in rows:
                _write(writer, out, row)
        else:
            writer.writerows(rows)
        yield Chunk(_taken(out), len(batch))


def _jsonl_text(rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> str:
    """The rows' JSON Lines: each line `{"key": value, …}\n`, keys sorted, values as
    `json.dumps` writes them. Built as one list of pieces (the text between values, and
    the values, column by column through extended slices) joined once: no Python call per
    row, and none per value of a column of plain text (`_plain`)."""
    width, count = len(columns), len(rows)
    _check_widths(rows, width)
    flat = list(chain.from_iterable(rows))
    stride = 2 * width + 1  # the text before each value, each value, then "}\n"
    pieces: list[Any] = [None] * (stride * count)
    closing = ""  # the quote a plain value before this one leaves open
    for place, index in enumerate(sorted(range(width), key=columns.__getitem__)):
        values, plain = _json_column(flat[index::width])
        lead = "{" if place == 0 else ", "
        opening = '"' if plain else ""
        between = f"{closing}{lead}{encode_basestring_ascii(columns[index])}: {opening}"
        pieces[2 * place :: stride] = [between] * count
        pieces[2 * place + 1 :: stride] = values
        closing = opening
    pieces[stride - 1 :: stride] = [closing + "}\n"] * count
    return "".join(pieces)


def _check_widths(rows: Sequence[Sequence[Any]], width: int) -> None:
    if set(map(len, rows)) - {width}:
        raise ValueError(f"Every row must have {width} values, one for each column.")


def _json_column(values: list[Any]) -> tuple[list[str], bool]:
    """The values' JSON texts, or (True) the values themselves when each is text that JSON
    writes as itself between quotes (`_plain`)."""
    try:
        joined = "".join(values)  # a TypeError unless every value is text
    except TypeError:
        return _json_values(values), False
    if _plain(joined):
        return values, True
    return list(map(encode_basestring_ascii, values)), False


def _plain(text: str) -> bool:
    """Whether JSON (ensure_ascii) writes `text` as itself between quotes: printable ASCII
    (" " to "~") with no quote or backslash."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


_ONE_TEXT = frozenset({str, int, type(None)})  # no two values of these types are equal


def _json_values(values: list[Any]) -> list[str]:
    """Each value as `json.dumps(value, sort_keys=True)` writes it (ensure_ascii); each
    distinct value of a column of text, integers and nulls is written once."""
    kinds = set(map(type, values))
    if kinds == {int}:
        return list(map(int.__repr__, values))
    if kinds <= _ONE_TEXT:
        written = {value: _json_value(value) for value in set(values)}
        return list(map(written.__getitem__, values))
    return [_json_value(value) for value in values]


def _json_value(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is str:
        text: str = encode_basestring_ascii(value)
        return text
    if type(value) is int:
        return int.__repr__(value)
    return json.dumps(value, sort_keys=True)


def export_jsonl(records: Iterable[Row]) -> str:
    """R-CON-4: the records as JSON Lines, one record a line."""
    return "".join(jsonl_lines(records))


def export_csv(records: Iterable[Row]) -> str:
    """R-CON-4: the records as CSV with a header row."""
    return "".join(csv_lines(records))
