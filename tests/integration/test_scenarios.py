"""The shared end-to-end scenarios on PostgreSQL and on a SQLite file."""

from __future__ import annotations

from uuid import UUID

import pytest

from handlers import PartnerFleet
from infra.bootstrap import storage_ready
from infra.settings import Settings
from tests.conftest import FleetFactory
from tests.scenarios import SCENARIOS, Scenario
from tests.snapshots import EagerSnapshots, assert_snapshots_rebuild_every_aggregate


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_scenario_on_stored_events(scenario: Scenario, stored_fleet: PartnerFleet) -> None:
    """Each scenario's rules hold on real storage."""
    scenario(stored_fleet)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_restart_rebuilds_the_same_aggregates(
    scenario: Scenario, fleet_factory: FleetFactory
) -> None:
    """After a restart every aggregate read back from storage equals the one read before."""
    first = fleet_factory()
    scenario(first)
    ids = {n.originator_id for n in first.recorder.select_notifications(start=1, limit=100_000)}
    second = fleet_factory()
    for aggregate_id in ids:
        assert isinstance(aggregate_id, UUID)
        before: object = first.repository.get(aggregate_id)
        after: object = second.repository.get(aggregate_id)
        assert vars(before) == vars(after)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_snapshots_on_stored_events_rebuild_the_same_aggregates(
    scenario: Scenario, stored_settings: Settings
) -> None:
    """Snapshots written to PostgreSQL / SQLite read back to the state the events give."""
    with storage_ready(stored_settings.storage):
        fleet = EagerSnapshots(env=stored_settings.storage.env)
    try:
        scenario(fleet)
        assert assert_snapshots_rebuild_every_aggregate(fleet) > 0
    finally:
        fleet.close()
