"""Session 17, attack 2: the command path changes (private copies, adopt, raw-lock group
commit, packed arrays, the binder, checked actors), each probed with a test that fails
if the fault exists (docs/decisions.md, "Issue 11, attack on the command path changes")."""

from __future__ import annotations

import threading
import uuid

import pytest
from eventsourcing.persistence import StoredEvent

from infra.storage.group_commit import GroupCommitter, Signal, Unit


class Interrupted(BaseException):
    """What an operator's signal raises in the thread it lands in (as KeyboardInterrupt)."""


def stored_event() -> StoredEvent:
    return StoredEvent(uuid.uuid4(), 1, "tests:Event", b"{}")


def submit_in_thread(committer: GroupCommitter, unit: Unit) -> threading.Thread:
    thread = threading.Thread(target=committer.submit, args=(unit,), daemon=True)
    thread.start()
    return thread


# --- Group commit: an interrupt landing between taking a group and committing it ----------


def test_session17_a_leader_interrupted_after_taking_its_group_leaves_no_caller_waiting() -> None:
    """A leader takes its group (its own unit and a follower's) and a signal lands before
    the commit begins (at `_lead`'s first instruction). The follower must still be
    answered (its unit committed by a next leader, or refused), and a later save must
    return: the committer must not stay busy for ever with a group nobody commits."""
    committed: list[Unit] = []

    def commit_group(units: list[Unit]) -> None:
        for number, unit in enumerate(units):
            committed.append(unit)
            unit.notification_ids = [number + 1]

    committer = GroupCommitter(commit_group, window_seconds=0)
    follower = Unit([stored_event()])
    callers: list[threading.Thread] = []
    original_gather, original_lead = committer._gather, committer._lead

    def gather_with_company() -> list[Unit]:
        committer._gather = original_gather  # type: ignore[method-assign]
        callers.append(submit_in_thread(committer, follower))  # queues behind the leader
        while follower not in committer._queue:
            pass
        return original_gather()

    def interrupted_lead(group: list[Unit]) -> None:
        committer._lead = original_lead  # type: ignore[method-assign]
        raise Interrupted  # the signal lands before the commit's try

    committer._gather = gather_with_company  # type: ignore[method-assign]
    committer._lead = interrupted_lead  # type: ignore[method-assign]
    first = Unit([stored_event()])
    with pytest.raises(Interrupted):
        committer.submit(first)
    callers[0].join(5)
    later = submit_in_thread(committer, Unit([stored_event()]))
    later.join(5)

    assert not callers[0].is_alive(), "the follower of a group never committed waits for ever"
    assert follower in committed
    assert not later.is_alive(), "a save after the interrupted leader never returned"
    assert first not in committed
    assert committer._busy is False


def test_session17_a_follower_interrupted_after_its_raw_lock_was_taken_stalls_nothing() -> None:
    """A follower's wait is interrupted just after its raw lock was acquired, before the
    flag was raised again (the one window a `Signal` adds over an Event): handed the lead
    or not, the next callers must still commit."""

    class InterruptedSignal(Signal):
        __slots__ = ()

        def wait(self, timeout: float | None = None) -> bool:
            self._lock.acquire()
            raise Interrupted  # the flag stays down

    release = threading.Event()

    def commit_group(units: list[Unit]) -> None:
        release.wait(10)
        for number, unit in enumerate(units):
            unit.notification_ids = [number + 1]

    committer = GroupCommitter(commit_group, window_seconds=0)
    leader = submit_in_thread(committer, Unit([stored_event()]))
    while not committer._busy:
        pass
    doomed = Unit([stored_event()], woken=InterruptedSignal())
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
    later = [submit_in_thread(committer, Unit([stored_event()])) for _ in range(3)]
    for thread in later:
        thread.join(10)

    assert interrupted
    assert not any(thread.is_alive() for thread in later)
    assert committer._busy is False
