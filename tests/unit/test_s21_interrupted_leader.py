"""A leader interrupted during its group's commit (session 19's found-not-fixed): the
signal is the leader's own; its neighbours are answered that the commit's outcome is
unknown (OperationalError, as for a lost connection), never with KeyboardInterrupt raised
in threads it did not land in; the committer goes on."""

from __future__ import annotations

import threading
import uuid

import pytest
from eventsourcing.persistence import OperationalError, StoredEvent

from infra.storage.group_commit import GroupCommitter, Unit


class Interrupted(BaseException):
    """What an operator's signal raises in the thread it lands in (as KeyboardInterrupt)."""


def unit() -> Unit:
    return Unit([StoredEvent(uuid.uuid4(), 1, "tests:Event", b"{}")])


@pytest.mark.parametrize("signal", [Interrupted, KeyboardInterrupt, SystemExit])
def test_s21_the_neighbours_of_an_interrupted_leader_learn_the_outcome_is_unknown(
    signal: type[BaseException],
) -> None:
    started, release = threading.Event(), threading.Event()
    groups: list[list[Unit]] = []

    def commit_group(units: list[Unit]) -> None:
        groups.append(units)
        if len(groups) == 1:  # the first, lone group: held until the others queue
            started.set()
            release.wait(10)
        elif len(groups) == 2:
            raise signal  # lands in the second group's leader, mid-commit
        for number, member in enumerate(units):
            member.notification_ids = [number + 1]

    committer = GroupCommitter(commit_group, window_seconds=0)
    outcomes: dict[int, BaseException | list[int]] = {}

    def call(index: int, member: Unit) -> None:
        try:
            outcomes[index] = committer.submit(member)
        except BaseException as error:  # each caller's outcome, as it came
            outcomes[index] = error

    first = threading.Thread(target=call, args=(0, unit()))
    first.start()
    assert started.wait(10)
    members = [unit() for _ in range(3)]
    callers = [threading.Thread(target=call, args=(i + 1, m)) for i, m in enumerate(members)]
    for caller in callers:
        caller.start()
    while len(committer._queue) < 3:
        pass
    release.set()
    for thread in [first, *callers]:
        thread.join(10)
    later = unit()
    after = committer.submit(later)  # the committer is not stuck

    assert outcomes[0] == [1]
    second = [outcomes[i + 1] for i in range(3)]
    interrupts = [o for o in second if isinstance(o, signal)]
    unknown = [o for o in second if isinstance(o, OperationalError)]
    assert len(interrupts) == 1, "the signal stays the leader's own"
    assert len(unknown) == 2, "the neighbours learn the outcome is unknown"
    assert all("unknown" in str(o) for o in unknown)
    assert after == [1]
