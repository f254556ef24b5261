"""Session 24's attack on the group committer's new default, no gathering window
(infra/storage/group_commit.py, WINDOW_SECONDS = 0): session 22's interrupt attacks, which
set a window themselves, run again on the default committer. Claims that held: every caller
answered, each with its own ids, nothing committed twice, the committer ends free."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from infra.storage import group_commit
from infra.storage.group_commit import WINDOW_SECONDS, GroupCommitter, Unit
from tests.unit import test_s22_attack_every_line as every_line
from tests.unit.test_s22_attack_gather_stress import Flaky
from tests.unit.test_s22_gather_half import event


def test_s24_attack_held_the_default_is_no_window_and_counts_nobody() -> None:
    assert WINDOW_SECONDS == 0
    committer = GroupCommitter(lambda units: None)
    assert committer.window_seconds == 0
    committer.submit(Unit([event()]))
    assert committer._callers == {}  # who is active is not counted without a window
    assert committer.groups == committer.units == 1


@pytest.mark.parametrize("line_number", range(1, 121))
def test_s24_attack_held_an_interrupt_on_each_line_without_a_window(
    line_number: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Session 22's line-by-line attack ("handed": queued behind a group in flight with two
    others, handed the lead), on a committer with the default window."""

    def default(commit: Any, **_: Any) -> GroupCommitter:
        return GroupCommitter(commit)

    monkeypatch.setattr(every_line, "GroupCommitter", default)
    every_line.run(line_number, "handed")


@pytest.mark.parametrize("seed", range(12))
def test_s24_attack_held_interrupts_anywhere_without_a_window(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Session 22's stress (8 callers x 40 units, KeyboardInterrupt in waits, between the
    taking and the commit, after the commit), the committer built with its defaults."""
    rng, rng_lock = random.Random(seed), threading.Lock()
    committed: dict[int, int] = {}
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
        def _gather(self) -> list[Unit]:
            group = super()._gather()
            if chance(0.03):
                raise KeyboardInterrupt
            return group

        def _lead(self, group: list[Unit], own: Unit | None = None) -> None:
            if chance(0.03):
                raise KeyboardInterrupt
            super()._lead(group, own)

    committer = Interrupted(commit)
    assert committer.window_seconds == 0

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
    assert committer._callers == {}
    assert committer.groups < committer.units  # groups of more than one were formed
