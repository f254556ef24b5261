"""The shared end-to-end scenarios on in-memory storage."""

from __future__ import annotations

import pytest

from handlers import PartnerFleet
from tests.scenarios import SCENARIOS, Scenario


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_scenario_in_memory(scenario: Scenario) -> None:
    """Each scenario's rules hold on in-memory storage."""
    scenario(PartnerFleet(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}))
