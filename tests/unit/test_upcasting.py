"""Events written by earlier versions still load: ConsentGranted v1 is upcast to v2."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain import Device
from domain.consent import consent_text_digest
from tests.actors import customer
from tests.scenarios import in_memory_fleet

FIXTURE = Path(__file__).parent.parent / "fixtures" / "device_events_v1.json"


def stored_v1_events() -> list[StoredEvent]:
    """The events of device CZJ1V1 as version 1 of ConsentGranted wrote them."""
    return [
        StoredEvent(
            originator_id=UUID(row["originator_id"]),
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=json.dumps(row["state"]).encode(),
        )
        for row in json.loads(FIXTURE.read_text())
    ]


def test_r_con_3_a_version_1_consent_grant_loads_with_scope_and_wording_digest() -> None:
    """R-CON-3: a v1 grant (text version only) reads back with scope and the wording's digest."""
    fleet = in_memory_fleet()
    fleet.recorder.insert_events(stored_v1_events())
    device = fleet.device("CZJ1V1")
    assert device.consent is not None
    assert device.consent.scope == "device"
    granted = list(fleet.events.get(device.id))[1]
    assert isinstance(granted, Device.ConsentGranted)
    assert granted.text_digest == consent_text_digest("2024-01")
    assert granted.principal == "admin@customer.example"


def test_an_upcast_aggregate_takes_new_commands_after_the_old_events() -> None:
    """A device whose history holds v1 events is changed and saved as usual."""
    fleet = in_memory_fleet()
    fleet.recorder.insert_events(stored_v1_events())
    fleet.withdraw_consent(customer("C1", "admin@customer.example", "c"), "C1", ["CZJ1V1"])
    assert fleet.device("CZJ1V1").consent is None
    assert fleet.device("CZJ1V1").version == 3


def stored_v1_repair_case() -> list[StoredEvent]:
    """Device CZJ1V1's history, then an alert and a repair case as version 1 wrote it."""
    device_id = UUID("0aad4c48-a3a7-515e-94d4-b9b232ec6718")

    def stored(version: int, name: str, **fields: str) -> StoredEvent:
        state = {
            "timestamp": {"_type_": "datetime_iso", "_data_": f"2025-03-05T10:0{version}:00+00:00"},
            "principal": "admin@customer.example",
            "correlation_id": "corr-2023-case",
            **fields,
        }
        topic = f"domain.device:Device.{name}"
        return StoredEvent(device_id, version, topic, json.dumps(state).encode())

    alert = stored(3, "AlertRaised", alert_id="A1", severity="critical", message="Disk")
    case = stored(4, "RepairCaseSubmitted", case_id="K1", alert_id="A1")
    return [*stored_v1_events(), alert, case]


def test_r_alr_2_a_version_1_repair_case_loads_as_a_self_service_case() -> None:
    """R-ALR-2: cases stored before Insight RS cases existed were all self-service ones."""
    fleet = in_memory_fleet()
    fleet.recorder.insert_events(stored_v1_repair_case())

    submitted = list(fleet.events.get(Device.id_for("CZJ1V1")))[-1]

    assert isinstance(submitted, Device.RepairCaseSubmitted)
    assert (submitted.case_id, submitted.source) == ("K1", "self_service")
    assert fleet.device("CZJ1V1").alerts["A1"].case_source == "self_service"
