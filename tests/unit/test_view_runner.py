"""The view runner: exactly once, whole batches, lag, read-your-writes, rebuilds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from handlers import PartnerFleet
from handlers.access import Actor
from handlers.base import Working
from handlers.devices import PartnerChoice
from infra.follow.view_faults import ViewStuckError
from infra.follow.view_runner import ViewRunner, statistics_fresh
from projections.base import View
from projections.customer_queries import list_customers
from projections.customers import CustomersView
from tests.actors import customer
from tests.scenarios import (
    IN_MEMORY,
    SCENARIOS,
    Scenario,
    in_memory_fleet,
    partner,
    servers,
)
from tests.scopes import partner_of
from tests.views import assert_rebuild_equals_live, dump, memory_runner

ANNA = "anna@LOC-1"
T = TypeVar("T")


def linked_customers(count: int) -> ViewRunner:
    """A fleet with LOC-1 and `count` customers with one linked server each, views behind."""
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    for n in range(count):
        fleet.register_devices(
            customer(f"C{n}", f"c{n}", "x"),
            f"C{n}",
            servers(f"S{n}"),
            PartnerChoice(location_id="LOC-1"),
            customer_name=f"Customer {n}",
        )
    return memory_runner(fleet, batch_size=7)


def test_catching_up_applies_every_event_and_leaves_no_lag() -> None:
    """After catch_up every view's position is the store's head."""
    runner = linked_customers(5)
    assert all(behind > 0 for behind in runner.lag().values())
    runner.catch_up()
    names = [
        "customers",
        "service",
        "holding",
        "consent",
        "repairs",
        "environment",
        "dashboards",
        "partners",
    ]
    assert runner.lag() == dict.fromkeys(names, 0)


def test_a_batch_applied_twice_changes_nothing() -> None:
    """Tracking is checked in the batch's own transaction: a repeated batch is skipped."""
    runner = linked_customers(3)
    view = runner.view("customers")
    events = [
        (n.id, runner.fleet.mapper.to_domain_event(n))
        for n in runner.fleet.recorder.select_notifications(1, 1_000)
    ]
    head = runner.head()
    runner._apply(view, 0, head, events, last=True)
    once = dump(runner.db, view)
    runner._apply(view, 0, head, events, last=True)
    assert dump(runner.db, view) == once
    assert runner.position(view) == head


class CrashError(Exception):
    """A failure in the middle of a batch."""


def test_a_crash_inside_a_batch_loses_nothing_and_applies_nothing_twice() -> None:
    """Rows and tracking roll back together; the batch is retried event by event at once,
    so a passing fault leaves every event applied exactly once and the view healthy."""
    runner = linked_customers(4)
    view = runner.view("customers")
    calls = {"n": 0}
    handler_key = next(k for k in view._handlers if k.__name__ == "DeviceAdded")
    real = view._handlers[handler_key]

    def crash_on_third(self: CustomersView, tx: object, event: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise CrashError
        real(self, tx, event)  # type: ignore[arg-type]

    view._handlers[handler_key] = crash_on_third
    try:
        runner.catch_up()
    finally:
        view._handlers[handler_key] = real
    reference = memory_runner(runner.fleet)
    reference.catch_up()

    assert calls["n"] > 4  # the failed batch's DeviceAdded events were applied again
    assert runner.lag()["customers"] == 0
    assert runner.health()["customers"].state == "running"
    assert dump(runner.db, view) == dump(reference.db, reference.view("customers"))


def test_events_are_applied_in_batches_of_the_configured_size() -> None:
    """With batch_size 7, tracking moves in steps of at most 7 relevant events."""
    runner = linked_customers(6)
    steps: list[int] = []
    runner._catch_up_view(runner.view("consent"), lambda done, _head: steps.append(done))
    assert len(steps) >= 2
    assert steps[-1] == runner.head()


def test_wait_until_gives_read_your_writes_with_a_following_runner() -> None:
    """A command's position is visible in the views once wait_until returns True."""
    runner = linked_customers(1)
    runner.poll_seconds = 0.01
    runner.start()
    try:
        runner.fleet.register_devices(
            customer("C9", "c9", "x"),
            "C9",
            servers("S9"),
            PartnerChoice(location_id="LOC-1"),
            customer_name="Late",
        )
        position = runner.fleet.last_position()
        assert position == runner.head()
        assert runner.wait_until(position, timeout=5)
        with runner.db.transaction() as tx:
            names = [
                r.name
                for r in list_customers(tx, partner_of(runner.fleet, ANNA), search="late").rows
            ]
        assert names == ["Late"]
    finally:
        runner.stop()


def test_wait_until_an_unreached_position_times_out() -> None:
    """A position beyond the store's head is never reached."""
    runner = linked_customers(1)
    runner.poll_seconds = 0.01
    runner.start()
    try:
        assert not runner.wait_until(runner.head() + 10, timeout=0.2)
    finally:
        runner.stop()


def test_an_unknown_view_name_is_refused_with_the_known_names() -> None:
    """`projections rebuild NOPE` says which views exist."""
    with pytest.raises(KeyError, match="known views: customers, service, holding, consent"):
        linked_customers(0).view("NOPE")


class FollowedFleet(PartnerFleet):
    """A fleet whose views catch up after every command, as a live follower would."""

    follow: Callable[[], object] = staticmethod(lambda: None)

    def _run(self, command: str, actor: Actor, work: Callable[[Working], T]) -> T:
        try:
            return super()._run(command, actor, work)
        finally:
            self.follow()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_every_rebuilt_view_equals_the_live_one(scenario: Scenario) -> None:
    """Each scenario: views applied after every command equal views rebuilt from scratch."""
    fleet = FollowedFleet(env=IN_MEMORY)
    runner = memory_runner(fleet, batch_size=3)
    fleet.follow = runner.catch_up
    scenario(fleet)
    assert_rebuild_equals_live(runner)


def break_handler(view: View, event_name: str, broken: set[str]) -> Callable[[], None]:
    """Make `view` fail on events `event_name` of the serials in `broken` (the set may be
    emptied later: a fault that passes); returns what puts the real handler back."""
    key = next(k for k in view._handlers if k.__name__ == event_name)
    real = view._handlers[key]

    def failing(self: View, tx: Any, event: Any) -> None:
        if getattr(event, "serial", None) in broken:
            raise CrashError(f"cannot apply {event.serial}")
        real(self, tx, event)

    view._handlers[key] = failing
    return lambda: view._handlers.__setitem__(key, real)


def eventually_caught_up(runner: ViewRunner, timeout: float = 10.0) -> bool:
    """Catch up until no view lags (a failing view waits out its back-off between tries)."""
    deadline = time.monotonic() + timeout
    while any(runner.lag().values()):
        if time.monotonic() > deadline:
            return False
        runner.catch_up()
        time.sleep(0.01)
    return True


def test_kind5_a_view_failing_on_an_event_stops_only_that_view_and_says_where() -> None:
    """The customers view cannot apply S1's DeviceAdded: it stops just before it, reports
    the notification id, topic and error, retries; the four other views keep up; once the
    fault passes, it catches up by itself and its recorded fault is cleared."""
    runner = linked_customers(3)
    broken = {"S1"}
    restore = break_handler(runner.view("customers"), "DeviceAdded", broken)
    try:
        runner.catch_up()
        lag, health, faults = runner.lag(), runner.health(), runner.faults()
        broken.clear()
        recovered = eventually_caught_up(runner)
    finally:
        restore()

    stuck = health["customers"]
    assert lag["customers"] > 0
    assert [name for name, behind in lag.items() if behind] == ["customers"]
    assert stuck.state == "retrying"
    assert stuck.error == "CrashError: cannot apply S1"
    assert str(stuck.detail["topic"]).endswith("DeviceAdded")
    assert faults["customers"].notification_id == stuck.detail["notification_id"]
    assert faults["customers"].position == stuck.detail["position"]
    assert recovered
    assert runner.health()["customers"].state == "running"
    assert runner.faults() == {}


def test_kind5_a_rebuild_stops_at_a_poison_event_until_an_operator_parks_it() -> None:
    """A rebuild meets an event the view cannot apply: it stops before it with a message
    naming the skip command; parked (with a reason), the view passes over it, now and on
    every later rebuild while it still fails, and the parked event stays listed; once it
    can be applied, a rebuild applies it."""
    runner = linked_customers(3)
    view = runner.view("customers")
    restore = break_handler(view, "DeviceAdded", {"S1"})
    try:
        with pytest.raises(ViewStuckError, match="projections skip customers") as stuck:
            runner.rebuild(view)
        poison = stuck.value.fault.notification_id
        with pytest.raises(ValueError, match="only the event a view is stuck on"):
            runner.park("customers", poison + 1, "wrong event")
        parked = runner.park("customers", poison, "S1's DeviceAdded is corrupt")
        runner.rebuild(view)
    finally:
        restore()

    assert runner.lag()["customers"] == 0
    assert parked.reason == "S1's DeviceAdded is corrupt"
    assert parked.error == "CrashError: cannot apply S1"
    assert [(p.view, p.notification_id) for p in runner.parked()] == [("customers", poison)]
    passed_over = dump(runner.db, view)
    runner.rebuild(view)
    reference = memory_runner(runner.fleet)
    reference.catch_up()
    assert dump(runner.db, view) == dump(reference.db, reference.view("customers"))
    assert passed_over != dump(runner.db, view)


def visits(runner: ViewRunner, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The views each catch_up goes to (a spy on the runner's per-view catch-up)."""
    seen: list[str] = []
    real = runner._catch_up_view

    def spy(view: View, *args: Any, **kwargs: Any) -> int:
        seen.append(view.name)
        return real(view, *args, **kwargs)

    monkeypatch.setattr(runner, "_catch_up_view", spy)
    return seen


def test_an_idle_pass_visits_no_view_and_a_new_event_every_view(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Session 17: views at the head are passed over after one query of all positions."""
    runner = linked_customers(2)
    runner.catch_up()
    seen = visits(runner, monkeypatch)

    idle = runner.catch_up()
    idle_visits = list(seen)
    partner(runner.fleet, "LOC-2")
    applied = runner.catch_up()

    assert (idle, idle_visits) == (0, [])
    assert applied > 0
    assert seen == [view.name for view in runner.views]
    assert not any(runner.lag().values())


def test_a_failing_view_at_the_head_is_still_visited_and_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A view whose lane is retrying is visited even with nothing new, so that it records
    its recovery (and clears its fault) once its back-off is over."""
    runner = linked_customers(1)
    runner.catch_up()
    lane = runner.lanes.lanes["customers"]
    lane.failed(RuntimeError("lost the connection"))
    lane._retry_at = 0.0  # the back-off is over
    seen = visits(runner, monkeypatch)

    runner.catch_up()

    assert seen == ["customers"]
    assert lane.status.healthy


def test_when_the_positions_cannot_be_read_every_view_reports_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The positions query failing is met by each view's own read, in its lane."""
    runner = linked_customers(1)
    runner.catch_up()

    def broken() -> Any:
        raise RuntimeError("the read models' database is down")

    monkeypatch.setattr(runner.db, "read", broken)
    monkeypatch.setattr(runner.db, "transaction", broken)
    runner.catch_up()

    assert all(not status.healthy for status in runner.health().values())


@pytest.mark.parametrize(
    ("estimated", "changed", "analyzed", "fresh"),
    [
        (-1.0, 0, False, False),  # never analyzed: no statistics
        (-1.0, 0, True, False),  # analyzed per pg_stat, yet no estimate in pg_class
        (0.0, 0, None, False),  # no pg_stat row at all
        (1_000_000.0, 0, True, True),
        (1_000_000.0, 100_049, True, True),  # under 50 + 10 %
        (1_000_000.0, 100_050, True, False),  # autovacuum would analyze again
        (0.0, 49, True, True),
        (0.0, 50, True, False),
        (1_000_000.0, 0, False, False),  # counters reset (a crash): analyze again
    ],
)
def test_issue_11_event_statistics_are_fresh_by_autovacuums_rule(
    estimated: float, changed: int, analyzed: bool | None, fresh: bool
) -> None:
    """Session 18: a rebuild leaves out the events table's ANALYZE only where it was
    analyzed and fewer rows changed since than autovacuum's default threshold."""
    assert statistics_fresh(estimated, changed, analyzed) is fresh
