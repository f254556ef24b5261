"""The published envelope and payload schemas: generated from the code, never stale."""

from __future__ import annotations

import json
from pathlib import Path

from domain import Device
from infra.kafka.envelope import Envelope, envelope, event_type, payload_model, schemas, topic_for
from tests.actors import operator
from tests.scenarios import CUSTOMER, in_memory_fleet, partner, servers

DOCS = Path(__file__).parent.parent.parent / "docs" / "events"


def test_the_schemas_in_docs_events_are_those_the_code_generates() -> None:
    """`partnerfleet event-schemas` was run after the last event change."""
    generated = schemas()
    on_disk = {p.name: json.loads(p.read_text()) for p in DOCS.glob("*.schema.json")}
    assert sorted(on_disk) == sorted(generated)
    assert on_disk == json.loads(json.dumps(generated))


def test_every_stored_event_fits_its_envelope_and_payload_schema() -> None:
    """A realistic history: each envelope validates, each payload matches its model."""
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    fleet.raise_alert(operator("ops", "c"), "S1", "A1", "critical", "disk")
    for notification in fleet.recorder.select_notifications(1, 1_000):
        event = fleet.mapper.to_domain_event(notification)
        wrapped = envelope(event, notification.id)  # type: ignore[arg-type]
        assert Envelope.model_validate_json(wrapped.model_dump_json()) == wrapped
        payload_model(type(event)).model_validate(wrapped.payload)
        assert wrapped.type == event_type(type(event))
        assert wrapped.principal == event.principal  # type: ignore[attr-defined]


def test_event_ids_are_stable_and_topics_follow_the_aggregate_type() -> None:
    """The same event wrapped twice has the same id; device events go to the device topic."""
    fleet = in_memory_fleet()
    fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    [first] = [
        n
        for n in fleet.recorder.select_notifications(1, 100)
        if n.originator_id == Device.id_for("S1")
    ]
    event = fleet.mapper.to_domain_event(first)
    assert envelope(event, 1).event_id == envelope(event, 1).event_id  # type: ignore[arg-type]
    assert topic_for(Device) == "partnerfleet.device.v1"
