"""The save path on PostgreSQL (issue 11): group commit with each caller's own outcome,
read versions, a crash between a group's commit and its answers, followers in order."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, Tracking
from psycopg.sql import SQL

from domain import DomainError
from handlers import PartnerFleet
from handlers.conditions import Conditions, IdempotencyKey, applied
from infra.bootstrap import build_fleet
from infra.settings import Settings
from infra.storage.group_commit import Unit
from infra.storage.pg_recorder import FleetProcessRecorder
from tests.actors import customer
from tests.conftest import url_of
from tests.integration.streams import event, recorder_of
from tests.scenarios import CUSTOMER, OPS, servers

pytestmark = pytest.mark.postgres


class HeldFirstGroup:
    """Holds the committer's first group until `release()`: whatever is saved meanwhile
    queues and is committed as the next group, together."""

    def __init__(self, recorder: FleetProcessRecorder) -> None:
        self.recorder = recorder
        self.gate = threading.Event()
        self.entered = threading.Event()
        committer = recorder.committer
        real = committer._commit_group

        def held(units: list[Unit]) -> None:
            if not self.entered.is_set():
                self.entered.set()
                self.gate.wait(timeout=30)
            real(units)

        committer._commit_group = held

    def queued(self) -> int:
        with self.recorder.committer._lock:
            return len(self.recorder.committer._queue)

    def wait_queued(self, count: int) -> None:
        deadline = time.monotonic() + 30
        while self.queued() < count:
            assert time.monotonic() < deadline, f"{self.queued()} of {count} queued"
            time.sleep(0.001)

    def release(self) -> None:
        self.gate.set()


def in_thread(outcomes: dict[str, Any], name: str, call: Callable[[], Any]) -> threading.Thread:
    def run() -> None:
        try:
            outcomes[name] = call()
        except Exception as error:
            outcomes[name] = error

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def test_issue_11_a_group_gives_each_unit_its_own_outcome(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """One group holding a version conflict (stored and within the group), a tracking
    conflict and a stale read: those units alone are refused, their neighbours committed."""
    recorder = recorder_of(fleets())
    a, b, c, d, e, f, g = (uuid.uuid4() for _ in range(7))
    recorder.insert_events([event(a)], tracking=Tracking("policy", 10))
    groups_before, units_before = recorder.committer.groups, recorder.committer.units
    held = HeldFirstGroup(recorder)
    outcomes: dict[str, Any] = {}
    threads = [in_thread(outcomes, "leader", lambda: recorder.insert_events([event(uuid.uuid4())]))]
    assert held.entered.wait(30)
    units: list[tuple[str, Callable[[], Any]]] = [
        ("new", lambda: recorder.insert_events([event(b), event(b, 2)])),
        ("stored_version", lambda: recorder.insert_events([event(a)])),
        ("first_of_two", lambda: recorder.insert_events([event(c)])),
        ("second_of_two", lambda: recorder.insert_events([event(c)])),
        (
            "old_tracking",
            lambda: recorder.insert_events([event(d)], tracking=Tracking("policy", 5)),
        ),
        ("stale_read", lambda: recorder.insert_events([event(e)], read_versions={a: 0})),
        ("current_read", lambda: recorder.insert_events([event(f)], read_versions={a: 1})),
        ("tracked", lambda: recorder.insert_events([event(g)], tracking=Tracking("policy", 11))),
    ]
    for count, (name, call) in enumerate(units, start=1):
        threads.append(in_thread(outcomes, name, call))
        held.wait_queued(count)  # queued in this order: the group's order
    held.release()
    for thread in threads:
        thread.join(30)

    refused = {"stored_version", "second_of_two", "old_tracking", "stale_read"}
    for name in refused:
        assert isinstance(outcomes[name], IntegrityError), name
    accepted = [outcomes[name] for name, _ in units if name not in refused]
    assert all(isinstance(ids, list) for ids in accepted), outcomes
    assert [len(ids) for ids in accepted] == [2, 1, 1, 1]
    ids = [i for unit_ids in accepted for i in unit_ids]
    assert ids == sorted(ids)  # in the group's order, one transaction
    assert recorder.committer.groups - groups_before == 2  # the held one, then all together
    assert recorder.committer.units - units_before == 1 + len(units)
    stored = {n.originator_id for n in recorder.select_notifications(1, 100)}
    assert {b, c, f, g} <= stored
    assert not {d, e} & stored
    assert recorder.max_tracking_id("policy") == 11


def test_issue_11_commands_refused_and_conflicting_in_one_group_leave_neighbours_stored(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """Threads released together: a rule refusal, two commands on one device (a version
    conflict in the group, retried) and accepted neighbours each get their own outcome."""
    fleet = fleets()
    fleet.register_devices(CUSTOMER, "C1", servers("S1", "S2", "S3", "S4"))
    held = HeldFirstGroup(recorder_of(fleet))
    outcomes: dict[str, Any] = {}
    threads = [
        in_thread(outcomes, "leader", lambda: fleet.register_devices(CUSTOMER, "C1", servers("S0")))
    ]
    assert held.entered.wait(30)
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("alert_s1_a", lambda: fleet.raise_alert(OPS, "S1", "a1", "warning", "fan")),
        ("alert_s1_b", lambda: fleet.raise_alert(OPS, "S1", "b1", "warning", "fan")),
        ("alert_s2", lambda: fleet.raise_alert(OPS, "S2", "c1", "critical", "disk")),
        ("refused", lambda: fleet.raise_alert(OPS, "NOT-REGISTERED", "d1", "warning", "x")),
        ("alert_s3", lambda: fleet.raise_alert(OPS, "S3", "e1", "info", "ok")),
    ]
    for name, call in calls:
        threads.append(in_thread(outcomes, name, call))
    held.wait_queued(4)  # every saving command queued behind the held group
    held.release()
    for thread in threads:
        thread.join(30)

    assert isinstance(outcomes["refused"], DomainError)
    assert all(outcomes[n] is None for n, _ in calls if n != "refused"), outcomes
    assert set(fleet.device("S1").alerts) == {"a1", "b1"}
    assert list(fleet.device("S2").alerts) == ["c1"]
    assert list(fleet.device("S3").alerts) == ["e1"]
    committer = recorder_of(fleet).committer
    assert committer.units > committer.groups  # some saves shared a transaction


def test_issue_11_after_a_crash_between_commit_and_answers_each_caller_learns_by_its_key(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """The group commits, then the leader fails before answering (as a crashed process
    would): every caller sees an error, and the same Idempotency-Key then answers
    `replayed` with the stored result; nothing is recorded twice."""
    fleet = fleets()
    recorder = recorder_of(fleet)
    crashed = threading.Event()

    def crash(units: list[Unit]) -> None:
        if len(units) > 1 and not crashed.is_set():  # the group behind the held one
            crashed.set()
            raise RuntimeError("crashed after the commit")

    held = HeldFirstGroup(recorder)
    outcomes: dict[str, Any] = {}

    def register(serial: str) -> Callable[[], Any]:
        admin = customer(f"C-{serial}", f"admin@{serial}.example", f"corr-{serial}")

        def call() -> Any:
            key = IdempotencyKey(f"key-{serial}", "POST", "/devices", f"sha256:{serial}")
            with applied(Conditions(idempotency=key)) as conditions:
                fleet.register_devices(admin, f"C-{serial}", servers(serial))
            return conditions.replayed, conditions.position

        return call

    threads = [in_thread(outcomes, "leader", register("X0"))]
    assert held.entered.wait(30)
    recorder.committer.after_commit = crash
    serials = ["K1", "K2", "K3"]
    for count, serial in enumerate(serials, start=1):
        threads.append(in_thread(outcomes, serial, register(serial)))
        held.wait_queued(count)
    held.release()
    for thread in threads:
        thread.join(30)
    assert all(isinstance(outcomes[s], RuntimeError) for s in serials), outcomes
    recorder.committer.after_commit = None
    before = recorder.max_notification_id()

    for serial in serials:
        replayed, position = register(serial)()
        assert replayed, serial  # the first use's outcome: accepted, at its position
        assert 0 < position <= before
        assert fleet.device(serial).serial == serial
    assert recorder.max_notification_id() == before  # nothing recorded again


def test_issue_11_a_follower_never_skips_an_id_committed_late(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """Two processes' slow group commits race (a pause between the insert and COMMIT); a
    reader that follows the notification log sees every id, in order, and none appears
    later below a position it already passed."""
    writers = [recorder_of(fleets()) for _ in range(2)]
    for recorder in writers:
        recorder.closing_statements.append(SQL("SELECT pg_sleep(0.003)"))
    reader = recorder_of(fleets())
    done = threading.Event()
    seen: list[int] = []

    def follow() -> None:
        position = 0
        while True:
            finished = done.is_set()
            found = reader.select_notifications(position + 1, 1000)
            seen.extend(n.id for n in found)
            position = found[-1].id if found else position
            if finished and not found:
                return

    def write(recorder: FleetProcessRecorder) -> None:
        for _ in range(25):
            recorder.insert_events([event(uuid.uuid4()), event(uuid.uuid4())])

    follower = threading.Thread(target=follow)
    follower.start()
    threads = [threading.Thread(target=write, args=(r,)) for r in writers for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    follower.join(60)
    every = [n.id for n in reader.select_notifications(1, 100_000)]
    assert len(every) == 2 * 4 * 25 * 2
    assert seen == every  # nothing skipped, nothing out of order
    assert sum(r.committer.units for r in writers) > sum(r.committer.groups for r in writers)


@pytest.mark.parametrize("store", ["postgres", "sqlite"])
def test_issue_11_a_stale_read_version_refuses_the_save_and_records_nothing(
    store: str, request: pytest.FixtureRequest
) -> None:
    """read_versions names an aggregate read but not written: a later stored event of it
    refuses the save (RecordConflictError); at its current version the save is recorded."""
    settings: Settings = request.getfixturevalue(f"{store}_settings")
    fleet = build_fleet(settings)
    try:
        recorder = fleet.recorder
        assert getattr(recorder, "checks_read_versions", False)
        read = uuid.uuid4()
        recorder.insert_events([event(read), event(read, 2)])
        count = len(recorder.select_notifications(1, 100))
        with pytest.raises(IntegrityError):
            recorder.insert_events([event(uuid.uuid4())], read_versions={read: 1})
        assert len(recorder.select_notifications(1, 100)) == count
        assert recorder.insert_events([event(uuid.uuid4())], read_versions={read: 2})
        assert len(recorder.select_notifications(1, 100)) == count + 1
    finally:
        fleet.close()


KILLED_AFTER_COMMIT = """
import os, signal, sys
from handlers.conditions import Conditions, IdempotencyKey, applied
from infra.bootstrap import build_fleet
from infra.settings import Settings
from tests.actors import customer
from tests.scenarios import servers

fleet = build_fleet(Settings(database_url=sys.argv[1]))
fleet.recorder.committer.after_commit = lambda units: os.kill(os.getpid(), signal.SIGKILL)
key = IdempotencyKey("key-kill", "POST", "/devices", "sha256:kill")
admin = customer("C-KILL", "admin@kill.example", "c")
with applied(Conditions(idempotency=key)):
    fleet.register_devices(admin, "C-KILL", servers(sys.argv[2]))
print("answered")
"""


def test_issue_11_a_process_killed_after_its_commit_leaves_the_outcome_to_its_key(
    fleets: Callable[[], PartnerFleet], postgres_settings: Settings
) -> None:
    """SIGKILL between the group's COMMIT and the answer: the caller never heard, and the
    same Idempotency-Key asked of another process answers `replayed`, recording nothing."""
    serial = "KILL1"
    done = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_COMMIT, url_of(postgres_settings), serial],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert "answered" not in done.stdout
    fleet = fleets()
    before = fleet.recorder.max_notification_id()
    key = IdempotencyKey("key-kill", "POST", "/devices", "sha256:kill")
    with applied(Conditions(idempotency=key)) as conditions:
        fleet.register_devices(
            customer("C-KILL", "admin@kill.example", "c"), "C-KILL", servers(serial)
        )
    assert conditions.replayed
    assert fleet.device(serial).serial == serial
    assert fleet.recorder.max_notification_id() == before


@pytest.mark.postgres
def test_issue_11_a_lone_unit_with_reads_is_refused_on_a_stale_read_and_alone_otherwise(
    postgres_settings: Settings,
) -> None:
    """The lone-unit-with-reads statement (session 16): a stale read refuses the unit and
    records none of its events; a current one records them in order; a version already
    stored is the unit's own refusal, with nothing recorded either."""
    fleet = build_fleet(postgres_settings)
    try:
        recorder = fleet.recorder
        read, written = uuid.uuid4(), uuid.uuid4()
        recorder.insert_events([event(read), event(read, 2)])
        count = len(recorder.select_notifications(1, 100))

        with pytest.raises(IntegrityError, match="changed since it was read"):
            recorder.insert_events([event(written), event(written, 2)], read_versions={read: 1})
        assert len(recorder.select_notifications(1, 100)) == count
        ids = recorder.insert_events(
            [event(written), event(written, 2)], read_versions={read: 2, uuid.uuid4(): 0}
        )
        assert ids is not None
        assert len(ids) == 2
        assert list(ids) == sorted(ids)
        with pytest.raises(IntegrityError):
            recorder.insert_events([event(written, 2)], read_versions={read: 2})
        assert [e.originator_version for e in recorder.select_events(written)] == [1, 2]
    finally:
        fleet.close()
