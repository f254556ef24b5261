"""What a process start runs of a `CREATE [UNIQUE] INDEX IF NOT EXISTS` statement.

Every start runs the start DDL: eventsourcing's recorder for the events and tracking tables
(infra/storage/pg_recorder.py, `_create_table`), the view runner for the views' tables
(infra/follow/view_runner.py, `_create`). On PostgreSQL, `CREATE INDEX IF NOT EXISTS` takes a
SHARE lock on its table even when the index exists, so a start waited behind every running
save, and could deadlock with a live follower (issue 11, session 18). The start therefore
looks an index up in the catalog first (no lock on the table) and runs:

- the statement itself, when the index is missing (the first start, with its lock);
- nothing, when the index is there and valid;
- `REINDEX INDEX name`, when the index is there but invalid (`pg_index.indisvalid` false: a
  `CREATE INDEX CONCURRENTLY` or `REINDEX CONCURRENTLY` by an operator that failed). An
  invalid index is not used by queries, and `IF NOT EXISTS` would leave it as it is for
  good; REINDEX builds it again (PostgreSQL 15 manual, CREATE INDEX, "Building Indexes
  Concurrently"). Session 19.

One parser serves both callers: the recorder's statements name the table with its schema
(`"schema"."table"`), the views' statements name it alone (their connections' search_path
is the schema).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_NAME = r'("(?:[^"]|"")+"|\w+)'
_CREATE_INDEX = re.compile(
    rf"\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+IF\s+NOT\s+EXISTS\s+{_NAME}\s+ON\s+(?:{_NAME}\.)?",
    re.I,
)


def validity_query(placeholder: str) -> str:
    """The catalog look-up of one index, by the name `created_index` gives, with the
    driver's `placeholder` ("%s" for psycopg, "?" for a view Tx): one row (indisvalid)
    when the index exists, none when it does not."""
    return f"SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass({placeholder})"


def created_index(statement: str) -> str | None:
    """The index `statement` creates, as `to_regclass` takes it (`schema.name` when the
    table is schema-qualified, else `name`, each part as written, quoted or not), when
    `statement` is a `CREATE [UNIQUE] INDEX IF NOT EXISTS name ON [schema.]table ...`;
    else None."""
    match = _CREATE_INDEX.match(statement)
    if match is None:
        return None
    name, schema = match[1], match[2]
    return name if schema is None else f"{schema}.{name}"


def start_statement(statement: str, valid: Callable[[str], bool | None]) -> str | None:
    """What a start runs for `statement`: the statement itself, None (nothing), or
    `REINDEX INDEX <index>` (see the module's docstring). `valid(index)` is the catalog
    look-up of `validity_query`: True or False, or None when the index is missing."""
    index = created_index(statement)
    if index is None:
        return statement
    state = valid(index)
    if state is None:
        return statement
    return None if state else f"REINDEX INDEX {index}"
