"""Issue 11, session 20: the save path's shortcuts give what the generic path gave.

- `_packed_parameters` (the group's arrays packed straight from its units) equals
  PACKERS over `FleetProcessRecorder._parameters`: the same names, the same bytes, and
  for data that cannot be packed the same error first.
- FleetMapper.to_stored_event and `notification_of` make the objects the stock mapper and
  the dataclasses made: the same fields, in the same order, the same bytes.
- `FleetApplication._save` records through `_record_encoded` (no EventStore.put): the same
  recordings as eventsourcing's `Application._record` for the same events.
"""

from __future__ import annotations

import struct
from dataclasses import FrozenInstanceError
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import Mapper, Notification, StoredEvent, Tracking

from domain import Device
from domain.base import Cause
from handlers import PartnerFleet
from handlers.transcoding import notification_of
from infra.storage.group_commit import Unit
from infra.storage.pg_recorder import (
    PACKERS,
    FleetProcessRecorder,
    _packed_parameters,
)
from tests.scenarios import in_memory_fleet
from tests.unit.views_support import (
    CUSTOMER,
    LOC,
    link_new_servers,
    new_partner,
)


def stored(version: int = 1, topic: str = "domain.device:Device.Linked", **kw: Any) -> StoredEvent:
    return StoredEvent(
        originator_id=kw.get("originator_id", uuid4()),
        originator_version=version,
        topic=topic,
        state=kw.get("state", b'{"a":' + str(version).encode() + b"}"),
    )


def through_packers(units: list[Unit]) -> dict[str, bytes]:
    parameters = FleetProcessRecorder._parameters(units)
    return {name: PACKERS[name](values) for name, values in parameters.items()}


def reads(n: int) -> dict[UUID, int]:
    return {uuid4(): v for v in range(3, 3 + n)}


CASES: dict[str, list[Unit]] = {
    "alone": [Unit([stored(1), stored(2, "t:é")])],
    "alone with reads": [Unit([stored(5)], None, reads(3))],
    "alone, a bytearray and a memoryview state": [
        Unit([stored(1, state=bytearray(b"xy")), stored(2, state=memoryview(b"\x00\x01"))])
    ],
    "lone with tracking": [Unit([stored(4)], Tracking("Relay", 7), reads(1))],
    "tracking only": [Unit([], Tracking("Policy", 2**40))],
    "a group": [
        Unit([stored(1), stored(2)], None, reads(2)),
        Unit([], Tracking("Policy", 3)),
        Unit([stored(9)], Tracking("Relay", 4), {}),
        Unit([stored(2**62)], None, reads(1)),
    ],
    "a group without reads or tracking": [Unit([stored(1)]), Unit([stored(2), stored(3)])],
}


@pytest.mark.parametrize("case", list(CASES))
def test_session20_packed_parameters_are_the_packers_bytes(case: str) -> None:
    units = CASES[case]
    packed = _packed_parameters(units)
    expected = through_packers(units)
    assert set(packed) == set(expected)
    assert {name: bytes(value) for name, value in packed.items()} == {
        name: bytes(value) for name, value in expected.items()
    }


BAD: dict[str, list[Unit]] = {
    "a lone surrogate in a topic": [Unit([stored(1, "t:\ud800")])],
    "a version beyond bigint": [Unit([stored(2**63)])],
    "a read version beyond bigint": [Unit([stored(1)], None, {uuid4(): 2**64})],
    "a bad topic and a bad version, in a group": [
        Unit([stored(1, "t:\udc00")]),
        Unit([stored(2**63)], Tracking("P", 1)),
    ],
    "a position beyond bigint": [Unit([stored(1)], Tracking("P", 2**63)), Unit([])],
    "a bad name": [Unit([], Tracking("\ud800", 1)), Unit([stored(1)])],
}


@pytest.mark.parametrize("case", list(BAD))
def test_session20_unpackable_data_raises_what_the_packers_raised(case: str) -> None:
    units = BAD[case]
    with pytest.raises((UnicodeEncodeError, struct.error, OverflowError)) as theirs:
        through_packers(units)
    with pytest.raises((UnicodeEncodeError, struct.error, OverflowError)) as ours:
        _packed_parameters(units)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


IN_MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def processing(tracking: Tracking | None = None) -> ProcessingEvent[UUID]:
    device = Device.register(
        Cause("hp-ops", "c"), serial="S1", connection="pc_agent", customer_id="C1"
    )
    event: ProcessingEvent[UUID] = ProcessingEvent(tracking=tracking)
    event.events.extend(device.collect_events())
    event.aggregates[device.id] = device
    return event


@pytest.mark.parametrize("tracking", [None, Tracking("Policy", 5)])
def test_session20_the_save_records_what_eventsourcings_record_recorded(
    tracking: Tracking | None,
) -> None:
    ours_app = PartnerFleet(env=IN_MEMORY)
    theirs_app = PartnerFleet(env=IN_MEMORY)
    event = processing(tracking)
    ours = ours_app._record_encoded([], event)
    theirs = Application._record(theirs_app, event)
    assert ours == theirs
    assert [type(r.notification) for r in ours] == [type(r.notification) for r in theirs]
    assert ours_app.recorder.select_notifications(
        1, 10
    ) == theirs_app.recorder.select_notifications(1, 10)


def every_domain_event() -> list[Any]:
    fleet = in_memory_fleet()
    new_partner(fleet, LOC)
    link_new_servers(fleet, "C1", "S1", "S2", to=LOC, name="Customer One")
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    return [fleet.mapper.to_domain_event(n) for n in fleet.recorder.select_notifications(1, 500)]


def test_session20_the_mapper_stores_what_the_stock_mapper_stored() -> None:
    """The same fields, in the same order, and the same bytes, for every kind of event a
    link, a grant and a withdrawal make (a CustomerGroup's are of class version 2)."""
    events = every_domain_event()
    ours = PartnerFleet(env=IN_MEMORY).mapper
    stock: Mapper[UUID] = Mapper(ours.transcoder)
    assert any(getattr(type(e), "class_version", 1) > 1 for e in events)
    for event in events:
        made, expected = ours.to_stored_event(event), stock.to_stored_event(event)
        assert type(made) is StoredEvent
        assert made == expected
        assert list(vars(made).items()) == list(vars(expected).items())
        assert made == ours.to_stored_event(event)  # the topic as looked up again


def test_session20_a_notification_is_made_as_its_dataclass_makes_it() -> None:
    row = stored(3)
    made = notification_of(row, 42)
    expected = Notification(
        originator_id=row.originator_id,
        originator_version=3,
        topic=row.topic,
        state=row.state,
        id=42,
    )
    assert type(made) is Notification
    assert made == expected
    assert list(vars(made).items()) == list(vars(expected).items())
    with pytest.raises(FrozenInstanceError):
        made.id = 1  # type: ignore[misc]
    assert notification_of(expected, 7) == Notification(**{**vars(expected), "id": 7})
