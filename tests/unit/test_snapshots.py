"""Snapshots of every aggregate type rebuild exactly the state its events give; a snapshot
that does not fit the code is skipped, never fatal (kind 7)."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any
from uuid import UUID

import pytest
from structlog.testing import capture_logs

from domain import CustomerGroup, Device
from domain.device_support import Alert
from domain.partner import PartnerTenant
from domain.passport import Passport
from handlers import PartnerFleet
from handlers.base import SNAPSHOT_INTERVAL
from handlers.devices import PartnerChoice
from handlers.snapshots import state_fields
from handlers.transcoding import DataclassAsDict
from tests.scenarios import (
    CUSTOMER,
    OPS,
    SCENARIOS,
    Scenario,
    in_memory_fleet,
    partner,
    servers,
)
from tests.snapshots import (
    ALERTS,
    MISFITS,
    EagerSnapshots,
    assert_snapshots_rebuild_every_aggregate,
    in_state,
    long_lived_device,
    plant_snapshot,
    replayed,
    written_by_a_newer_release,
)

Logs = list[MutableMapping[str, Any]]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_aggregates_loaded_from_snapshots_equal_their_replay(scenario: Scenario) -> None:
    """Each scenario, snapshotting every 2 events, reads back the same aggregates, and every
    snapshot this code writes fits it (none is skipped: every aggregate field is annotated)."""
    fleet = EagerSnapshots(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})

    with capture_logs() as logs:
        scenario(fleet)
        taken = assert_snapshots_rebuild_every_aggregate(fleet)

    assert taken > 0
    assert skipped(logs) == []


def skipped(logs: Logs) -> Logs:
    """The snapshot_skipped lines among captured logs."""
    return [line for line in logs if line["event"] == "snapshot_skipped"]


def assert_loads_as_replayed(fleet: PartnerFleet, aggregate_id: UUID) -> Logs:
    """The aggregate loads, equal to its replay from events alone; the skip lines logged."""
    with capture_logs() as logs:
        loaded: object = fleet.repository.get(aggregate_id)
    assert vars(loaded) == vars(replayed(fleet, aggregate_id))
    return skipped(logs)


def test_kind_7_a_snapshot_with_an_extra_alert_field_from_a_newer_release_is_skipped() -> None:
    """Kind 7 (the given input): a device past SNAPSHOT_INTERVAL events whose snapshot a newer
    release wrote (one more field per alert) loads from its events, with a log line."""
    fleet = in_memory_fleet()
    device_id = written_by_a_newer_release(fleet)
    assert fleet.snapshots is not None
    stored = fleet.snapshots.recorder.select_events(device_id)
    assert [s.originator_version for s in stored] == [SNAPSHOT_INTERVAL]

    lines = assert_loads_as_replayed(fleet, device_id)

    assert len(lines) == 1
    assert lines[0]["aggregate_id"] == str(device_id)
    assert lines[0]["version"] == SNAPSHOT_INTERVAL
    assert "acknowledged_by" in lines[0]["reason"]
    assert lines[0]["log_level"] == "warning"


def test_kind_7_commands_on_a_device_with_a_misfit_snapshot_are_accepted() -> None:
    """Kind 7: the customer (or a policy) can act on the device as usual."""
    fleet = in_memory_fleet()
    written_by_a_newer_release(fleet)

    fleet.raise_alert(OPS, "S1", "A-new", "critical", "disk")

    assert "A-new" in fleet.device("S1").alerts
    assert fleet.device("S1").alerts["A-0"].repair_case_id == "K-0"


@pytest.mark.parametrize("form", MISFITS, ids=str)
def test_kind_7_a_snapshot_that_does_not_fit_is_skipped_and_replaced(form: str) -> None:
    """Kind 7: an extra or missing field (aggregate or alert), an unknown transcoding name,
    a renamed class, a newer class version, or state the later events do not apply to: the
    device loads from its events; a fresh snapshot at its version is used from then on."""
    fleet = in_memory_fleet()
    device_id = long_lived_device(fleet)
    planted = plant_snapshot(fleet, device_id, MISFITS[form])

    first, again = (
        assert_loads_as_replayed(fleet, device_id),
        assert_loads_as_replayed(fleet, device_id),
    )

    assert [(line["version"], line["replaced"]) for line in first] == [(planted, True)]
    assert again == []


@pytest.mark.parametrize(
    ("form", "topic", "state"),
    [
        ("bad JSON", None, b'{"timestamp": {"_type_": "datetime_iso", "_da'),
        ("unknown snapshot class", "eventsourcing.domain:SnapshotV2", None),
    ],
)
def test_kind_7_an_unreadable_snapshot_record_is_skipped(
    form: str, topic: str | None, state: bytes | None
) -> None:
    """Kind 7: a snapshot record that is not JSON, or whose own class is unknown, is skipped."""
    fleet = in_memory_fleet()
    device_id = long_lived_device(fleet)
    plant_snapshot(fleet, device_id, topic=topic, state=state)

    lines = assert_loads_as_replayed(fleet, device_id)

    assert [line["replaced"] for line in lines] == [True], form


def test_kind_7_a_misfit_snapshot_at_the_current_version_is_skipped_on_every_load() -> None:
    """Kind 7: when the misfit holds the current version (no free version to write a fresh
    snapshot at), every load replays and says so, until the next interval's snapshot."""
    fleet = in_memory_fleet()
    device_id = long_lived_device(fleet)
    plant_snapshot(fleet, device_id, MISFITS["missing field in an alert"], behind=0)

    lines = [
        *assert_loads_as_replayed(fleet, device_id),
        *assert_loads_as_replayed(fleet, device_id),
    ]

    assert [line["replaced"] for line in lines] == [False, False]


def test_kind_7_taking_the_next_snapshot_over_a_misfit_one_does_not_fail_the_command() -> None:
    """Kind 7: a save that crosses a snapshot interval reloads the aggregate through the bad
    snapshot; the command is accepted and the new snapshot fits."""
    fleet = in_memory_fleet()
    device_id = long_lived_device(fleet)
    plant_snapshot(fleet, device_id, MISFITS["unknown transcoding name"], behind=0)
    version = fleet.device("S1").version

    for number in range(2 * SNAPSHOT_INTERVAL - version):
        fleet.raise_alert(OPS, "S1", f"B-{number}", "info", "ok")

    assert fleet.snapshots is not None
    (latest,) = fleet.snapshots.get(device_id, desc=True, limit=1)
    assert latest.originator_version == 2 * SNAPSHOT_INTERVAL
    assert assert_loads_as_replayed(fleet, device_id) == []


@pytest.mark.parametrize("aggregate", ["PartnerTenant", "Passport", "CustomerGroup"])
def test_kind_7_every_snapshotted_aggregate_type_skips_a_misfit_snapshot(aggregate: str) -> None:
    """Kind 7: partner tenants, passports and customer groups load past a misfit too."""
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    ids = {
        "PartnerTenant": PartnerTenant.id_for("LOC-1"),
        "Passport": Passport.id_for("anna@LOC-1"),
        "CustomerGroup": CustomerGroup.id_for("LOC-1", "C1"),
    }
    fleet.take_snapshot(ids[aggregate], version=1)
    plant_snapshot(fleet, ids[aggregate], in_state(lambda s: s.update(unexpected=1)), behind=0)

    lines = assert_loads_as_replayed(fleet, ids[aggregate])

    assert [line["aggregate_id"] for line in lines] == [str(ids[aggregate])]


def test_kind_7_the_fields_a_device_snapshot_must_have_are_its_annotated_ones() -> None:
    """Kind 7: required are the annotated fields without a class default; a field with one
    (added later) may be missing from older snapshots."""
    required, allowed = state_fields(Device)

    assert {"serial", "alerts", "links", "consent"} <= required
    assert "insight_rs_cases_to_service_partner" in allowed - required
    assert {"_created_on", "_modified_on"} <= allowed


class UnencodableAlert(DataclassAsDict):
    """An Alert transcoding that fails, as a value object nobody registered would."""

    def __init__(self) -> None:
        super().__init__(Alert)

    def encode(self, obj: Any) -> dict[str, Any]:
        raise TypeError("this release cannot encode an Alert")


def test_kind_7_a_snapshot_that_cannot_be_taken_does_not_fail_the_accepted_command() -> None:
    """Kind 7: the save that reaches SNAPSHOT_INTERVAL records its events; failing to store
    the snapshot is logged (snapshot_not_taken), and the command is not reported refused."""
    fleet = in_memory_fleet()
    fleet.mapper.transcoder.register(UnencodableAlert())  # type: ignore[attr-defined]

    with capture_logs() as logs:
        device_id = long_lived_device(fleet)

    assert fleet.device("S1").version == ALERTS + 2
    assert fleet.snapshots is not None
    assert fleet.snapshots.recorder.select_events(device_id) == []
    lines = [line for line in logs if line["event"] == "snapshot_not_taken"]
    assert [line["aggregate_ids"] for line in lines] == [[str(device_id)]]
    assert "cannot encode an Alert" in lines[0]["reason"]
