"""The view runner: exactly once, whole batches, lag, read-your-writes, rebuilds."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest
from eventsourcing.persistence import Tracking

from domain import Cause
from handlers import PartnerFleet
from handlers.base import Working
from handlers.devices import PartnerChoice
from infra.view_runner import ViewRunner
from projections.customer_queries import list_customers
from projections.customers import CustomersView
from tests.scenarios import (
    IN_MEMORY,
    SCENARIOS,
    Scenario,
    in_memory_fleet,
    partner,
    servers,
)
from tests.views import assert_rebuild_equals_live, dump, memory_runner

ANNA = "anna@LOC-1"
T = TypeVar("T")


def linked_customers(count: int) -> ViewRunner:
    """A fleet with LOC-1 and `count` customers with one linked server each, views behind."""
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    for n in range(count):
        fleet.register_devices(
            Cause(f"c{n}", "x"),
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
    names = ["customers", "service", "holding", "consent", "repairs"]
    assert runner.lag() == dict.fromkeys(names, 0)


def test_a_batch_applied_twice_changes_nothing() -> None:
    """Tracking is checked in the batch's own transaction: a repeated batch is skipped."""
    runner = linked_customers(3)
    view = runner.view("customers")
    events = [
        runner.fleet.mapper.to_domain_event(n)
        for n in runner.fleet.recorder.select_notifications(1, 1_000)
    ]
    head = runner.head()
    runner._apply(view, 0, head, events)
    once = dump(runner.db, view)
    runner._apply(view, 0, head, events)
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
            Cause("c9", "x"),
            "C9",
            servers("S9"),
            PartnerChoice(location_id="LOC-1"),
            customer_name="Late",
        )
        position = runner.fleet.last_position()
        assert position == runner.head()
        assert runner.wait_until(position, timeout=5)
        with runner.db.transaction() as tx:
            names = [r.name for r in list_customers(tx, ANNA, search="late").rows]
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

    def _execute(
        self,
        command: str,
        cause: Cause,
        work: Callable[[Working], T],
        tracking: Tracking | None = None,
    ) -> T:
        try:
            return super()._execute(command, cause, work, tracking)
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
