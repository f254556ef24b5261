"""A load's statement on libpq directly, on a pooled connection (issue 11, session 20).

`FleetProcessRecorder.latest_rows` ran the load's statement (handlers/stored_loads.py)
through a psycopg cursor: the cursor, its query conversion, its prepare manager and its
result machinery cost 100,000-150,000 instructions per load of one aggregate, more than
half of a cold load's client CPU. `load_rows` sends the same statement as a prepared
statement of its own (libpq's Bind and Execute, the id in binary) and reads the rows with
psycopg's own C loaders: the same rows, the same types (bool, UUID, int, str, bytes).

Its prepared statements live on pooled connections, which psycopg also uses: psycopg
deallocates all of a connection's prepared statements (DEALLOCATE ALL) when it rolls back
after preparing one of its own, behind this module's back. So what is prepared where is
only a belief (`_PREPARED`): a statement found missing (SQLSTATE 26000) is prepared again
and executed once more. The connection is idle in autocommit mode (the pool's connections
are; another state goes through psycopg's cursor as before), so that error ends nothing
but the failed Execute. A statement found already prepared (42P05) is one prepared under
the same name by this module: the names are given per text, per process. A statement
refused because a column it returns changed type since it was prepared (SQLSTATE 0A000,
"cached plan must not change result type": ALTER TABLE ... TYPE under a running service)
is deallocated, prepared again and executed once more; psycopg's own prepared statements
keep failing so until their connection is replaced (session 21).

Errors are psycopg's (the caller's `get_connection` turns them into eventsourcing's). A
wait interrupted or a connection lost leaves the connection as psycopg's `wait` leaves it
(it cancels the query on an interrupt); one left with results unread is closed, so the
pool replaces it.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import Connection, errors
from psycopg.adapt import Transformer
from psycopg.generators import execute
from psycopg.pq import DiagnosticField, ExecStatus, Format, TransactionStatus
from psycopg.pq.abc import PGresult

from infra.storage.pg_arrays import packed_uuid
from infra.storage.pg_conn import result_type_changed_in

UUID_OID = 2950
UUID_ARRAY_OID = 2951

_MISSING = b"26000"  # invalid_sql_statement_name: no prepared statement by that name
_DUPLICATE = b"42P05"  # duplicate_prepared_statement

_PLACEHOLDER = re.compile(rb"%%|%s|%")


class _Statement:
    """A load's statement as this module prepares it: its name, its text with `$1`."""

    __slots__ = ("name", "parameter_oid", "text")

    def __init__(self, name: bytes, text: bytes, parameter_oid: int) -> None:
        self.name = name
        self.text = text
        self.parameter_oid = parameter_oid


def dollar_one(statement: bytes) -> bytes:
    """The statement with its one `%s` placeholder as `$1` (`%%` as `%`). ValueError for
    a statement with another placeholder, or with no or more than one `%s`."""
    count = 0

    def number(match: re.Match[bytes]) -> bytes:
        nonlocal count
        if match.group(0) == b"%%":
            return b"%"
        if match.group(0) == b"%":
            raise ValueError(f"Only one %s placeholder is sent directly: {statement[:80]!r}")
        count += 1
        return b"$1"

    text = _PLACEHOLDER.sub(number, statement)
    if count != 1:
        raise ValueError(f"{count} %s placeholders; one is sent directly: {statement[:80]!r}")
    return text


# Per process: one name per (statement, one id or an array), so that any recorder of the
# process finds a statement prepared under its name with its text.
_STATEMENTS: dict[tuple[bytes, bool], _Statement] = {}
_NAMING = threading.Lock()

# What this module believes prepared on each pooled connection (their names); a
# connection's entry goes with it.
_PREPARED: weakref.WeakKeyDictionary[Connection[Any], set[bytes]] = weakref.WeakKeyDictionary()


def _statement(statement: bytes, one: bool) -> _Statement:
    found = _STATEMENTS.get((statement, one))
    if found is None:
        with _NAMING:
            found = _STATEMENTS.get((statement, one))
            if found is None:
                found = _STATEMENTS[(statement, one)] = _Statement(
                    f"partnerfleet_load_{len(_STATEMENTS)}".encode(),
                    dollar_one(statement),
                    UUID_OID if one else UUID_ARRAY_OID,
                )
    return found


def load_rows(
    conn: Connection[Any], statement: bytes, ids: Sequence[UUID], *, one: bool
) -> list[tuple[Any, ...]] | None:
    """The rows of `statement` (one `%s`: a uuid when `one`, else a uuid[] of `ids`) as
    tuples of Python values (psycopg's binary loaders), run on `conn`, a pooled connection
    checked out by the caller. None when `conn` is not idle in autocommit mode (the
    caller runs the statement through psycopg), or when `one` and the id is not a UUID.
    psycopg's errors for the server's."""
    pgconn = conn.pgconn
    if not conn.autocommit or pgconn.transaction_status != TransactionStatus.IDLE:
        return None
    if one and not isinstance(ids[0], UUID):
        return None  # psycopg's cursor sends it as text, for the server to cast
    prepared = _statement(statement, one)
    parameter = ids[0].bytes if one else bytes(packed_uuid(ids))
    names = _PREPARED.get(conn)
    if names is None:
        names = _PREPARED[conn] = set()
    if prepared.name not in names:
        _prepare(conn, prepared)
        names.add(prepared.name)
    result = _execute(conn, prepared, parameter)
    if result.status == ExecStatus.FATAL_ERROR:
        missing = _state(result) == _MISSING
        if result_type_changed_in(result):
            # planned for the table as it was: deallocated, then prepared anew below
            _deallocate(conn, prepared)
            missing = True
        if missing:
            # deallocated by psycopg since (see the module's docstring), or by the line
            # above: once more
            names.discard(prepared.name)
            _prepare(conn, prepared)
            names.add(prepared.name)
            result = _execute(conn, prepared, parameter)
    if result.status != ExecStatus.TUPLES_OK:
        raise errors.error_from_result(result, encoding=conn.info.encoding)
    loader = Transformer.from_context(conn)
    loader.set_pgresult(result, format=Format.BINARY)
    rows: list[tuple[Any, ...]] = loader.load_rows(0, result.ntuples, tuple)
    return rows


def _prepare(conn: Connection[Any], prepared: _Statement) -> None:
    pgconn = conn.pgconn
    with conn.lock:
        pgconn.send_prepare(prepared.name, prepared.text, [prepared.parameter_oid])
    result = _last(conn)
    if result.status != ExecStatus.COMMAND_OK and _state(result) != _DUPLICATE:
        raise errors.error_from_result(result, encoding=conn.info.encoding)


def _deallocate(conn: Connection[Any], prepared: _Statement) -> None:
    """DEALLOCATE the statement, which may be gone already (26000 is no error here)."""
    pgconn = conn.pgconn
    with conn.lock:
        pgconn.send_query_params(b"DEALLOCATE " + _quoted(prepared.name), None)
    result = _last(conn)
    if result.status != ExecStatus.COMMAND_OK and _state(result) != _MISSING:
        raise errors.error_from_result(result, encoding=conn.info.encoding)


def _quoted(name: bytes) -> bytes:
    return b'"' + name.replace(b'"', b'""') + b'"'


def _execute(conn: Connection[Any], prepared: _Statement, parameter: bytes) -> PGresult:
    with conn.lock:
        conn.pgconn.send_query_prepared(
            prepared.name, [parameter], [Format.BINARY], result_format=Format.BINARY
        )
    return _last(conn)


def _last(conn: Connection[Any]) -> PGresult:
    """The one result of what was sent, read to the end (psycopg's C generator)."""
    try:
        with conn.lock:  # as psycopg's cursor holds it
            results: list[PGresult] = conn.wait(execute(conn.pgconn))
    except BaseException:
        if not conn.closed and conn.pgconn.transaction_status != TransactionStatus.IDLE:
            conn.close()  # results unread: the pool replaces it
        raise
    if len(results) != 1:
        raise errors.InterfaceError(f"{len(results)} results for one statement")
    return results[0]


def _state(result: PGresult) -> bytes | None:
    return result.error_field(DiagnosticField.SQLSTATE)


__all__ = ["dollar_one", "load_rows"]
