"""Session 22's attack on the half gather, line by line: one caller (the thread a signal
lands in) queues behind a group in flight with two other callers, is handed the lead,
gathers half of the active callers and commits (or leads at once and waits for half of
them to arrive); a KeyboardInterrupt lands on its k-th line
of group_commit.py, for every k the path runs (its wait, the hand-over, the gathering, the
withdrawal, the commit, the settling). Wherever it lands: the other callers are answered
(no hang), each with its unit committed once and its own ids, no unit is committed twice,
the committer ends free and a later caller commits at once."""

from __future__ import annotations

import linecache
import sys
import threading
import time
from types import FrameType
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from infra.storage import group_commit
from infra.storage.group_commit import GroupCommitter, Unit
from tests.unit.test_s22_gather_half import event, wait_until

SOURCE = group_commit.__file__


def interrupted_at(line_number: int) -> tuple[Any, list[int]]:
    """A tracer raising KeyboardInterrupt on the k-th line run in group_commit.py (once),
    and the count of lines it saw. Not on a `with` line: a tracer raising on its exit
    skips `__exit__` (the lock kept for ever), where a signal lands only after a call
    returns, `__exit__`'s included."""
    seen = [0]

    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line" and not linecache.getline(SOURCE, frame.f_lineno).lstrip().startswith(
            "with "
        ):
            seen[0] += 1
            if seen[0] == line_number:
                raise KeyboardInterrupt
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        return local if frame.f_code.co_filename == SOURCE else None

    return tracer, seen


def run(line_number: int, scenario: str = "handed") -> tuple[int, Any]:
    """The scenario, interrupted on the caller's `line_number`-th line; the lines its
    caller ran, and its answer. "handed": the signalled caller queues behind a group in
    flight with two others and is handed the lead; "gathering": it leads at once and
    waits for a second arrival (half of four active callers), a third caller after."""
    counter = [0]
    commits: dict[int, int] = {}
    gate, held = threading.Event(), threading.Event()

    def commit(units: list[Unit]) -> None:
        if scenario == "handed" and not held.is_set():  # held while the others queue
            held.set()
            gate.wait(10)
        for unit in units:
            commits[id(unit)] = commits.get(id(unit), 0) + 1
            unit.notification_ids = [counter[0] + 1]
            counter[0] += 1

    committer = GroupCommitter(commit, window_seconds=0.05)
    committer._callers = {-1: time.monotonic() + 600, -2: time.monotonic() + 600}
    answers: dict[str, Any] = {}
    units = {name: Unit([event()]) for name in ("first", "signalled", "b", "c")}
    tracer, seen = interrupted_at(line_number)

    def submit(name: str) -> None:
        if name == "signalled" and line_number:
            sys.settrace(tracer)
        try:
            answers[name] = committer.submit(units[name])
        except (KeyboardInterrupt, OperationalError) as error:
            answers[name] = error
        finally:
            sys.settrace(None)

    threads = {name: threading.Thread(target=submit, args=(name,), daemon=True) for name in units}
    if scenario == "handed":
        threads["first"].start()
        assert held.wait(10)
        for name in ("signalled", "b", "c"):
            threads[name].start()
            wait_until(lambda n=name: units[n] in committer._queue or n in answers)
        gate.set()
    else:
        committer._callers[-3] = time.monotonic() + 600
        threads["signalled"].start()
        wait_until(lambda: committer._arrivals is not None or "signalled" in answers)
        for name in ("b", "c", "first"):
            threads[name].start()
            wait_until(lambda n=name: n in answers or committer._arrivals is None)
    for name, thread in threads.items():
        thread.join(10)
        assert not thread.is_alive(), f"{name} never answered (interrupted on {line_number})"
    assert all(times == 1 for times in commits.values())
    for name in ("first", "b", "c"):
        answer = answers[name]
        if isinstance(answer, list):
            assert commits.get(id(units[name])) == 1
            assert answer == units[name].notification_ids
        else:  # the signalled caller's group: its outcome unknown (after its commit)
            assert isinstance(answer, OperationalError), (name, answer)
    assert not committer._busy
    assert committer._queue == []
    assert committer._taken is None
    committer._callers.clear()
    later = Unit([event()])
    done = threading.Thread(target=committer.submit, args=(later,), daemon=True)
    done.start()
    done.join(10)
    assert not done.is_alive(), f"a later caller waits (interrupted on {line_number})"
    assert commits.get(id(later)) == 1
    return seen[0], answers["signalled"]


@pytest.mark.parametrize("scenario", ["handed", "gathering"])
@pytest.mark.parametrize("line_number", range(1, 121))
def test_s22_attack_an_interrupt_on_each_line_of_the_signalled_callers_path(
    line_number: int, scenario: str
) -> None:
    run(line_number, scenario)


@pytest.mark.parametrize("scenario", ["handed", "gathering"])
def test_s22_attack_the_interrupts_cover_the_whole_path(scenario: str) -> None:
    """The path is shorter than the lines the attack above tries: each of its lines
    was interrupted once."""
    lines, answer = run(10**9, scenario)
    assert isinstance(answer, list)
    assert 30 < lines <= 120, lines
