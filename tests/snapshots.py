"""Checks that aggregates loaded through snapshots equal those replayed from events alone."""

from __future__ import annotations

from functools import reduce
from typing import Any, ClassVar
from uuid import UUID

from handlers import PartnerFleet
from handlers.base import FleetApplication


class EagerSnapshots(PartnerFleet):
    """The fleet with a snapshot every 2 events, so every scenario goes through snapshots."""

    snapshotting_intervals: ClassVar[dict[type[Any], int]] = dict.fromkeys(
        FleetApplication.snapshotting_intervals, 2
    )


def replayed(fleet: PartnerFleet, aggregate_id: UUID) -> Any:
    """The aggregate rebuilt from its stored events alone."""
    events: list[Any] = list(fleet.events.get(aggregate_id))
    return reduce(lambda agg, event: event.mutate(agg), events, None)


def assert_snapshots_rebuild_every_aggregate(fleet: PartnerFleet) -> int:
    """Every aggregate read through its latest snapshot equals its replay; snapshots counted."""
    assert fleet.snapshots is not None
    ids = {n.originator_id for n in fleet.recorder.select_notifications(1, 10_000_000)}
    taken = 0
    for aggregate_id in ids:
        assert isinstance(aggregate_id, UUID)
        taken += len(list(fleet.snapshots.get(aggregate_id)))
        loaded: object = fleet.repository.get(aggregate_id)
        assert vars(loaded) == vars(replayed(fleet, aggregate_id))
    return taken
