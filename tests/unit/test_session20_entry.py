"""Issue 11, session 20: the command entry and the making of events, with fewer steps.

`FleetAggregate._record` builds an event directly where that gives the library's very
event (`domain.base._plain_fields`); every scenario stores the same events either way, in
the same field order, and any other call still goes the library's way with its errors.
The binder's positional shortcut binds as inspect; texts checked directly (`checked`
without `checked_argument`'s call) come out as before; the log context is structlog's own
variables; a policy's position is still taken by its command alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import structlog
from eventsourcing.persistence import Tracking

from domain import base as domain_base
from domain.base import Cause, FleetAggregate, NotFoundError
from domain.device import Device
from domain.text import TextError, checked
from handlers import PartnerFleet, base
from handlers.access import Role
from handlers.arguments import checked_argument
from handlers.base import COMMANDS, Working, _binder, command
from handlers.devices import NewDevice, PartnerChoice
from tests.actors import customer
from tests.scenarios import OPS, SCENARIOS, Scenario, in_memory_fleet
from tests.unit.test_command_binding import SIGNATURES, by_inspect

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


# --- the entry: binding, the argument checks, the context of a command ---------------------


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_positional_calls_with_the_rest_defaulted_bind_as_inspect_binds_them(name: str) -> None:
    """The binder's shortcut (positional arguments only): for each count of them, the
    arguments inspect binds, in the signature's order, or None where inspect refuses."""
    signature = SIGNATURES[name]
    rest = list(signature.parameters.values())[2:]
    if any(p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in rest):
        return
    positional = [p.name for p in rest if p.kind is p.POSITIONAL_OR_KEYWORD]
    bind = _binder(signature)
    for n in range(len(positional) + 1):
        args = tuple(f"v-{p}" for p in positional[:n])
        expected = by_inspect(signature, args, {})
        got = bind(args, {})
        assert got == expected, args
        assert list(got or {}) == list(expected or {}), "in the signature's order"


class Text(str):
    """A str subclass: checked as text, as before."""


@pytest.mark.parametrize(
    "value",
    [
        "LOC-1",
        "Cafe\u0301",  # an identifier: NFC
        ["A", "Cafe\u0301", 3, None],
        ("A", "B"),
        Text("Cafe\u0301"),
        [Text("x"), ["Cafe\u0301"]],
    ],
    ids=["plain", "nfc", "list", "tuple", "subclass", "nested"],
)
def test_texts_checked_directly_give_what_checked_argument_gave(value: Any) -> None:
    got = checked_argument("serial", value)
    assert got == _by_field(value)
    assert type(got) is type(value) or isinstance(value, str)
    if got == value and not isinstance(value, str):
        assert got is value  # unchanged: passed on as it came


def _by_field(value: Any) -> Any:
    """The checks as before: each text `checked`, lists and tuples rebuilt item by item."""
    if isinstance(value, str):
        return checked("serial", value)
    if isinstance(value, list | tuple):
        return type(value)(_by_field(v) for v in value)
    return value


def test_a_bad_text_in_a_list_or_a_model_is_refused_naming_its_field() -> None:
    with pytest.raises(TextError, match="serials"):
        checked_argument("serials", ["ok", "bad\x00"])
    with pytest.raises(TextError, match="location_id"):
        checked_argument("partner", PartnerChoice(location_id="L\x00", role="bad\x01"))
    with pytest.raises(TextError, match="role"):  # the first refused field, in order
        checked_argument("partner", PartnerChoice(location_id="L1", role="bad\x01"))
    nfc = checked_argument("partner", PartnerChoice(location_id="Cafe\u0301"))
    assert nfc.location_id == "Caf\u00e9"


def test_a_command_gets_its_identifiers_in_nfc_and_the_callers_objects_stay() -> None:
    fleet = in_memory_fleet()
    got: list[dict[str, Any]] = []
    serials = ["Cafe\u0301"]

    def probe(self: Any, w: Working, actor: Any, location_id: str, names: list[str]) -> None:
        got.append({"location_id": location_id, "names": names})

    run = command(Role.OPERATOR)(probe)
    try:
        run(fleet, OPS, "Cafe\u0301", serials)
    finally:
        COMMANDS.pop("probe", None)
    assert got == [{"location_id": "Caf\u00e9", "names": ["Caf\u00e9"]}]
    assert serials == ["Cafe\u0301"]  # the caller's list is not changed


def test_the_logged_variables_are_structlogs_own() -> None:
    tokens = structlog.contextvars.bind_contextvars(principal="p", correlation_id="c")
    try:
        assert tokens["principal"].var is base._LOGGED_PRINCIPAL
        assert tokens["correlation_id"].var is base._LOGGED_CORRELATION_ID
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def test_a_policys_position_is_taken_by_the_command_it_calls_alone() -> None:
    fleet = in_memory_fleet()
    tracking = Tracking("policy-20", 1)
    seen: list[tuple[str, Tracking | None, Tracking | None]] = []

    def inner(w: Working) -> None:
        seen.append(("inner", w.tracking, base._tracking.get()))

    def outer(w: Working) -> None:
        seen.append(("outer", w.tracking, base._tracking.get()))
        fleet._run("inner", OPS, inner)

    fleet._run("plain", OPS, lambda w: seen.append(("plain", w.tracking, base._tracking.get())))
    with fleet.tracked(tracking):
        fleet._run("outer", OPS, outer)
        assert base._tracking.get() is tracking
    assert base._tracking.get() is None
    assert seen == [
        ("plain", None, None),
        ("outer", tracking, None),
        ("inner", None, None),
    ]
    assert fleet.recorder.max_tracking_id("policy-20") == 1


def test_a_working_starts_from_the_class_values_and_keeps_what_it_is_given() -> None:
    fleet = in_memory_fleet()
    plain = Working(fleet)
    assert (plain.attempt, plain.cache, plain.tracking, plain.stream) == (1, None, None, None)
    assert plain.optimistic
    assert not plain.results_hold_none
    tracking = Tracking("p", 2)
    given = Working(fleet, 3, cache=fleet.aggregate_cache, tracking=tracking)
    assert (given.attempt, given.cache, given.tracking) == (3, fleet.aggregate_cache, tracking)
    assert not given.optimistic
    assert Working.attempt == 1  # nothing set on the class
    assert Working.tracking is None


# --- command bodies: a device's id from its normal serial, refusals made when refused -------


def test_a_serial_in_any_form_names_its_device_and_an_unknown_one_is_refused_as_before() -> None:
    fleet = in_memory_fleet()
    owner = customer("C20")
    fleet.register_devices(owner, "C20", [NewDevice(serial="AB12", connection="direct_connect")])
    fleet.grant_consent(owner, "C20", [" ab12 "])  # ASCII: its normal form is its own
    fleet.withdraw_consent(owner, "C20", ["\uff21\uff22\uff11\uff12"])  # full-width: NFKC
    assert fleet.device("AB12").consent is None
    with pytest.raises(NotFoundError) as missing:
        fleet.grant_consent(owner, "C20", ["zz99"])
    assert str(missing.value) == "No device with serial number 'ZZ99'."
    assert missing.value.args[0].template == "No device with serial number {serial!r}."
    with pytest.raises(NotFoundError) as other:
        fleet.grant_consent(customer("C21"), "C21", ["AB12"])  # another customer's
    assert str(other.value) == "No device with serial number 'AB12'."
    with pytest.raises(NotFoundError, match="No partner has Location ID 'NOPE'"):
        fleet.link_devices(owner, "C20", ["AB12"], PartnerChoice(location_id="NOPE"))
