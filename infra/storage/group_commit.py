"""Group commit: concurrent saves of one process committed together, each with its own outcome.

A thread that saves hands its `Unit` (events, tracking, read versions) to the `GroupCommitter`.
Whoever finds no commit in flight becomes the leader: it takes every unit queued so far (its
own among them) and commits them in one transaction through `commit_group`; the others wait.
When the leader is done, each unit holds its own outcome (notification ids, or the error
that refused it alone) and every waiter of the group is released; a waiter whose unit came
too late for that group becomes the next leader. A caller alone commits at once: nobody
waits for company (issue 11).

Only the callers concerned are woken (session 16): each unit has its own event, set when its
outcome is known or when its caller is to lead the next group (the first unit queued behind
a finished group). With several threads saving, a leader waits at most `window_seconds`
for the callers seen saving in the last `ACTIVE_SECONDS` to queue their units, so the group
holds them all instead of the first one alone (every commit waits for its WAL flush, so a
group of one costs as much as a group of eight). A caller alone never waits.

A caller is answered only after its group's transaction ended: `Unit.result` raises the
unit's error, or returns its notification ids. `after_commit`, when set, runs in the leader
between the commit and the answers (tests use it to fail there, as a crash would).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent, Tracking


@dataclass(eq=False)
class Unit:
    """One caller's save: its events, its policy position and the versions it read.

    `read_versions`: aggregates the command read but did not write, at the version read
    (issue 11); the unit is refused when one has a later event at commit.
    """

    stored_events: Sequence[StoredEvent]
    tracking: Tracking | None = None
    read_versions: Mapping[UUID, int] = field(default_factory=dict)
    notification_ids: list[int] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False
    leads: bool = False  # its caller is (to be) the leader of the next group
    # Set when the unit's outcome is known, or when its caller is to lead the next group.
    woken: threading.Event = field(default_factory=threading.Event, repr=False)

    def result(self) -> list[int]:
        """The unit's notification ids (in the order of its events), or its error raised."""
        if self.error is not None:
            raise self.error
        return self.notification_ids


CommitGroup = Callable[[list[Unit]], None]  # sets each unit's notification_ids or error


# A thread that saved within this many seconds is expected to save again soon.
ACTIVE_SECONDS = 0.05
# How long a leader waits at most for the active callers' units (0: never waits).
WINDOW_SECONDS = 0.001


class GroupCommitter:
    """Leader/follower group commit over `commit_group` (see the module's docstring).

    `commit_group(units)` must set every unit's outcome itself; an exception it raises is
    given to each unit of the group that has none. `window_seconds`: how long a leader
    waits at most for the other active callers to queue (seconds, >= 0).
    """

    def __init__(
        self, commit_group: CommitGroup, *, window_seconds: float = WINDOW_SECONDS
    ) -> None:
        if window_seconds < 0:
            raise ValueError(f"window_seconds must be >= 0, not {window_seconds}")
        self._commit_group = commit_group
        self.window_seconds = window_seconds
        self._condition = threading.Condition()  # notified when a unit is queued
        self._queue: list[Unit] = []
        self._busy = False
        self._callers: dict[int, float] = {}  # thread id: when it last saved (monotonic)
        self.after_commit: Callable[[list[Unit]], Any] | None = None  # a fault hook for tests
        self.groups = 0  # groups committed, and their units: what tests and benchmarks read
        self.units = 0

    def submit(self, unit: Unit) -> list[int]:
        """Commit `unit`, alone or with others queued at the same time; its own outcome."""
        with self._condition:
            self._callers[threading.get_ident()] = time.monotonic()
            self._queue.append(unit)
            leads = not self._busy
            if leads:
                self._busy = True
                unit.leads = True
            else:
                self._condition.notify()  # a leader gathering its group counts arrivals
        try:
            if not leads:
                unit.woken.wait()
                if unit.done:
                    return unit.result()
            group = self._gather()  # first of the queue: this caller leads
        except BaseException:  # interrupted (a signal) before its group was taken
            self._withdraw(unit)
            raise
        self._lead(group)
        return unit.result()

    def _withdraw(self, unit: Unit) -> None:
        """Take back the unit of a caller interrupted while it waited or gathered: if it is
        still queued it is never committed (its caller learns of the interruption, nothing
        of it is saved), and if its caller was to lead, the lead goes to the next unit
        queued, or the committer is free. A unit already in a group in flight stays there
        (its outcome comes as a lost reply's would)."""
        with self._condition:
            if unit not in self._queue:  # Unit compares by identity (eq=False)
                return
            self._queue.remove(unit)
            if not unit.leads:
                return
            successor = self._queue[0] if self._queue else None
            self._busy = successor is not None
            if successor is not None:
                successor.leads = True
        if successor is not None:
            successor.woken.set()

    def _gather(self) -> list[Unit]:
        """Everything queued, once every active caller has queued or the window is over."""
        with self._condition:
            expected = self._active()
            deadline = time.monotonic() + self.window_seconds
            while len(self._queue) < expected:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._condition.wait(left)
            group, self._queue = self._queue, []
            return group

    def _active(self) -> int:
        """Callers that saved within ACTIVE_SECONDS (older ones are forgotten)."""
        horizon = time.monotonic() - ACTIVE_SECONDS
        for ident in [i for i, at in self._callers.items() if at < horizon]:
            del self._callers[ident]
        return len(self._callers)

    def _lead(self, group: list[Unit]) -> None:
        try:
            self._commit_group(group)
            if self.after_commit is not None:
                self.after_commit(group)
        except BaseException as error:  # every caller of the group learns of it
            for member in group:
                if member.error is None:
                    member.error = error
        finally:
            with self._condition:
                self.groups += 1
                self.units += len(group)
                for member in group:
                    member.done = True
                successor = self._queue[0] if self._queue else None
                self._busy = successor is not None  # handed on, or free
                if successor is not None:
                    successor.leads = True
            for member in group:
                member.woken.set()
            if successor is not None:
                successor.woken.set()
