"""Session 16, second attack: the command path (Idempotency-Key in the prefetch, group commit's
hand-over) and the consent export's batches, probed as a hostile user and an operator.

Each test is a probe that stays: it asserts the property the probe attacked.
"""

from __future__ import annotations

import gc
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from domain.base import NotFoundError
from domain.idempotency import IdempotencyRecord
from handlers import PartnerFleet
from handlers.conditions import Conditions, IdempotencyKey, KeyInFlightError, applied
from handlers.devices import PartnerChoice
from infra.storage.group_commit import GroupCommitter, Unit
from projections.consent import HISTORY_COLUMNS
from projections.consent_export import read_ahead
from projections.export_lines import encoded, lines
from tests.actors import customer
from tests.scenarios import CUSTOMER, event_count, in_memory_fleet, partner, servers

KEY = IdempotencyKey("k-attack", "POST", "/consent-grants", "sha256:" + "2" * 64)
# The same person (Passport ID) as admin of another customer: another tenant.
OTHER_TENANT = customer("C2", CUSTOMER.principal, "corr-other")


def two_customers() -> PartnerFleet:
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    fleet.register_devices(OTHER_TENANT, "C2", servers("S2"), PartnerChoice(location_id="LOC-1"))
    return fleet


# --- Idempotency-Key ------------------------------------------------------------------------


def test_session16_a_key_reused_by_the_same_person_in_another_tenant_never_replays() -> None:
    """One Passport ID, admin of C1 and of C2, sends the same key, path and body in both
    tenants. C1's answer must never be C2's: C2's request runs as C2's (here: refused,
    since S1 is not C2's device) and stores nothing."""
    fleet = two_customers()
    first = Conditions(idempotency=KEY)
    with applied(first):
        fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    stored = event_count(fleet)

    second = Conditions(idempotency=KEY)
    with pytest.raises(NotFoundError, match="No customer 'C1'"), applied(second):
        fleet.grant_consent(OTHER_TENANT, "C1", ["S1"])

    assert second.replayed is False
    assert event_count(fleet) == stored


def test_session16_a_key_used_in_another_tenant_runs_there_with_its_own_record() -> None:
    """The same key in C2 for C2's own device is C2's first use: it runs and is recorded,
    and C1's replay still answers C1's outcome."""
    fleet = two_customers()
    with applied(Conditions(idempotency=KEY)):
        fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    other = Conditions(idempotency=KEY)
    with applied(other):
        fleet.grant_consent(OTHER_TENANT, "C2", ["S2"])
    again = Conditions(idempotency=KEY)
    with applied(again):
        fleet.grant_consent(CUSTOMER, "C1", ["S1"])

    assert other.replayed is False
    assert again.replayed is True
    assert KEY.scope(CUSTOMER) != KEY.scope(OTHER_TENANT)
    assert IdempotencyRecord.id_for(KEY.scope(CUSTOMER)) != IdempotencyRecord.id_for(
        KEY.scope(OTHER_TENANT)
    )


def test_session16_a_key_of_another_principal_in_the_same_tenant_never_replays() -> None:
    fleet = two_customers()
    with applied(Conditions(idempotency=KEY)):
        fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    colleague = customer("C1", "colleague@customer.example", "corr-colleague")
    stored = event_count(fleet)

    second = Conditions(idempotency=KEY)
    with pytest.raises(Exception, match="already granted"), applied(second):
        fleet.grant_consent(colleague, "C1", ["S1"])

    assert second.replayed is False
    assert event_count(fleet) == stored


@pytest.mark.parametrize("same_body", [True, False])
def test_session16_one_key_from_two_threads_at_once_runs_the_command_once(
    same_body: bool,
) -> None:
    """Two requests with one key at the same moment: one runs; the other is refused as in
    flight (409), replays (same body) or is refused as reused (another body). One
    grant is stored, never two, and no thread hangs."""
    fleet = two_customers()
    before = event_count(fleet)
    bodies = [KEY, KEY if same_body else IdempotencyKey(KEY.key, KEY.method, KEY.path, "x")]
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def request(key: IdempotencyKey) -> None:
        start.wait()
        conditions = Conditions(idempotency=key)
        try:
            with applied(conditions):
                fleet.grant_consent(CUSTOMER, "C1", ["S1"])
        except KeyInFlightError:
            outcomes.append("in flight")
        except Exception as error:
            outcomes.append(type(error).__name__)
        else:
            outcomes.append("replayed" if conditions.replayed else "ran")

    threads = [threading.Thread(target=request, args=(key,), daemon=True) for key in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not any(thread.is_alive() for thread in threads)
    assert outcomes.count("ran") == 1, outcomes
    allowed = {"in flight", "replayed"} if same_body else {"in flight", "IdempotencyKeyReusedError"}
    assert set(outcomes) - {"ran"} <= allowed, outcomes
    granted = [
        n
        for n in fleet.recorder.select_notifications(start=before + 1, limit=100)
        if n.topic.endswith("ConsentGranted")
    ]
    assert len(granted) == 1


# --- Group commit ---------------------------------------------------------------------------


def stored_event() -> StoredEvent:
    return StoredEvent(uuid.uuid4(), 1, "tests:Event", b"{}")


class Interrupted(BaseException):
    """What an operator's signal raises in a waiting thread (as KeyboardInterrupt does)."""


class InterruptedWait(threading.Event):
    """A unit's event whose wait is interrupted once it has been woken to lead or answered
    (the caller's thread is gone at the worst moment)."""

    def wait(self, timeout: float | None = None) -> bool:
        super().wait(timeout)
        raise Interrupted


def test_session16_a_caller_interrupted_when_handed_the_lead_does_not_stall_the_committer() -> None:
    """A leader commits; a second caller queues behind it and is interrupted just when the
    lead is handed to it. Its unit was never committed, and the next callers must still
    commit (the committer must not stay busy for ever, waiting for a leader that is gone)."""
    release = threading.Event()
    committed: list[list[Unit]] = []

    def commit_group(units: list[Unit]) -> None:
        release.wait(10)
        committed.append(units)
        for number, unit in enumerate(units):
            unit.notification_ids = [number + 1]

    committer = GroupCommitter(commit_group, window_seconds=0)
    leader = threading.Thread(target=committer.submit, args=(Unit([stored_event()]),), daemon=True)
    leader.start()
    while not committer._busy:  # the leader is inside commit_group
        pass
    doomed = Unit([stored_event()], woken=InterruptedWait())
    interrupted: list[BaseException] = []

    def doomed_caller() -> None:
        try:
            committer.submit(doomed)
        except Interrupted as error:
            interrupted.append(error)

    second = threading.Thread(target=doomed_caller, daemon=True)
    second.start()
    while doomed not in committer._queue:
        pass
    release.set()
    leader.join(10)
    second.join(10)

    later = threading.Thread(target=committer.submit, args=(Unit([stored_event()]),), daemon=True)
    later.start()
    later.join(10)

    assert interrupted, "the doomed caller was interrupted"
    assert not later.is_alive(), "a save after the interrupted caller never returned"
    assert all(doomed not in group for group in committed)
    assert committer._busy is False


def test_session16_a_leader_interrupted_while_gathering_hands_the_lead_on() -> None:
    """A leader raising before it took its group (a signal while it waits for company)
    leaves no caller queued behind it waiting for ever, and its own unit uncommitted."""
    committed: list[Unit] = []

    def commit_group(units: list[Unit]) -> None:
        committed.extend(units)

    committer = GroupCommitter(commit_group, window_seconds=0)
    queued = Unit([stored_event()])
    original = committer._gather

    def interrupted_gather() -> list[Unit]:
        committer._gather = original  # type: ignore[method-assign]
        with committer._lock:
            committer._queue.append(queued)  # a caller queued meanwhile
        raise Interrupted

    committer._gather = interrupted_gather  # type: ignore[method-assign]
    first = Unit([stored_event()])
    with pytest.raises(Interrupted):
        committer.submit(first)
    waiter_done = queued.woken.wait(10)

    assert waiter_done, "the queued caller was never woken to lead"
    assert first not in committer._queue
    assert first not in committed


def test_session16_many_threads_some_groups_raising_every_caller_answered() -> None:
    """24 threads save; a group holding a poisoned unit raises in commit_group. Every
    caller returns (no hang), each poisoned group's members get the error, every other
    unit its ids, and no unit is committed twice."""
    seen: list[Unit] = []
    lock = threading.Lock()

    def commit_group(units: list[Unit]) -> None:
        with lock:
            seen.extend(units)
        if any(unit.stored_events[0].topic == "tests:Poison" for unit in units):
            raise RuntimeError("group failed")
        for unit in units:
            unit.notification_ids = [1]

    committer = GroupCommitter(commit_group)
    units = [
        Unit([StoredEvent(uuid.uuid4(), 1, "tests:Poison" if n % 5 == 0 else "tests:Event", b"")])
        for n in range(24)
    ]
    answers: dict[int, str] = {}

    def save(n: int) -> None:
        try:
            committer.submit(units[n])
            answers[n] = "ok"
        except RuntimeError:
            answers[n] = "failed"

    threads = [threading.Thread(target=save, args=(n,), daemon=True) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert not any(thread.is_alive() for thread in threads)
    assert len(answers) == 24
    assert len(seen) == 24
    assert len({id(unit) for unit in seen}) == 24
    for n, unit in enumerate(units):
        assert unit.done
        assert answers[n] == ("failed" if unit.error is not None else "ok")
        if n % 5 == 0:
            assert answers[n] == "failed"
    assert committer._busy is False


# --- Consent export: bytes of hostile values, the read-ahead thread -------------------------

HOSTILE = [
    'say "hi"',
    "back\\slash",
    "tab\tnew\nline\rcarriage",
    "\x00".replace("\x00", "nul-free \x01\x1f"),
    "delete\x7f",
    "\u2028line separator\u2029",
    "emoji \U0001f600 umlaut \u00e4",
    "lone \ud800 surrogate",
    "",
    " ",
    "x" * 100_000,
    "," * 3 + '"' * 3,
    "plain text",
]


def hostile_rows() -> list[tuple[Any, ...]]:
    rows = []
    for position, text in enumerate(HOSTILE * 2, start=1):
        values: list[Any] = [text] * len(HISTORY_COLUMNS)
        values[HISTORY_COLUMNS.index("position")] = position
        values[HISTORY_COLUMNS.index("version")] = -position if position % 2 else 2**70
        values[HISTORY_COLUMNS.index("corrects_version")] = None if position % 3 else position
        values[HISTORY_COLUMNS.index("kind")] = "plain"
        rows.append(tuple(values))
    return rows


@pytest.mark.parametrize("form", ["jsonl", "csv"])
@pytest.mark.parametrize("size", [1, 3, 1000])
def test_session16_hostile_values_encode_byte_for_byte_as_the_record_writer(
    form: str, size: int
) -> None:
    rows = hostile_rows()
    records = [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in rows]
    batches = [rows[i : i + size] for i in range(0, len(rows), size)]

    ours = "".join(chunk.text for chunk in encoded(batches, form))

    assert ours == "".join(lines(records, form))
    assert ours.encode("utf-8", "surrogatepass") == "".join(lines(records, form)).encode(
        "utf-8", "surrogatepass"
    )


def test_session16_a_column_mixing_text_and_bools_is_written_as_json_dumps_does() -> None:
    """True == 1 in Python: a column of 1 and True must not write one value for both."""
    rows = [(1, True, "a"), (True, 1, None), (1.0, False, 0)]
    records = [dict(zip(("a", "b", "c"), row, strict=True)) for row in rows]

    assert "".join(c.text for c in encoded([rows], "jsonl", ("a", "b", "c"))) == "".join(
        lines(records, "jsonl", ("a", "b", "c"))
    )


def threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name and t.is_alive()]


class Source:
    """Items from a generator that records whether it was closed."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.closed = False
        self.count, self.fail_at = count, fail_at

    def __iter__(self) -> Iterator[int]:
        try:
            for n in range(self.count):
                if n == self.fail_at:
                    raise ConnectionError("server closed the connection")
                yield n
        finally:
            self.closed = True


def test_session16_an_export_abandoned_without_close_leaves_no_thread_and_closes_its_rows() -> None:
    source = Source(1_000)
    rows = iter(source)
    batches = read_ahead(rows, 2)
    assert next(batches) == 0

    del batches
    gc.collect()

    assert threads_named("export-read-ahead") == []
    assert source.closed


def test_session16_a_lost_connection_mid_export_never_ends_like_a_whole_export() -> None:
    """The items before the failure come, then the error: never a clean end."""
    got: list[int] = []

    def read_all() -> None:
        for item in read_ahead(iter(Source(100, fail_at=37)), 2):
            got.append(item)

    with pytest.raises(ConnectionError):
        read_all()

    assert got == list(range(37))
    assert threads_named("export-read-ahead") == []
