"""Session 22: a gathering leader waits for half of the active callers, not all of them
(infra/storage/group_commit.py, `gather_share`): the other half computes its next commands
while the group commits, instead of every thread waiting in lockstep (issue 11)."""

from __future__ import annotations

import threading
import time
import uuid

from eventsourcing.persistence import StoredEvent

from infra.storage.group_commit import GATHER_SHARE, GroupCommitter, Unit


def event() -> StoredEvent:
    return StoredEvent(uuid.uuid4(), 1, "tests:Event", b"{}")


def active_others(committer: GroupCommitter, count: int) -> None:
    """`count` other callers seen saving, and staying active for the test ("in the future")."""
    committer._callers = {-1 - n: time.monotonic() + 600 for n in range(count)}


def wait_until(condition: object, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        threading.Event().wait(0.001)


def test_session_22_the_default_share_is_half() -> None:
    assert GATHER_SHARE == 0.5
    assert GroupCommitter(lambda units: None).gather_share == 0.5


def test_session_22_of_eight_active_callers_a_leader_commits_once_four_are_queued() -> None:
    """Eight active callers (the leader and seven others), a window of a minute: with three
    units queued the leader still gathers; the fourth completes its group, committed at
    once without waiting for the other four (a leader waiting for all would wait out the
    minute here)."""
    groups: list[int] = []
    committer = GroupCommitter(lambda units: groups.append(len(units)), window_seconds=60)
    active_others(committer, 7)
    threads = [threading.Thread(target=committer.submit, args=(Unit([event()]),)) for _ in range(4)]
    threads[0].start()
    wait_until(lambda: committer._arrivals is not None)  # the leader is gathering
    for count, thread in enumerate(threads[1:3], start=2):
        thread.start()
        wait_until(lambda count=count: len(committer._queue) == count)
    threading.Event().wait(0.2)
    assert groups == []  # three of the four it waits for
    assert committer._arrivals is not None

    threads[3].start()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    assert groups == [4]


def test_session_22_a_leader_takes_every_unit_queued_not_only_its_share() -> None:
    """Six units queued behind a group in flight: the next leader finds more than its share
    (four of the eight active callers: its six, the first and one other) and commits all
    six in one group; none is left for a later one."""
    gate, entered = threading.Event(), threading.Event()
    groups: list[int] = []

    def commit(units: list[Unit]) -> None:
        groups.append(len(units))
        if len(groups) == 1:
            entered.set()
            gate.wait(10)

    committer = GroupCommitter(commit, window_seconds=60)
    active_others(committer, 1)  # with the first caller, two active: it commits at once
    first = threading.Thread(target=committer.submit, args=(Unit([event()]),))
    first.start()
    assert entered.wait(10)
    queued = [threading.Thread(target=committer.submit, args=(Unit([event()]),)) for _ in range(6)]
    for count, thread in enumerate(queued, start=1):
        thread.start()
        wait_until(lambda count=count: len(committer._queue) == count)
    gate.set()
    for thread in [first, *queued]:
        thread.join(10)
        assert not thread.is_alive()
    assert groups == [1, 6]


def test_session_22_two_active_callers_each_commit_without_waiting_for_the_other() -> None:
    """Two active callers: half is one, so a leader commits its own unit at once (the
    window of a minute is not waited out), and each caller hears its own outcome."""
    outcomes: list[list[int]] = []

    def commit(units: list[Unit]) -> None:
        for unit in units:
            unit.notification_ids = [len(outcomes) + 1]

    committer = GroupCommitter(commit, window_seconds=60)
    active_others(committer, 1)
    started = time.monotonic()
    outcomes.append(committer.submit(Unit([event()])))
    outcomes.append(committer.submit(Unit([event()])))
    assert time.monotonic() - started < 30
    assert outcomes == [[1], [2]]
    assert committer.groups == 2
