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
a finished group). A leader takes what is queued when it leads: a group is whatever
queued while the group before it committed (every commit waits for its WAL flush, so the
callers behind a commit share the next one). A leader may also gather (`window_seconds`
above 0): wait at most that long for `gather_share` of the callers seen saving in the last
`ACTIVE_SECONDS` (rounded up, itself included) to queue their units. The default is no
window (session 24): on three machines (sessions 21, 22 and 24) committing at once was
level with or ahead of a 1 ms window for half of the callers (23 of 32 alternating pairs
won in session 24, median ratios 1.02 and 1.08), since a gathering leader leaves the
committer idle while threads compute. Waiting for every active caller (session 22) was
worse still: all computing under the GIL while nothing was committed, then all waiting
for one commit while nothing was computed. A caller alone never waits.

Every wait is on one raw lock (`Signal`), never a `threading.Condition`: a Condition's
notify and wait run in Python under the GIL, and with 8 client threads they cost a sixth of
the commands' CPU (session 17). A leader gathering is woken once, by the arrival that
completes its group, not by every arrival.

A caller is answered only after its group's transaction ended: `Unit.result` raises the
unit's error, or returns its notification ids. `after_commit`, when set, runs in the leader
between the commit and the answers (tests use it to fail there, as a crash would).
"""

from __future__ import annotations

import threading
import time
from _thread import allocate_lock
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import OperationalError, StoredEvent, Tracking


class Wakeable(Protocol):
    """What a unit's caller waits on: `threading.Event`'s set and wait (tests pass one)."""

    def set(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class Signal:
    """A one-way flag as `threading.Event` (set, wait, is_set) on one raw lock, held while
    the flag is down: setting releases it, a wait acquires it and hands it back."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = allocate_lock()
        self._lock.acquire()

    def set(self) -> None:
        """Raise the flag (again: nothing more), waking every waiter."""
        try:  # noqa: SIM105 (contextlib.suppress costs a Python-level context manager)
            self._lock.release()
        except RuntimeError:  # already set
            pass

    def is_set(self) -> bool:
        """Whether the flag is up (False for an instant while a waiter passes through)."""
        return not self._lock.locked()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag is up (True) or `timeout` seconds passed (False)."""
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            return False
        self.set()  # up again, for any other waiter
        return True


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
    woken: Wakeable = field(default_factory=Signal, repr=False)
    # Its caller was interrupted while the unit was in a group taken and left (`_withdraw`):
    # the unit is committed with that group, or never (not put back for another leader).
    left: bool = False

    def result(self) -> list[int]:
        """The unit's notification ids (in the order of its events), or its error raised."""
        if self.error is not None:
            raise self.error
        return self.notification_ids


CommitGroup = Callable[[list[Unit]], None]  # sets each unit's notification_ids or error


# A thread that saved within this many seconds is expected to save again soon.
ACTIVE_SECONDS = 0.05
# How long a leader waits at most for the active callers' units (0: never waits, the
# default since session 24; see the module's docstring).
WINDOW_SECONDS = 0.0
# The share of the active callers (rounded up, the leader included) a leader waits for.
GATHER_SHARE = 0.5


def _interrupted(error: BaseException | None) -> OperationalError:
    """What the neighbours of a leader interrupted during their commit are answered
    (`error`: the signal, None when it is not known)."""
    name = "a signal" if error is None else type(error).__name__
    return OperationalError(
        f"The group's commit was interrupted in its leader ({name}):"
        " whether it was recorded is unknown; the idempotency key tells."
    )


class GroupCommitter:
    """Leader/follower group commit over `commit_group` (see the module's docstring).

    `commit_group(units)` must set every unit's outcome itself; an exception it raises is
    given to each unit of the group that has none. `window_seconds`: how long a leader
    waits at most for the other active callers to queue (seconds, >= 0); `gather_share`:
    the share of the active callers (rounded up, the leader included) it waits for, in
    (0, 1]. Raises ValueError for either out of range.
    """

    def __init__(
        self,
        commit_group: CommitGroup,
        *,
        window_seconds: float = WINDOW_SECONDS,
        gather_share: float = GATHER_SHARE,
    ) -> None:
        if not window_seconds >= 0:  # NaN too
            raise ValueError(f"window_seconds must be >= 0, not {window_seconds}")
        self._commit_group = commit_group
        self.window_seconds = window_seconds
        self.gather_share = gather_share  # checked and made exact by its setter
        self._lock = threading.Lock()  # guards everything below
        self._queue: list[Unit] = []
        # While a leader gathers: the signal it waits on, set when `_expected` are queued.
        self._arrivals: Signal | None = None
        self._expected = 0
        self._busy = False
        # The group a leader took and has not finished committing (None between groups):
        # what an interrupt landing between the taking and the commit leaves to `_withdraw`.
        self._taken: list[Unit] | None = None
        # The group whose commit a leader began (`_lead`): settled, never put back, by
        # whoever an interrupt leaves it to (session 19's attack).
        self._sent: list[Unit] | None = None
        # The group whose `commit_group` returned (`_lead`): a group settled without it
        # gives each unit left without an outcome the "unknown" error (session 21's attack).
        self._ended: list[Unit] | None = None
        self._callers: dict[int, float] = {}  # thread id: when it last saved (monotonic)
        self.after_commit: Callable[[list[Unit]], Any] | None = None  # a fault hook for tests
        self.groups = 0  # groups committed, and their units: what tests and benchmarks read
        self.units = 0

    @property
    def gather_share(self) -> float:
        """The share of the active callers a leader waits for, in (0, 1]."""
        numerator, denominator = self._share
        return numerator / denominator  # (the float given: its shortest decimal, exactly)

    @gather_share.setter
    def gather_share(self, share: float) -> None:
        if not 0 < share <= 1:  # NaN too
            raise ValueError(f"gather_share must be in (0, 1], not {share}")
        # The share as the decimal it was written as (0.28: 7/25), so `_share_of` rounds
        # up exactly: in floats 25 * 0.28 is 7.000000000000001, rounded up to 8 (session
        # 22's attack).
        exact = Fraction(str(float(share)))
        self._share = (exact.numerator, exact.denominator)

    def _share_of(self, active: int) -> int:
        """`gather_share` of `active` callers, rounded up (an int, 0 for 0)."""
        numerator, denominator = self._share
        return -(-active * numerator // denominator)

    def submit(self, unit: Unit) -> list[int]:
        """Commit `unit`, alone or with others queued at the same time; its own outcome."""
        leads = False
        group: list[Unit] | None = None
        try:  # from the queueing on: a signal landing anywhere takes the unit back
            with self._lock:
                if self.window_seconds > 0:  # (who is active matters to a gathering leader)
                    self._callers[threading.get_ident()] = time.monotonic()
                self._queue.append(unit)
                if not self._busy:  # the unit leads before the committer is busy
                    leads = unit.leads = True
                    self._busy = True
                elif self._arrivals is not None and len(self._queue) >= self._expected:
                    self._arrivals.set()  # the gathering leader's group is complete
            if not leads:
                unit.woken.wait()
                if unit.done:
                    return unit.result()
            group = self._gather()  # first of the queue: this caller leads
            self._lead(group, unit)
        except BaseException:  # interrupted (a signal)
            if group is not None and (self._taken is not group or self._sent is group):
                self._settle(group)  # committed (or failed): settle it, or answer it again
            else:  # before its group was committed
                self._withdraw(unit)
            raise
        return unit.result()

    def _withdraw(self, unit: Unit) -> None:
        """Take back the unit of a caller interrupted while it waited or gathered: if it is
        still queued it is never committed (its caller learns of the interruption, nothing
        of it is saved), and if its caller was to lead, the lead goes to the next unit
        queued, or the committer is free. A unit already in a group in flight stays there
        (its outcome comes as a lost reply's would). A group its caller took as leader and
        had not begun to commit (the interrupt landed in between) goes back to the front
        of the queue without its unit, for the next leader (session 17, attack 2), and
        without the units whose callers were interrupted while it was taken (nobody would
        lead them, and every later caller would wait for ever; session 22's attack)."""
        with self._lock:
            taken = self._taken
            if taken is not None and any(u is unit for u in taken):
                if unit.done or not unit.leads:
                    # A follower's unit in a group in flight: its leader commits it, or
                    # puts the group back without it (its caller is gone: handed the
                    # lead, it would leave every later caller waiting for ever).
                    unit.left = not unit.done
                    return
                self._taken = None
                queued = set(map(id, self._queue))
                self._queue[:0] = [
                    u for u in taken if u is not unit and not u.left and id(u) not in queued
                ]
            elif unit not in self._queue:  # Unit compares by identity (eq=False)
                return
            if unit in self._queue:
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
        """Everything queued, once `gather_share` of the active callers have queued or the
        window is over."""
        with self._lock:
            # (no window: nobody to wait for, and who is active need not be counted)
            expected = self._share_of(self._active()) if self.window_seconds > 0 else 0
            if len(self._queue) >= expected:
                group = self._taken = self._queue
                self._queue = []
                return group
            arrivals = self._arrivals = Signal()
            self._expected = expected
        try:
            arrivals.wait(self.window_seconds)
        finally:  # interrupted or not, no later arrival sets this signal
            with self._lock:
                self._arrivals = None
        with self._lock:
            group = self._taken = self._queue
            self._queue = []
        return group

    def _active(self) -> int:
        """Callers that saved within ACTIVE_SECONDS (older ones are forgotten)."""
        horizon = time.monotonic() - ACTIVE_SECONDS
        for ident in [i for i, at in self._callers.items() if at < horizon]:
            del self._callers[ident]
        return len(self._callers)

    def _lead(self, group: list[Unit], own: Unit | None = None) -> None:
        try:
            self._sent = group  # from here on the group is settled, never put back
            self._commit_group(group)
            self._ended = group  # every unit has its outcome (commit_group's contract)
            if self.after_commit is not None:
                self.after_commit(group)
        except BaseException as error:  # every caller of the group learns of it
            # An interrupt (KeyboardInterrupt, SystemExit: not an Exception) is the leader's
            # own: its neighbours learn that the commit's outcome is unknown, as from a
            # lost connection, not of a signal that never landed in their threads.
            theirs = error if isinstance(error, Exception) else _interrupted(error)
            for member in group:
                if member.error is None:
                    member.error = error if member is own else theirs
        finally:
            self._settle(group)

    def _settle(self, group: list[Unit]) -> None:
        """Mark a committed (or failed) group done, hand the lead on or free the committer,
        and wake its callers and the next leader. Once per group, whoever calls it first
        (the leader's `finally`, or its interrupt handler when an interrupt landed in that
        `finally`: session 19's attack); called again it only wakes them again (a flag
        raised twice stays raised)."""
        with self._lock:
            if self._taken is group:
                if self._ended is not group:
                    # The commit did not end (a signal, perhaps a second one landing in
                    # `_lead`'s handler): no unit is answered as committed (session 21's
                    # attack). Idempotent, so an interrupt here only repeats it.
                    for member in group:
                        if member.error is None:
                            member.error = _interrupted(None)
                self.groups += 1
                self.units += len(group)
                for member in group:
                    member.done = True
                successor = self._queue[0] if self._queue else None
                self._busy = successor is not None  # handed on, or free
                if successor is not None:
                    successor.leads = True
                self._taken = None  # once cleared, the group is settled
                self._sent = None  # after it: an interrupt between the two settles again
                self._ended = None  # (left set by an interrupt: never this list again)
            else:
                successor = self._queue[0] if self._queue and self._queue[0].leads else None
        for member in group:
            member.woken.set()
        if successor is not None:
            successor.woken.set()
