"""Concurrent writers: bounded retries, then a reported conflict; batches are all or nothing."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import pytest

from domain import E2OpenBatch
from handlers import PartnerFleet
from handlers.base import MAX_ATTEMPTS, ConflictError, Working
from handlers.devices import load_device
from tests.conftest import FleetFactory
from tests.scenarios import CUSTOMER, OPS, event_count, partner, report, servers


def test_a_command_that_loses_a_race_is_retried_and_succeeds(fleet_factory: FleetFactory) -> None:
    """Two processes raising alerts on one device at once: every alert is kept."""
    first, second = fleet_factory(), fleet_factory()
    first.register_devices(CUSTOMER, "C1", servers("S1"))

    errors: list[Exception] = []

    def raise_alerts(fleet: PartnerFleet, prefix: str) -> None:
        try:
            for n in range(15):
                fleet.raise_alert(OPS, "S1", f"{prefix}{n}", "warning", "fan speed")
        except Exception as error:
            errors.append(error)

    threads = [
        threading.Thread(target=raise_alerts, args=(f, p)) for f, p in ((first, "a"), (second, "b"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(first.device("S1").alerts) == 30


def test_a_command_that_always_loses_is_reported_as_a_conflict(
    fleet_factory: FleetFactory,
) -> None:
    """After the bounded number of attempts the loser gets ConflictError and records nothing."""
    loser, winner = fleet_factory(), fleet_factory()
    loser.register_devices(CUSTOMER, "C1", servers("S1"))
    attempts: list[int] = []

    def work(w: Working) -> None:
        device = load_device(w, "S1")
        attempts.append(1)
        winner.raise_alert(OPS, "S1", f"w{len(attempts)}", "info", "concurrent change")
        device.raise_alert(OPS, "LOSER", "info", "never stored")

    with pytest.raises(ConflictError, match="conflicted"):
        loser._run("raise_alert", OPS, work)
    assert len(attempts) == MAX_ATTEMPTS
    assert "LOSER" not in loser.device("S1").alerts
    assert len(loser.device("S1").alerts) == MAX_ATTEMPTS


def test_an_e2open_batch_meeting_a_concurrent_registration_stores_nothing_of_it(
    fleet_factory: FleetFactory,
) -> None:
    """R-HLD-1: one transaction per batch; a device registered meanwhile is rejected, not lost."""
    intake, customer_side = fleet_factory(), fleet_factory()
    partner(intake, "LOC-1")
    reports = [report(f"PC{n}") for n in range(200)]
    before = event_count(intake)
    original_find = Working.find
    raced: list[bool] = []

    def racing_find(self: Working, cls: type[Any], aggregate_id: UUID) -> Any:
        found = original_find(self, cls, aggregate_id)
        # A customer registers PC150 while the intake is between its reads and its save.
        if cls is E2OpenBatch and not raced:
            raced.append(True)
            customer_side.register_devices(CUSTOMER, "C1", [servers("PC150")[0]])
        return found

    Working.find = racing_find  # type: ignore[method-assign]
    try:
        outcome = intake.receive_e2open_batch(OPS, "batch-race", reports)
    finally:
        Working.find = original_find  # type: ignore[method-assign]
    assert raced
    assert "PC150" not in outcome.accepted
    assert [r.serial for r in outcome.rejected] == ["PC150"]
    assert len(outcome.accepted) == 199
    stored = event_count(intake) - before
    # 199 landed PCs + the batch record, plus the concurrent registration's 4 events
    # (Passport opened, its Passport ID claimed, devices counted, the device registered).
    assert stored == 199 + 1 + 4
    assert intake.device("PC150").connection == "direct_connect"
    assert intake.device("PC150").placement is None
