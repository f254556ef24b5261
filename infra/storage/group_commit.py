"""Group commit: concurrent saves of one process committed together, each with its own outcome.

A thread that saves hands its `Unit` (events, tracking, read versions) to the `GroupCommitter`.
Whoever finds no commit in flight becomes the leader: it takes every unit queued so far (its
own among them) and commits them in one transaction through `commit_group`; the others wait.
When the leader is done, each unit holds its own outcome (notification ids, or the error
that refused it alone) and every waiter of the group is released; a waiter whose unit came
too late for that group becomes the next leader. A caller alone commits at once: nobody
waits for company (issue 11).

A caller is answered only after its group's transaction ended: `Unit.result` raises the
unit's error, or returns its notification ids. `after_commit`, when set, runs in the leader
between the commit and the answers (tests use it to fail there, as a crash would).
"""

from __future__ import annotations

import threading
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

    def result(self) -> list[int]:
        """The unit's notification ids (in the order of its events), or its error raised."""
        if self.error is not None:
            raise self.error
        return self.notification_ids


CommitGroup = Callable[[list[Unit]], None]  # sets each unit's notification_ids or error


class GroupCommitter:
    """Leader/follower group commit over `commit_group` (see the module's docstring).

    `commit_group(units)` must set every unit's outcome itself; an exception it raises is
    given to each unit of the group that has none.
    """

    def __init__(self, commit_group: CommitGroup) -> None:
        self._commit_group = commit_group
        self._condition = threading.Condition()
        self._queue: list[Unit] = []
        self._busy = False
        self.after_commit: Callable[[list[Unit]], Any] | None = None  # a fault hook for tests
        self.groups = 0  # groups committed, and their units: what tests and benchmarks read
        self.units = 0

    def submit(self, unit: Unit) -> list[int]:
        """Commit `unit`, alone or with others queued at the same time; its own outcome."""
        with self._condition:
            self._queue.append(unit)
            while not unit.done:
                if not self._busy:
                    group, self._queue = self._queue, []
                    self._busy = True
                    break
                self._condition.wait()
            else:
                return unit.result()
        self._lead(group)
        return unit.result()

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
                self._busy = False
                self._condition.notify_all()
