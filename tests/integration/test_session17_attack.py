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
from tests.conftest import POSTGRES_DSN, drop_schema
from tests.integration.streams import lock_is_free, pause_at, recorder_of, save_while_paused
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
        seen = save_while_paused(
            fleet, lambda: fleet.receive_e2open_batch(OPS, batch_id, batch), started, release
        )
        assert seen.errors == []
        assert len(seen.done[0].accepted) == SIZE + 100
        assert seen.saved
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
        seen = save_while_paused(
            fleet, lambda: fleet.receive_e2open_batch(OPS, "stale-1", batch), started, release
        )
        assert len(streams) == 1
        assert [type(e) for e in seen.errors] == [RuntimeError]
        assert seen.saved
        assert lock_is_free(fleet)
        assert Device.id_for("PCF00001") not in {
            n.originator_id for n in fleet.recorder.select_notifications(1, 10**6)
        }
    finally:
        fleet.close()


def hostile_batch(prefix: str) -> list[object]:
    """Reports a feed may send, mixed into a batch that streams: PCs of two resellers
    alternately, then every kind of report the intake must refuse, land once or call a
    duplicate (R-HLD-1)."""
    good: list[object] = [
        report(f"{prefix}{i:05d}", "LOC-1" if i % 2 else "LOC-2") for i in range(COPY_MIN_ROWS + 50)
    ]
    odd: list[object] = [
        report(f"{prefix}00003", "LOC-1"),  # a duplicate, same spelling and content
        report(f"{prefix.lower()}00005", "LOC-1"),  # the same serial in lower case
        report(f" {prefix}00007 ", "LOC-1"),  # with blanks around it
        report("".join(chr(ord(c) + 0xFEE0) for c in f"{prefix}00009"), "LOC-1"),  # fullwidth
        report(f"{prefix}00011", "LOC-2"),  # another reseller for a PC landed in this batch
        report(f"{prefix}00013", "LOC-1", model="Other model"),  # other content
        report(f"{prefix}U1", "LOC-404"),  # unknown partner
        report(f"{prefix}U2", "LOC-3"),  # a partner without a holding tenant
        report(f"{prefix}U3", "loc-1"),  # a Location ID in another case
        report(f"{prefix}U4", " LOC-2 "),  # a Location ID with blanks: the model strips them
        report(f"{prefix}U5", "LOC-1", model="HP ÉliteBook 840 — G11 ✓ 🚀", distributor="Ingräm"),
        report(f"{prefix}U6", "LOC-1", end_customer="Müller & Søn ГмбХ 株式会社"),
        report(f"{prefix}U7", "LOC-1", model="M" * 200),  # the longest model
        report(f"{prefix}U8", "LOC-1", model="M" * 201),  # too long
        report("S" * 33, "LOC-1"),  # too long a serial
        report(f"{prefix}U9", "LOC-1", model="bad\x00nul"),
        report(f"{prefix}U10", "LOC-1", model="tab\there"),
        report(f"{prefix}-U11", "LOC-1"),  # not letters and digits
        report(f"{prefix}U12", "LOC-1", ship_date="2026-02-30"),
        report(f"{prefix}U13", "LOC-1", care_plan="gold"),
        report(f"{prefix}U14", "LOC-1", care_plan="premium_plus"),
        report(f"{prefix}U15", "LOC-1", extra="field"),
        {"serial": f"{prefix}U16", "model": "m"},  # fields missing
        {**report(f"{prefix}U17", "LOC-1"), "ship_date": 20261001},
        {**report(f"{prefix}U18", "LOC-1"), "serial": 12345},
        {**report(f"{prefix}U19", "LOC-1"), "model": ["a", "b"]},
        {**report(f"{prefix}U20", "LOC-1"), "reseller_location_id": None},
        {**report(f"{prefix}U21", "LOC-1"), "end_customer": None},
        None,
        [report(f"{prefix}U22")],
        f"{prefix}U23",
        report(f"{prefix}ÄÖ1", "LOC-2"),  # a serial of non-ASCII letters
        report(f"{prefix}U24", "LOC-1", ship_date="2026-10-01T00:00:00"),
        report(f"{prefix}U25", "LOC-1", model=" padded "),
    ]
    # The odd ones spread through the batch, some before the stream opens, most after.
    batch: list[object] = list(good)
    for n, item in enumerate(odd):
        batch.insert(3 + n * 17, item)
    return batch


def stored_shape(fleet: PartnerFleet, after: int) -> list[tuple[Any, ...]]:
    """The events stored after `after`: id order, each without its own timestamp."""
    return [
        (n.originator_id, n.originator_version, n.topic, n.state.split(b'"}', 1)[1])
        for n in fleet.recorder.select_notifications(after + 1, 10**6)
    ]


@pytest.mark.parametrize("landed_before", [False, True])
def test_hostile_batch_streamed_as_saved_the_ordinary_way_r_hld_1(
    postgres_settings: Settings,
    pg_fleet: PartnerFleet,
    streams: list[CopyStream],
    monkeypatch: pytest.MonkeyPatch,
    landed_before: bool,
) -> None:
    """Differential: a hostile batch (duplicates in four spellings, other content, unknown,
    uncertified and misspelt resellers, Unicode, the longest and too long texts, wrong
    types, not an object at all; with or without a PC landed by an earlier batch) has the
    same outcome and stores the same events streamed as on a fleet that does not stream."""
    other_schema = f"test_{uuid4().hex[:12]}"
    plain = build_fleet(Settings(database_url=f"{POSTGRES_DSN}?schema={other_schema}"))
    try:
        fleets = (pg_fleet, plain)
        pg_fleet.register_partner(OPS, "LOC-3", "Not certified")
        partner(plain, "LOC-1")
        partner(plain, "LOC-2")
        plain.register_partner(OPS, "LOC-3", "Not certified")
        batch = hostile_batch("PCH")
        if landed_before:
            for fleet in fleets:
                fleet.receive_e2open_batch(OPS, "earlier", [report("PCH00400", "LOC-2")])
        starts = [f.recorder.max_notification_id() or 0 for f in fleets]
        streamed = pg_fleet.receive_e2open_batch(OPS, "hostile-1", batch)
        assert len(streams) == 1
        assert (streams[0].failed is None) is not landed_before
        monkeypatch.setattr(FleetProcessRecorder, "copy_stream", lambda *_: None)
        ordinary = plain.receive_e2open_batch(OPS, "hostile-1", batch)
        assert len(streams) == 1
        assert streamed == ordinary
        assert len(streamed.accepted) > COPY_MIN_ROWS
        dup = {"PCH00003", "PCH00005", "PCH00007", "PCH00009"}  # four spellings of each
        assert set(streamed.duplicates) == dup | ({"PCH00400"} if landed_before else set())
        reasons = {r.serial: r.reason for r in streamed.rejected}
        assert "already registered" in reasons["PCH00011"]
        assert "unknown partner" in reasons["PCHU1"]
        assert "not certified" in reasons["PCHU2"]
        # The same PCs in the same tenants: ids differ only by the other schema's partners'
        # registration order, which is the same, so the rows are the same.
        assert stored_shape(pg_fleet, starts[0]) == stored_shape(plain, starts[1])
        for serial, tenant in (("PCH00001", "LOC-1"), ("PCH00002", "LOC-2"), ("PCHU4", "LOC-2")):
            pc: Device = pg_fleet.repository.get(Device.id_for(serial))
            assert pc.placement_owner == tenant
    finally:
        plain.close()
        drop_schema(other_schema)


CHILD = """
import sys, threading
from handlers.landing import Landing
from infra.bootstrap import build_fleet
from infra.settings import Settings
from tests.scenarios import OPS, report

made, calls = Landing.plain_row, [0]

def pausing(self, *args, **kwargs):
    calls[0] += 1
    if calls[0] == 600:
        print("streaming", flush=True)
        threading.Event().wait()  # until killed
    return made(self, *args, **kwargs)

Landing.plain_row = pausing
fleet = build_fleet(Settings(database_url=sys.argv[1]))
reports = [report(f"PCK{i:05d}") for i in range(int(sys.argv[2]))]
fleet.receive_e2open_batch(OPS, "killed-1", reports)
"""


def lock_holders(fleet: PartnerFleet) -> int:
    """How many backends hold a lock on the events table."""
    recorder = recorder_of(fleet)
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE granted AND relation = %s::regclass",
            (f'"{recorder.datastore.schema}"."{recorder.events_table_name}"',),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_process_killed_mid_stream_leaves_nothing_and_the_lock_free_r_hld_1(
    postgres_settings: Settings, pg_fleet: PartnerFleet
) -> None:
    """A process killed (SIGKILL) while its batch streams: the server rolls the stream back,
    nothing of the batch is stored, the lock is free, and the batch sent again lands in full."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from tests.pg_faults import eventually

    before = event_count(pg_fleet)
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            postgres_settings.database_url.get_secret_value()
            if postgres_settings.database_url
            else "",
            str(SIZE),
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "streaming"
        assert lock_holders(pg_fleet) >= 1  # the stream holds the table lock
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert eventually(lambda: lock_holders(pg_fleet) == 0)
    assert lock_is_free(pg_fleet)
    assert event_count(pg_fleet) == before
    outcome = pg_fleet.receive_e2open_batch(
        OPS, "killed-1", [report(f"PCK{i:05d}") for i in range(SIZE)]
    )
    assert len(outcome.accepted) == SIZE
    assert event_count(pg_fleet) == before + SIZE + 1


def test_followers_skip_no_id_while_batches_stream_among_other_commands(
    postgres_settings: Settings, pg_fleet: PartnerFleet, streams: list[CopyStream]
) -> None:
    """Notification ids in commit order: a follower polling by notification id (as the view
    runners and the relay do) while two streamed batches, small batches and other commands
    of two fleets (two processes' worth of pools and committers) all commit, sees every id
    stored, none committed behind it. Every command commits."""
    second = build_fleet(postgres_settings)
    try:
        start = pg_fleet.recorder.max_notification_id() or 0
        seen: list[int] = []
        stop = threading.Event()
        errors: list[BaseException] = []

        def follow() -> None:
            last = start
            while True:
                done = stop.is_set()  # read before the poll: a last full poll after it
                found = pg_fleet.recorder.select_notifications(last + 1, 10_000)
                seen.extend(n.id for n in found)
                if found:
                    last = found[-1].id
                elif done:
                    return

        def run(work: Any) -> None:
            try:
                work()
            except BaseException as error:
                errors.append(error)

        def partners(fleet: PartnerFleet, tag: str) -> None:
            for i in range(15):
                fleet.register_partner(OPS, f"LOC-{tag}{i}", f"Partner {tag}{i}")

        def small(fleet: PartnerFleet, tag: str) -> None:
            for i in range(6):
                fleet.receive_e2open_batch(
                    OPS, f"small-{tag}{i}", [report(f"PCS{tag}{i}X{j}") for j in range(40)]
                )

        def big(fleet: PartnerFleet, tag: str) -> None:
            fleet.receive_e2open_batch(
                OPS, f"big-{tag}", [report(f"PCG{tag}{j:05d}") for j in range(SIZE * 2)]
            )

        follower = threading.Thread(target=follow)
        follower.start()
        workers = [
            threading.Thread(target=run, args=(lambda f=f, t=t, w=w: w(f, t),))
            for w in (partners, small, big)
            for f, t in ((pg_fleet, "A"), (second, "B"))
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
        stop.set()
        follower.join(60)
        assert errors == []
        assert len(streams) == 2
        stored = [n.id for n in pg_fleet.recorder.select_notifications(start + 1, 10**6)]
        assert len(stored) == 2 * (15 * 2 + 6 * (40 + 1) + SIZE * 2 + 1)
        assert seen == stored
    finally:
        second.close()


@pytest.mark.parametrize("key", [None, '"intake-1"'])
def test_the_same_batch_twice_at_once_over_http_lands_once_r_hld_1(
    pg_fleet: PartnerFleet, streams: list[CopyStream], key: str | None
) -> None:
    """R-HLD-1 over HTTP: the same hostile batch posted twice at once (with or without an
    Idempotency-Key) lands once: one answer `received`, the other the same outcome again
    (or 409 in flight for the same key); each reseller's holding tenant lists its own PCs
    only."""
    from fastapi.testclient import TestClient

    from infra.http.app import create_api
    from tests.unit.http_holding_world import Verifier, bearer
    from tests.views import memory_runner

    pg_fleet.register_partner(OPS, "LOC-3", "Not certified")
    views = memory_runner(pg_fleet)
    api = TestClient(create_api(pg_fleet, Settings(), views, verifier=Verifier()))
    batch = hostile_batch("PCQ")
    json_safe = [r for r in batch if not (isinstance(r, dict) and "\x00" in str(r))]
    body = {"batch_id": "http-1", "reports": json_safe}
    headers = bearer("feed", **({"Idempotency-Key": key} if key else {}))
    before = event_count(pg_fleet)
    answers: list[Any] = []
    barrier = threading.Barrier(2)

    def post() -> None:
        barrier.wait(10)
        answers.append(api.post("/intake/e2open/batches", json=body, headers=headers))

    posts = [threading.Thread(target=post) for _ in range(2)]
    for thread in posts:
        thread.start()
    for thread in posts:
        thread.join(120)
    codes = sorted(a.status_code for a in answers)
    assert codes in ([200, 200], [200, 409])
    ok = [a.json() for a in answers if a.status_code == 200]
    assert sorted(o["outcome"] for o in ok)[0] == "received"
    assert all(o["accepted"] == ok[0]["accepted"] for o in ok)
    assert all(o["rejected"] == ok[0]["rejected"] for o in ok)
    assert len(ok[0]["accepted"]) > COPY_MIN_ROWS
    stored = event_count(pg_fleet) - before
    idempotency_record = 1 if key else 0
    assert stored == len(ok[0]["accepted"]) + 1 + idempotency_record
    assert streams
    assert streams[0].failed is None
    views.catch_up()
    listed: list[str] = []
    cursor = None
    while True:
        page = api.get(
            "/partners/LOC-1/holding-tenant/pcs",
            params={"limit": 200, **({"cursor": cursor} if cursor else {})},
            headers=bearer("anna"),
        ).json()
        listed += [pc["serial"] for pc in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    landed_at_1 = {
        s
        for s in ok[0]["accepted"]
        if pg_fleet.repository.get(Device.id_for(s)).placement_owner == "LOC-1"
    }
    assert set(listed) == landed_at_1
    assert "PCQ00002" not in listed  # LOC-2's
    assert "PCQ00001" in listed


def test_kafka_poll_streams_and_a_redelivered_poll_lands_nothing_again_r_hld_1(
    pg_fleet: PartnerFleet, streams: list[CopyStream]
) -> None:
    """The Kafka feed path (FeedConsumer over a faked partition): a poll of hostile bytes
    (not JSON, not UTF-8, too deep, NUL, empty) among reports streams, dead-letters each
    rejection and commits past the poll; the same records polled again (a crash before the
    commit) land nothing again and dead-letter the same ones."""
    import json

    from infra.kafka.feeds import FEEDS, FeedConsumer
    from tests.unit.feed_fakes import FakeProducer, FakeTopic

    topic, producer = FakeTopic("e2open"), FakeProducer()
    values = [
        json.dumps(report(f"PCZ{i:05d}", "LOC-1" if i % 3 else "LOC-2")).encode()
        for i in range(SIZE)
    ]
    hostile = [
        b"not json",
        b"\xff\xfe\x00",
        b"[" * 200 + b"]" * 200,
        b"",
        json.dumps(report("PCZ00004", "LOC-2")).encode(),  # a duplicate, another reseller
        json.dumps(report("PCZ00009", "LOC-2")).encode(),  # a duplicate, same content
        json.dumps(report("PCZBAD", "LOC-1", model="a\u0000b")).encode(),
        b'{"serial": "PCZ1", "serial": "PCZ2"}',
    ]
    for n, value in enumerate(hostile):
        values.insert(50 + n * 97, value)
    topic.append(*values)
    consumer = FeedConsumer(pg_fleet, FEEDS["e2open"], topic, producer)
    before = event_count(pg_fleet)
    assert consumer.poll_once() == len(values)
    assert len(streams) == 1
    assert streams[0].failed is None
    assert topic.committed == len(values)
    landed = event_count(pg_fleet) - before
    assert landed == SIZE + 1
    first_letters = producer.reasons()
    assert len(first_letters) == len(hostile) - 1  # PCZ00009 again is a duplicate
    topic.seek(None, 0)
    assert consumer.poll_once() == len(values)
    assert event_count(pg_fleet) - before == landed
    assert producer.reasons()[len(first_letters) :] == first_letters


def test_lock_not_granted_at_the_stream_falls_back_and_lands_once(
    postgres_settings: Settings,
    pg_fleet: PartnerFleet,
    streams: list[CopyStream],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """POSTGRES_LOCK_TIMEOUT of 1 s and another transaction holding the events table's lock
    for 3 s: the stream is not granted the lock (nothing of it stays), the save goes the
    ordinary way, which waits its turn, and the batch lands once, in full."""
    monkeypatch.setenv("POSTGRES_LOCK_TIMEOUT", "1")
    fleet = build_fleet(postgres_settings)
    try:
        recorder = recorder_of(fleet)
        assert recorder.datastore.lock_timeout == 1
        table = sql.Identifier(recorder.datastore.schema, recorder.events_table_name)
        held, done = threading.Event(), threading.Event()

        def hold() -> None:
            with psycopg.connect(POSTGRES_DSN) as conn, conn.transaction():
                conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table))
                held.set()
                done.wait(3)

        holder = threading.Thread(target=hold)
        holder.start()
        assert held.wait(10)
        before = event_count(fleet)
        outcome = fleet.receive_e2open_batch(
            OPS, "locked-1", [report(f"PCL{i:05d}") for i in range(SIZE)]
        )
        done.set()
        holder.join(10)
        assert len(outcome.accepted) == SIZE
        assert len(streams) == 1
        assert isinstance(streams[0].failed, Exception)
        assert event_count(fleet) == before + SIZE + 1
        assert lock_is_free(fleet)
    finally:
        fleet.close()


def connections_out(fleet: PartnerFleet) -> int:
    """Pooled connections of the store taken and not given back."""
    stats = recorder_of(fleet).datastore.pool.get_stats()
    return int(stats["pool_size"] - stats["pool_available"])


@pytest.mark.parametrize(
    "fault", ["refused", "interrupted", "known_pc", "backend_killed", "stale_partner"]
)
def test_no_connection_nor_lock_left_behind_by_a_stream_that_did_not_commit(
    pg_fleet: PartnerFleet,
    streams: list[CopyStream],
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    """Whatever ends a stream without its commit (the command fails or is interrupted, a PC
    landed before, its backend killed, a partner it read changed meanwhile), every pooled
    connection is back, the lock is free, and the batch sent again lands in full, once."""
    from tests.pg_faults import eventually

    pg_fleet.receive_e2open_batch(OPS, "earlier", [report("PCE00300")])
    before = event_count(pg_fleet)
    batch = [report(f"PCE{i:05d}") for i in range(SIZE)]
    made, calls = Landing.plain_row, [0]
    extra: list[int] = []  # events of the partner's change

    def faulty(self: Landing, *args: Any, **kwargs: Any) -> StoredEvent:
        calls[0] += 1
        if calls[0] == 1 and fault == "stale_partner":  # read, and the stream not open yet
            other = build_fleet_like(pg_fleet)
            try:
                other.register_partner_user(OPS, "LOC-1", "carl@LOC-1")
            finally:
                other.close()
            extra.append(event_count(pg_fleet) - before)
        if calls[0] == 600:
            if fault == "refused":
                raise RuntimeError("checker crashed")
            if fault == "interrupted":
                raise KeyboardInterrupt
            if fault == "backend_killed":
                with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
                    admin.execute(
                        "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks WHERE granted"
                        " AND relation = %s::regclass AND pid <> pg_backend_pid()",
                        (table_of(pg_fleet),),
                    )
        return made(self, *args, **kwargs)

    monkeypatch.setattr(Landing, "plain_row", faulty)
    expected: type[BaseException] | None = {
        "refused": RuntimeError,
        "interrupted": KeyboardInterrupt,
    }.get(fault)
    if expected is not None:
        with pytest.raises(expected):
            pg_fleet.receive_e2open_batch(OPS, "faulty-1", batch)
        assert event_count(pg_fleet) == before
        monkeypatch.setattr(Landing, "plain_row", made)
        pg_fleet.receive_e2open_batch(OPS, "faulty-1", batch)
    else:
        pg_fleet.receive_e2open_batch(OPS, "faulty-1", batch)
    assert streams[0].failed is not None
    # PCE00300 landed before: a duplicate
    assert event_count(pg_fleet) == before + SIZE + sum(extra)
    assert eventually(lambda: connections_out(pg_fleet) == 0)
    assert lock_is_free(pg_fleet)


def table_of(fleet: PartnerFleet) -> str:
    """The events table's qualified name."""
    recorder = recorder_of(fleet)
    return f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'


def build_fleet_like(fleet: PartnerFleet) -> PartnerFleet:
    """Another fleet (another process's pool) on `fleet`'s schema."""
    schema = recorder_of(fleet).datastore.schema
    return build_fleet(Settings(database_url=f"{POSTGRES_DSN}?schema={schema}"))


def test_overlapping_batches_of_two_processes_land_each_pc_once_in_its_tenant_r_hld_1(
    pg_fleet: PartnerFleet, streams: list[CopyStream]
) -> None:
    """Two fleets (two processes) stream, at once, batches that share PCs: LOC-1's batch and
    a batch where LOC-2 reports half of them again. Each PC lands once, in the tenant of the
    report that won; the other batch calls the shared ones already registered (another
    reseller) and lands the rest: no report accepted twice, none lost."""
    second = build_fleet_like(pg_fleet)
    try:
        first_batch = [report(f"PCO{i:05d}", "LOC-1") for i in range(SIZE)]
        second_batch = [report(f"PCO{i:05d}", "LOC-2") for i in range(SIZE // 2, SIZE + SIZE // 2)]
        barrier = threading.Barrier(2)
        outcomes: dict[str, Any] = {}
        errors: list[BaseException] = []

        def land(fleet: PartnerFleet, batch_id: str, batch: list[Any]) -> None:
            try:
                barrier.wait(10)
                outcomes[batch_id] = fleet.receive_e2open_batch(OPS, batch_id, batch)
            except BaseException as error:
                errors.append(error)

        threads = [
            threading.Thread(target=land, args=(pg_fleet, "one", first_batch)),
            threading.Thread(target=land, args=(second, "two", second_batch)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        assert len(streams) >= 2
        accepted = outcomes["one"].accepted + outcomes["two"].accepted
        assert len(accepted) == len(set(accepted)) == SIZE + SIZE // 2
        refused = [r.serial for o in outcomes.values() for r in o.rejected]
        union = {r["serial"] for r in first_batch} | {r["serial"] for r in second_batch}
        assert set(accepted) == union
        assert len(refused) == SIZE - SIZE // 2  # the shared PCs, refused by the later batch
        for outcome, tenant in ((outcomes["one"], "LOC-1"), (outcomes["two"], "LOC-2")):
            for serial in outcome.accepted[::37]:
                pc: Device = pg_fleet.repository.get(Device.id_for(serial))
                assert pc.placement_owner == tenant
            assert all("already registered" in r.reason for r in outcome.rejected)
    finally:
        second.close()


def test_a_known_pc_refused_at_the_streams_end_conflicts_without_a_second_insert_r_hld_1(
    pg_fleet: PartnerFleet, streams: list[CopyStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PC landed before, first in the batch: PostgreSQL's unique violation reaches the
    client only when the COPY ends (libpq reads no error while it sends), so the stream
    carries every row to the end. Fault (cost): the save then inserted the whole batch again
    the ordinary way only to meet the same violation. Now the stream's violation is the
    conflict itself: the retry (attempt 2) is the only other insert; the outcome as before."""
    pg_fleet.receive_e2open_batch(OPS, "known-0", [report("PCV00000")])
    inserts: list[int] = []
    insert = FleetProcessRecorder.insert_events

    def counted(self: FleetProcessRecorder, stored: Any, **kwargs: Any) -> Any:
        inserts.append(len(stored))
        return insert(self, stored, **kwargs)

    monkeypatch.setattr(FleetProcessRecorder, "insert_events", counted)
    before = event_count(pg_fleet)
    batch = [report(f"PCV{i:05d}") for i in range(SIZE)]
    outcome = pg_fleet.receive_e2open_batch(OPS, "known-1", batch)
    assert outcome.duplicates == ["PCV00000"]
    assert len(outcome.accepted) == SIZE - 1
    assert len(streams) == 1
    assert streams[0].written == SIZE + 1  # every row went, the error came at the end
    assert streams[0].failed is not None
    assert inserts == [SIZE]  # attempt 2's: SIZE - 1 PCs and the batch
    assert event_count(pg_fleet) == before + SIZE
    assert lock_is_free(pg_fleet)


@pytest.mark.parametrize("known_pc", [False, True])
def test_one_policy_position_taken_by_two_runners_at_once_saves_one_batch(
    pg_fleet: PartnerFleet, streams: list[CopyStream], known_pc: bool
) -> None:
    """Two runners (two fleets) take the same policy position at once, each with a batch
    that streams (with or without a PC landed before, which fails a stream at its end): one
    batch is saved with the position, the other is already processed and stores nothing."""
    from eventsourcing.persistence import Tracking

    from handlers.base import AlreadyProcessedError

    second = build_fleet_like(pg_fleet)
    try:
        if known_pc:
            pg_fleet.receive_e2open_batch(OPS, "earlier", [report("PCP00000")])
        before = event_count(pg_fleet)
        barrier = threading.Barrier(2)
        results: dict[str, Any] = {}

        def land(fleet: PartnerFleet, batch_id: str, prefix: str) -> None:
            batch = [report(f"{prefix}{i:05d}") for i in range(SIZE)]
            barrier.wait(10)
            try:
                with fleet.tracked(Tracking("feed-y", 7)):
                    results[batch_id] = fleet.receive_e2open_batch(OPS, batch_id, batch)
            except BaseException as error:
                results[batch_id] = error

        threads = [
            threading.Thread(target=land, args=(pg_fleet, "one", "PCP")),
            threading.Thread(target=land, args=(second, "two", "PCQ")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        kinds = sorted(type(r).__name__ for r in results.values())
        assert kinds == sorted(["IntakeOutcome", AlreadyProcessedError.__name__])
        saved = next(r for r in results.values() if not isinstance(r, BaseException))
        assert len(saved.accepted) + len(saved.duplicates) == SIZE
        assert event_count(pg_fleet) == before + len(saved.accepted) + 1
        assert recorder_of(pg_fleet).max_tracking_id("feed-y") == 7
        assert lock_is_free(pg_fleet)
    finally:
        second.close()


def test_the_retry_after_a_known_pc_looks_the_pcs_up_in_one_round_trip_r_hld_1(
    pg_fleet: PartnerFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R-HLD-1: a batch with a PC landed before conflicts and retries; the retry looks every
    PC up. Fault (cost): one round trip per report (50,000 reports: 34-44 s instead of about
    1 s). Now the retry fetches the batch's PCs in one prefetch; the outcome is the same."""
    pg_fleet.receive_e2open_batch(OPS, "known-0", [report("PCR00005")])
    repository = type(pg_fleet.repository)
    gets: list[Any] = []
    get = repository.get

    def counted(self: Any, aggregate_id: Any, *args: Any, **kwargs: Any) -> Any:
        gets.append(aggregate_id)
        return get(self, aggregate_id, *args, **kwargs)

    monkeypatch.setattr(repository, "get", counted)
    batch = [report(f"PCR{i:05d}") for i in range(SIZE)]
    batch.insert(100, report("pcr00007 "))  # another spelling of a PC of this batch
    batch.insert(200, {**report("PCR00009"), "model": "Other"})  # other content
    outcome = pg_fleet.receive_e2open_batch(OPS, "known-1", batch)
    assert outcome.duplicates == ["PCR00005", "PCR00007"]
    assert [r.serial for r in outcome.rejected] == ["PCR00009"]
    assert len(outcome.accepted) == SIZE - 1
    assert len(gets) < 10


def test_the_same_batch_from_two_processes_at_once_lands_once_r_hld_1(
    pg_fleet: PartnerFleet, streams: list[CopyStream]
) -> None:
    """R-HLD-1: the same batch id and reports delivered at once to two fleets (two
    consumers' processes), both streaming: one is received, the other answers the same
    outcome as a redelivery; every PC stored once."""
    second = build_fleet_like(pg_fleet)
    try:
        batch = hostile_batch("PCM")
        before = event_count(pg_fleet)
        barrier = threading.Barrier(2)
        outcomes: list[Any] = []

        def land(fleet: PartnerFleet) -> None:
            barrier.wait(10)
            outcomes.append(fleet.receive_e2open_batch(OPS, "twice-1", batch))

        threads = [threading.Thread(target=land, args=(f,)) for f in (pg_fleet, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert len(outcomes) == 2
        assert sorted(o.redelivered for o in outcomes) == [False, True]
        assert outcomes[0].accepted == outcomes[1].accepted
        assert outcomes[0].rejected == outcomes[1].rejected
        assert event_count(pg_fleet) == before + len(outcomes[0].accepted) + 1
        assert lock_is_free(pg_fleet)
    finally:
        second.close()
