"""The shared end-to-end scenarios on in-memory storage."""

from __future__ import annotations

import pytest

from tests.scenarios import SCENARIOS, Scenario, in_memory_fleet


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_scenario_in_memory(scenario: Scenario) -> None:
    """Each scenario's rules hold on in-memory storage."""
    scenario(in_memory_fleet())
