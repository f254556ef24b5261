"""Session 16 attacked (issue 11): `ViewDB.read()`'s autocommit connections on PostgreSQL when
the server kills them or cancels their query mid-read.

A read runs on a pooled connection in autocommit; the view runner's batches run on the same
pool in transactions, where a failure must leave nothing. Whatever happens to a read (its
backend terminated, its statement cancelled), no later transaction may run in autocommit.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest

from handlers import PartnerFleet
from infra.kafka.envelope import Envelope
from infra.kafka.relay import Relay, domain_topics
from infra.storage.viewdb import PostgresViewDB, SQLiteViewDB, ViewDB
from tests.integration.test_relay import some_history
from tests.kafka import Broker, read_topics
from tests.scenarios import CUSTOMER, servers


def _admin(db: ViewDB) -> Any:
    """A connection of its own to the view database's server, outside the pool."""
    assert isinstance(db, PostgresViewDB)
    conninfo = db._pool.conninfo
    assert isinstance(conninfo, str)
    return psycopg.connect(conninfo, autocommit=True)


def _insert_then_fail(db: ViewDB, n: int) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO s16 VALUES (?)", (n,))
        tx.query("SELECT 1")  # sends the buffered insert
        raise RuntimeError("undo")


def _killed_read(db: ViewDB, admin: Any) -> None:
    with db.read() as tx:
        (pid,) = tx.query("SELECT pg_backend_pid()")[0]
        admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
        tx.query("SELECT count(*) FROM s16")


def _cancelled_read(db: ViewDB) -> None:
    with db.read() as tx:
        tx.query("SELECT set_config('statement_timeout', '50', false)")
        tx.query("SELECT pg_sleep(1)")


def _failed_transactions_leave_nothing(db: ViewDB, times: int) -> None:
    """`times` transactions that write and then fail (more than the pool holds, so every
    pooled connection runs one): none of their rows may stay."""
    for n in range(times):
        with pytest.raises(RuntimeError, match="undo"):
            _insert_then_fail(db, n)
    with db.transaction() as tx:
        assert tx.query("SELECT count(*) FROM s16") == [(0,)]
    assert isinstance(db, PostgresViewDB)
    pool = db._pool
    with ExitStack() as taken:  # every connection the pool holds: none in autocommit
        conns = [taken.enter_context(pool.connection()) for _ in range(pool.max_size)]
        assert [conn.autocommit for conn in conns] == [False] * pool.max_size


def test_session16_a_read_whose_backend_is_killed_leaves_no_autocommit_behind(
    pg_db: ViewDB,
) -> None:
    """The server terminates a read's connection between two of its queries: the read fails,
    and every later transaction on the pool is a transaction again."""
    with pg_db.transaction() as tx:
        tx.execute("CREATE TABLE s16 (k INTEGER PRIMARY KEY)")
    with _admin(pg_db) as admin:
        for _ in range(3):
            with pytest.raises(psycopg.OperationalError):
                _killed_read(pg_db, admin)
    _failed_transactions_leave_nothing(pg_db, 8)
    with pg_db.read() as tx:
        assert tx.query("SELECT count(*) FROM s16") == [(0,)]


def test_session16_a_read_killed_after_its_last_query_leaves_no_autocommit_behind(
    pg_db: ViewDB,
) -> None:
    """The backend dies after the read's last query, unnoticed by the client: the read
    succeeds, the connection is replaced when next taken, transactions stay transactions."""
    with pg_db.transaction() as tx:
        tx.execute("CREATE TABLE s16 (k INTEGER PRIMARY KEY)")
    with _admin(pg_db) as admin, pg_db.read() as tx:
        (pid,) = tx.query("SELECT pg_backend_pid()")[0]
        admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
    _failed_transactions_leave_nothing(pg_db, 8)


def test_session16_a_cancelled_read_leaves_no_autocommit_behind(pg_db: ViewDB) -> None:
    """A read's statement cancelled by the server (statement_timeout): the read fails, the
    pooled connection is back in transactions."""
    with pg_db.transaction() as tx:
        tx.execute("CREATE TABLE s16 (k INTEGER PRIMARY KEY)")
    for _ in range(3):
        with pytest.raises(psycopg.errors.QueryCanceled):
            _cancelled_read(pg_db)
    for _ in range(4):  # the test's own session setting, off again
        with pg_db.read() as tx:
            tx.query("SELECT set_config('statement_timeout', '0', false)")
    _failed_transactions_leave_nothing(pg_db, 8)


# --- the relay: stopped while it reads ahead and appends ------------------------------------


def many_events(fleet: PartnerFleet) -> None:
    """Some hundreds of events over many aggregates (several full relay batches of 10)."""
    some_history(fleet)
    for n in range(4):
        serials = [f"R{n}X{k}" for k in range(25)]
        fleet.register_devices(CUSTOMER, "C1", servers(*serials))


def test_session16_a_relay_stopped_again_and_again_loses_nothing_and_keeps_order(
    stored_fleet: PartnerFleet, broker: Broker, tmp_path: Path
) -> None:
    """Relays stopped at odd moments (reading ahead, appending, waiting for acknowledgements),
    each followed by a new one: every recorded position was acknowledged (every event up to it
    is on the broker when it is read), every stored event arrives, and per aggregate the
    events in the order first seen are its versions in order."""
    topics = f"pf{uuid.uuid4().hex[:8]}"
    many_events(stored_fleet)
    stored = stored_fleet.recorder.select_notifications(1, 100_000)
    positions = SQLiteViewDB(str(tmp_path / "positions.sqlite3"))
    for pause in (0.0, 0.01, 0.03, 0.07, 0.15):
        relay = Relay(stored_fleet, positions, broker.bootstrap, batch_size=10, prefix=topics)
        thread = threading.Thread(target=relay.run, kwargs={"poll_seconds": 0.01})
        thread.start()
        time.sleep(pause)
        relay.stop()
        thread.join(timeout=60)
        assert not thread.is_alive()
        # nothing of it left running: a producer or reader a batch made after stop() is closed
        assert (relay._producer, relay._reader) == (None, None)
        recorded = relay.position()
        if recorded:
            wanted = sum(1 for n in stored if n.id <= recorded)
            records = read_topics(broker.bootstrap, domain_topics(topics), wanted)
            seen = {Envelope.model_validate_json(r.value).position for r in records}
            assert {n.id for n in stored if n.id <= recorded} <= seen
    last = Relay(stored_fleet, positions, broker.bootstrap, batch_size=10, prefix=topics)
    while last.relay_once():
        pass
    last.stop()
    assert last.lag() == 0
    records = read_topics(broker.bootstrap, domain_topics(topics), len(stored))
    envelopes = [Envelope.model_validate_json(r.value) for r in records]
    assert {e.position for e in envelopes} == {n.id for n in stored}
    first_seen: dict[uuid.UUID, list[int]] = defaultdict(list)
    events: set[uuid.UUID] = set()
    for envelope in envelopes:  # read per partition: a key's records in the broker's order
        if envelope.event_id not in events:
            events.add(envelope.event_id)
            first_seen[envelope.aggregate_id].append(envelope.aggregate_version)
    assert all(v == list(range(v[0], v[0] + len(v))) for v in first_seen.values())
