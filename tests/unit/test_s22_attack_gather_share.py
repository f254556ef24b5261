"""Session 22's attack on `gather_share`: a leader waits for the share of the active callers
rounded up, computed exactly. `math.ceil(active * share)` in floats rounded some whole
products up once more: 0.28 of 25 callers is 7, but 25 * 0.28 is 7.000000000000001 in
floats, so a leader waited for an eighth unit (out its whole window when none came); so
did 0.07 of 100, 0.14 of 50 (30 such pairs for shares in hundredths and up to 256 callers)."""

from __future__ import annotations

import threading
import time

import pytest

from infra.storage.group_commit import GroupCommitter, Unit
from tests.unit.test_s22_gather_half import active_others, event, wait_until


@pytest.mark.parametrize(("share", "active", "expected"), [(0.28, 25, 7), (0.07, 100, 7)])
def test_s22_attack_a_leader_waits_for_the_exact_share_rounded_up(
    share: float, active: int, expected: int
) -> None:
    groups: list[int] = []
    committer = GroupCommitter(
        lambda units: groups.append(len(units)), window_seconds=60, gather_share=share
    )
    active_others(committer, active - 1)
    threads = [
        threading.Thread(target=committer.submit, args=(Unit([event()]),), daemon=True)
        for _ in range(expected)
    ]
    threads[0].start()
    wait_until(lambda: committer._arrivals is not None)  # the leader is gathering
    for count, thread in enumerate(threads[1:], start=2):
        thread.start()
        wait_until(lambda count=count: len(committer._queue) == count or bool(groups))
    started = time.monotonic()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive(), f"the leader waits for more than {expected}"
    assert groups == [expected]
    assert time.monotonic() - started < 10


def test_s22_attack_the_share_of_n_callers_is_its_exact_ceiling() -> None:
    """Every share in hundredths, up to 256 callers: k/100 of n is ceil(k * n / 100)."""
    for k in range(1, 101):
        committer = GroupCommitter(lambda units: None, gather_share=k / 100)
        for active in range(257):
            assert committer._share_of(active) == -(-k * active // 100), (k, active)
