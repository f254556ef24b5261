"""Session 19: a follower interrupted while its group is being committed (issue 11).

Its unit is in the group in flight: the group's other units must be committed once, by
their leader, not put back in the queue for a next leader to commit a second time."""

from __future__ import annotations

import threading
import uuid

from eventsourcing.persistence import StoredEvent

from infra.storage.group_commit import GroupCommitter, Signal, Unit


class Interrupted(BaseException):
    """What an operator's signal raises in the thread it lands in (as KeyboardInterrupt)."""


def stored_event() -> StoredEvent:
    return StoredEvent(uuid.uuid4(), 1, "tests:Event", b"{}")


class InterruptibleSignal(Signal):
    """A follower's wait that raises Interrupted once `interrupt` is set."""

    __slots__ = ("interrupt",)

    def __init__(self) -> None:
        super().__init__()
        self.interrupt = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.interrupt.wait(10)
        raise Interrupted


def test_session19_a_follower_interrupted_while_its_group_commits_commits_nothing_twice() -> None:
    committed: list[Unit] = []
    in_flight = threading.Event()
    release = threading.Event()

    def commit_group(units: list[Unit]) -> None:
        in_flight.set()
        release.wait(10)
        for number, unit in enumerate(units):
            committed.append(unit)
            unit.notification_ids = [number + 1]

    committer = GroupCommitter(commit_group, window_seconds=5, gather_share=1)
    doomed = Unit([stored_event()], woken=InterruptibleSignal())
    neighbour = Unit([stored_event()])
    lead = Unit([stored_event()])
    # Three callers seen saving: the leader gathers until all three are queued.
    for unit in (lead, doomed, neighbour):
        committer._callers[id(unit)] = float("inf")
    outcomes: dict[str, object] = {}

    def call(name: str, unit: Unit) -> None:
        try:
            outcomes[name] = committer.submit(unit)
        except Interrupted as error:
            outcomes[name] = error

    threads = [threading.Thread(target=call, args=("lead", lead), daemon=True)]
    threads[0].start()
    while not committer._busy:
        pass
    for name, unit in (("doomed", doomed), ("neighbour", neighbour)):
        threads.append(threading.Thread(target=call, args=(name, unit), daemon=True))
        threads[-1].start()
    assert in_flight.wait(10)  # the group of three is being committed
    assert isinstance(doomed.woken, InterruptibleSignal)
    doomed.woken.interrupt.set()
    threads[1].join(10)
    assert isinstance(outcomes["doomed"], Interrupted)
    assert committer._queue == [], "the group in flight was put back in the queue"
    release.set()
    for thread in threads:
        thread.join(10)
    later = Unit([stored_event()])
    committer._callers.clear()
    assert committer.submit(later) == [1]

    assert outcomes["lead"] == [1]
    assert outcomes["neighbour"] == [3]
    assert [committed.count(u) for u in (lead, doomed, neighbour)] == [1, 1, 1]
