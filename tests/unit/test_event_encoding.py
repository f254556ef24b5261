"""Kind 5, event encoding: caller data never collides with the serialiser's own markers.

eventsourcing's transcoder reads `{"_type_": name, "_data_": ...}` as a value it wrote;
configuration data (or any free-form field) of that form must still read back exactly as
given: in the aggregate's events, in the views, and in what the relay publishes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import JSONTranscoder, StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import Device
from handlers import PartnerFleet
from handlers.transcoding import DataclassAsDict, FleetTranscoder, free_form_fields
from infra.kafka.envelope import envelope_record, stored_record
from projections.consent_queries import configuration_for
from tests.scopes import partner_at
from tests.unit.views_support import (
    CUSTOMER,
    LOC,
    OPS,
    Reader,
    db,
    fleet,
    link_new_servers,
    new_partner,
    read,
    runner,
)

__all__ = ["db", "fleet", "read", "runner"]

GIVEN: dict[str, Any] = {"_type_": "bios", "_data_": "1.2"}
# Marker forms of names the transcoder knows: they once read back as a UUID, a date, ...
KNOWN_NAMES: list[dict[str, Any]] = [
    {"_type_": "uuid_hex", "_data_": "0" * 32},
    {"_type_": "date_iso", "_data_": "2024-01-01"},
    {"_type_": "datetime_iso", "_data_": "2024-01-01T00:00:00+00:00"},
    {"_type_": "escaped_dict", "_data_": [["a", 1]]},
    {"_type_": "Alert", "_data_": {"severity": "critical", "message": "disk"}},
]

# No control characters: the command may refuse them (kind 4); encoding is what is tested here.
TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=12)
KEYS = st.sampled_from(["_type_", "_data_", "cpu", "bios", ""]) | TEXT
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
    | st.sampled_from(["_type_", "_data_", "bios", "uuid_hex", "escaped_dict", "date_iso"])
)
JSON_LIKE = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(KEYS, inner, max_size=4)
        | st.builds(lambda t, d: {"_type_": t, "_data_": d}, LEAVES, inner)
    ),
    max_leaves=20,
)
CONFIGURATIONS = st.dictionaries(KEYS, JSON_LIKE, min_size=1, max_size=5) | st.builds(
    lambda t, d: {"_type_": t, "_data_": d}, LEAVES, JSON_LIKE
)


@pytest.fixture
def consenting(fleet: PartnerFleet) -> None:
    """S1 of customer C1 is linked to LOC-1, and the customer granted consent."""
    new_partner(fleet, LOC)
    link_new_servers(fleet, "C1", "S1", to=LOC, name="Customer One")
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])


def collected_data(fleet: PartnerFleet, serial: str) -> list[dict[str, Any]]:
    """The data of every ConfigurationCollected event of the device, as the store reads it."""
    events = fleet.events.get(Device.id_for(serial))
    return [e.data for e in events if isinstance(e, Device.ConfigurationCollected)]


def published_payloads(fleet: PartnerFleet, serial: str) -> list[dict[str, Any]]:
    """Each configuration event's payload as the relay publishes it, by either of its paths."""
    payloads = []
    for n in fleet.recorder.select_notifications(1, 1_000_000):
        if n.originator_id != Device.id_for(serial) or not n.topic.endswith("Collected"):
            continue
        mapped = envelope_record(fleet.mapper.to_domain_event(n), n.id)  # type: ignore[arg-type]
        direct = stored_record(n.topic, str(n.originator_id), n.originator_version, n.state, n.id)
        for record in (mapped, direct) if direct is not None else (mapped,):
            payloads.append(json.loads(record[1])["payload"]["data"])
    return payloads


def test_r_con_2_configuration_data_in_the_transcoders_marker_form_reads_back_exactly(
    fleet: PartnerFleet, read: Reader, consenting: None
) -> None:
    """R-CON-2 (kind 5, the given input): the device still loads, so the customer can withdraw
    consent; the events, the view and the relay's payload hold exactly the dict given."""
    fleet.collect_configuration(OPS, "S1", GIVEN)

    with read() as tx:
        seen_by_partner = configuration_for(tx, partner_at(fleet, LOC), "S1")
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])

    assert seen_by_partner == GIVEN
    assert fleet.device("S1").consent is None
    assert collected_data(fleet, "S1") == [GIVEN]
    assert published_payloads(fleet, "S1") == [GIVEN]


@pytest.mark.parametrize("data", KNOWN_NAMES, ids=lambda d: d["_type_"])
def test_r_con_2_configuration_data_naming_a_registered_transcoding_stays_a_plain_dict(
    fleet: PartnerFleet, read: Reader, consenting: None, data: dict[str, Any]
) -> None:
    """R-CON-2 (kind 5): data shaped like a UUID, date, datetime, dataclass or escape marker
    is not turned into one; nested a level down too."""
    fleet.collect_configuration(OPS, "S1", {"nested": [data], "top": data})

    with read() as tx:
        seen_by_partner = configuration_for(tx, partner_at(fleet, LOC), "S1")

    assert seen_by_partner == {"nested": [data], "top": data}
    assert collected_data(fleet, "S1") == [{"nested": [data], "top": data}]
    assert published_payloads(fleet, "S1") == [{"nested": [data], "top": data}]


@given(data=CONFIGURATIONS)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_r_con_2_any_json_configuration_reads_back_exactly_everywhere(
    fleet: PartnerFleet, read: Reader, consenting: None, data: dict[str, Any]
) -> None:
    """R-CON-2 (kind 5, property): any JSON-like dict, markers' keys at any depth, is what the
    aggregate's events, the partner's view and the published payload give back."""
    fleet.collect_configuration(OPS, "S1", data)

    with read() as tx:
        seen_by_partner = configuration_for(tx, partner_at(fleet, LOC), "S1")

    assert seen_by_partner == data
    assert collected_data(fleet, "S1")[-1] == data
    assert published_payloads(fleet, "S1")[-1] == data
    assert fleet.device("S1").consent is not None  # the device still loads


def stored_before_the_fix(fleet: PartnerFleet, data: dict[str, Any]) -> None:
    """Append a ConfigurationCollected to S1 as the plain JSONTranscoder wrote it (no escape)."""
    device_id = Device.id_for("S1")
    version = fleet.device("S1").version + 1
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": datetime.now(UTC).isoformat()},
        "principal": "hp-ops",
        "correlation_id": "corr-before-the-fix",
        "data": data,
    }
    topic = "domain.device:Device.ConfigurationCollected"
    fleet.recorder.insert_events(
        [StoredEvent(device_id, version, topic, json.dumps(state).encode())]
    )


# All but escaped_dict: a dict of exactly the escape's form stored before the escape existed
# reads back unescaped (the one ambiguity left; docs/decisions.md).
@pytest.mark.parametrize(
    "data",
    [d for d in [GIVEN, *KNOWN_NAMES] if d["_type_"] != "escaped_dict"],
    ids=lambda d: d["_type_"],
)
def test_r_con_2_a_colliding_dict_stored_before_the_escape_existed_reads_back_exactly(
    fleet: PartnerFleet, read: Reader, consenting: None, data: dict[str, Any]
) -> None:
    """R-CON-2 (kind 5): histories already holding an unescaped colliding dict still load,
    and the data reads back as stored (free-form fields are never read as markers)."""
    stored_before_the_fix(fleet, {"top": data, "deep": {"list": [data]}})

    with read() as tx:
        seen_by_partner = configuration_for(tx, partner_at(fleet, LOC), "S1")
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])

    assert seen_by_partner == {"top": data, "deep": {"list": [data]}}
    assert collected_data(fleet, "S1") == [{"top": data, "deep": {"list": [data]}}]
    assert fleet.device("S1").consent is None


@given(value=JSON_LIKE)
def test_kind_5_the_transcoder_round_trips_any_json_value_and_writes_plain_data_as_before(
    value: Any,
) -> None:
    """Kind 5 (property): any JSON-like value decodes to itself; data holding no marker key is
    stored byte for byte as the stock transcoder wrote it (old readers, the relay's fast path)."""
    fleet, stock = FleetTranscoder(), JSONTranscoder()

    encoded = fleet.encode({"v": value})

    assert fleet.decode(encoded) == {"v": value}
    if b'"_type_"' not in stock.encode({"v": value}):
        assert encoded == stock.encode({"v": value})


@dataclass
class Reading:
    """A value object of aggregate state holding caller data (as a snapshot would store it)."""

    taken: date
    details: dict[str, Any] = field(default_factory=dict)


def test_kind_5_caller_data_inside_a_transcoded_value_object_reads_back_exactly() -> None:
    """Kind 5: a colliding dict inside a dataclass of aggregate state (snapshots) is escaped
    too, beside values the transcoder must still encode (a date, a UUID)."""
    transcoder = PartnerFleet(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper.transcoder
    assert isinstance(transcoder, FleetTranscoder)
    transcoder.register(DataclassAsDict(Reading))
    state = {"reading": Reading(date(2026, 1, 2), {"x": GIVEN}), "id": UUID(int=7), "g": GIVEN}

    assert transcoder.decode(transcoder.encode(state)) == state


def test_kind_5_every_free_form_event_field_is_read_without_interpreting_markers() -> None:
    """Kind 5: the fields annotated Any/object (caller data) are exactly the free-form ones."""
    topic = "domain.device:Device.ConfigurationCollected"
    batch_topic = "domain.intake:E2OpenBatch.Received"

    assert free_form_fields(topic) == {"data"}
    assert free_form_fields(batch_topic) == {"rejected"}
    assert free_form_fields("domain.device:Device.AlertRaised") == frozenset()
    assert free_form_fields("eventsourcing.domain:Snapshot") == frozenset()


def nested(depth: int, leaf: Any) -> dict[str, Any]:
    """`leaf` under `depth` levels of {"level": ...}."""
    value: Any = leaf
    for _ in range(depth):
        value = {"level": value}
    result: dict[str, Any] = value
    return result


@pytest.mark.parametrize(
    "data",
    [nested(600, "escaped_dict"), nested(300, GIVEN)],
    ids=["600 levels", "300 levels around a colliding dict"],
)
def test_kind_5_deeply_nested_data_that_could_be_stored_can_be_read(
    fleet: PartnerFleet, consenting: None, data: dict[str, Any]
) -> None:
    """Kind 5: reading is never the weaker side: whatever the transcoder could store, however
    deeply nested, reads back without running out of stack, so the device loads. (Recorded
    past the command, which bounds nesting far lower.)"""
    device = fleet.device("S1")
    device.trigger_event(
        Device.ConfigurationCollected, principal="hp-ops", correlation_id="c", data=data
    )
    fleet.recorder.insert_events([fleet.mapper.to_stored_event(e) for e in device.collect_events()])

    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])

    assert collected_data(fleet, "S1") == [data]
