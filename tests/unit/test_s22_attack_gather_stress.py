"""Session 22's attack on the half gather: many callers, a leader waiting for half of them,
units queueing behind groups in flight, and interrupts (KeyboardInterrupt) landing at
random in waiters' waits and in gathering leaders' waits for arrivals, in the leader
between taking its group and committing it, and after its commit (`after_commit`).
Whatever lands where: every caller is answered (no thread hangs), no unit is committed
twice, a caller answered with notification ids had its unit committed exactly once with
those ids, and the committer ends free with nothing queued."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from infra.storage import group_commit
from infra.storage.group_commit import GroupCommitter, Signal, Unit
from tests.unit.test_s22_gather_half import event


class Flaky:
    """A Wakeable (or an arrivals Signal) whose wait is interrupted now and then."""

    def __init__(self, rng: random.Random, rate: float, lock: threading.Lock) -> None:
        self.signal = Signal()
        self.rng, self.rate, self.lock = rng, rate, lock

    def set(self) -> None:
        self.signal.set()

    def is_set(self) -> bool:
        return self.signal.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        with self.lock:
            before, after = self.rng.random() < self.rate, self.rng.random() < self.rate
        if before:
            raise KeyboardInterrupt
        woken = self.signal.wait(timeout)
        if after:
            raise KeyboardInterrupt
        return woken


@pytest.mark.parametrize("window", [0.005, None])  # None: the default (no window, session 24)
@pytest.mark.parametrize("seed", range(12))
def test_s22_attack_interrupts_anywhere_leave_every_caller_answered_once(
    seed: int, window: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng, rng_lock = random.Random(seed), threading.Lock()
    committed: dict[int, int] = {}  # id(unit): times committed
    assigned: dict[int, list[int]] = {}
    counter = [0]

    def commit(units: list[Unit]) -> None:
        threading.Event().wait(0.0005)
        for unit in units:
            committed[id(unit)] = committed.get(id(unit), 0) + 1
            ids = list(range(counter[0] + 1, counter[0] + 1 + len(unit.stored_events)))
            counter[0] += len(ids)
            unit.notification_ids = assigned[id(unit)] = ids

    def chance(rate: float) -> bool:
        with rng_lock:
            return rng.random() < rate

    class Interrupted(GroupCommitter):
        """Interrupts also between the gathering and the commit: after `_gather` took
        its group (before the caller holds it), and as `_lead` starts."""

        def _gather(self) -> list[Unit]:
            group = super()._gather()
            if chance(0.03):
                raise KeyboardInterrupt
            return group

        def _lead(self, group: list[Unit], own: Unit | None = None) -> None:
            if chance(0.03):
                raise KeyboardInterrupt
            super()._lead(group, own)

    committer = (
        Interrupted(commit) if window is None else Interrupted(commit, window_seconds=window)
    )

    def after(units: list[Unit]) -> None:
        if chance(0.03):
            raise KeyboardInterrupt

    committer.after_commit = after
    monkeypatch.setattr(group_commit, "Signal", lambda: Flaky(rng, 0.03, rng_lock))
    answers: list[tuple[Unit, Any]] = []
    answers_lock = threading.Lock()

    def caller() -> None:
        for _ in range(40):
            unit = Unit([event()], woken=Flaky(rng, 0.02, rng_lock))
            try:
                answer: Any = committer.submit(unit)
            except (KeyboardInterrupt, OperationalError) as error:
                answer = error
            with answers_lock:
                answers.append((unit, answer))

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a caller was never answered"
    assert len(answers) == 8 * 40
    assert all(times == 1 for times in committed.values())
    for unit, answer in answers:
        if isinstance(answer, list):
            assert committed.get(id(unit)) == 1
            assert answer == assigned[id(unit)]
    assert not committer._busy
    assert committer._queue == []
    assert committer._taken is None
    interrupted = sum(isinstance(a, BaseException) for _, a in answers)
    assert 0 < interrupted < len(answers)
    if window is None:  # without a window nobody's activity is counted, and groups still form
        assert committer._callers == {}
        assert committer.groups < committer.units
