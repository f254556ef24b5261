"""PostgreSQL connections: their parameters and names in one place, the pool check, LISTEN.

Every connection the service opens carries an `application_name` naming its role and its
schema ("partnerfleet-listen myschema"), so an operator reading `pg_stat_activity` can tell
the event store's pool from the view database's and from the view runner's LISTEN
connection, and one deployment from another sharing the server. TCP keepalives make a
connection to a host that vanished without closing it fail within about half a minute
instead of hanging.
"""

from __future__ import annotations

import select
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql
from psycopg.pq import DiagnosticField
from psycopg.pq.abc import PGresult
from psycopg_pool import ConnectionPool

from infra.loops import Wait

STORE = "store"  # eventsourcing's pool: commands, policies, the relay's reads
VIEWS = "views"  # the read models' pool
LISTEN = "listen"  # the view runner's wake-up on the event table's NOTIFY
SETUP = "setup"  # schema creation at start-up

KEEPALIVES: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5}


def application_name(role: str, schema: str | None) -> str:
    """What `pg_stat_activity` shows for a connection of `role` (STORE, VIEWS, ...)."""
    return f"partnerfleet-{role} {schema or 'public'}"[:63]  # PostgreSQL keeps 63 bytes


def conninfo(env: Mapping[str, str], role: str) -> str:
    """A libpq connection string from the eventsourcing environment, named for its role."""
    return psycopg.conninfo.make_conninfo(
        host=env.get("POSTGRES_HOST"),
        port=env.get("POSTGRES_PORT") or "5432",
        user=env.get("POSTGRES_USER"),
        password=env.get("POSTGRES_PASSWORD") or None,
        dbname=env.get("POSTGRES_DBNAME"),
        application_name=application_name(role, env.get("POSTGRES_SCHEMA")),
        **KEEPALIVES,
    )


def name_store_connections(datastore: PostgresDatastore) -> None:
    """Give eventsourcing's pooled connections the store's name and keepalives.

    The pool's `kwargs` are what it connects with (eventsourcing sets the password there
    too), so every connection opened from now on carries them.
    """
    kwargs = datastore.pool.kwargs
    if isinstance(kwargs, dict):
        kwargs.update(application_name=application_name(STORE, datastore.schema), **KEEPALIVES)


# "cached plan must not change result type": a column a prepared statement returns changed
# type (ALTER TABLE ... TYPE) since it was prepared. SQLSTATE feature_not_supported, raised
# by this function of the server's (its name is not translated, as its message may be).
RESULT_TYPE_CHANGED = "0A000"
RESULT_TYPE_CHECK = "RevalidateCachedQuery"


def result_type_changed(sqlstate: str | None, source_function: str | None) -> bool:
    """Whether an error (its SQLSTATE and the server function that raised it) is a
    prepared statement refused because its result columns changed type."""
    return sqlstate == RESULT_TYPE_CHANGED and source_function == RESULT_TYPE_CHECK


def result_type_changed_in(result: PGresult) -> bool:
    """`result_type_changed` of a libpq result (the paths that send on libpq directly)."""
    return result_type_changed(
        (result.error_field(DiagnosticField.SQLSTATE) or b"").decode(),
        (result.error_field(DiagnosticField.SOURCE_FUNCTION) or b"").decode(),
    )


def replan_after_type_changes(datastore: PostgresDatastore) -> None:
    """Make the store's prepared statements recover from a column type changed under the
    running service (session 21).

    PostgreSQL refuses a prepared statement whose result columns changed type since it
    was prepared (SQLSTATE 0A000) until it is prepared again; psycopg keeps its prepared
    statements (eventsourcing's reads, the views' and the relay's reads) and so failed
    on that connection for as long as it lived. Now, when a statement on a connection of
    `datastore.get_connection` fails so, the connection's prepared statements are
    deallocated (DEALLOCATE ALL, which psycopg sees and forgets its own) and the error
    is raised as OperationalError: nothing was done (the statement was refused before it
    ran), and every caller that retries a lost connection (eventsourcing's recorder, the
    loads, the followers' reads, the group commit) retries it, prepared again. A
    connection that cannot be reset so is closed (the pool replaces it).
    """
    opened = datastore.get_connection

    @contextmanager
    def get_connection() -> Iterator[psycopg.Connection[Any]]:
        with opened() as conn:
            try:
                yield conn
            except psycopg.errors.FeatureNotSupported as error:
                if not result_type_changed(error.sqlstate, error.diag.source_function):
                    raise
                deallocate_all(conn)
                raise psycopg.OperationalError(
                    f"{error} (the connection's statements are prepared again; retry)"
                ) from error

    datastore.get_connection = get_connection  # type: ignore[method-assign]


def deallocate_all(conn: psycopg.Connection[Any]) -> None:
    """DEALLOCATE ALL on `conn` (ending a failed transaction first), psycopg's own
    prepared statements forgotten too; closed if that fails.

    psycopg forgets its statements on a rollback it runs, but notices a DEALLOCATE ALL
    only the first time it executes that text while it holds a statement: one counted
    before (a first reset after a transaction's rollback had emptied its cache) made it
    keep names the server had dropped, and every later use of them failed with 26000
    until the connection was replaced (session 21's attack). So the reset always ends
    with a rollback of psycopg's (a transaction opened for it when there is none)."""
    try:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.execute("BEGIN" if conn.autocommit else "SELECT", prepare=False)
        conn.rollback()  # psycopg forgets its statements (and deallocates them)
        conn.execute("DEALLOCATE ALL", prepare=False)  # the server's, whoever prepared them
        if not conn.autocommit:
            conn.commit()
    except psycopg.Error:
        conn.close()


def check_alive(conn: psycopg.Connection[Any]) -> None:
    """A pool `check` that costs no round trip for a live, idle connection.

    An idle pooled connection has nothing to read. When the server ended it (a restart,
    `pg_terminate_backend`), its socket holds the farewell or the end of the stream: only
    then is it pinged, which raises, and the pool replaces it before anyone uses it.
    """
    if conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        ConnectionPool.check_connection(conn)


@contextmanager
def listening(env: Mapping[str, str], channel: str, poll_seconds: float) -> Iterator[Wait]:
    """A `Waiter` on PostgreSQL's NOTIFY `channel`: returns on a notification or a poll.

    The connection is the caller's for as long as the context lasts; when it is lost the
    wait raises, and the follower opens a new one after its back-off.
    """
    with psycopg.connect(conninfo(env, LISTEN), autocommit=True) as conn:
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

        def wait() -> None:
            for _ in conn.notifies(timeout=poll_seconds, stop_after=1):
                pass

        yield wait
