"""Attack on session 19's group-commit fix (infra/storage/group_commit.py, issue 11).

An interrupt (KeyboardInterrupt, any BaseException a signal raises) may land at any
bytecode of the thread it lands in, also inside the leader's `finally` that settles its
group. Found: landing there after the group was committed, the leader's `_withdraw` either
returned early (its unit already marked done) and left the committer busy with nobody to
lead (every later save waits for ever, its followers never woken), or (no unit marked yet)
put the committed group's other units back at the front of the queue, for a next leader
to commit a second time. Every unit must be committed at most once, each caller gets its
own outcome, the committer is never stuck.
"""

from __future__ import annotations

import contextlib
import dis
import inspect
import sys
import uuid
from types import FrameType
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from infra.storage.group_commit import GroupCommitter, Unit


class Interrupted(BaseException):
    """What an operator's signal raises in the thread it lands in (as KeyboardInterrupt)."""


def unit() -> Unit:
    return Unit([StoredEvent(uuid.uuid4(), 1, "tests:Event", b"{}")])


# Where the leader settles its group: `_lead`'s finally (before the fix) and `_settle`
# (after it), each line of them.
SETTLING = [GroupCommitter._lead, getattr(GroupCommitter, "_settle", GroupCommitter._lead)]


def settling_lines() -> list[tuple[Any, int]]:
    """Each line of the settling code that has bytecode of its own (so a line event can
    fire there; comments and a docstring's lines have none)."""
    found = []
    for function in dict.fromkeys(SETTLING):
        source, first = inspect.getsourcelines(function)
        starts = [n for n, text in enumerate(source) if text.strip() == "finally:"]
        start = first + (starts[0] if function is GroupCommitter._lead else 0)
        code_lines = {line for _, line in dis.findlinestarts(function.__code__) if line}
        found += [(function, line) for line in sorted(code_lines) if line > start]
    return found


def interrupt_at(function: Any, line: int, raising: type[BaseException] = Interrupted) -> Any:
    """A trace function raising `raising` when `function` reaches `line` (once)."""
    fired: list[int] = []
    code = function.__code__

    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line" and frame.f_lineno == line and not fired:
            fired.append(line)
            raise raising
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        return local if frame.f_code is code else None

    return tracer, fired


@pytest.mark.parametrize("where", settling_lines(), ids=lambda w: f"{w[0].__name__}+{w[1]}")
def test_attack_s19_an_interrupt_while_the_leader_settles_its_group(where: Any) -> None:
    commits: list[Unit] = []

    def commit_group(units: list[Unit]) -> None:
        for n, member in enumerate(units):
            commits.append(member)
            member.notification_ids = [n + 1]

    committer = GroupCommitter(commit_group, window_seconds=0)
    follower = unit()
    committer._queue.append(follower)  # queued by a follower waiting for its outcome
    committer._callers[0] = float("inf")  # (that follower counts as active)
    leader = unit()
    tracer, _ = interrupt_at(*where)
    sys.settrace(tracer)
    try:
        with contextlib.suppress(Interrupted):
            committer.submit(leader)
    finally:
        sys.settrace(None)
    # Interrupted there or (a line this path does not reach) not at all: either way
    # settled: each unit committed once, the follower answered with its own outcome, the
    # committer free for the next save.
    assert follower.done
    assert follower.woken.wait(0)  # raised
    assert follower.result() == [1]
    assert committer._queue == []
    assert committer._taken is None
    assert not committer._busy
    later = unit()
    assert committer.submit(later) == [1]
    assert commits == [follower, leader, later]


def test_attack_s19_the_interrupt_lands_on_most_settling_lines() -> None:
    """The attack above is no attack where its interrupt never fires: it lands on 15 of
    the 18 lines with code (the others are branches this path does not take)."""
    fired_on = 0
    for where in settling_lines():
        committer = GroupCommitter(lambda units: None, window_seconds=0)
        tracer, fired = interrupt_at(*where)
        sys.settrace(tracer)
        try:
            with contextlib.suppress(Interrupted):
                committer.submit(unit())
        finally:
            sys.settrace(None)
        fired_on += bool(fired)
    assert fired_on >= 2 * len(settling_lines()) // 3
