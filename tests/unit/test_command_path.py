"""Issue 11, session 16: the command path's cheaper steps keep every outcome.

An Idempotency-Key's record is looked up in the command's own prefetch (no round trip of
its own), and a replay still answers the first outcome, whatever the command would decide
now. The group committer wakes only the callers concerned, hands the lead to the first
caller queued behind a group, and a leader waits at most a short window for company.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from domain import Device
from domain.idempotency import IdempotencyRecord
from handlers import PartnerFleet
from handlers.base import Working
from handlers.conditions import Conditions, IdempotencyKey, applied
from handlers.devices import PartnerChoice
from infra.storage.group_commit import GroupCommitter, Signal, Unit
from tests.scenarios import CUSTOMER, event_count, in_memory_fleet, partner, servers

KEY = IdempotencyKey("k-1", "POST", "/customers/C1/consent", "sha256:" + "1" * 64)


def consenting_fleet() -> PartnerFleet:
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    return fleet


def record_id() -> UUID:
    return IdempotencyRecord.id_for(KEY.scope(CUSTOMER))


def grant_with_key(fleet: PartnerFleet) -> Conditions:
    conditions = Conditions(idempotency=KEY)
    with applied(conditions):
        fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    return conditions


class LoadSpy:
    """The ids each `latest` (prefetch) and `get` (single load) of the repository asked for."""

    def __init__(self, fleet: PartnerFleet) -> None:
        self.latest: list[list[UUID]] = []
        self.got: list[UUID] = []
        repository = fleet.repository
        latest, get = repository.latest, repository.get

        def spied_latest(ids: Sequence[UUID], *args: Any, **kwargs: Any) -> Any:
            self.latest.append(list(ids))
            return latest(ids, *args, **kwargs)

        def spied_get(aggregate_id: UUID, *args: Any, **kwargs: Any) -> Any:
            self.got.append(aggregate_id)
            return get(aggregate_id, *args, **kwargs)

        repository.latest = spied_latest  # type: ignore[method-assign]
        repository.get = spied_get  # type: ignore[method-assign]


def test_issue_11_a_keys_record_is_looked_up_in_the_commands_own_prefetch() -> None:
    """With an Idempotency-Key, the record's id rides in the command's first prefetch (one
    round trip for both); it is never loaded on its own."""
    fleet = consenting_fleet()
    fleet.aggregate_cache.clear()
    spy = LoadSpy(fleet)

    conditions = grant_with_key(fleet)

    assert conditions.replayed is False
    assert record_id() in spy.latest[0]
    assert Device.id_for("S1") in spy.latest[0]
    assert record_id() not in spy.got


def test_issue_11_a_replay_answers_the_first_outcome_where_the_command_would_now_refuse() -> None:
    """The second run of the command would be refused (consent already granted); the
    record found in its prefetch answers the first outcome instead, and nothing is stored."""
    fleet = consenting_fleet()
    first = grant_with_key(fleet)
    stored = event_count(fleet)

    again = grant_with_key(fleet)

    assert again.replayed is True
    assert again.position == first.position
    assert event_count(fleet) == stored


def test_issue_11_a_hinted_aggregate_found_by_the_prefetch_is_handed_over_at_once() -> None:
    """`Working.hint(..., found=)`: the command's prefetch hands over each hinted aggregate
    that exists (so a replay ends the command there), and nothing for one that does not."""
    fleet = consenting_fleet()
    device, nobody = Device.id_for("S1"), uuid.uuid4()
    handed: list[UUID] = []
    w = Working(fleet)

    w.hint(device, nobody, found=lambda aggregate: handed.append(aggregate.id))
    w.prefetch(Device.id_for("S2"))

    assert handed == [device]
    assert w.find(Device, nobody) is None
    assert device in w


def test_issue_11_a_key_on_a_refused_command_keeps_no_record_and_refuses_again() -> None:
    """A refusal with a key and no record is still the refusal (the record is looked up,
    not found), and stores nothing: the key may be used again."""
    fleet = consenting_fleet()
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    stored = event_count(fleet)

    with pytest.raises(Exception, match="already granted"):
        grant_with_key(fleet)

    assert event_count(fleet) == stored
    assert fleet.repository.latest([record_id()]) == {}


def event() -> StoredEvent:
    return StoredEvent(uuid.uuid4(), 1, "tests:Event", b"{}")


def test_issue_11_a_negative_window_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        GroupCommitter(lambda units: None, window_seconds=-0.001)
    with pytest.raises(ValueError, match="window_seconds"):
        GroupCommitter(lambda units: None, window_seconds=float("nan"))


@pytest.mark.parametrize("share", [0, -0.5, 1.01, float("nan")])
def test_session_22_a_gather_share_outside_0_to_1_is_refused_by_name(share: float) -> None:
    with pytest.raises(ValueError, match="gather_share"):
        GroupCommitter(lambda units: None, gather_share=share)


def test_issue_11_the_first_caller_queued_behind_a_group_leads_the_next_one() -> None:
    """Hand-over: the group after a held one is committed by the thread of its first unit,
    and each caller hears its own outcome."""
    gate, entered = threading.Event(), threading.Event()
    leaders: list[tuple[int, int]] = []  # (thread id, units) per group

    def commit(units: list[Unit]) -> None:
        leaders.append((threading.get_ident(), len(units)))
        if len(leaders) == 1:
            entered.set()
            gate.wait(10)
        for unit in units:
            unit.notification_ids = [len(leaders)]

    committer = GroupCommitter(commit, window_seconds=0)
    outcomes: dict[int, list[int]] = {}
    callers: dict[int, int] = {}

    def save(n: int) -> None:
        callers[n] = threading.get_ident()
        outcomes[n] = committer.submit(Unit([event()]))

    threads = [threading.Thread(target=save, args=(n,)) for n in range(3)]
    threads[0].start()
    assert entered.wait(10)
    for count, thread in enumerate(threads[1:], start=1):
        thread.start()
        while len(committer._queue) < count:
            threading.Event().wait(0.001)
    gate.set()
    for thread in threads:
        thread.join(10)

    assert [units for _, units in leaders] == [1, 2]
    assert leaders[1][0] == callers[1]
    assert outcomes == {0: [1], 1: [2], 2: [2]}


def test_issue_11_a_leader_waits_for_the_active_callers_to_join_its_group() -> None:
    """Two threads that saved recently, a leader waiting for all of them (`gather_share`
    1): the next leader waits (within the window) for the other's unit, so both are
    committed in one group."""
    groups: list[int] = []

    def commit(units: list[Unit]) -> None:
        groups.append(len(units))

    committer = GroupCommitter(commit, window_seconds=60, gather_share=1)
    committer.submit(Unit([event()]))  # this thread has saved: it counts as active
    waiting = threading.Thread(target=committer.submit, args=(Unit([event()]),))
    waiting.start()
    while not committer._busy:
        threading.Event().wait(0.001)

    committer.submit(Unit([event()]))
    waiting.join(10)

    assert groups == [1, 2]


def test_session_17_a_signal_is_an_event_on_one_raw_lock() -> None:
    """Unit.woken's default: down until set, then up for every wait; set twice is once."""
    signal = Signal()
    assert not signal.is_set()
    assert signal.wait(0.001) is False
    woken: list[bool] = []
    waiters = [threading.Thread(target=lambda: woken.append(signal.wait(10))) for _ in range(3)]
    for waiter in waiters:
        waiter.start()
    signal.set()
    signal.set()
    for waiter in waiters:
        waiter.join(10)
    assert woken == [True, True, True]
    assert signal.is_set()
    assert signal.wait() is True


def test_session_17_a_gathering_leader_is_not_woken_before_its_group_is_complete() -> None:
    """Three active callers, a leader waiting for all of them: it waits until both others
    queued (one wake-up at the second arrival), not only the first of them."""
    groups: list[int] = []
    committer = GroupCommitter(
        lambda units: groups.append(len(units)), window_seconds=60, gather_share=1
    )
    threads = [threading.Thread(target=committer.submit, args=(Unit([event()]),)) for _ in range(3)]
    # Two other callers active (they stay so for the test: saved "in the future").
    committer._callers = {-1: time.monotonic() + 600, -2: time.monotonic() + 600}
    threads[0].start()
    while not committer._busy:
        threading.Event().wait(0.001)
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert groups == [3]


def test_session_17_a_command_binds_its_actor_for_logs_and_restores_the_context() -> None:
    """Inside a command its principal and correlation id are bound; after it, accepted or
    refused, the context variables are as before (a value bound outside restored, a key
    absent before absent again)."""
    import structlog

    from domain.base import DomainError
    from tests.actors import operator

    fleet = in_memory_fleet()
    actor = operator("ops-ctx", "corr-ctx")
    seen: list[dict[str, Any]] = []

    def body(w: Working) -> None:
        seen.append(structlog.contextvars.get_contextvars())

    def refused(w: Working) -> None:
        body(w)
        raise DomainError("no")

    structlog.contextvars.clear_contextvars()
    with structlog.contextvars.bound_contextvars(principal="outer", request_id="r-1"):
        before = structlog.contextvars.get_contextvars()
        fleet._run("probe", actor, body)
        assert structlog.contextvars.get_contextvars() == before
        with pytest.raises(DomainError):
            fleet._run("probe", actor, refused)
        assert structlog.contextvars.get_contextvars() == before
    assert structlog.contextvars.get_contextvars() == {}
    for inside in seen:
        assert inside == {
            "principal": "ops-ctx",
            "correlation_id": "corr-ctx",
            "request_id": "r-1",
        }
