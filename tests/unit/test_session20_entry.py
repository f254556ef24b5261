"""Issue 11, session 20: the command entry and the making of events, with fewer steps.

`FleetAggregate._record` builds an event directly where that gives the library's very
event (`domain.base._plain_fields`); every scenario stores the same events either way, in
the same field order, and any other call still goes the library's way with its errors.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain import base as domain_base
from domain.base import Cause, FleetAggregate
from domain.device import Device
from handlers import PartnerFleet
from tests.scenarios import SCENARIOS, Scenario, in_memory_fleet

CAUSE = Cause("someone@example.com", "corr-20")


def _stored(fleet: PartnerFleet) -> list[tuple[Any, ...]]:
    """Every stored event: its topic, id, version and state with the timestamp's place kept
    (its value is the clock's, as a salted verifier's is random), keys in stored order."""
    rows = []
    for n in fleet.recorder.select_notifications(start=1, limit=1_000_000):
        state = json.loads(n.state)
        assert isinstance(state.get("timestamp"), dict | str)
        state["timestamp"] = "<time>"
        for key in state:  # salted hashes (a cPIN's verifier) differ run by run
            if key.endswith("_verifier"):
                state[key] = "<salted>"
        rows.append((n.topic, n.originator_id, n.originator_version, list(state.items())))
    return rows


def _run(scenario: Scenario) -> list[tuple[Any, ...]]:
    fleet = in_memory_fleet()
    scenario(fleet)
    return _stored(fleet)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_every_scenario_stores_the_same_events_as_the_library_makes(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = _run(scenario)
    with monkeypatch.context() as m:
        m.setattr(domain_base, "_PLAIN_EVENTS", {})
        m.setattr(domain_base, "_plain_fields", lambda e, a: ((), None))
        library = _run(scenario)
    assert direct == library


def _device() -> Device:
    return Device.register(CAUSE, serial="SN20", connection="direct_connect", customer_id="C1")


def _pending(device: Device) -> list[tuple[type[Any], list[tuple[str, Any]]]]:
    return [(type(e), list(vars(e).items())) for e in device.pending_events]


def _both(record: Any) -> tuple[Device, Device]:
    """The same calls on two devices, the second by the library's way; timestamps aligned."""
    direct, library = _device(), _device()
    record(direct)
    saved = (domain_base._PLAIN_EVENTS, domain_base._plain_fields)
    domain_base._PLAIN_EVENTS = {}
    domain_base._plain_fields = lambda e, a: ((), None)  # type: ignore[assignment]
    try:
        record(library)
    finally:
        domain_base._PLAIN_EVENTS, domain_base._plain_fields = saved
    for mine, theirs in zip(direct.pending_events, library.pending_events, strict=True):
        object.__setattr__(theirs, "timestamp", mine.timestamp)
    library._created_on, library._modified_on = direct.created_on, direct.modified_on
    return direct, library


def test_an_event_made_directly_is_the_librarys_event_and_changes_the_aggregate_alike() -> None:
    def record(device: Device) -> None:
        device.link_partner(CAUSE, "LOC-1", "reseller", "reseller")
        device.grant_consent(CAUSE, "2025-06")
        device.withdraw_consent(CAUSE)

    direct, library = _both(record)
    assert domain_base._PLAIN_EVENTS[Device.PartnerLinked][1] is Device  # the direct way
    assert _pending(direct) == _pending(library)
    assert [e.originator_version for e in direct.pending_events] == [1, 2, 3, 4]
    mine, theirs = dict(vars(direct)), dict(vars(library))
    assert mine.pop("_pending_events") == theirs.pop("_pending_events")
    assert mine == theirs
    assert direct.version == 4
    assert direct.modified_on == direct.pending_events[-1].timestamp


def test_fields_given_out_of_order_are_stored_in_the_events_field_order() -> None:
    direct, library = _both(
        lambda d: d._record(Device.PartnerLinked, CAUSE, role="reseller", location_id="L9")
    )
    assert list(vars(direct.pending_events[1])) == [
        "originator_id",
        "originator_version",
        "timestamp",
        "principal",
        "correlation_id",
        "location_id",
        "role",
    ]
    assert _pending(direct) == _pending(library)


@pytest.mark.parametrize(
    "fields",
    [{"location_id": "L9"}, {"location_id": "L9", "role": "reseller", "extra": 1}, {}],
    ids=["missing", "unknown", "none"],
)
def test_a_call_the_event_does_not_fit_is_refused_as_the_library_refuses_it(
    fields: dict[str, Any],
) -> None:
    with pytest.raises(TypeError) as direct:
        _device()._record(Device.PartnerLinked, CAUSE, **fields)
    with pytest.raises(TypeError) as library:
        _device().trigger_event(
            Device.PartnerLinked,
            principal=CAUSE.principal,
            correlation_id=CAUSE.correlation_id,
            **fields,
        )
    assert str(direct.value) == str(library.value)


def test_a_refusal_in_apply_leaves_the_aggregate_as_it_was() -> None:
    device = _device()
    with pytest.raises(KeyError):  # no partner linked in that role
        device._record(Device.PartnerUnlinked, CAUSE, location_id="L9", role="reseller")
    assert device.version == 1
    assert len(device.pending_events) == 1


class Probed(FleetAggregate):
    """An aggregate whose events the direct way must leave to the library."""

    count = 0  # no annotation: an annotated one would be a field of Created

    class Converted(FleetAggregate.Event):
        """An event whose `__post_init__` changes a field: not a plain one."""

        amount: int

        def __post_init__(self) -> None:
            object.__setattr__(self, "amount", int(self.amount))

        def apply(self, aggregate: Probed) -> None:
            aggregate.count += self.amount

    class Counted(FleetAggregate.Event):
        amount: int

        def apply(self, aggregate: Probed) -> None:
            aggregate.count += self.amount


class Overriding(Probed):
    """An aggregate with its own `trigger_event`: it is called for each of its events."""

    triggered = 0

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        self.triggered += 1
        super().trigger_event(event_class, **kwargs)


def test_events_that_are_not_plain_and_aggregates_of_other_classes_go_the_librarys_way() -> None:
    probed = Probed._create(
        Probed.Created, id=Device.id_for("P1"), principal="p", correlation_id="c"
    )
    probed._record(Probed.Converted, CAUSE, amount="3")
    assert domain_base._PLAIN_EVENTS[Probed.Converted][1] is None
    assert probed.count == 3
    assert vars(probed.pending_events[-1])["amount"] == 3
    probed._record(Probed.Counted, CAUSE, amount=2)
    assert domain_base._PLAIN_EVENTS[Probed.Counted][1] is Probed
    assert probed.count == 5
    assert probed.version == 3
    assert domain_base._plain_fields(Probed.Counted, Overriding) == (("amount",), None)
    overriding = Overriding._create(
        Overriding.Created, id=Device.id_for("P2"), principal="p", correlation_id="c"
    )
    overriding._record(Overriding.Counted, CAUSE, amount=4)
    assert overriding.triggered == 1
    assert overriding.count == 4
    assert domain_base._plain_fields(Device.PartnerLinked, Device) == (
        ("location_id", "role"),
        Device,
    )
