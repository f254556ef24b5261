"""Checks that aggregates loaded through snapshots equal those replayed from events alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import reduce
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder, StoredEvent

from domain import Device
from domain.device_support import Alert
from handlers import PartnerFleet
from handlers.base import FleetApplication
from handlers.transcoding import DataclassAsDict
from tests.scenarios import CUSTOMER, OPS, servers


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


# --- snapshots that do not fit the code (kind 7) -------------------------------------------

ALERTS = 52  # with the registration: a snapshot at version 50 (SNAPSHOT_INTERVAL)
StateChange = Callable[[dict[str, Any]], None]


class NewerAlert(DataclassAsDict):
    """Alert as a newer release would store it: with one more field."""

    def __init__(self) -> None:
        super().__init__(Alert)

    def encode(self, obj: Any) -> dict[str, Any]:
        return {**super().encode(obj), "acknowledged_by": None}

    def decode(self, data: dict[str, Any]) -> Any:
        return super().decode({k: v for k, v in data.items() if k != "acknowledged_by"})


def long_lived_device(fleet: PartnerFleet, serial: str = "S1") -> UUID:
    """A device with more than SNAPSHOT_INTERVAL events, the last a repair case on alert A-0."""
    fleet.register_devices(CUSTOMER, "C1", servers(serial))
    for number in range(ALERTS):
        fleet.raise_alert(OPS, serial, f"A-{number}", "warning", f"fan {number}")
    fleet.submit_repair_case(CUSTOMER, serial, "A-0", "K-0")
    return Device.id_for(serial)


def written_by_a_newer_release(fleet: PartnerFleet, serial: str = "S1") -> UUID:
    """Kind 7's given input: the device's snapshot holds alerts with one extra field (the
    newer release reads its own snapshots; then it is rolled back)."""
    transcoder = fleet.mapper.transcoder
    assert isinstance(transcoder, JSONTranscoder)
    transcoder.register(NewerAlert())
    try:
        return long_lived_device(fleet, serial)
    finally:
        transcoder.register(DataclassAsDict(Alert))


def plant_snapshot(
    fleet: PartnerFleet,
    aggregate_id: UUID,
    change: StateChange | None = None,
    *,
    topic: str | None = None,
    state: bytes | None = None,
    behind: int = 1,
) -> int:
    """Store a changed copy of the latest snapshot `behind` versions before the aggregate's."""
    assert fleet.snapshots is not None
    recorder = fleet.snapshots.recorder
    latest = recorder.select_events(aggregate_id, desc=True, limit=1)[0]
    stored = json.loads(latest.state)
    if change is not None:
        change(stored)
    version = len(list(fleet.events.get(aggregate_id))) - behind
    planted = state if state is not None else json.dumps(stored).encode()
    recorder.insert_events([StoredEvent(aggregate_id, version, topic or latest.topic, planted)])
    return version


def in_state(change: StateChange) -> StateChange:
    """A change of the aggregate's state inside a stored snapshot."""
    return lambda stored: change(stored["state"])


def alert_zero(state: dict[str, Any]) -> dict[str, Any]:
    """The stored fields of alert A-0 in a device's snapshot state."""
    fields: dict[str, Any] = state["alerts"]["A-0"]["_data_"]
    return fields


MISFITS: dict[str, StateChange] = {
    "extra field in an alert": in_state(lambda s: alert_zero(s).update(acknowledged_by=None)),
    "missing field in an alert": in_state(lambda s: alert_zero(s).pop("message")),
    "extra aggregate field": in_state(lambda s: s.update(muted=True)),
    "missing aggregate field": in_state(lambda s: s.pop("links")),
    "unknown transcoding name": in_state(lambda s: s["alerts"]["A-0"].update(_type_="AlertV2")),
    "renamed aggregate class": lambda stored: stored.update(topic="domain.devices:Device"),
    "newer class version": in_state(lambda s: s.update(class_version=Device.class_version + 1)),
    "state the later events do not apply to": in_state(lambda s: s.update(alerts={})),
}
