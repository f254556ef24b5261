"""The PostgreSQL process recorder partnerfleet uses: one round trip per save, group commit.

eventsourcing's recorder saves in several round trips (BEGIN, SET LOCAL lock_timeout, LOCK
TABLE, NOTIFY, INSERT, COMMIT; issue 11 measured 1.2-1.4 ms per command) and holds the
EXCLUSIVE table lock to COMMIT, so concurrent writers of a process queue behind each other.
This one keeps every guarantee of the stock recorder and:

- sends the whole transaction in ONE pipelined round trip: BEGIN, SET LOCAL lock_timeout,
  LOCK TABLE ... IN EXCLUSIVE MODE (notification ids in commit order for followers),
  NOTIFY, one statement that checks, records tracking and inserts, COMMIT, then one Sync;
- commits concurrent saves of the process together (infra/storage/group_commit.py): one
  transaction for a group, each caller with its own outcome. The statement refuses a unit
  (nothing of it is recorded, its neighbours are) when one of its events' (originator_id,
  originator_version) is stored or written by an earlier unit of the group (a version
  conflict), when its policy position is not beyond the recorded one (a tracking conflict),
  or when an aggregate it read (`read_versions`) has a later event, stored or in the group
  (a read-version conflict). A refused unit raises `IntegrityError` (a
  RecordConflictError) to its caller alone. A group of independent units (no policy
  position, no aggregate met twice: most groups) goes by a plain statement, only the
  checks against the stored events and the insert (`independent`; session 22);
- takes `read_versions: Mapping[UUID, int] | None` in `insert_events` (issue 11: the
  aggregate cache's check that what a command read is still current), and says so with
  `checks_read_versions = True`;
- sends the stored events as typed arrays (ids, versions, topics, states), packed in
  PostgreSQL's binary form (pg_arrays.py), not as composites rendered in Python;
- drives that pipeline on libpq itself, on a connection of the committer's own with its
  statements prepared once (`_send_directly`; issue 11, session 18).

A group whose statement fails for another reason (data the server refuses) is committed
again one unit per transaction, so one caller's bad input never fails its neighbours.
Settings selects it with PROCESS_RECORDER_TOPIC.
"""

from __future__ import annotations

import re
import struct
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import attrgetter
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    StoredEvent,
    Tracking,
)
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from eventsourcing.utils import get_topic
from psycopg import Connection, Cursor, errors
from psycopg.pq import ConnStatus, DiagnosticField, ExecStatus, TransactionStatus
from psycopg.pq.abc import PGconn, PGresult
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier, Literal
from psycopg.waiting import Ready, Wait

from infra.storage.group_commit import GroupCommitter, Unit
from infra.storage.pg_arrays import (
    Packed,
    bytea_array,
    int4_array,
    int8_array,
    packed_bytea,
    packed_int4,
    packed_int8,
    packed_text,
    packed_uuid,
    text_array,
    use_packed_arrays,
    uuid_array,
)
from infra.storage.pg_conn import (
    name_store_connections,
    replan_after_type_changes,
    result_type_changed_in,
)
from infra.storage.pg_copy import COPY_MIN_ROWS, CopyStream, insert_by_copy
from infra.storage.pg_ddl import start_statement, validity_query
from infra.storage.pg_loads import load_rows

VERSION, READ, TRACKING = "version", "read", "tracking"  # why a unit of a group is refused

PARAMETERS = (
    *("event_units", "event_ids", "event_versions", "topics", "states"),
    *("read_units", "read_ids", "read_versions", "tracking_units", "names", "positions"),
)
# The insert of the group's events, less those of the units refused (the CTE `refused`):
# shared by GROUP_STATEMENT (which leaves out more) and PLAIN_STATEMENT.
INSERT_UNREFUSED = """
  INSERT INTO {events} (originator_id, originator_version, topic, state)
  SELECT originator_id, originator_version, topic, state
    FROM unnest(%(event_units)b::int[], %(event_ids)b::{id_type}[],
                %(event_versions)b::bigint[], %(topics)b::text[], %(states)b::bytea[])
      AS i(unit, originator_id, originator_version, topic, state)
    WHERE unit NOT IN (SELECT unit FROM refused)"""
# Parameters: the group's events, read versions and tracking rows, each as arrays with the
# index of the unit they belong to. Result rows, ordered: (0, notification_id, NULL, NULL)
# per inserted event (notification ids are taken in the events' order under the lock);
# (1, NULL, name, NULL) per recorded policy position; (2, NULL, reason, unit) per refusal.
GROUP_STATEMENT = (
    """
WITH ev AS (
  SELECT * FROM unnest(%(event_units)b::int[], %(event_ids)b::{id_type}[],
                       %(event_versions)b::bigint[])
    AS e(unit, originator_id, originator_version)
), rd AS (
  SELECT * FROM unnest(%(read_units)b::int[], %(read_ids)b::{id_type}[],
                       %(read_versions)b::bigint[])
    AS r(unit, originator_id, originator_version)
), tr AS (
  SELECT * FROM unnest(%(tracking_units)b::int[], %(names)b::text[], %(positions)b::bigint[])
    AS t(unit, application_name, notification_id)
), refused_alone AS ({version_checks}
  SELECT r.unit, {read} AS reason FROM rd r WHERE EXISTS (
    SELECT FROM {events} s
    WHERE s.originator_id = r.originator_id AND s.originator_version > r.originator_version)
  UNION ALL
  SELECT r.unit, {read} FROM rd r JOIN ev e ON e.originator_id = r.originator_id
    AND e.unit <> r.unit AND e.originator_version > r.originator_version
  UNION ALL
  SELECT t.unit, {tracking} FROM tr t JOIN {tracking_table} k USING (application_name)
    WHERE k.notification_id >= t.notification_id
), refused AS (
  SELECT * FROM refused_alone
  UNION ALL
  SELECT t.unit, {tracking} FROM tr t JOIN tr u USING (application_name)
    WHERE u.unit < t.unit AND t.unit NOT IN (SELECT unit FROM refused_alone)
      AND u.unit NOT IN (SELECT unit FROM refused_alone)
), tracked AS (
  INSERT INTO {tracking_table} AS k (application_name, notification_id)
  SELECT application_name, notification_id FROM tr
    WHERE unit NOT IN (SELECT unit FROM refused)
  ON CONFLICT (application_name) DO UPDATE SET notification_id = excluded.notification_id
    WHERE k.notification_id < excluded.notification_id
  RETURNING k.application_name
), inserted AS ("""
    + INSERT_UNREFUSED
    + """
      AND unit NOT IN (SELECT unit FROM tr
                       WHERE application_name NOT IN (SELECT application_name FROM tracked))
  RETURNING notification_id
)
SELECT 0, notification_id, NULL::text, NULL::int FROM inserted
UNION ALL SELECT 1, NULL, application_name, NULL FROM tracked
UNION ALL SELECT 2, NULL, reason, unit FROM refused
ORDER BY 1, 2
"""
)


# Version conflicts, needed only when the group has neighbours to spare: a lone unit's
# unique violation is its own refusal (and checking 5,000 rows first costs 170 ms).
VERSION_CHECKS = """
  SELECT e.unit, {version} AS reason FROM ev e
    JOIN {events} s USING (originator_id, originator_version)
  UNION ALL
  SELECT e.unit, {version} FROM ev e JOIN ev f USING (originator_id, originator_version)
    WHERE f.unit < e.unit
  UNION ALL"""


# A group of independent units (most groups; issue 11, session 22): no policy position,
# and no aggregate met twice (no (originator_id, originator_version) written twice, no
# aggregate read that another unit writes; `independent`), so the group's own conflicts
# cannot arise: only the checks against the stored events, then the insert. Such a group
# gets the refusals, reasons and rows GROUP_STATEMENT gives it (a version conflict is the
# reason before a stale read: 'version' sorts after 'read', hence the DESC), from a plan
# of a third of the nodes (no tracking CTEs, no INSERT on the tracking table to start and
# end, no joins within the group) and eight arrays of eleven: the statement's server time
# for a group of 8 units, ~12 events, ~3 reads fell from 233 to 174 us (medians of 400).
PLAIN_STATEMENT = (
    """
WITH refused AS (
  SELECT e.unit, {version} AS reason
    FROM unnest(%(event_units)b::int[], %(event_ids)b::{id_type}[],
                %(event_versions)b::bigint[]) AS e(unit, originator_id, originator_version)
    JOIN {events} s USING (originator_id, originator_version)
  UNION ALL
  SELECT r.unit, {read}
    FROM unnest(%(read_units)b::int[], %(read_ids)b::{id_type}[],
                %(read_versions)b::bigint[]) AS r(unit, originator_id, originator_version)
    WHERE EXISTS (
      SELECT FROM {events} s
      WHERE s.originator_id = r.originator_id AND s.originator_version > r.originator_version)
), inserted AS ("""
    + INSERT_UNREFUSED
    + """
  RETURNING notification_id
)
SELECT 0, notification_id, NULL::text, NULL::int FROM inserted
UNION ALL SELECT 2, NULL, reason, unit FROM refused
ORDER BY 1, 2, 3 DESC
"""
)


# One unit with events and reads, no tracking, alone in its group (most commands): the
# read check and the insert only, six arrays where the group statement takes eleven and
# runs its group checks (less server CPU per save; issue 11, session 16). A stale read
# refuses the unit (kind 2, unit 0); its unique violation is its own refusal.
READS_STATEMENT = """
WITH stale AS (
  SELECT FROM unnest(%(read_ids)b::{id_type}[], %(read_versions)b::bigint[])
    AS r(originator_id, originator_version)
  WHERE EXISTS (
    SELECT FROM {events} s
    WHERE s.originator_id = r.originator_id AND s.originator_version > r.originator_version)
  LIMIT 1
), inserted AS (
  INSERT INTO {events} (originator_id, originator_version, topic, state)
  SELECT * FROM unnest(%(event_ids)b::{id_type}[], %(event_versions)b::bigint[],
                       %(topics)b::text[], %(states)b::bytea[])
    WHERE NOT EXISTS (SELECT FROM stale)
  RETURNING notification_id
)
SELECT 0, notification_id, NULL::text, NULL::int FROM inserted
UNION ALL SELECT 2, NULL, {read}, 0 FROM stale
ORDER BY 1, 2
"""


# How each parameter is sent already packed (infra/storage/pg_arrays.py) when the
# store's ids are UUIDs: a fraction of the CPU of psycopg's dumping of lists. The save
# packs them with `_packed_parameters`, which gives these packers' bytes (tests).
PACKERS: dict[str, Callable[[Any], Packed]] = {
    **dict.fromkeys(("event_units", "read_units", "tracking_units"), packed_int4),
    **dict.fromkeys(("event_ids", "read_ids"), packed_uuid),
    **dict.fromkeys(("event_versions", "read_versions", "positions"), packed_int8),
    **dict.fromkeys(("topics", "names"), packed_text),
    "states": packed_bytea,
}


# A lost connection or a lock timeout: retried as the stock recorder does.
RETRY_ATTEMPTS = 10
RETRY_WAIT_SECONDS = 0.2
# The committer's connection is opened again (its statements planned again) once the
# events table holds REPLAN_FACTOR times the rows it held at its first commit, plus
# REPLAN_ROWS: see `FleetProcessRecorder._replan_when_grown`.
REPLAN_FACTOR = 4
REPLAN_ROWS = 10_000


class FleetProcessRecorder(PostgresProcessRecorder):
    """PostgresProcessRecorder saving in one round trip, in groups, checking read versions."""

    checks_read_versions = True

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        tracking_table_name: str = "notification_tracking",
    ) -> None:
        name_store_connections(datastore)
        replan_after_type_changes(datastore)
        super().__init__(
            datastore,
            events_table_name=events_table_name,
            tracking_table_name=tracking_table_name,
        )
        if not datastore.single_row_tracking:
            raise PersistenceError("FleetProcessRecorder needs single-row tracking.")
        schema = Identifier(datastore.schema)
        # One unit with events only, alone in its group (an e2Open batch, a command
        # without reads): a unique violation is that unit's refusal, no checks needed.
        self.alone_statement = _rendered(
            SQL(
                "WITH inserted AS (INSERT INTO {}.{} (originator_id, originator_version, topic,"
                " state) SELECT * FROM unnest(%(event_ids)b::{}[], %(event_versions)b::bigint[],"
                " %(topics)b::text[], %(states)b::bytea[])"
                " RETURNING notification_id)"
                " SELECT 0, notification_id, NULL, NULL FROM inserted ORDER BY 2"
            ).format(
                schema, Identifier(events_table_name), Identifier(datastore.originator_id_type)
            )
        )
        names = {
            "id_type": Identifier(datastore.originator_id_type),
            "events": SQL("{}.{}").format(schema, Identifier(events_table_name)),
            "tracking_table": SQL("{}.{}").format(schema, Identifier(tracking_table_name)),
            "version": Literal(VERSION),
            "read": Literal(READ),
            "tracking": Literal(TRACKING),
        }
        checks = SQL(VERSION_CHECKS).format(**names)
        grouped = SQL(GROUP_STATEMENT).format(version_checks=checks, **names)
        self.group_statement = _rendered(grouped)
        self.plain_statement = _rendered(SQL(PLAIN_STATEMENT).format(**names))
        self.reads_statement = _rendered(SQL(READS_STATEMENT).format(**names))
        # One unit with tracking (and reads): their checks, its unique violation its own.
        self.lone_statement = _rendered(
            SQL(GROUP_STATEMENT).format(version_checks=SQL(""), **names)
        )
        # Rendered once (bytes): psycopg renders a Composed again on every execute (issue
        # 11, session 16). Two statements before the group's: the settings and the NOTIFY
        # in one SELECT (pg_notify is NOTIFY's function form, queued until COMMIT alike),
        # then the table lock.
        self.opening_statements: list[bytes] = [
            _rendered(
                SQL(
                    "SELECT set_config('lock_timeout', {}, true),"
                    # The group statement is prepared; its plan does not depend on the
                    # arrays, and planning it costs more than running it (0.7 ms / 0.4 ms).
                    " set_config('plan_cache_mode', 'force_generic_plan', true),"
                    " pg_notify({}, '')"
                ).format(Literal(f"{datastore.lock_timeout}s"), Literal(self.channel_name))
            ),
            _rendered(
                SQL("LOCK TABLE {}.{} IN EXCLUSIVE MODE").format(
                    schema, Identifier(events_table_name)
                )
            ),
        ]
        # Run after the group statement, before COMMIT, ids assigned and the lock held:
        # empty; tests add a pause here to make commits slow (issue 11, followers).
        self.closing_statements: list[Composed | SQL] = []
        self.stored_as_sent_statement = SQL(
            "SELECT e.originator_id, e.originator_version, e.notification_id, e.topic, e.state"
            " FROM unnest(%s::{}[], %s::bigint[]) AS k(id, version)"
            " JOIN {}.{} e ON e.originator_id = k.id AND e.originator_version = k.version"
        ).format(Identifier(datastore.originator_id_type), schema, Identifier(events_table_name))
        self.recorded_positions_statement = SQL(
            "SELECT application_name, notification_id FROM {}.{}"
            " WHERE application_name = ANY(%s::text[])"
        ).format(schema, Identifier(tracking_table_name))
        self.committer = GroupCommitter(self._commit_group)
        # The parameters go packed (pg_arrays.py) for UUID ids; any other id type as lists.
        self.packs_arrays = datastore.originator_id_type == "uuid"
        # `_send_directly`'s statements, by their text; the committer's own connection
        # (`_commit_connection`) and the names prepared on it.
        self._directs: dict[bytes, _Prepared] = {}
        self._commit_conn: Connection[Any] | None = None
        self._replan_at: int | None = None  # the notification id that reopens it
        self.replans = 0  # times it was reopened to plan its statements again
        self._commit_lock = threading.Lock()
        self._prepared: set[bytes] = set()
        # Set by the close, under `_commit_lock`: no connection is opened after it (a
        # leader taking the lock between the close and the pool's closing would open one
        # nobody closes; session 18's attack).
        self._closed = False
        closing = datastore.close

        def close() -> None:  # the committer's connection goes with the pool
            self._close_commit_connection()
            closing()

        datastore.close = close  # type: ignore[method-assign]

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        """eventsourcing's start DDL (every process start, CREATE_TABLE) less the
        `CREATE [UNIQUE] INDEX IF NOT EXISTS` of an index that exists (an invalid one is
        rebuilt: infra/storage/pg_ddl.py).

        That statement takes a SHARE lock on its table even when the index exists, so a
        start waited behind every save holding the events table's EXCLUSIVE lock (an
        e2Open COPY: ~1 s per 100,000 reports), and saves requested after it queued
        behind its request. `CREATE TABLE IF NOT EXISTS` of an existing table takes no
        lock on it and is kept; eventsourcing's tracking-table migration (its
        `_create_table`) is left as it is. A missing index is still created, with its
        lock (first start). Issue 11, session 18.
        """
        statements = self.sql_create_statements
        self.sql_create_statements = _start_statements(curs, statements)
        try:
            super()._create_table(curs)
        finally:
            self.sql_create_statements = statements

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Record `stored_events` with `tracking` (a policy's position) in one transaction,
        shared with concurrent saves of this process; returns their notification ids.

        `read_versions` ({aggregate id: version read}) refuses the save when one of those
        aggregates has a later event at commit. Raises IntegrityError (RecordConflictError)
        for a version, tracking or read-version conflict: nothing of this save is recorded.
        """
        tracking: Tracking | None = kwargs.get("tracking")
        read_versions: Mapping[UUID, int] | None = kwargs.get("read_versions")
        if not stored_events and tracking is None:
            return []
        if len(stored_events) >= COPY_MIN_ROWS and not self.datastore.enable_db_functions:
            # An e2Open batch: by binary COPY, alone, with the same guarantees (pg_copy.py).
            with unencodable_refused():
                copied: Sequence[int] = insert_by_copy(self, stored_events, tracking, read_versions)
            return copied
        unit = Unit(stored_events, tracking, read_versions or {})
        return self.committer.submit(unit)

    def copy_stream(self, tracking: Tracking | None, expected: int) -> CopyStream | None:
        """A CopyStream for a command about to make `expected` stored events, which it
        saves with `tracking` (infra/storage/pg_copy.py); None where streaming does not
        pay or is not possible: fewer than COPY_MIN_ROWS events, the library's database
        functions in use, or a pool of one connection (the command's own reads need a
        second one while the stream holds its own)."""
        if expected < COPY_MIN_ROWS or self.datastore.enable_db_functions:
            return None
        if self.datastore.pool.max_size < 2:
            return None
        return CopyStream(self, tracking)

    def _commit_group(self, units: list[Unit]) -> None:
        try:
            self._commit_retrying(units)
        except (InterfaceError, OperationalError):
            raise  # the connection or the lock: the same for every unit
        except PersistenceError:
            if len(units) == 1:
                raise
            for unit in units:  # one unit's bad data must not fail its neighbours
                try:
                    self._commit_retrying([unit])
                except PersistenceError as error:
                    unit.error = error

    def _commit_retrying(self, units: list[Unit]) -> None:
        """`_commit_together`, retried on a lost connection or a lock timeout (10 times,
        0.2 s apart, as the stock recorder). Such a failure may come after the server
        committed (the reply lost): on a retry, a unit refused whose events are all stored
        as it sent them was committed by the earlier attempt, and is answered with their
        notification ids, not as a conflict (issue 11's attack)."""
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            try:
                try:
                    self._commit_together(units)
                except IntegrityError as error:  # a lone unit's own unique violation
                    if attempt == 1 or len(units) != 1:
                        raise
                    units[0].error = error
            except (InterfaceError, OperationalError):
                if attempt == RETRY_ATTEMPTS:
                    raise
                time.sleep(RETRY_WAIT_SECONDS)
                continue
            if attempt > 1:
                self._recognise_committed(units)
            return

    def _recognise_committed(self, units: list[Unit]) -> None:
        """Accept the refused units the earlier attempt committed (one round trip each
        kind): those whose every event is stored as sent, and those with a policy's
        position and no events (nothing else to record) whose position is the one
        recorded (session 18's attack: answered "nothing was recorded" after their
        commit). A position behind the recorded one stays refused."""
        refused = [u for u in units if isinstance(u.error, IntegrityError)]
        positions = [u for u in refused if not u.stored_events and u.tracking is not None]
        refused = [u for u in refused if u.stored_events]
        if positions:
            self._recognise_positions(positions)
        if not refused:
            return
        events = [e for unit in refused for e in unit.stored_events]
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(
                self.stored_as_sent_statement,
                ([e.originator_id for e in events], [e.originator_version for e in events]),
            )
            stored = {(row[0], row[1]): row[2:] for row in curs.fetchall()}
        for unit in refused:
            found = [
                stored.get((e.originator_id, e.originator_version)) for e in unit.stored_events
            ]
            if all(
                row is not None and row[1] == e.topic and bytes(row[2]) == e.state
                for row, e in zip(found, unit.stored_events, strict=True)
            ):
                unit.error = None
                unit.notification_ids = [row[0] for row in found if row is not None]

    def _recognise_positions(self, units: list[Unit]) -> None:
        """Accept the units (a position, no events) whose position is the one recorded."""
        names = sorted({u.tracking.application_name for u in units if u.tracking is not None})
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(self.recorded_positions_statement, (names,))
            recorded: dict[str, int] = dict(curs.fetchall())
        for unit in units:
            tracking = unit.tracking
            if tracking is not None and recorded.get(tracking.application_name) == (
                tracking.notification_id
            ):
                unit.error = None
                unit.notification_ids = []

    def _commit_together(self, units: list[Unit]) -> None:
        for unit in units:
            unit.error = None
            unit.notification_ids = []
        lone = units[0]
        if len(units) > 1:
            statement = self.plain_statement if independent(units) else self.group_statement
        elif lone.tracking is not None or not lone.stored_events:
            statement = self.lone_statement
        elif lone.read_versions:
            statement = self.reads_statement
        else:
            statement = self.alone_statement
        parameters: dict[str, Any]
        if self.packs_arrays:
            try:  # as `unencodable_refused`, without a generator per group
                parameters = _packed_parameters(units)
            except _UNENCODABLE as error:
                raise _unencodable(error) from error
        else:
            parameters = self._parameters(units)
        rows = self._send(statement, parameters)
        settle(units, rows)

    def _send(self, statement: bytes, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
        """BEGIN ... COMMIT in one pipeline, one Sync: one round trip. The datastore turns
        psycopg's errors into eventsourcing's. Packed parameters (UUID ids) go through
        libpq's pipeline directly, on the committer's own connection (`_send_directly`),
        any others through psycopg's on a pooled one."""
        if self.packs_arrays:
            with self._commit_lock:
                try:  # as `_as_eventsourcing_errors`, without a generator per group
                    rows = self._send_directly(self._commit_connection(), statement, parameters)
                    self._replan_when_grown(rows)
                except psycopg.Error as error:
                    raise _eventsourcing_error(error) from error
                return rows
        with unencodable_refused(), self.datastore.get_connection() as conn:
            try:
                use_packed_arrays(conn)
                group = conn.cursor(row_factory=tuple_row)
                # The pipeline's end sends the one Sync and reads every result.
                with conn.pipeline(), conn.cursor() as framing:
                    framing.execute(b"BEGIN")
                    for opening_statement in self.opening_statements:
                        framing.execute(opening_statement, prepare=True)
                    group.execute(statement, parameters, prepare=True)
                    for closing_statement in self.closing_statements:
                        framing.execute(closing_statement)
                    framing.execute(b"COMMIT")
                return group.fetchall()
            except BaseException:
                _roll_back(conn)
                raise

    def _send_directly(
        self, conn: Connection[Any], statement: bytes, parameters: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """`_send`'s transaction on libpq's pipeline itself (issue 11, session 18): every
        message queued, then one flush and one read of all the results up to the Sync.
        psycopg's pipeline sent each statement as it was executed (a send per statement)
        and ran its cursor machinery five times per group: a sixth of the client's CPU
        per command at 8 threads. The messages are the same (BEGIN, the settings and
        NOTIFY, LOCK TABLE, the statement, any closing statements, COMMIT, one Sync), and
        so are the outcomes: the first error is raised as psycopg's (the datastore turns
        it into eventsourcing's) and the transaction rolled back; a lost connection, or an
        interrupt with results unread, closes the connection (the pool replaces it; the
        server ends its transaction as for any lost connection).

        It runs on a connection of the committer's own (`_commit_connection`: one commit
        is in flight per process), where its statements are prepared once, in the same
        pipeline. Not on a pooled one: psycopg deallocates every prepared statement of a
        connection when it rolls back after preparing its own (eventsourcing's reads end
        that way), so a pooled connection would lose them behind this recorder's back.
        Should a statement still be found missing (SQLSTATE 26000), or one thought
        missing found prepared (42P05: another deallocated by name), or one whose result
        columns changed type since it was prepared (0A000), all raised before anything
        is written (the transaction is rolled back), the transaction is sent once
        more after DEALLOCATE ALL with every statement prepared again; this path rolls
        back without psycopg."""
        ready = self._prepared
        opening = [self._direct(s) for s in self.opening_statements]
        main = self._direct(statement)
        closing = (
            [s.as_bytes(conn) for s in self.closing_statements] if self.closing_statements else []
        )
        values: list[bytes | None] = [parameters[name] for name in main.parameters]
        for attempt in (1, 2):
            # The resend starts from nothing: DEALLOCATE ALL, then every statement
            # prepared, so it holds whatever was deallocated (all, or one by name).
            reset = attempt == 2
            preparing = [p for p in (*opening, main) if reset or p.name not in ready]

            def queue(
                pgconn: PGconn, preparing: list[_Prepared] = preparing, reset: bool = reset
            ) -> None:
                if reset:
                    pgconn.send_query_params(b"DEALLOCATE ALL", None)
                for prepared in preparing:
                    pgconn.send_prepare(prepared.name, prepared.text)
                pgconn.send_query_params(b"BEGIN", None)
                for prepared in opening:
                    pgconn.send_query_prepared(prepared.name, None)
                pgconn.send_query_prepared(main.name, values, [1] * len(values))
                for text in closing:
                    pgconn.send_query_params(text, None)
                pgconn.send_query_params(b"COMMIT", None)

            results = _pipelined(conn, queue)
            if reset and results and results[0].status == _COMMAND_OK:
                ready.clear()
            skipped = int(reset)
            if preparing:  # prepared statements outlive a rollback
                ready |= {
                    prepared.name
                    for prepared, result in zip(preparing, results[skipped:], strict=False)
                    if result.status == _COMMAND_OK
                }
            failed = next((r for r in results if r.status == _FATAL_ERROR), None)
            expected = skipped + len(preparing) + len(opening) + len(closing) + 3
            if failed is None and len(results) == expected:
                rows = results[skipped + len(preparing) + 1 + len(opening)]
                return _rows(rows)
            _roll_back_directly(conn)
            if failed is None:
                raise errors.InterfaceError(f"{len(results)} results for the save's pipeline")
            # Missing (26000) or, one deallocated by name, another found prepared again
            # (42P05): both raised before anything is written (the prepares and the
            # statements run before the statement writing). A result column's type
            # changed since preparing (0A000, ALTER TABLE ... TYPE): refused before the
            # statement runs, and refused until it is prepared again (session 21).
            state = failed.error_field(DiagnosticField.SQLSTATE)
            if (state in (b"26000", b"42P05") or result_type_changed_in(failed)) and attempt == 1:
                continue
            raise errors.error_from_result(failed, encoding=conn.info.encoding)
        raise AssertionError("unreachable")  # pragma: no cover

    def latest_rows(
        self, statement: bytes, ids: Sequence[UUID], *, one: bool = False
    ) -> list[LatestRow] | None:
        """The rows of a load's statement (handlers/stored_loads.py) over one uuid[]
        parameter (`%s`), or over one uuid when `one` (the one-id statement), as
        `(is_snapshot, originator_id, originator_version, topic, state)`; None when the
        store's ids are not UUIDs (the caller reads as before). The ids go packed
        (pg_arrays.py) and the rows come as tuples in binary: psycopg dumped the list
        element by element and built a dict per row (issue 11, session 18). On a pooled
        connection, sent on libpq directly (infra/storage/pg_loads.py: psycopg's cursor
        machinery was half of a cold load's client CPU; session 20), or through psycopg's
        cursor, prepared by psycopg, when the connection is not idle in autocommit mode."""
        if not self.packs_arrays:
            return None
        pool = self.datastore.pool
        if not pool.closed:
            # The pool's checkout without eventsourcing's and psycopg's context managers
            # (a third of what was left of the read; session 20): the connection is not
            # used by psycopg here, so it needs neither the composite types
            # `get_connection` registers nor the commit that ends `with conn`; the same
            # errors (`_eventsourcing_error` turns them as `get_connection` does).
            try:
                conn = pool.getconn()
                try:
                    rows = load_rows(conn, statement, ids, one=one)
                finally:
                    pool.putconn(conn)
            except psycopg.Error as error:
                raise _eventsourcing_error(error) from error
            if rows is not None:
                return rows
        with self.datastore.get_connection() as conn:  # opens the pool, or says it is closed
            use_packed_arrays(conn)
            with conn.cursor(row_factory=tuple_row, binary=True) as curs:
                parameter = ids[0] if one else packed_uuid(ids)
                curs.execute(statement, (parameter,), prepare=True)
                return curs.fetchall()

    def _commit_connection(self) -> Connection[Any]:
        """The committer's own connection, opened as the pool opens its own (the same
        parameters, name and settings), again once lost. Only a group's leader uses it
        (one commit in flight), under `_commit_lock`."""
        conn = self._commit_conn
        if conn is not None and not conn.closed:
            return conn
        pool = self.datastore.pool
        if pool.closed or self._closed:
            raise errors.OperationalError("The store's connection pool is closed.")
        given = pool.kwargs() if callable(pool.kwargs) else pool.kwargs
        conninfo = pool.conninfo() if callable(pool.conninfo) else pool.conninfo
        kwargs: dict[str, Any] = dict(given or {})
        password = getattr(pool, "get_password_func", None)
        if password is not None:
            kwargs["password"] = password()
        kwargs.setdefault("connect_timeout", max(1, round(pool.timeout)))
        conn = Connection.connect(conninfo, **kwargs)
        self.datastore.after_connect_func()(conn)  # autocommit, idle-in-transaction timeout
        self._prepared = set()
        self._replan_at = None  # set by its first commit (`_replan_when_grown`)
        self._commit_conn = conn
        return conn

    def _replan_when_grown(self, rows: list[tuple[Any, ...]]) -> None:
        """After a commit on the committer's connection (under `_commit_lock`): close that
        connection once the events table has grown REPLAN_FACTOR-fold (plus REPLAN_ROWS)
        since its first commit, so the next group opens another and prepares its
        statements again. The group statement runs on its generic plan
        (`force_generic_plan`), made when it is first prepared: made on an empty table,
        it joins the events table by a sequential scan, and the connection kept that plan
        until autovacuum's first ANALYZE, each group costing more as the table grew
        (400 → 2,425 µs of server CPU over 2,400 groups; session 19). Planned again on a
        grown table, it uses the primary key (250 µs flat). The notification ids the
        commit assigned stand for the table's size; reopening costs one connection, at
        geometrically spaced sizes."""
        top = max((row[1] for row in rows if row[0] == 0), default=None)
        if top is None:
            return
        if self._replan_at is None:
            self._replan_at = REPLAN_FACTOR * top + REPLAN_ROWS
        elif top >= self._replan_at:
            conn, self._commit_conn, self._replan_at = self._commit_conn, None, None
            self.replans += 1
            if conn is not None:
                conn.close()

    def _close_commit_connection(self) -> None:
        with self._commit_lock:
            self._closed = True
            conn, self._commit_conn = self._commit_conn, None
            if conn is not None:
                conn.close()

    def _direct(self, statement: bytes) -> _Prepared:
        """The statement as prepared for `_send_directly` ($n placeholders, its name)."""
        found = self._directs.get(statement)
        if found is None:
            text, names = positional(statement)
            name = f"partnerfleet_{len(self._directs)}".encode()
            found = self._directs[statement] = _Prepared(name, text, names)
        return found

    @staticmethod
    def _parameters(units: list[Unit]) -> dict[str, list[Any]]:
        lone = units[0]
        if len(units) == 1 and lone.tracking is None and lone.stored_events:
            events = lone.stored_events
            p_alone: dict[str, list[Any]] = {
                "event_ids": [e.originator_id for e in events],
                "event_versions": [e.originator_version for e in events],
                "topics": [e.topic for e in events],
                "states": [e.state for e in events],
            }
            if lone.read_versions:
                p_alone["read_ids"] = list(lone.read_versions)
                p_alone["read_versions"] = list(lone.read_versions.values())
            return p_alone
        p: dict[str, list[Any]] = {name: [] for name in PARAMETERS}
        for index, unit in enumerate(units):
            events = unit.stored_events
            p["event_units"] += [index] * len(events)
            p["event_ids"] += [e.originator_id for e in events]
            p["event_versions"] += [e.originator_version for e in events]
            p["topics"] += [e.topic for e in events]
            p["states"] += [e.state for e in events]
            for aggregate_id, version in unit.read_versions.items():
                p["read_units"].append(index)
                p["read_ids"].append(aggregate_id)
                p["read_versions"].append(version)
            if unit.tracking is not None:
                p["tracking_units"].append(index)
                p["names"].append(unit.tracking.application_name)
                p["positions"].append(unit.tracking.notification_id)
        return p


_IDS = attrgetter("originator_id")
_VERSIONS = attrgetter("originator_version")
_TOPICS = attrgetter("topic")
_STATES = attrgetter("state")


def _packed_parameters(units: list[Unit]) -> dict[str, bytes]:
    """`FleetProcessRecorder._parameters(units)`, each packed by its PACKERS entry: the
    same names and bytes, built from the units without the lists in between (each
    array's values taken by `map` over an attrgetter; issue 11, session 20). The arrays
    are packed in PARAMETERS order, so data that cannot be packed raises what PACKERS
    raised first."""
    lone = units[0]
    if len(units) == 1 and lone.tracking is None and lone.stored_events:
        p = _packed_events(lone.stored_events)
        reads = lone.read_versions
        if reads:
            p["read_ids"] = uuid_array(reads)
            p["read_versions"] = int8_array(list(reads.values()))
        return p
    events: list[StoredEvent] = []
    event_units: list[int] = []
    read_units: list[int] = []
    read_ids: list[UUID] = []
    read_versions: list[int] = []
    tracked: list[tuple[int, Tracking]] = []
    for index, unit in enumerate(units):
        events += unit.stored_events
        event_units += [index] * len(unit.stored_events)
        if unit.read_versions:
            read_units += [index] * len(unit.read_versions)
            read_ids += unit.read_versions
            read_versions += unit.read_versions.values()
        if unit.tracking is not None:
            tracked.append((index, unit.tracking))
    p = {"event_units": int4_array(event_units), **_packed_events(events)}
    p["read_units"] = int4_array(read_units)
    p["read_ids"] = uuid_array(read_ids)
    p["read_versions"] = int8_array(read_versions)
    p["tracking_units"] = int4_array([index for index, _ in tracked])
    p["names"] = text_array([tracking.application_name for _, tracking in tracked])
    p["positions"] = int8_array([tracking.notification_id for _, tracking in tracked])
    return p


def _packed_events(events: Sequence[StoredEvent]) -> dict[str, bytes]:
    return {
        "event_ids": uuid_array(list(map(_IDS, events))),
        "event_versions": int8_array(list(map(_VERSIONS, events))),
        "topics": text_array(list(map(_TOPICS, events))),
        "states": bytea_array(list(map(_STATES, events))),
    }


def independent(units: list[Unit]) -> bool:
    """True when the group's own conflicts cannot arise, so PLAIN_STATEMENT gives its
    outcomes: no unit has a policy position, no (originator_id, originator_version) is
    written twice, and no aggregate read (`read_versions`) is written by any unit."""
    events: list[StoredEvent] = []
    reads: list[Mapping[UUID, int]] = []
    for unit in units:
        if unit.tracking is not None:
            return False
        events += unit.stored_events
        if unit.read_versions:
            reads.append(unit.read_versions)
    written = set(map(_IDS, events))
    if len(written) != len(events):  # an aggregate written twice: are its versions?
        keys = set(zip(map(_IDS, events), map(_VERSIONS, events), strict=True))
        if len(keys) != len(events):
            return False
    return all(written.isdisjoint(read) for read in reads)


def _start_statements(curs: Cursor[DictRow], statements: Sequence[Composed]) -> list[Composed]:
    """`statements` as a start runs them (infra/storage/pg_ddl.py, `start_statement`)."""

    def valid(index: str) -> bool | None:
        row = curs.execute(validity_query("%s"), (index,)).fetchone()
        return None if row is None else bool(row["indisvalid"])

    kept: list[Composed] = []
    for statement in statements:
        text = statement.as_string(curs)
        run = start_statement(text, valid)
        if run == text:
            kept.append(statement)
        elif run is not None:
            kept.append(Composed([SQL(run)]))  # REINDEX INDEX <name>, a catalog name
    return kept


def settle(units: list[Unit], rows: list[tuple[Any, ...]]) -> None:
    """Give each unit its outcome from the statement's rows: its notification ids in the
    order of its events, or IntegrityError naming why it was refused.

    Rows: (0, notification_id, ...) per inserted event, in insertion order (the accepted
    units' events, in the group's order); (1, ..., name, ...) per recorded policy position;
    (2, ..., reason, unit) per refusal.
    """
    ids: list[int] = []
    tracked: set[str] = set()
    reasons: dict[int, str] = {}
    for kind, notification_id, name, unit_index in rows:
        if kind == 0:
            ids.append(notification_id)
        elif kind == 1:
            tracked.add(name)
        else:
            reasons.setdefault(unit_index, name)
    accepted: list[Unit] = []
    for index, unit in enumerate(units):
        reason = reasons.get(index)
        tracking = unit.tracking
        if reason is None and tracking is not None and tracking.application_name not in tracked:
            reason = TRACKING
        if reason is None:
            accepted.append(unit)
        else:
            unit.error = IntegrityError(_refusal(reason, unit))
    if len(ids) != sum(len(unit.stored_events) for unit in accepted):
        raise ProgrammingError(f"{len(ids)} notification ids for the group's accepted events")
    start = 0
    for unit in accepted:
        end = start + len(unit.stored_events)
        unit.notification_ids = ids[start:end]
        start = end


def _refusal(reason: str, unit: Unit) -> str:
    if reason == TRACKING and unit.tracking is not None:
        return (
            f"Tracking {unit.tracking.application_name} {unit.tracking.notification_id} is "
            "not beyond the recorded position; nothing was recorded."
        )
    if reason == READ:
        return "An aggregate read by the command changed since it was read; nothing was recorded."
    return "An event of this version of the aggregate is already recorded; nothing was recorded."


_PLACEHOLDER = re.compile(rb"%\((\w+)\)b|%%|%")


@dataclass(frozen=True)
class _Prepared:
    """A statement as `_send_directly` prepares it: its name, its text with $n
    placeholders, and the parameter named by each $n, in order."""

    name: bytes
    text: bytes
    parameters: tuple[str, ...]


def positional(statement: bytes) -> tuple[bytes, tuple[str, ...]]:
    """The statement with psycopg's `%(name)b` placeholders as PostgreSQL's $1, $2, ...
    (one number per name, in order of first use; `%%` as `%`) and the names in that
    order. ValueError for any other placeholder (`%s`, `%(name)s`, a lone `%`)."""
    names: list[str] = []

    def number(match: re.Match[bytes]) -> bytes:
        if match.group(1) is None:
            if match.group(0) == b"%%":
                return b"%"
            raise ValueError(f"Only %(name)b placeholders are sent directly: {statement[:80]!r}")
        name = match.group(1).decode()
        if name not in names:
            names.append(name)
        return b"$%d" % (names.index(name) + 1)

    return _PLACEHOLDER.sub(number, statement), tuple(names)


def _pipelined(conn: Connection[Any], queue: Callable[[PGconn], None]) -> list[PGresult]:
    """Every result of what `queue` sends on the connection's libpq pipeline, up to the
    Sync this adds (the messages' own results, errors and aborted ones included). The
    connection is closed if the exchange does not end (lost, or interrupted): its
    results could not be read in order any more."""
    pgconn = conn.pgconn
    try:
        pgconn.enter_pipeline_mode()
        queue(pgconn)
        pgconn.pipeline_sync()
        results = conn.wait(_exchange(pgconn))
        pgconn.exit_pipeline_mode()
    except BaseException:
        conn.close()  # the pool replaces it
        raise
    return results


def _rows(result: PGresult) -> list[tuple[Any, ...]]:
    """The statement's rows as `settle` reads them: (kind, notification id, name, unit),
    each an int or a str or None (text format)."""
    value = result.get_value
    return [
        (
            int(value(row, 0) or b"0"),
            None if (nid := value(row, 1)) is None else int(nid),
            None if (name := value(row, 2)) is None else name.decode(),
            None if (unit := value(row, 3)) is None else int(unit),
        )
        for row in range(result.ntuples)
    ]


LatestRow = tuple[bool, UUID, int, str, bytes]


@contextmanager
def unencodable_refused() -> Iterator[None]:
    """Data that cannot be sent at all (a str with a lone surrogate: no UTF-8 for it; an
    integer beyond its column's type) refused as DataError, as the server refuses data
    it cannot store: a PersistenceError, so a group is committed again one unit per
    transaction and that unit alone is refused (session 18's attack: UnicodeEncodeError
    or struct.error failed every unit of the group)."""
    try:
        yield
    except _UNENCODABLE as error:
        raise _unencodable(error) from error


# What packing or sending raises for data that cannot be sent (`unencodable_refused`).
_UNENCODABLE = (UnicodeEncodeError, struct.error, OverflowError)


def _unencodable(error: BaseException) -> DataError:
    return DataError(f"The save's data cannot be sent: {error}")


# psycopg's errors and eventsourcing's, the most specific first (as
# `PostgresDatastore.get_connection` turns them, inline there).
_EVENTSOURCING_ERRORS: tuple[tuple[type[psycopg.Error], type[PersistenceError]], ...] = (
    (psycopg.InterfaceError, InterfaceError),
    (psycopg.OperationalError, OperationalError),
    (psycopg.DataError, DataError),
    (psycopg.IntegrityError, IntegrityError),
    (psycopg.InternalError, InternalError),
    (psycopg.ProgrammingError, ProgrammingError),
    (psycopg.NotSupportedError, NotSupportedError),
    (psycopg.DatabaseError, DatabaseError),
    (psycopg.Error, PersistenceError),
)


def _eventsourcing_error(error: psycopg.Error) -> PersistenceError:
    """`error` as eventsourcing's error of its kind, with its message."""
    ours = next(es for theirs, es in _EVENTSOURCING_ERRORS if isinstance(error, theirs))
    return ours(str(error))


def _roll_back_directly(conn: Connection[Any]) -> None:
    """`_roll_back` on libpq's pipeline: psycopg seeing a ROLLBACK deallocates the
    connection's prepared statements (see `_send_directly`)."""
    if conn.closed or conn.pgconn.transaction_status == TransactionStatus.IDLE:
        return

    def queue(pgconn: PGconn) -> None:
        pgconn.send_query_params(b"ROLLBACK", None)

    try:
        results = _pipelined(conn, queue)
    except Exception:
        return  # closed: the pool replaces it
    if any(r.status != _COMMAND_OK for r in results):
        conn.close()


# The libpq statuses `_send_directly` and `_exchange` test per result, as plain ints, and
# the waits they yield: an enum member looked up on its class costs a Python-level
# `EnumType` look-up each time, ~20 per group (issue 11, session 20).
_COMMAND_OK = int(ExecStatus.COMMAND_OK)
_FATAL_ERROR = int(ExecStatus.FATAL_ERROR)
_PIPELINE_SYNC = int(ExecStatus.PIPELINE_SYNC)
_CONNECTION_OK = int(ConnStatus.OK)
_WAIT_R, _WAIT_RW, _READY_R = Wait.R, Wait.RW, Ready.R


def _exchange(pgconn: PGconn) -> Generator[Wait, Ready | int, list[PGresult]]:
    """Flush what is queued in the pipeline, then every result up to its Sync (a
    psycopg generator: `conn.wait` drives it). Raises psycopg's OperationalError when
    the connection is lost."""
    while pgconn.flush():  # non-blocking: 1 while something is left to send
        ready = yield _WAIT_RW
        if ready & _READY_R:
            pgconn.consume_input()  # the server's replies, so that it reads on
    results: list[PGresult] = []
    ended = False  # the previous get_result ended a statement's results
    while True:
        while pgconn.is_busy():
            yield _WAIT_R
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            if ended or pgconn.status != _CONNECTION_OK:
                raise errors.OperationalError("The connection ended before the pipeline's Sync.")
            ended = True
            continue
        ended = False
        if result.status == _PIPELINE_SYNC:
            return results
        results.append(result)


def _rendered(statement: Composed | SQL) -> bytes:
    """The statement as the bytes psycopg would send (UTF-8, the store's encoding)."""
    return statement.as_bytes(None)


def _roll_back(conn: Connection[Any]) -> None:
    # In a pipeline an error skips everything up to the Sync, COMMIT included: the
    # transaction is left open and failed. A lost connection needs nothing.
    if conn.closed or conn.info.transaction_status == TransactionStatus.IDLE:
        return
    try:
        conn.execute("ROLLBACK")
    except Exception:
        conn.close()  # the pool replaces it


TOPIC = get_topic(FleetProcessRecorder)
