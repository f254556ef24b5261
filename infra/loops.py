"""Loops that outlive lost connections: bounded back-off, a status per lane, a supervised thread.

Every long-running loop of the service (the view runner, the policy runner, the feed
consumers, the relay) follows something that can go away: the event store, the view
database, the broker. A loop never ends because of that. It logs one line per failure and
one on recovery, waits a bounded, jittered, growing pause, reconnects and goes on; and it
says how it is doing (`Status`), which `/healthz` reports.

A `Lane` is one unit that fails and recovers on its own: a whole loop, or one view or one
policy inside a loop, so that one of them failing does not stop the others.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

log = structlog.get_logger("partnerfleet.follower")

State = Literal["running", "retrying", "stopped"]
Wait = Callable[[], None]  # returns when there may be something new (or a poll interval passed)
Waiter = Callable[[], AbstractContextManager[Wait]]  # opens what `Wait` needs, e.g. a LISTEN


@dataclass
class BackOff:
    """Bounded exponential back-off with "equal jitter", in seconds.

    The n-th pause since the last success lies in [c/2, c] with c = min(limit, first·2ⁿ),
    so a crowd of followers that lost the same database does not come back in step.
    """

    first: float = 0.2
    limit: float = 15.0
    failures: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def next(self) -> float:
        """The pause before the next attempt; each call counts one more failure."""
        ceiling = min(self.limit, self.first * 2.0 ** min(self.failures, 62))
        self.failures += 1
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        """After a success the next failure starts again from `first`."""
        self.failures = 0


@dataclass(frozen=True)
class Status:
    """How a loop (or one lane of it) is doing, for `/healthz` and the lag commands.

    `since` is when it entered `state` (UTC); `error` and `failures` describe the current
    streak of failures; `detail` says where it is stuck (e.g. notification_id, topic).
    """

    state: State
    since: datetime
    error: str | None = None
    failures: int = 0
    retry_in_seconds: float | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """Only a running lane is healthy: retrying or stopped is not "ok"."""
        return self.state == "running"

    def as_dict(self) -> dict[str, Any]:
        """The status as JSON-ready data."""
        return {
            "state": self.state,
            "since": self.since.isoformat(),
            "error": self.error,
            "failures": self.failures,
            "retry_in_seconds": self.retry_in_seconds,
            **self.detail,
        }


def describe(error: BaseException) -> str:
    """An error in one line: its type and message (no traceback, no object reprs)."""
    text = " ".join(str(error).split()) or "(no message)"
    return f"{type(error).__name__}: {text}"[:500]


def _now() -> datetime:
    return datetime.now(UTC)


class Lane:
    """One unit that fails and recovers on its own: its back-off, its status, its log lines."""

    def __init__(
        self,
        loop: str,
        name: str | None = None,
        back_off: BackOff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.loop, self.name = loop, name
        self.back_off = back_off or BackOff()
        self._clock = clock
        self._retry_at = 0.0
        self.status = Status("running", _now())

    def due(self) -> bool:
        """Whether the lane may try again (no pause pending)."""
        return self._retry_at <= self._clock()

    def failed(self, error: BaseException, **detail: Any) -> float:
        """Record a failure: returns the pause before the next attempt; logs one line."""
        pause = self.back_off.next()
        self._retry_at = self._clock() + pause
        current = self.status
        since = current.since if current.state == "retrying" else _now()
        failures = self.back_off.failures
        self.status = Status("retrying", since, describe(error), failures, round(pause, 3), detail)
        log.warning(
            "follower_retrying",
            loop=self.loop,
            lane=self.name,
            error=describe(error),
            failures=failures,
            retry_in_seconds=round(pause, 3),
            exc_info=failures == 1,  # the traceback once per streak, not on every retry
            **detail,
        )
        return pause

    def succeeded(self) -> None:
        """Record a success; logs one line if it ends a streak of failures."""
        current = self.status
        if current.state == "running":
            return
        self.back_off.reset()
        self._retry_at = 0.0
        self.status = Status("running", _now())
        down = (self.status.since - current.since).total_seconds()
        log.info(
            "follower_recovered",
            loop=self.loop,
            lane=self.name,
            failures=current.failures,
            down_seconds=round(down, 3),
        )

    def stopped(self, error: BaseException | None = None) -> None:
        """Record that the loop ended (asked to, or by an error it could not survive)."""
        self.status = Status("stopped", _now(), describe(error) if error else None)
        if error is not None:
            log.error("follower_stopped", loop=self.loop, lane=self.name, error=describe(error))


@contextmanager
def no_wait() -> Iterator[Wait]:
    """A `Waiter` for steps that wait themselves (a Kafka poll, a relay's own loop)."""
    yield lambda: None


@contextmanager
def polling(stop: threading.Event, seconds: float) -> Iterator[Wait]:
    """A `Waiter` that waits a poll interval (or until stopped)."""

    def wait() -> None:
        stop.wait(seconds)

    yield wait


class Follower:
    """Runs `step` over and over in a daemon thread, waiting between steps with `waiter`.

    Any exception of a step or of the waiter (a lost connection, a database restart) is
    logged, paused on (`BackOff`) and followed by a fresh waiter and the next step: the
    thread ends only on `stop()`. `status()` says running, retrying (error and since when)
    or stopped.
    """

    def __init__(
        self,
        name: str,
        step: Callable[[], object],
        waiter: Waiter | None = None,
        *,
        poll_seconds: float = 0.2,
        back_off: BackOff | None = None,
    ) -> None:
        self.name, self._step = name, step
        self._stop = threading.Event()
        self._waiter = waiter or (lambda: polling(self._stop, poll_seconds))
        self.lane = Lane(name, back_off=back_off)
        self._thread: threading.Thread | None = None

    def start(self) -> Follower:
        """Start the thread; returns self."""
        self._stop.clear()
        self.lane.status = Status("running", _now())
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to end and wait for it (up to `timeout` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    @property
    def stopping(self) -> threading.Event:
        """Set once `stop()` was called: for steps that block, to return early."""
        return self._stop

    def status(self) -> Status:
        """The loop's status; a thread that ended without `stop()` is "stopped"."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            current = self.lane.status
            return current if current.state == "stopped" else Status("stopped", _now())
        return self.lane.status

    def run_here(self) -> None:
        """Run the loop in the calling thread until `stop()` or Ctrl-C (re-raised)."""
        self._stop.clear()
        self._run()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._follow()
                except Exception as error:
                    self._stop.wait(self.lane.failed(error))
        except KeyboardInterrupt:
            self.lane.stopped()
            raise
        except BaseException as error:  # not survivable (interpreter shutdown): say so
            self.lane.stopped(error)
            raise
        self.lane.stopped()

    def _follow(self) -> None:
        with self._waiter() as wait:
            while not self._stop.is_set():
                self._step()
                self.lane.succeeded()
                wait()


def healthy(statuses: Mapping[str, Status]) -> bool:
    """Whether every status is running."""
    return all(status.healthy for status in statuses.values())


class Lanes:
    """Independent lanes of one loop: each runs, fails and backs off on its own.

    A lane that fails is skipped until its pause is over; the others go on. An error may
    carry a `detail` mapping (where it is stuck), which its status reports with the error
    it was raised from.
    """

    def __init__(
        self, loop: str, names: list[str], back_off: Callable[[], BackOff] = BackOff
    ) -> None:
        self.loop = loop
        self.lanes = {name: Lane(loop, name, back_off()) for name in names}

    def run(self, name: str, work: Callable[[], int]) -> int:
        """`work()` for lane `name` if it is due; its result, or 0 if it failed or waits."""
        lane = self.lanes[name]
        if not lane.due():
            return 0
        try:
            done = work()
        except Exception as error:
            detail = getattr(error, "detail", None)
            # An error that says where it is stuck wraps the one that says why.
            cause = error.__cause__ if detail and isinstance(error.__cause__, Exception) else error
            lane.failed(cause, **(detail or {}))
            return 0
        lane.succeeded()
        return done

    def statuses(self) -> dict[str, Status]:
        """Each lane's status, by name."""
        return {name: lane.status for name, lane in self.lanes.items()}
