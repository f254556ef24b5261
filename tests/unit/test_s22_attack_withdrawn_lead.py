"""Session 22's attack on the hand-over: a leader takes a group of two (half of the active
callers), its follower is interrupted in its wait (its unit stays in the group taken: the
leader may be committing it), then the leader is interrupted before it began the commit
and puts the group back (`_withdraw`). The follower's unit went back to the front of the
queue and was handed the lead, but its caller had left: nobody led, the committer stayed
busy, and every later caller waited for ever. A unit whose caller left is not put back
(nothing of it is saved, as its caller was told by the interrupt), and the lead goes to a
unit whose caller waits."""

from __future__ import annotations

import threading
import time
from typing import Any

from infra.storage.group_commit import GroupCommitter, Signal, Unit
from tests.unit.test_s22_gather_half import active_others, event, wait_until


class Interruptible:
    """A waiter's Wakeable: interrupted (KeyboardInterrupt) once `interrupt` is set."""

    def __init__(self) -> None:
        self.signal, self.interrupt = Signal(), threading.Event()

    def set(self) -> None:
        self.signal.set()

    def wait(self, timeout: float | None = None) -> bool:
        while not self.signal.wait(0.001):
            if self.interrupt.is_set():
                raise KeyboardInterrupt
        return True


def test_s22_attack_a_follower_and_its_leader_interrupted_leave_no_lead_to_nobody() -> None:
    committed: list[Unit] = []
    in_lead, interrupt_leader = threading.Event(), threading.Event()

    class Committer(GroupCommitter):
        def _lead(self, group: list[Unit], own: Unit | None = None) -> None:
            if not in_lead.is_set():  # the first group: interrupted before its commit
                in_lead.set()
                assert interrupt_leader.wait(10)
                raise KeyboardInterrupt
            super()._lead(group, own)

    committer = Committer(committed.extend, window_seconds=60)
    active_others(committer, 3)  # with the leader, four active: it waits for two
    outcomes: dict[str, Any] = {}

    def submit(name: str, unit: Unit) -> None:
        try:
            outcomes[name] = committer.submit(unit)
        except BaseException as error:  # the test reads it
            outcomes[name] = error

    leader_unit, follower = Unit([event()]), Unit([event()], woken=Interruptible())
    leader = threading.Thread(target=submit, args=("leader", leader_unit), daemon=True)
    leader.start()
    wait_until(lambda: committer._arrivals is not None)
    waiter = threading.Thread(target=submit, args=("follower", follower), daemon=True)
    waiter.start()
    assert in_lead.wait(10)  # the leader took [its own, the follower's]
    follower.woken.interrupt.set()  # type: ignore[attr-defined]
    waiter.join(10)
    assert isinstance(outcomes["follower"], KeyboardInterrupt)
    interrupt_leader.set()
    leader.join(10)
    assert isinstance(outcomes["leader"], KeyboardInterrupt)

    committer._callers.clear()  # the others quiet: the later caller commits at once
    late = Unit([event()])
    later = threading.Thread(target=submit, args=("later", late), daemon=True)
    started = time.monotonic()
    later.start()
    later.join(10)
    assert not later.is_alive(), "a later caller waits for a lead given to a caller gone"
    assert time.monotonic() - started < 10
    assert outcomes["later"] == []
    assert committed == [late]  # neither interrupted unit was committed
    assert not committer._busy
    assert committer._queue == []
