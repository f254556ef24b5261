"""The save path in memory (issue 11): read versions on the in-memory store, the group
committer's leader/follower hand-over and each unit's own outcome."""

from __future__ import annotations

import threading
import uuid

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from infra.storage.group_commit import GroupCommitter, Unit
from tests.scenarios import in_memory_fleet


def event(aggregate_id: uuid.UUID, version: int = 1) -> StoredEvent:
    return StoredEvent(aggregate_id, version, "tests:Event", b"{}")


def test_issue_11_in_memory_store_refuses_a_stale_read_version() -> None:
    """An aggregate read at version 1 has a version 2: the save records nothing."""
    recorder = in_memory_fleet().recorder
    assert getattr(recorder, "checks_read_versions", False)
    read = uuid.uuid4()
    recorder.insert_events([event(read), event(read, 2)])
    written = uuid.uuid4()
    with pytest.raises(IntegrityError):
        recorder.insert_events([event(written)], read_versions={read: 1})
    assert recorder.max_notification_id() == 2
    assert recorder.insert_events([event(written)], read_versions={read: 2, uuid.uuid4(): 0})
    assert recorder.max_notification_id() == 3


def test_issue_11_a_caller_alone_commits_at_once_in_a_group_of_its_own() -> None:
    """No waiting for company: one save is one group, committed by its caller."""
    groups: list[int] = []

    def commit(units: list[Unit]) -> None:
        groups.append(len(units))
        for unit in units:
            unit.notification_ids = [1]

    committer = GroupCommitter(commit)
    assert committer.submit(Unit([event(uuid.uuid4())])) == [1]
    assert groups == [1]


def test_issue_11_followers_queued_behind_a_commit_are_committed_together() -> None:
    """While a group commits, later saves queue; the next leader commits them in one group,
    and a refusal or a failure after the commit reaches only the callers it concerns."""
    gate, entered = threading.Event(), threading.Event()
    groups: list[list[Unit]] = []

    def commit(units: list[Unit]) -> None:
        groups.append(units)
        if len(groups) == 1:
            entered.set()
            gate.wait(10)
        for index, unit in enumerate(units):
            if unit.read_versions:
                unit.error = IntegrityError("stale")
            else:
                unit.notification_ids = [index]

    committer = GroupCommitter(commit)
    outcomes: dict[int, object] = {}

    def save(n: int, unit: Unit) -> None:
        try:
            outcomes[n] = committer.submit(unit)
        except Exception as error:
            outcomes[n] = error

    first = threading.Thread(target=save, args=(0, Unit([event(uuid.uuid4())])))
    first.start()
    assert entered.wait(10)
    later = [
        threading.Thread(target=save, args=(n, Unit([event(uuid.uuid4())], None, reads)))
        for n, reads in ((1, {}), (2, {uuid.uuid4(): 1}), (3, {}))
    ]
    for count, thread in enumerate(later, start=1):
        thread.start()
        while len(committer._queue) < count:  # queued in this order
            threading.Event().wait(0.001)
    gate.set()
    for thread in [first, *later]:
        thread.join(10)
    assert [len(g) for g in groups] == [1, 3]
    assert committer.groups == 2
    assert outcomes[0] == [0]
    assert outcomes[1] == [0]
    assert isinstance(outcomes[2], IntegrityError)
    assert outcomes[3] == [2]


def test_issue_11_a_failure_after_the_commit_reaches_every_caller_of_the_group() -> None:
    """The fault hook between commit and answers: the callers learn nothing of the commit."""
    committer = GroupCommitter(lambda units: None)

    def crash(units: list[Unit]) -> None:
        raise RuntimeError("crashed after the commit")

    committer.after_commit = crash
    with pytest.raises(RuntimeError, match="crashed"):
        committer.submit(Unit([event(uuid.uuid4())]))
    committer.after_commit = None
    assert committer.submit(Unit([event(uuid.uuid4())])) == []
