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
from infra.storage.pg_copy import COPY_MIN_ROWS, CopyStream
from infra.storage.pg_recorder import FleetProcessRecorder
from tests.conftest import POSTGRES_DSN
from tests.scenarios import OPS, event_count, partner, report

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


def test_reads_mid_stream_do_not_deadlock_a_small_pool_r_hld_1(
    postgres_settings: Settings,
    pg_fleet: PartnerFleet,
    streams: list[CopyStream],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fault (hold and wait): a batch naming a second reseller after the stream opened looked
    that partner up on a second pooled connection while its stream held the table lock and
    the first. With a pool of two and another command's save waiting for the lock on the
    other connection, neither could go on: the batch failed with a pool timeout. Now the
    batch lands in full, and the other save commits after it."""
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
                done.append(fleet.receive_e2open_batch(OPS, "pool-1", batch))
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
        assert E2OpenBatch.id_for("pool-1") in landed
    finally:
        fleet.close()
