"""Snapshots of every aggregate type rebuild exactly the state its events give."""

from __future__ import annotations

import pytest

from tests.scenarios import SCENARIOS, Scenario
from tests.snapshots import EagerSnapshots, assert_snapshots_rebuild_every_aggregate


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_aggregates_loaded_from_snapshots_equal_their_replay(scenario: Scenario) -> None:
    """Each scenario, snapshotting every 2 events, reads back the same aggregates."""
    fleet = EagerSnapshots(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    scenario(fleet)
    assert assert_snapshots_rebuild_every_aggregate(fleet) > 0
