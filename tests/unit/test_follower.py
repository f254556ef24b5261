"""Kind 6: a lost connection never ends a follower. Back-off, lane states, the supervised loop."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from infra.loops import BackOff, Follower, Lane, Lanes, Wait


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Wait for `condition` with a deadline (no timing asserts: the deadline only bounds it)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@given(
    first=st.floats(0.001, 5.0),
    limit=st.floats(0.001, 60.0),
    failures=st.integers(1, 200),
    seed=st.integers(0, 2**32),
)
def test_kind6_back_off_grows_is_jittered_and_never_exceeds_its_limit(
    first: float, limit: float, failures: int, seed: int
) -> None:
    """Each pause lies in [c/2, c], c = min(limit, first·2ⁿ); a success starts again."""
    back_off = BackOff(first=first, limit=limit, rng=random.Random(seed))

    pauses = [back_off.next() for _ in range(failures)]
    back_off.reset()

    for n, pause in enumerate(pauses):
        ceiling = min(limit, first * 2.0**n)
        assert ceiling / 2 <= pause <= ceiling
    assert back_off.next() <= first


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_kind6_a_lane_retries_after_its_pause_and_says_why_and_since_when() -> None:
    """A failure makes the lane "retrying" with the error, not due until its pause is over;
    a success makes it "running" again; one log line each."""
    clock = Clock()
    lane = Lane("views", "consent", BackOff(first=1.0, limit=1.0), clock=clock)

    with capture_logs() as logs:
        lane.failed(ConnectionError("server closed the connection"), notification_id=7)
        first = lane.status
        pause = lane.failed(ConnectionError("still closed"))
        due_before, clock.now = lane.due(), clock.now + pause
        due_after = lane.due()
        lane.succeeded()
        lane.succeeded()

    assert first.state == "retrying"
    assert first.error == "ConnectionError: server closed the connection"
    assert first.detail == {"notification_id": 7}
    assert (due_before, due_after) == (False, True)
    assert lane.status.state == "running"
    assert [log["event"] for log in logs] == [
        "follower_retrying",
        "follower_retrying",
        "follower_recovered",
    ]
    assert logs[1]["failures"] == 2
    assert logs[2]["failures"] == 2


def test_kind6_a_failing_lane_does_not_stop_the_others() -> None:
    """Lanes of one loop: the failing one waits out its pause, the others go on."""
    lanes = Lanes("views", ["a", "b"], lambda: BackOff(first=60.0))

    def broken() -> int:
        raise ValueError("poison")

    assert lanes.run("a", broken) == 0
    assert lanes.run("b", lambda: 3) == 3
    assert lanes.run("a", lambda: 5) == 0  # still pausing

    statuses = lanes.statuses()
    assert statuses["a"].state == "retrying"
    assert statuses["b"].state == "running"


class FlakyConnection:
    """The edge of the world: a connection the server drops `drops` times."""

    def __init__(self, drops: int) -> None:
        self.drops, self.opened = drops, 0
        self.allowed = threading.Event()

    @contextmanager
    def waiter(self) -> Iterator[Wait]:
        self.opened += 1

        def wait() -> None:
            if self.drops:
                self.drops -= 1
                raise ConnectionError("terminating connection due to administrator command")
            time.sleep(0.001)

        yield wait


def test_kind6_a_lost_connection_is_reopened_and_the_loop_goes_on() -> None:
    """The waiter's connection is dropped three times: the loop reconnects each time,
    keeps stepping, ends "running", and stops only when told."""
    connection = FlakyConnection(drops=3)
    steps: list[int] = []
    follower = Follower(
        "views",
        lambda: steps.append(1),
        connection.waiter,
        back_off=BackOff(first=0.001, limit=0.002),
    )

    with capture_logs() as logs:
        follower.start()
        assert eventually(lambda: connection.opened >= 4 and len(steps) >= 10)
        running = follower.status()
        follower.stop()

    assert running.state == "running"
    assert follower.status().state == "stopped"
    assert [log["event"] for log in logs].count("follower_retrying") == 3
    assert "follower_recovered" in [log["event"] for log in logs]


def test_kind6_a_step_that_keeps_failing_is_reported_retrying_not_ok() -> None:
    """A step that fails every time: the thread lives on, its status says retrying and why."""

    def broken() -> None:
        raise OSError("could not connect to server: Connection refused")

    follower = Follower("policies", broken, back_off=BackOff(first=0.001, limit=0.005))
    follower.start()
    try:
        assert eventually(lambda: follower.status().failures >= 3)
        status = follower.status()
    finally:
        follower.stop()

    assert status.state == "retrying"
    assert status.error is not None
    assert "Connection refused" in status.error
    assert not status.healthy


def test_kind6_a_loop_that_was_never_started_or_has_ended_is_stopped() -> None:
    """A follower whose thread is not alive says "stopped", never "running"."""
    follower = Follower("views", lambda: None)

    assert follower.status().state == "stopped"
