"""The cold load's decode and replay (issue 11, session 21): FleetMapper's direct decode
gives the stock mapper's event, or its error, for every stored event and odd states."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate, CanInitAggregate
from eventsourcing.domain import event as event_method
from eventsourcing.persistence import DatetimeAsISO, Mapper, StoredEvent, UUIDAsHex

from domain import Device
from handlers import PartnerFleet
from handlers.snapshots import created, replay
from handlers.transcoding import DateAsISO, FleetMapper, free_form_fields, uuid_from_hex
from tests.scenarios import SCENARIOS, Scenario, in_memory_fleet, loads_history

DEVICE_TOPIC = "domain.device:Device.ReportedByE2Open"
ID = UUID("dd4f95ef-b44e-5f71-b0c1-cbabe7922e37")


def stock_event(mapper: FleetMapper, stored: StoredEvent) -> Any:
    """What FleetMapper.to_domain_event gave before the direct decode."""
    free = free_form_fields(stored.topic)
    if not free:
        return Mapper.to_domain_event(mapper, stored)
    return mapper._reader(free).to_domain_event(stored)


def outcome(call: Any) -> tuple[str, Any]:
    try:
        made = call()
    except Exception as error:  # compared by type and message
        return "error", (type(error), str(error), type(error.__cause__), str(error.__cause__))
    return "event", (type(made), _typed(vars(made)))


def _typed(value: Any) -> Any:
    """A value with every nested value's type: 1 and 1.0 and True differ, keys in order."""
    if isinstance(value, dict):
        return (dict, [(k, _typed(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value), [_typed(v) for v in value])
    if hasattr(value, "__dataclass_fields__"):
        return (type(value), _typed(vars(value)))
    return (type(value), repr(value))  # NaN equals itself by its text


def assert_same(mapper: FleetMapper, stored: StoredEvent) -> tuple[str, Any]:
    new = outcome(lambda: mapper.to_domain_event(stored))
    old = outcome(lambda: stock_event(mapper, stored))
    assert new == old, stored
    return new


def _stored_of(fleet: PartnerFleet) -> list[StoredEvent]:
    return [
        StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)
        for n in fleet.recorder.select_notifications(start=1, limit=1_000_000)
    ]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_every_stored_event_of_every_scenario_decodes_as_the_stock_mapper(
    scenario: Scenario,
) -> None:
    fleet = in_memory_fleet()
    scenario(fleet)
    stored = _stored_of(fleet)
    assert stored
    mapper = fleet.mapper
    assert isinstance(mapper, FleetMapper)
    assert mapper._scanners is not None
    for event in stored:
        assert assert_same(mapper, event)[0] == "event"


def test_snapshots_and_a_long_history_decode_as_the_stock_mapper() -> None:
    fleet = in_memory_fleet()
    ids = loads_history(fleet)
    device = fleet.repository.get(ids[0])
    assert device.version > 50
    mapper = fleet.mapper
    assert isinstance(mapper, FleetMapper)
    snapshot = mapper.to_stored_event(Device.Snapshot.take(device))
    assert assert_same(mapper, snapshot)[0] == "event"
    if fleet.snapshots is not None:
        for stored in fleet.snapshots.recorder.select_events(ids[0]):
            assert assert_same(fleet.snapshots.mapper, stored)[0] == "event"  # type: ignore[arg-type]


def _report(**changes: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-11-30T20:54:59.260769+00:00"},
        "originator_topic": "domain.device:Device",
        "principal": "feed:e2open",
        "correlation_id": "bench-commands",
        "serial": "PMT0R0",
        "model": "HP EliteBook 840 G11",
        "reseller_location_id": "PLCMD0001",
        "distributor": "TD SYNNEX",
        "ship_date": {"_type_": "date_iso", "_data_": "2026-03-26"},
        "end_customer": None,
        "care_plan": "premium",
        "holding_tenant_id": {"_type_": "uuid_hex", "_data_": "eec013d5a7f054aa94d6f04f0be71549"},
    }
    state.update(changes)
    return state


def _text(state: Any) -> bytes:
    return json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()


def _model(kind: str, data: Any) -> bytes:
    return _text(_report(model={"_type_": kind, "_data_": data}))


MARK = {"_type_": "uuid_hex", "_data_": "eec013d5a7f054aa94d6f04f0be71549"}
ODD_STATES: list[bytes] = [
    _text(_report()),
    b" " + _text(_report()),
    _text(_report()) + b" \n",
    _text(_report()) + b"{}",
    _text(_report())[:-1],
    b"",
    b"[]",
    b"null",
    b"\xff\xfe",
    _text(MARK),
    _text({"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00+00:00"}),
    _model("nope", "x"),
    _model("datetime_iso", "not a time"),
    _model("datetime_iso", 5),
    _model("uuid_hex", "{EEC013D5-A7F0-54AA-94D6-F04F0BE71549}"),
    _model("uuid_hex", "urn:uuid:eec013d5a7f054aa94d6f04f0be71549"),
    _model("uuid_hex", "EEC013D5A7F054AA94D6F04F0BE71549"),
    _model("uuid_hex", "٣" * 32),
    _model("uuid_hex", "g" * 32),
    _model("uuid_hex", "0x" + "a" * 30),
    _model("uuid_hex", "a" * 31),
    _model("decimal_str", "1.50"),
    _model("decimal_str", "NaN"),
    _model("decimal_str", "one"),
    _model("escaped_dict", [["_type_", 1], ["_data_", 2]]),
    _text(_report(model={"_type_": "uuid_hex", "_data_": "a" * 32, "more": 1})),
    _text(_report(model={"_type_": "uuid_hex"})),
    _text(_report(model={"_data_": "x", "other": 1})),
    _text(_report(model={"_type_": ["list"], "_data_": "x"})),
    _text(_report(model=[MARK, {"a": MARK}, [MARK]])),
    _text(_report(model={"nested": {"deeper": MARK}})),
    _text(_report(model=[])),
    _text(_report(model={})),
    _text(_report(model=1.5, care_plan=10**30, end_customer=True, distributor=float("nan"))),
    _text(_report(model="\u00e9\u0000\ud7ff", serial="x" * 100_000)),
    _text(_report(class_version=1)),
    _text(_report(class_version=7)),
    _text(_report(originator_id="ignored", originator_version=99)),
    b'{"a":1,"a":2,"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00"}}',
    b'{"x":NaN,"y":Infinity,"z":-Infinity}',
    b'{"x":"\\ud800"}',
    b'{"x":"tab\there"}',
]


@pytest.mark.parametrize("state", ODD_STATES, ids=lambda s: repr(s[:40]))
@pytest.mark.parametrize("topic", [DEVICE_TOPIC, "domain.device:Device.Snapshot"])
def test_odd_states_decode_or_fail_as_the_stock_mapper(state: bytes, topic: str) -> None:
    mapper = in_memory_fleet().mapper
    assert isinstance(mapper, FleetMapper)
    for oid in (ID, str(ID)):
        assert_same(mapper, StoredEvent(oid, 3, topic, state))
    assert_same(mapper, StoredEvent(ID, 3, topic, bytearray(state)))  # type: ignore[arg-type]
    assert_same(mapper, StoredEvent(ID, 3, topic, memoryview(state)))  # type: ignore[arg-type]


def test_the_common_report_is_decoded_directly_without_the_object_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mapper = in_memory_fleet().mapper
    assert isinstance(mapper, FleetMapper)
    called: list[str] = []
    for transcoding in (DatetimeAsISO, DateAsISO, UUIDAsHex):
        stock = transcoding.decode

        def noted(self: Any, data: Any, stock: Any = stock) -> Any:
            called.append(data)
            return stock(self, data)

        monkeypatch.setattr(transcoding, "decode", noted)
    event = mapper.to_domain_event(StoredEvent(ID, 1, DEVICE_TOPIC, _text(_report())))
    assert called == []
    stock_event(mapper, StoredEvent(ID, 1, DEVICE_TOPIC, _text(_report())))
    assert len(called) == 3  # the stock way calls each transcoding
    assert type(event) is Device.ReportedByE2Open
    assert event.timestamp == datetime(2026, 11, 30, 20, 54, 59, 260769, tzinfo=UTC)
    assert event.ship_date == date(2026, 3, 26)
    assert event.holding_tenant_id == UUID("eec013d5a7f054aa94d6f04f0be71549")
    assert list(vars(event))[-2:] == ["originator_id", "originator_version"]


def test_other_topics_unknown_topics_and_free_form_events_go_the_stock_way() -> None:
    mapper = in_memory_fleet().mapper
    assert isinstance(mapper, FleetMapper)
    assert_same(mapper, StoredEvent(ID, 1, "domain.device:NoSuchClass", _text(_report())))
    assert_same(mapper, StoredEvent(ID, 1, "no.such.module:X", _text(_report())))
    free = [t for t in _all_event_topics() if free_form_fields(t)]
    assert free
    for topic in free:
        assert_same(mapper, StoredEvent(ID, 1, topic, _text(_report(payload=MARK))))


def _all_event_topics() -> list[str]:
    from domain.base import FleetAggregate

    found, todo = [], [FleetAggregate.Event]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("domain.") and "<locals>" not in cls.__qualname__:
            found.append(f"{cls.__module__}:{cls.__qualname__}")
    return found


def test_a_cipher_or_another_transcoder_turns_the_direct_decode_off() -> None:
    fleet = in_memory_fleet()
    mapper = fleet.mapper
    assert isinstance(mapper, FleetMapper)
    assert FleetMapper(mapper.transcoder, compressor=_Zip())._scanners is None
    transcoder = type(mapper.transcoder)()
    transcoder.decoder = json.JSONDecoder(object_hook=transcoder._decode_obj, parse_float=Decimal)
    assert FleetMapper(transcoder)._scanners is None


class _Zip:
    def compress(self, data: bytes) -> bytes:
        return data

    def decompress(self, data: bytes) -> bytes:
        return data


def test_a_transcoding_registered_later_is_decoded_as_registered() -> None:
    class Other(DateAsISO):
        def decode(self, data: str) -> date:
            return date(1999, 1, 1)

    mapper = in_memory_fleet().mapper
    assert isinstance(mapper, FleetMapper)
    stored = StoredEvent(ID, 1, DEVICE_TOPIC, _text(_report()))
    assert mapper.to_domain_event(stored).ship_date == date(2026, 3, 26)
    mapper.transcoder.register(Other())
    assert mapper.to_domain_event(stored).ship_date == date(1999, 1, 1)
    assert_same(mapper, stored)


@pytest.mark.parametrize(
    "text",
    [
        "3c0f1a62d5e04b0f8e1b9c7a0d2f4e61",
        "0" * 32,
        "f" * 32,
        "F" * 32,
        "٣" * 32,
        "g" * 32,
        "a" * 31,
        "a" * 33,
        "0x" + "a" * 30,
        "_" + "a" * 31,
        " " + "a" * 31,
        "3c0f1a62-d5e0-4b0f-8e1b-9c7a0d2f4e61",
        "{3c0f1a62d5e04b0f8e1b9c7a0d2f4e61}",
        "",
    ],
)
def test_uuid_from_hex_is_uuid(text: str) -> None:
    assert outcome_of(uuid_from_hex, text) == outcome_of(UUID, text)


def outcome_of(make: Any, text: str) -> Any:
    try:
        made = make(text)
    except Exception as error:
        return type(error), str(error)
    return type(made), made, made.int, made.is_safe, hash(made), str(made), made.version


# --- the replay's creation ------------------------------------------------------------------


def library_replay(events: list[Any]) -> Any:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def replayed(make: Any) -> tuple[str, Any]:
    try:
        aggregate = make()
    except Exception as error:
        return "error", (type(error), str(error))
    return "aggregate", (type(aggregate), _typed(vars(aggregate)))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_every_aggregate_of_every_scenario_replays_as_the_library_replays(
    scenario: Scenario,
) -> None:
    fleet = in_memory_fleet()
    scenario(fleet)
    by_id: dict[Any, list[StoredEvent]] = {}
    for stored in _stored_of(fleet):
        by_id.setdefault(stored.originator_id, []).append(stored)
    assert by_id
    for stored_events in by_id.values():
        events: list[Any] = [fleet.mapper.to_domain_event(e) for e in stored_events]
        ours = replayed(lambda events=events: replay(None, iter(events)))
        assert ours == replayed(lambda events=events: library_replay(events))
        assert ours[0] == "aggregate"
        for event in events:
            if type(event).mutate is CanInitAggregate.mutate:
                assert replayed(lambda e=event: created(e)) == replayed(
                    lambda e=event: e.mutate(None)
                )


def test_a_long_history_and_a_snapshot_replay_as_the_library() -> None:
    fleet = in_memory_fleet()
    ids = loads_history(fleet)
    for aggregate_id in ids[:2]:
        events = list(fleet.events.get(aggregate_id))
        ours = replay(None, iter(events))
        assert replayed(lambda ours=ours: ours) == replayed(
            lambda events=events: library_replay(events)
        )
        assert ours.version == len(events)
        shot = Device.Snapshot.take(ours)
        start = replay(None, iter([shot]))
        assert replayed(lambda start=start: start) == replayed(lambda shot=shot: shot.mutate(None))


class Named(Aggregate):
    def __init__(self, name: str) -> None:
        self.name = name


class Identified(Aggregate):
    def __init__(self, id: UUID, name: str) -> None:
        self.seen = id
        self.name = name


class Bare(Aggregate):
    def __init__(self) -> None:
        self.things: list[str] = []

    @event_method("Renamed")
    def rename(self, name: str) -> None:
        self.things.append(name)


class OwnBase(Bare):
    def __base_init__(self, originator_id: Any, originator_version: int, timestamp: Any) -> None:
        super().__base_init__(originator_id, originator_version, timestamp)
        self.own = True


@pytest.mark.parametrize(
    "make",
    [
        lambda: Named(name="n"),
        lambda: Identified(id=UUID(int=7), name="n"),
        Bare,
        OwnBase,
    ],
    ids=["named", "identified", "bare", "own_base"],
)
def test_creation_events_of_other_aggregate_shapes(make: Any) -> None:
    aggregate = make()
    if isinstance(aggregate, Bare):
        aggregate.rename("x")
    events = aggregate.collect_events()
    first = events[0]
    assert replayed(lambda: created(first)) == replayed(lambda: first.mutate(None))
    assert replayed(lambda: replay(None, iter(events))) == replayed(lambda: library_replay(events))
    for broken in ("timestamp", "originator_id", "originator_topic"):
        odd = _new_event(first, drop=broken)
        assert replayed(lambda odd=odd: created(odd)) == replayed(lambda odd=odd: odd.mutate(None))
    for topic in ("no.such:Thing", f"{__name__}:Named", 5):
        odd = _new_event(first, originator_topic=topic)
        assert replayed(lambda odd=odd: created(odd)) == replayed(lambda odd=odd: odd.mutate(None))


def _new_event(event: Any, drop: str = "", **changes: Any) -> Any:
    state = {k: v for k, v in vars(event).items() if k != drop}
    state.update(changes)
    made = object.__new__(type(event))
    object.__setattr__(made, "__dict__", state)
    return made


def test_the_device_is_created_without_the_library_mutate(monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = in_memory_fleet()
    ids = loads_history(fleet)
    events = list(fleet.events.get(ids[1]))
    called: list[Any] = []
    stock = CanInitAggregate.mutate

    def noted(self: Any, aggregate: Any) -> Any:
        called.append(self)
        return stock(self, aggregate)

    monkeypatch.setattr(CanInitAggregate, "mutate", noted)
    monkeypatch.setattr("handlers.snapshots._INIT_MUTATE", noted)
    assert replay(None, iter(events)).version == len(events)
    assert called == []
