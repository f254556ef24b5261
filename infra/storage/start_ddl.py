"""CREATE_TABLE off: a process start checks its tables instead of creating them (session 19).

eventsourcing reads CREATE_TABLE (yes/no; default yes) to decide whether an application
creates its tables at start; Settings reads it as `create_table` and writes it into the
storage variables, so the event store honours it. Before session 19 every other table the
service makes at start (tracking, the views', the relay's positions and parked events, the
schema itself) was still created, so a role without CREATE rights on the schema could not
start the service at all, whatever CREATE_TABLE said. Now, with it off:

- `CREATE TABLE IF NOT EXISTS name` and `CREATE [UNIQUE] INDEX IF NOT EXISTS name` become a
  catalog look-up; a missing one stops the start with `MissingTablesError`, naming it;
- other schema changes a start makes (`ALTER TABLE ... SET (...)`, a view's storage
  parameters; `REINDEX INDEX`, the repair of an invalid index) are left out: they need the
  table's owner, and are tuning or repair, not what the service needs to run;
- everything else (reads, the tracking rows a start inserts) runs as before.

A rebuild (`partnerfleet projections rebuild`) drops and creates a view's tables whatever
CREATE_TABLE says: an operator asks for it, with a role that may.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from projections.base import Params, Tx

from infra.storage.es_environment import CREATE_TABLE, TRUE
from infra.storage.pg_ddl import CREATED, NAME_PART
from infra.storage.viewdb import ViewDB

_CREATE = re.compile(r"CREATE\b", re.I)
_SCHEMA_CHANGE = re.compile(r"(?:CREATE|ALTER|DROP|REINDEX|COMMENT|GRANT)\b", re.I)
# Blanks and SQL comments before a statement's first word.
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)
# The schema: build_fleet checks it (and the events table) before any start DDL runs.
_SCHEMA_IF_NOT_EXISTS = re.compile(r"CREATE\s+SCHEMA\s+IF\s+NOT\s+EXISTS\b", re.I)
_EXISTS = {
    "postgres": "SELECT to_regclass(?) IS NOT NULL",
    "sqlite": "SELECT count(*) > 0 FROM sqlite_master WHERE name = ?",
}


class MissingTablesError(RuntimeError):
    """CREATE_TABLE is off and a table, index or schema the service needs is missing."""


def creates_tables(env: Mapping[str, str] | Any) -> bool:
    """Whether CREATE_TABLE in `env` (a mapping, or an application's eventsourcing
    Environment, which looks under the application's name first) asks for tables to be
    made: unset means yes, as for eventsourcing."""
    value = env.get(CREATE_TABLE)
    return value is None or not value or value.strip().lower() in TRUE


@contextmanager
def start_ddl(db: ViewDB, create_tables: bool) -> Iterator[Tx]:
    """`db.ddl()` (one process at a time) for a start's schema statements: as they are
    when `create_tables`, else checked only (see the module's docstring)."""
    with db.ddl() as tx:
        yield tx if create_tables else CheckedDDL(tx, db.kind, getattr(db, "schema", None))


class CheckedDDL:
    """A Tx that looks up what a `CREATE ... IF NOT EXISTS` would make, leaves out other
    schema changes, and runs every other statement."""

    def __init__(self, tx: Tx, kind: str, schema: str | None = None) -> None:
        self._tx, self._exists, self._schema = tx, _EXISTS[kind], schema
        self._quoted = kind == "postgres"  # to_regclass reads a quoted name itself
        self._kind = "PostgreSQL" if kind == "postgres" else "SQLite"

    def execute(self, statement: str, params: Params = ()) -> None:
        start = _LEADING.match(statement)
        body = statement[start.end() if start else 0 :]
        created = CREATED.match(body)
        if created:
            what, name = created["kind"].lower(), re.sub(r"\s*\.\s*", ".", created["name"])
            if not self._tx.query(self._exists, (self._looked_up(name),))[0][0]:
                raise missing(f"{what} {name}", self._kind, self._schema)
        elif _CREATE.match(body) and not _SCHEMA_IF_NOT_EXISTS.match(body):
            # Something a start would create that cannot be looked up: refused, never
            # skipped unchecked (the start would pass and the first use fail).
            raise MissingTablesError(
                f"CREATE_TABLE is off and this start statement cannot be checked: "
                f"{' '.join(body.split())[:120]!r}; start once with CREATE_TABLE=yes"
            )
        elif not _SCHEMA_CHANGE.match(body):
            self._tx.execute(statement, params)

    def _looked_up(self, name: str) -> str:
        """The name as the catalog look-up takes it: PostgreSQL's to_regclass reads a
        (schema-qualified, quoted) name itself; SQLite's sqlite_master holds the table's
        own name, unquoted."""
        if self._quoted:
            return name
        last: str = re.findall(NAME_PART, name)[-1]
        return last[1:-1].replace('""', '"') if last.startswith('"') else last

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


def missing(what: str, kind: str, schema: str | None = None) -> MissingTablesError:
    """The error of a start that found `what` ("table pf_tracking") missing."""
    where = f"{kind} schema {schema!r}" if schema else kind
    gap = f"the {where} is missing" if what == "schema" else f"the {what} is missing in {where}"
    return MissingTablesError(
        f"CREATE_TABLE is off and {gap}: start this command once with CREATE_TABLE=yes as a "
        "role that may create tables (or create them; each kind of process makes its own: "
        "serve, relay, consume, projections, policies), then start it with CREATE_TABLE=no"
    )
