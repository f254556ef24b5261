"""Issue 11 (session 17): an e2Open batch streamed into the store while it is checked.

`Working.stream_encoded` + infra/storage/pg_copy.py `CopyStream`: the PCs' rows go to
PostgreSQL by COPY as the command makes them, in the transaction its save commits. These
tests hold it to everything the ordinary save promises: R-HLD-1 outcomes, notification
ids in commit order (read-your-writes, followers never skip), the tracking record in the
same transaction (exactly once), read versions, and nothing stored of a command that is
refused, fails, conflicts or loses its connection, with the table lock given back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import RecordConflictError, StoredEvent, Tracking

from domain import Device
from domain.intake import E2OpenBatch
from handlers import PartnerFleet
from handlers.base import AlreadyProcessedError
from handlers.landing import Landing
from infra.bootstrap import build_fleet
from infra.settings import Settings
from infra.storage.pg_copy import COPY_MIN_ROWS, CopyStream
from infra.storage.pg_recorder import FleetProcessRecorder
from tests.conftest import POSTGRES_DSN
from tests.integration.streams import lock_is_free, pause_at, recorder_of, save_while_paused
from tests.scenarios import OPS, event_count, partner, report

pytestmark = pytest.mark.postgres

SIZE = COPY_MIN_ROWS + 300


@pytest.fixture
def pg_fleet(postgres_settings: Settings) -> Iterator[PartnerFleet]:
    fleet = build_fleet(postgres_settings)
    partner(fleet, "LOC-1")
    yield fleet
    fleet.close()


def reports(prefix: str, count: int = SIZE) -> list[dict[str, str]]:
    return [report(f"{prefix}{i:05d}") for i in range(count)]


def fail_at(monkeypatch: pytest.MonkeyPatch, call: int, error: BaseException) -> None:
    """Landing.plain_row raises `error` at its `call`-th call (after streaming began)."""
    made = Landing.plain_row
    calls = [0]

    def failing(self: Landing, *args: Any, **kwargs: Any) -> StoredEvent:
        calls[0] += 1
        if calls[0] == call:
            raise error
        return made(self, *args, **kwargs)

    monkeypatch.setattr(Landing, "plain_row", failing)


def test_streamed_batch_lands_every_pc_in_order_r_hld_1(
    pg_fleet: PartnerFleet, streams: list[CopyStream]
) -> None:
    """R-HLD-1 streamed: one stream, every PC once in the reports' order, the batch's own
    event last, contiguous ids, read-your-writes at the last id."""
    before = pg_fleet.recorder.max_notification_id() or 0
    outcome = pg_fleet.receive_e2open_batch(OPS, "stream-1", reports("PCS"))
    assert len(streams) == 1
    assert streams[0].written == SIZE + 1
    assert outcome.accepted == [f"PCS{i:05d}" for i in range(SIZE)]
    stored = pg_fleet.recorder.select_notifications(start=before + 1, limit=10 * SIZE)
    assert [n.id for n in stored] == list(range(before + 1, before + SIZE + 2))
    assert [n.originator_id for n in stored[:-1]] == [
        Device.id_for(f"PCS{i:05d}") for i in range(SIZE)
    ]
    assert stored[-1].originator_id == E2OpenBatch.id_for("stream-1")
    assert pg_fleet.last_position() == stored[-1].id == pg_fleet.recorder.max_notification_id()
    pc: Device = pg_fleet.repository.get(Device.id_for("PCS00123"))
    assert (pc.placement_owner, pc.version) == ("LOC-1", 1)


def test_streamed_and_ordinary_saves_store_the_same_rows(
    pg_fleet: PartnerFleet, streams: list[CopyStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same reports streamed and saved the ordinary way store the same topics and the
    same states but for each event's own timestamp."""
    pg_fleet.receive_e2open_batch(OPS, "same-1", reports("PCX"))
    streamed = pg_fleet.recorder.select_notifications(start=1, limit=10 * SIZE)[-SIZE - 1 :]
    assert len(streams) == 1
    monkeypatch.setattr(FleetProcessRecorder, "copy_stream", lambda *_: None)
    pg_fleet.receive_e2open_batch(OPS, "same-2", reports("PCY"))
    ordinary = pg_fleet.recorder.select_notifications(start=1, limit=10 * SIZE)[-SIZE - 1 :]
    assert len(streams) == 1  # the second batch did not stream

    def shape(rows: Sequence[Any], prefix: str) -> list[tuple[str, bytes]]:
        return [
            (n.topic, n.state.split(b'"}', 1)[1].replace(prefix.encode(), b"PC?"))
            for n in rows[:-1]
        ]

    assert shape(streamed, "PCX") == shape(ordinary, "PCY")
    assert [n.topic for n in streamed] == [n.topic for n in ordinary]


def test_refused_midway_stores_nothing_and_frees_the_lock(
    pg_fleet: PartnerFleet, streams: list[CopyStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command failing after hundreds of rows were streamed stores none of them, gives
    the table lock back at once, and the same batch lands in full afterwards."""
    before = event_count(pg_fleet)
    fail_at(monkeypatch, 700, RuntimeError("checker crashed"))
    with pytest.raises(RuntimeError, match="checker crashed"):
        pg_fleet.receive_e2open_batch(OPS, "refused-1", reports("PCR"))
    assert len(streams) == 1
    assert streams[0].written >= 600
    assert isinstance(streams[0].failed, Exception)
    assert event_count(pg_fleet) == before
    assert lock_is_free(pg_fleet)
    monkeypatch.undo()
    outcome = pg_fleet.receive_e2open_batch(OPS, "refused-1", reports("PCR"))
    assert len(outcome.accepted) == SIZE
    assert event_count(pg_fleet) == before + SIZE + 1


def test_interrupted_midway_stores_nothing(
    pg_fleet: PartnerFleet, streams: list[CopyStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyboardInterrupt (a signal) mid-stream reaches the caller; nothing is stored and
    the lock is free."""
    before = event_count(pg_fleet)
    fail_at(monkeypatch, 650, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        pg_fleet.receive_e2open_batch(OPS, "interrupted-1", reports("PCI"))
    assert len(streams) == 1
    assert event_count(pg_fleet) == before
    assert lock_is_free(pg_fleet)


def test_known_pc_conflicts_and_retries_as_before_r_hld_1(
    pg_fleet: PartnerFleet, streams: list[CopyStream]
) -> None:
    """R-HLD-1: a batch with a PC landed before streams optimistically, conflicts on it
    (the stream fails, nothing of it stays), and the retry lands the rest, the known one
    a duplicate."""
    pg_fleet.receive_e2open_batch(OPS, "known-1", reports("PCK", COPY_MIN_ROWS))
    before = event_count(pg_fleet)
    again = [*reports("PCL"), report("PCK00007")]
    outcome = pg_fleet.receive_e2open_batch(OPS, "known-2", again)
    assert outcome.duplicates == ["PCK00007"]
    assert len(outcome.accepted) == SIZE
    assert len(streams) == 2
    assert streams[1].failed is not None
    assert event_count(pg_fleet) == before + SIZE + 1
    assert lock_is_free(pg_fleet)


def test_tracking_saved_with_the_stream_exactly_once(
    pg_fleet: PartnerFleet, streams: list[CopyStream]
) -> None:
    """A policy's position is recorded in the stream's transaction; the same position
    again is already processed and stores nothing."""
    with pg_fleet.tracked(Tracking("feed-x", 41)):
        pg_fleet.receive_e2open_batch(OPS, "tracked-1", reports("PCT"))
    assert recorder_of(pg_fleet).max_tracking_id("feed-x") == 41
    assert len(streams) == 1
    assert streams[0].failed is None
    before = event_count(pg_fleet)
    with pytest.raises(AlreadyProcessedError), pg_fleet.tracked(Tracking("feed-x", 41)):
        pg_fleet.receive_e2open_batch(OPS, "tracked-2", reports("PCU"))
    assert event_count(pg_fleet) == before
    assert lock_is_free(pg_fleet)


def test_stale_read_version_refuses_the_stream(pg_fleet: PartnerFleet) -> None:
    """An aggregate read at a version that is no longer its last refuses the whole stream
    at its end (RecordConflictError); nothing is stored and the lock is free."""
    recorder = recorder_of(pg_fleet)
    read = uuid4()
    one = StoredEvent(read, 1, "test:Row", b"{}")
    recorder.insert_events([one, StoredEvent(read, 2, one.topic, one.state)])
    before = event_count(pg_fleet)
    stream = recorder.copy_stream(None, COPY_MIN_ROWS)
    assert stream is not None
    for i in range(COPY_MIN_ROWS):
        stream.write(StoredEvent(uuid4(), 1, "test:Row", b'{"n":%d}' % i))
    with pytest.raises(RecordConflictError):
        stream.finish([], {read: 1})
    assert event_count(pg_fleet) == before
    assert lock_is_free(pg_fleet)
    fresh = recorder.copy_stream(None, COPY_MIN_ROWS)
    assert fresh is not None
    ids = fresh.finish([StoredEvent(uuid4(), 1, "test:Row", b"{}")], {read: 2})
    assert ids is not None
    assert len(ids) == 1
    assert event_count(pg_fleet) == before + 1


def test_lost_connection_mid_stream_saves_the_ordinary_way(
    pg_fleet: PartnerFleet, streams: list[CopyStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream's server connection killed mid-batch: nothing accepted is lost, the
    command saves every PC once by the ordinary path."""
    write = CopyStream.write

    def killing(self: CopyStream, event: StoredEvent) -> None:
        if self.written == 600 and self.failed is None:
            pid = self._curs.connection.info.backend_pid
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
        write(self, event)

    monkeypatch.setattr(CopyStream, "write", killing)
    before = event_count(pg_fleet)
    outcome = pg_fleet.receive_e2open_batch(OPS, "killed-1", reports("PCD"))
    assert len(outcome.accepted) == SIZE
    assert len(streams) == 1
    assert streams[0].failed is not None
    assert event_count(pg_fleet) == before + SIZE + 1
    landed = {n.originator_id for n in pg_fleet.recorder.select_notifications(start=1, limit=10**6)}
    assert {Device.id_for(f"PCD{i:05d}") for i in range(SIZE)} <= landed


def test_a_save_during_the_stream_commits_after_it(
    pg_fleet: PartnerFleet, streams: list[CopyStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Followers never skip an id committed late: a save made while a batch streams waits
    for the batch's lock and gets ids after all of the batch's."""
    started, release = pause_at(monkeypatch, 600)
    seen = save_while_paused(
        pg_fleet,
        lambda: pg_fleet.receive_e2open_batch(OPS, "slow-1", reports("PCW")),
        started,
        release,
    )
    assert seen.waited  # the small save waited for the batch's lock
    assert seen.errors == []
    assert len(seen.done[0].accepted) == SIZE
    assert streams[0].failed is None
    batch_last = max(
        n.id
        for n in pg_fleet.recorder.select_notifications(start=1, limit=10**6)
        if n.originator_id == E2OpenBatch.id_for("slow-1")
    )
    assert seen.saved[0][0] > batch_last


def test_no_stream_for_small_batches_or_a_pool_of_one(
    pg_fleet: PartnerFleet, streams: list[CopyStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streaming is for batches of COPY_MIN_ROWS or more, with a second pooled connection
    for the command's own reads; other batches save as before, with the same outcome."""
    recorder = recorder_of(pg_fleet)
    assert recorder.copy_stream(None, COPY_MIN_ROWS - 1) is None
    small = pg_fleet.receive_e2open_batch(OPS, "small-1", reports("PCM", COPY_MIN_ROWS - 1))
    assert len(small.accepted) == COPY_MIN_ROWS - 1
    assert streams == []
    pool = recorder.datastore.pool
    monkeypatch.setattr(type(pool), "max_size", property(lambda _: 1))
    assert recorder.copy_stream(None, SIZE) is None
    big = pg_fleet.receive_e2open_batch(OPS, "big-1", reports("PCN"))
    assert len(big.accepted) == SIZE
    assert streams == []
