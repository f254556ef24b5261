"""The collector is paused for one intake command only, and always running again after it."""

from __future__ import annotations

import gc

import pytest

from domain.intake import IntakeError
from handlers.intake import collection_paused
from tests.scenarios import OPS, in_memory_fleet, partner


def refuse_while_paused() -> None:
    """A command that fails while the collector is paused, saying whether it was."""
    with collection_paused():
        raise RuntimeError(f"refused; collector enabled: {gc.isenabled()}")


def test_the_collector_is_paused_inside_and_running_again_after_an_error() -> None:
    with pytest.raises(RuntimeError, match="collector enabled: False"):
        refuse_while_paused()

    assert gc.isenabled()


def test_a_collector_paused_by_someone_else_stays_paused() -> None:
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_r_hld_1_an_e2open_batch_refused_as_a_whole_leaves_the_collector_running() -> None:
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")

    with pytest.raises(IntakeError):
        fleet.receive_e2open_batch(OPS, "too-big", [{}] * 100_001)

    assert gc.isenabled()
