"""Attack on session 21's interrupted leader (infra/storage/group_commit.py `_lead`).

A second signal (an operator pressing Ctrl-C twice, SIGTERM after SIGINT) may land while
the leader's `except` hands the first one's outcome to its neighbours. Found: the
neighbours not reached yet kept no error and were marked done by the `finally`, so their
callers were answered as committed (`Unit.result` returned [] notification ids) for a
group whose commit never ended. A unit whose commit did not end must never be answered
as committed.
"""

from __future__ import annotations

import contextlib
import dis
import inspect
import sys
import uuid

import pytest
from eventsourcing.persistence import OperationalError, StoredEvent

from infra.storage.group_commit import GroupCommitter, Unit
from tests.unit.test_attack_s19_group_commit import interrupt_at


class Interrupted(BaseException):
    """What an operator's signal raises in the thread it lands in (as KeyboardInterrupt)."""


class Again(BaseException):
    """A second signal, landing while the first is handled."""


def unit() -> Unit:
    return Unit([StoredEvent(uuid.uuid4(), 1, "tests:Event", b"{}")])


def handler_lines() -> list[int]:
    """`_lead`'s lines from its `except` to its `finally` (the handling of an interrupt)."""
    function = GroupCommitter._lead
    source, first = inspect.getsourcelines(function)
    start = first + next(n for n, t in enumerate(source) if t.strip().startswith("except"))
    end = first + next(n for n, t in enumerate(source) if t.strip() == "finally:")
    code_lines = {line for _, line in dis.findlinestarts(function.__code__) if line}
    return sorted(line for line in code_lines if start <= line <= end)


@pytest.mark.parametrize("line", handler_lines())
def test_s21_attack_a_second_signal_never_answers_an_unended_commit_as_done(line: int) -> None:
    commits: list[Unit] = []

    def commit_group(units: list[Unit]) -> None:
        raise Interrupted  # the first signal, before any unit was committed

    committer = GroupCommitter(commit_group, window_seconds=0)
    followers = [unit() for _ in range(3)]
    committer._queue.extend(followers)  # queued by followers waiting for their outcome
    committer._callers[0] = float("inf")
    leader = unit()
    tracer, fired = interrupt_at(GroupCommitter._lead, line, raising=Again)
    sys.settrace(tracer)
    try:
        with contextlib.suppress(Interrupted, Again):
            committer.submit(leader)
    finally:
        sys.settrace(None)
    assert fired, "the second signal lands on each handler line"
    for follower in followers:
        assert follower.done
        with pytest.raises(OperationalError, match="unknown"):
            follower.result()  # never [] as if committed
    assert commits == []
    assert not committer._busy

    def commit_again(units: list[Unit]) -> None:
        for member in units:
            member.notification_ids = [1]

    committer._commit_group = commit_again
    assert committer.submit(unit()) == [1]
