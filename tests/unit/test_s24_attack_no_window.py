"""Session 24's attack on the group committer's new default, no gathering window
(infra/storage/group_commit.py, WINDOW_SECONDS = 0): session 22's interrupt attacks, which
set a window themselves, run again on the default committer. Claims that held: every caller
answered, each with its own ids, nothing committed twice, the committer ends free."""

from __future__ import annotations

from typing import Any

import pytest

from infra.storage.group_commit import WINDOW_SECONDS, GroupCommitter, Unit
from tests.unit import test_s22_attack_every_line as every_line
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


# Session 22's stress (8 callers x 40 units, interrupts anywhere) with the default committer,
# no window: tests/unit/test_s22_attack_gather_stress.py, parametrized over the window.
