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

NAME_PART = r'(?:"(?:[^"]|"")+"|\w+)'  # one name, quoted (with "" inside) or not
# What a start's DDL creates, in any form PostgreSQL or SQLite takes: its kind, its name
# (schema-qualified as written), and for an index the schema of the table it is ON. One
# parser for the index look-ups here and the CREATE_TABLE=no checks (start_ddl.py).
CREATED = re.compile(
    r"CREATE\s+(?P<replace>OR\s+REPLACE\s+)?"
    r"(?P<mods>(?:(?:UNIQUE|UNLOGGED|TEMP|TEMPORARY|MATERIALIZED)\s+)*)"
    r"(?P<kind>TABLE|INDEX|VIEW|SEQUENCE)\s+(?P<concurrently>CONCURRENTLY\s+)?"
    r"(?P<if_not_exists>IF\s+NOT\s+EXISTS\s+)?"
    rf"(?P<name>(?:{NAME_PART}\s*\.\s*)?{NAME_PART})"
    rf"(?P<on>\s+ON\s+(?:(?P<table_schema>{NAME_PART})\.)?)?",
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
    match = CREATED.match(statement.lstrip())
    if (
        match is None
        or match["kind"].upper() != "INDEX"
        or match["mods"].upper().split() not in ([], ["UNIQUE"])
        or match["replace"]
        or match["concurrently"]
        or not match["if_not_exists"]
        or not match["on"]
    ):
        return None
    name, schema = match["name"], match["table_schema"]
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
