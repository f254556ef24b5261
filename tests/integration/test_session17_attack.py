"""Session 17 attack on the streamed e2Open batch (R-HLD-1, infra/storage/pg_copy.py
`CopyStream`, handlers/base.py `Working.stream_encoded`): what the stream's tests did not
try. Each test names the fault it found or the guarantee it holds the stream to.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from domain import Device
from domain.intake import E2OpenBatch
from handlers import PartnerFleet
from handlers.landing import Landing
from infra.bootstrap import build_fleet
from infra.settings import Settings
from infra.storage.pg_copy import COPY_MIN_ROWS, CopyStream, StreamAbortedError
from infra.storage.pg_recorder import FleetProcessRecorder
from tests.conftest import POSTGRES_DSN
from tests.scenarios import OPS, partner, report

pytestmark = pytest.mark.postgres

SIZE = COPY_MIN_ROWS + 300


@pytest.fixture
def pg_fleet(postgres_settings: Settings) -> Iterator[PartnerFleet]:
    fleet = build_fleet(postgres_settings)
    partner(fleet, "LOC-1")
    partner(fleet, "LOC-2")
    yield fleet
    fleet.close()


@pytest.fixture
def streams(monkeypatch: pytest.MonkeyPatch) -> list[CopyStream]:
    """Every CopyStream opened during the test."""
    opened: list[CopyStream] = []
    init = CopyStream.__init__

    def spied(self: CopyStream, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(CopyStream, "__init__", spied)
    return opened


def recorder_of(fleet: PartnerFleet) -> FleetProcessRecorder:
    recorder = fleet.recorder
    assert isinstance(recorder, FleetProcessRecorder)
    return recorder


def pause_at(monkeypatch: pytest.MonkeyPatch, call: int) -> tuple[threading.Event, threading.Event]:
    """Landing.plain_row waits at its `call`-th call (the stream open, the lock held) until
    released; (started, release)."""
    started, release = threading.Event(), threading.Event()
    made = Landing.plain_row
    calls = [0]

    def pausing(self: Landing, *args: Any, **kwargs: Any) -> StoredEvent:
        calls[0] += 1
        if calls[0] == call:
            started.set()
            release.wait(20)
        return made(self, *args, **kwargs)

    monkeypatch.setattr(Landing, "plain_row", pausing)
    return started, release


def lock_is_free(fleet: PartnerFleet) -> bool:
    """Whether the events table's EXCLUSIVE lock is granted within 2 s."""
    recorder = recorder_of(fleet)
    table = sql.Identifier(recorder.datastore.schema, recorder.events_table_name)
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '2s'")
        try:
            with conn.transaction():
                conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table))
        except psycopg.errors.LockNotAvailable:
            return False
    return True


def small_pool_batch(
    postgres_settings: Settings, monkeypatch: pytest.MonkeyPatch, batch_id: str
) -> None:
    """A batch of two resellers' PCs (the second's after the stream opened) on a fleet with
    a pool of two and a cold cache, paused mid-stream while another save waits for the
    table lock: it lands in full, the other save commits, the lock is free."""
    monkeypatch.setenv("POSTGRES_POOL_SIZE", "1")
    monkeypatch.setenv("POSTGRES_MAX_OVERFLOW", "1")  # a pool of two
    monkeypatch.setenv("POSTGRES_CONNECT_TIMEOUT", "3")  # how long a pool wait may last
    fleet = build_fleet(postgres_settings)  # a cold cache: partners are read from the store
    try:
        assert recorder_of(fleet).datastore.pool.max_size == 2
        started, release = pause_at(monkeypatch, 100)
        batch = [report(f"PCA{i:05d}", "LOC-1") for i in range(SIZE)]
        batch += [report(f"PCB{i:05d}", "LOC-2") for i in range(100)]
        done: list[Any] = []
        errors: list[BaseException] = []

        def land() -> None:
            try:
                done.append(fleet.receive_e2open_batch(OPS, batch_id, batch))
            except BaseException as error:
                errors.append(error)

        landing = threading.Thread(target=land)
        landing.start()
        assert started.wait(20)
        saved: list[Any] = []
        other = threading.Thread(
            target=lambda: saved.append(
                fleet.recorder.insert_events([StoredEvent(uuid4(), 1, "test:Row", b"{}")])
            )
        )
        other.start()
        other.join(0.5)
        release.set()
        landing.join(60)
        other.join(60)
        assert errors == []
        assert len(done[0].accepted) == SIZE + 100
        assert saved
        assert lock_is_free(fleet)
        landed = {n.originator_id for n in fleet.recorder.select_notifications(1, 10**6)}
        assert Device.id_for("PCB00099") in landed
        assert E2OpenBatch.id_for(batch_id) in landed
    finally:
        fleet.close()


@pytest.mark.usefixtures("pg_fleet")
def test_reads_mid_stream_do_not_deadlock_a_small_pool_r_hld_1(
    postgres_settings: Settings, streams: list[CopyStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault (hold and wait): a batch naming a second reseller after the stream opened looked
    that partner up on a second pooled connection while its stream held the table lock and
    the first. With a pool of two and another command's save waiting for the lock on the
    other connection, neither could go on: the batch failed with a pool timeout. Now the
    batch reads its partners before its first row, streams to the end and lands in full."""
    small_pool_batch(postgres_settings, monkeypatch, "pool-1")
    assert len(streams) == 1
    assert streams[0].failed is None


@pytest.mark.usefixtures("pg_fleet")
def test_a_read_mid_stream_ends_the_stream_first_r_hld_1(
    postgres_settings: Settings, streams: list[CopyStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kind: any read of the store while a stream is open (here the partners not read
    ahead) ends the stream first, so the lock and its connection are free for the read;
    the batch saves the ordinary way, every PC landed."""
    monkeypatch.setattr("handlers.holding._partners_named", lambda _: [])
    small_pool_batch(postgres_settings, monkeypatch, "pool-2")
    assert len(streams) == 1
    assert isinstance(streams[0].failed, StreamAbortedError)


@pytest.mark.usefixtures("pg_fleet")
def test_a_failure_mid_stream_frees_the_lock_before_its_stale_check(
    postgres_settings: Settings, streams: list[CopyStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault (hold and wait, the same kind): a command failing mid-stream with partners from
    the aggregate cache checked them for staleness (a read on a second connection) before
    its stream was ended. With a pool of two and a save waiting for the lock, that read
    timed out and the caller got the pool's OperationalError instead of the failure. Now the
    stream ends first: the caller gets the command's own error, the other save commits."""
    monkeypatch.setenv("POSTGRES_POOL_SIZE", "1")
    monkeypatch.setenv("POSTGRES_MAX_OVERFLOW", "1")
    monkeypatch.setenv("POSTGRES_CONNECT_TIMEOUT", "3")
    fleet = build_fleet(postgres_settings)
    try:
        fleet.receive_e2open_batch(OPS, "warm-1", [report("PCWARM1", "LOC-1")])  # cached
        started, release = pause_at(monkeypatch, 100)
        paused = Landing.plain_row  # pauses at its 100th call, fails at its 200th
        calls = [0]

        def failing(self: Landing, *args: Any, **kwargs: Any) -> StoredEvent:
            calls[0] += 1
            if calls[0] == 200:
                raise RuntimeError("checker crashed")
            return paused(self, *args, **kwargs)

        monkeypatch.setattr(Landing, "plain_row", failing)
        batch = [report(f"PCF{i:05d}") for i in range(SIZE)]
        errors: list[BaseException] = []

        def land() -> None:
            try:
                fleet.receive_e2open_batch(OPS, "stale-1", batch)
            except BaseException as error:
                errors.append(error)

        landing = threading.Thread(target=land)
        landing.start()
        assert started.wait(20)
        saved: list[Any] = []
        other = threading.Thread(
            target=lambda: saved.append(
                fleet.recorder.insert_events([StoredEvent(uuid4(), 1, "test:Row", b"{}")])
            )
        )
        other.start()
        other.join(0.5)
        release.set()
        landing.join(60)
        other.join(60)
        assert len(streams) == 1
        assert [type(e) for e in errors] == [RuntimeError]
        assert saved
        assert lock_is_free(fleet)
        assert Device.id_for("PCF00001") not in {
            n.originator_id for n in fleet.recorder.select_notifications(1, 10**6)
        }
    finally:
        fleet.close()
