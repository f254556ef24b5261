"""Session 24's attack on the group committer's new default (no gathering window) through
the real PostgreSQL recorder (FleetProcessRecorder): 8 threads saving at once, new events,
version conflicts with stored events and between callers, stale and current read versions,
and KeyboardInterrupts landing in callers' waits, between a leader's taking of its group
and its commit, and after the commit. Claims checked (they held):

- every caller is answered, each with its own outcome (a refusal is its own: its events
  are not stored; an acceptance is its own: its ids are its events', in order);
- a caller answered with ids sees its rows committed (from another connection) at once;
- nothing accepted is lost, nothing committed twice (no id answered to two callers);
- an interrupted caller's unit is stored once or not at all; the committer ends free.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from psycopg import sql

from handlers import PartnerFleet
from infra.storage import pg_recorder
from infra.storage.group_commit import Unit
from tests.conftest import POSTGRES_DSN
from tests.integration.streams import recorder_of
from tests.unit.test_s22_attack_gather_stress import Flaky

pytestmark = pytest.mark.postgres

THREADS = 8
SAVES = 30  # per thread


def stored(aggregate_id: uuid.UUID, version: int, mark: str) -> StoredEvent:
    return StoredEvent(aggregate_id, version, "tests:Event", f'{{"mark": "{mark}"}}'.encode())


@pytest.mark.parametrize("seed", range(3))
def test_s24_attack_held_eight_threads_without_a_window_on_postgresql(
    fleets: Callable[[], PartnerFleet], monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    recorder = recorder_of(fleets())
    committer = recorder.committer
    assert committer.window_seconds == 0  # the default under attack
    groups_before, units_before = committer.groups, committer.units
    rng, rng_lock = random.Random(seed), threading.Lock()

    def chance(rate: float) -> bool:
        with rng_lock:
            return rng.random() < rate

    seeded = [uuid.uuid4() for _ in range(4)]
    for number, aggregate in enumerate(seeded):
        recorder.insert_events([stored(aggregate, 1, f"seed-{number}")])
    shared = [uuid.uuid4() for _ in range(3)]  # contended by every thread

    real_gather, real_lead = committer._gather, committer._lead

    def gather() -> list[Unit]:
        group = real_gather()
        if chance(0.02):  # the group taken, not yet committed
            raise KeyboardInterrupt
        return group

    def lead(group: list[Unit], own: Unit | None = None) -> None:
        if chance(0.02):  # before the commit began
            raise KeyboardInterrupt
        real_lead(group, own)

    def after(_units: list[Unit]) -> None:
        if chance(0.02):  # committed, not yet answered
            raise KeyboardInterrupt

    monkeypatch.setattr(committer, "_gather", gather)
    monkeypatch.setattr(committer, "_lead", lead)
    committer.after_commit = after
    monkeypatch.setattr(
        pg_recorder,
        "Unit",
        lambda *a, **k: Unit(*a, woken=Flaky(rng, 0.02, rng_lock), **k),  # type: ignore[misc]
    )
    table = sql.Identifier(recorder.datastore.schema, recorder.events_table_name)
    visible = sql.SQL(
        "SELECT notification_id, originator_id, originator_version, state FROM {}"
        " WHERE notification_id = ANY(%s) ORDER BY notification_id"
    ).format(table)
    answers: list[tuple[str, list[StoredEvent], Any]] = []
    problems: list[str] = []
    lock = threading.Lock()

    def caller(number: int) -> None:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            for n in range(SAVES):
                mark = f"{seed}-{number}-{n}"
                with rng_lock:
                    kind = rng.choice(["new", "two", "stored", "contended", "stale", "current"])
                    target = rng.choice(seeded)
                    contended = (rng.choice(shared), rng.randint(1, 3))
                reads: dict[uuid.UUID, int] = {}
                if kind == "two":
                    own = uuid.uuid4()
                    events = [stored(own, 1, mark), stored(own, 2, mark)]
                elif kind == "stored":
                    events = [stored(target, 1, mark)]
                elif kind == "contended":
                    events = [stored(*contended, mark)]
                else:
                    events = [stored(uuid.uuid4(), 1, mark)]
                    if kind in ("stale", "current"):
                        reads = {target: 0 if kind == "stale" else 1}
                try:
                    answer: Any = recorder.insert_events(events, read_versions=reads)
                except (KeyboardInterrupt, IntegrityError, OperationalError) as error:
                    answer = error
                if isinstance(answer, list):  # answered only after its group committed
                    rows = conn.execute(visible, (answer,)).fetchall()
                    seen = [(r[1], r[2], bytes(r[3])) for r in rows]
                    mine = [(e.originator_id, e.originator_version, e.state) for e in events]
                    if seen != mine or [r[0] for r in rows] != answer:
                        with lock:
                            problems.append(f"{kind} {mark}: answered {answer}, stored {seen}")
                with lock:
                    answers.append((kind, events, answer))

    threads = [threading.Thread(target=caller, args=(i,), daemon=True) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
        assert not thread.is_alive(), "a caller was never answered"
    assert problems == []
    assert len(answers) == THREADS * SAVES

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT notification_id, originator_id, originator_version, state FROM {}"
            ).format(table)
        ).fetchall()
    by_key = {(r[1], r[2]): (r[0], bytes(r[3])) for r in rows}
    given: set[int] = set()
    interrupted = 0
    for kind, events, answer in answers:
        keys = [(e.originator_id, e.originator_version) for e in events]
        if isinstance(answer, list):
            assert not given & set(answer), "an id answered to two callers"
            given |= set(answer)
            assert [by_key[k] for k in keys] == [
                (i, e.state) for i, e in zip(answer, events, strict=True)
            ]
        elif isinstance(answer, IntegrityError):
            assert kind in ("stored", "contended", "stale"), (kind, answer)
            for key, event in zip(keys, events, strict=True):
                assert by_key.get(key, (0, b""))[1] != event.state, f"{kind}: refused, stored"
            if kind in ("stored", "contended"):
                assert all(key in by_key for key in keys)  # someone else's row, there
        else:  # interrupted: stored whole (once) or not at all
            interrupted += 1
            found = [
                by_key.get(k, (0, b""))[1] == e.state for k, e in zip(keys, events, strict=True)
            ]
            if kind not in ("stored", "contended"):
                assert all(found) or not any(found), (kind, found)
        if kind in ("new", "two", "current"):
            assert not isinstance(answer, IntegrityError), (kind, answer)
    assert interrupted > 0
    assert committer.groups - groups_before < committer.units - units_before  # groups of several
    assert not committer._busy
    assert committer._queue == []
    assert committer._taken is None
    monkeypatch.undo()
    committer.after_commit = None
    assert len(recorder.insert_events([stored(uuid.uuid4(), 1, "later")]) or []) == 1
