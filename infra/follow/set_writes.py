"""A batch's view writes on PostgreSQL as COPY and set-based reads (issue 11, rebuilds).

Views write portable row-at-a-time SQL (`INSERT INTO t VALUES (?, ?, 'x')`, `… IN (?, ?)`).
The view database's Tx (infra/storage/viewdb.py) pipelines them and merges INSERTs into
multi-row VALUES, but psycopg parses such a statement's text in Python (thousands of
placeholders, too long for its cache): a third of a rebuild's time. `SetWrites` wraps that
Tx for the view runner on PostgreSQL:

- a run of the same plain `INSERT INTO t VALUES (…)` (placeholders, NULL, integer or
  quoted text literals; values text, integers or NULL) is sent by the Tx's own `copy`
  (`CopyingTx`: `COPY t FROM STDIN` on the transaction's connection, rows written by
  psycopg in C);
- a run of the same `UPDATE t SET a = ?, … WHERE k = ?` on distinct keys becomes one
  `UPDATE t SET a = u.c0 … FROM unnest(?::bigint[], ?::text[]) AS u(…) WHERE t.k = u.c1`
  (the recounts of a batch's groups: one statement, not one per group);
- `IN (?, ?, …)` in a query becomes `= ANY(?::text[])` with one array parameter, so the
  statement text is the same whatever the list's length.

Order is the view database's contract (`_PostgresTx.flush`): writes are buffered until a
query or the end of the transaction; statements on different tables commute, each table's
statements keep their order (the wrapped Tx sends its buffer before each COPY), DDL and
statements with subqueries are barriers nothing moves across. Everything else (ON
CONFLICT, UPDATE, DELETE, short runs, other value types) goes to the wrapped Tx as it came.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from itertools import groupby
from operator import itemgetter
from typing import Any

from infra.storage.viewdb import CopyingTx
from projections.base import Params

Pending = list[tuple[str, tuple[Any, ...]]]
COPY_FROM = 8  # rows: shorter runs go as they came (pipelined by the wrapped Tx)

_VALUES = re.compile(r"^INSERT INTO (\w+) VALUES \((.*)\)$", re.S)
_UPDATE = re.compile(
    r"^UPDATE (\w+) SET (\w+ = \?(?:, \w+ = \?)*) WHERE (\w+ = \?(?: AND \w+ = \?)*)$"
)
_IN_LIST = re.compile(r"IN \((\?(?:, \?)*)\)")
_LITERAL = re.compile(r"^(\?|NULL|-?\d+|'[^'?%,]*')$")


class SetWrites:
    """A Tx (projections.base.Tx) over a view database's `CopyingTx` that merges runs of
    INSERTs into set-based statements; call `flush()` before the transaction commits."""

    def __init__(self, tx: CopyingTx) -> None:
        self.tx = tx
        self._pending: Pending = []
        self.copied = 0  # rows sent by COPY (for tests and profiles)

    def execute(self, statement: str, params: Params = ()) -> None:
        """Buffer one write."""
        self._pending.append((statement, tuple(params)))

    def executemany(self, statement: str, rows: Iterable[Params]) -> None:
        """Buffer one write per row of parameters."""
        self._pending.extend((statement, tuple(r)) for r in rows)

    def query(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Rows of one query, after the buffered writes; IN lists sent as one array."""
        self.flush()
        return self.tx.query(*as_any(statement, params))

    def stream(self, statement: str, params: Params = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of one query as they are read, after the buffered writes."""
        self.flush()
        return self.tx.stream(*as_any(statement, params))

    def flush(self) -> None:
        """Hand the buffered writes to the wrapped Tx, runs of INSERTs sent by COPY."""
        pending, self._pending = self._pending, []
        for segment in _segments(pending):
            for statement, rows in _runs(segment):
                copied = None
                if len(rows) >= COPY_FROM:
                    copied = copy_rows(statement, rows)
                merged = None
                if copied is None and len(rows) >= COPY_FROM:
                    merged = merged_update(statement, rows)
                if merged is not None:
                    self.tx.execute(*merged)
                elif copied is None:
                    self._send(statement, rows)
                else:
                    self._copy(*copied)

    def _send(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        if "IN (?" not in statement:
            self.tx.executemany(statement, rows)
            return
        for row in rows:  # each with an IN list of its own length: one text with arrays
            self.tx.execute(*as_any(statement, row))

    def _copy(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        self.copied += self.tx.copy(table, rows)  # after what the wrapped Tx holds


def copy_rows(
    statement: str, rows: list[tuple[Any, ...]]
) -> tuple[str, list[tuple[Any, ...]]] | None:
    """`INSERT INTO t VALUES (?, 'x', ?)` for many rows as (table, whole table rows for
    COPY, literals filled in), or None when the statement or a value does not fit: not a
    plain INSERT of every column, a literal other than NULL, an integer or simple quoted
    text, a value other than text, an integer (not bool) or None."""
    match = _VALUES.match(statement)
    if match is None or "ON CONFLICT" in statement or "SELECT" in statement:
        return None
    table, values = match.group(1), [v.strip() for v in match.group(2).split(",")]
    if not all(_LITERAL.match(v) for v in values):
        return None
    slots = [i for i, v in enumerate(values) if v == "?"]
    if not set(map(len, rows)) <= {len(slots)}:
        return None
    for index in range(len(slots)):
        if _array_type(map(itemgetter(index), rows)) is None:
            return None
    if len(slots) == len(values):
        return table, rows
    template: list[Any] = [_literal(v) for v in values]
    full = []
    for row in rows:
        filled = template.copy()
        for slot, value in zip(slots, row, strict=True):
            filled[slot] = value
        full.append(tuple(filled))
    return table, full


def merged_update(statement: str, rows: list[tuple[Any, ...]]) -> tuple[str, list[Any]] | None:
    """A run of `UPDATE t SET a = ?, b = ? WHERE k = ?` as one `UPDATE … FROM unnest(…)`
    with a typed array per placeholder, or None when it does not fit: another form, a
    value other than text, integer or None, or a key twice in the run (then the order of
    the single UPDATEs would matter)."""
    match = _UPDATE.match(statement)
    if match is None:
        return None
    table = match.group(1)
    sets = [part.split(" = ")[0] for part in match.group(2).split(", ")]
    keys = [part.split(" = ")[0] for part in match.group(3).split(" AND ")]
    names = sets + keys
    if any(len(row) != len(names) for row in rows):
        return None
    if len({row[len(sets) :] for row in rows}) != len(rows):
        return None
    arrays: list[str] = []
    params: list[Any] = []
    values: dict[str, str] = {}
    for index, name in enumerate(names):
        column = [row[index] for row in rows]
        kind = _array_type(column)
        if kind is None or (kind == "null" and index >= len(sets)):
            return None
        if kind == "null":
            values[name] = "NULL"
            continue
        values[name] = f"u.c{len(arrays)}"
        arrays.append(f"?::{kind}[]")
        params.append(column)
    aliases = ", ".join(f"c{i}" for i in range(len(arrays)))
    assignments = ", ".join(f"{name} = {values[name]}" for name in sets)
    where = " AND ".join(f"{table}.{name} = {values[name]}" for name in keys)
    return (
        f"UPDATE {table} SET {assignments} FROM unnest({', '.join(arrays)}) AS u({aliases})"
        f" WHERE {where}",
        params,
    )


def _literal(text: str) -> Any:
    if text in ("?", "NULL"):
        return None
    if text.startswith("'"):
        return text[1:-1]
    return int(text)


def _array_type(column: Iterable[Any]) -> str | None:
    kinds = set(map(type, column)) - {type(None)}
    if not kinds:
        return "null"
    if kinds == {str}:
        return "text"
    if kinds == {int}:  # bool is not int here: {bool} and {int, bool} fall through
        return "bigint"
    return None


def as_any(statement: str, params: Params) -> tuple[str, list[Any]]:
    """`… IN (?, ?, ?)` as `… = ANY(?::text[])` (or bigint[]) with the list as one parameter,
    so the statement text is the same whatever the list's length; unchanged otherwise."""
    given = list(params)
    if "IN (?" not in statement or "NOT IN" in statement:
        return statement, given
    out: list[Any] = []
    used = 0
    pieces: list[str] = []
    last = 0
    for match in _IN_LIST.finditer(statement):
        before = statement[last : match.start()]
        skipped = before.count("?")
        out += given[used : used + skipped]
        used += skipped
        size = match.group(1).count("?")
        items = given[used : used + size]
        used += size
        kind = _array_type(items)
        if kind in (None, "null"):
            return statement, given
        pieces += [before, f"= ANY(?::{kind}[])"]
        out.append(items)
        last = match.end()
    pieces.append(statement[last:])
    out += given[used:]
    return "".join(pieces), out


_statement_of = itemgetter(0)


def _table_of(item: tuple[str, tuple[Any, ...]]) -> str:
    return _shape(item[0])[0]


def _runs(segment: Pending) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """A segment's writes as runs of one statement, in table order, each table's own
    statements in the order given (rows in order within each run)."""
    statements = set(map(_statement_of, segment))
    tables = {statement: _shape(statement)[0] for statement in statements}
    if len(set(tables.values())) == len(statements):
        # One statement text a table (a rebuild's batches): its rows in one pass, no sort.
        runs: dict[str, list[tuple[Any, ...]]] = {
            statement: [] for statement in sorted(statements, key=tables.__getitem__)
        }
        for statement, params in segment:
            runs[statement].append(params)
        return list(runs.items())
    ordered = sorted(segment, key=_table_of)  # stable: each table's order is kept
    return [
        (statement, [params for _, params in group])
        for statement, group in groupby(ordered, key=_statement_of)
    ]


@functools.cache
def _shape(statement: str) -> tuple[str, bool]:
    """(table, barrier) of a statement; views use a few dozen statement texts."""
    words = statement.split()
    table = words[2] if words[0] in ("INSERT", "DELETE") else words[1]
    # DDL, and statements with subqueries (they read other tables), keep their place.
    barrier = "SELECT" in statement or not statement.startswith(("INSERT", "DELETE", "UPDATE"))
    return table, barrier


def _segments(pending: Pending) -> Iterator[Pending]:
    if not any(_shape(statement)[1] for statement in set(map(_statement_of, pending))):
        yield pending  # no barrier: one segment (without a call per write)
        return
    segment: Pending = []
    for item in pending:
        if _shape(item[0])[1]:
            yield segment
            yield [item]
            segment = []
        else:
            segment.append(item)
    yield segment
