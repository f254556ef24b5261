"""Session 20's attack on the command path's own code (events made directly, the entry's
binder and checks, the save's frozen records): each compared with the library's or the
old path's answer, over every event class of domain/ and every declared command."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import pkgutil
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import Mapper, Notification, StoredEvent

import domain
from domain import base as domain_base
from domain.base import Cause, FleetAggregate, NotFoundError
from domain.text import TextError
from handlers.access import TENANT_ROLES, Role, missing_tenant, owns
from handlers.arguments import checked_argument
from handlers.base import COMMANDS, _admitted, _binder
from handlers.transcoding import notification_of, stored_event
from tests.actors import customer

CAUSE = Cause("attacker@example.com", "corr-attack")


def _aggregate_classes() -> list[type[FleetAggregate]]:
    for info in pkgutil.iter_modules(domain.__path__):
        importlib.import_module(f"domain.{info.name}")
    found: list[type[FleetAggregate]] = []
    todo: list[type[FleetAggregate]] = [FleetAggregate]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("domain.") and sub not in found:
                found.append(sub)
                todo.append(sub)
    return found


def _events_of(aggregate_class: type[FleetAggregate]) -> list[type[Any]]:
    return sorted(
        {
            value
            for name in dir(aggregate_class)
            if isinstance(value := getattr(aggregate_class, name), type)
            and issubclass(value, FleetAggregate.Event)
            and dataclasses.is_dataclass(value)
        },
        key=lambda c: c.__qualname__,
    )


PAIRS = [(a, e) for a in _aggregate_classes() for e in _events_of(a)]


def _bare(aggregate_class: type[FleetAggregate]) -> Any:
    made: Any = object.__new__(aggregate_class)
    made._id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    made._version = 3
    made._created_on = made._modified_on = None
    made._pending_events = []
    return made


# Values of every kind an event holds: a dataclass value, a date, a decimal, None, nested.
@dataclasses.dataclass(frozen=True)
class _Value:
    a: int
    b: list[str]


RICH: list[Any] = [_Value(1, ["x"]), date(2025, 6, 1), Decimal("1.10"), None, {"k": [1]}]
PLAIN: list[Any] = ["text", date(2025, 6, 1), 3, None, {"k": [1, "v"]}, ["a"], True]


def _values(names: tuple[str, ...], kinds: list[Any]) -> dict[str, Any]:
    return {name: kinds[i % len(kinds)] for i, name in enumerate(names)}


@functools.cache
def _mapper() -> Any:
    from handlers import PartnerFleet

    return PartnerFleet(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper


def _stored_outcome(make: Any, event: Any) -> Any:
    try:
        made = make(event)
    except Exception as error:
        return (type(error), str(error))
    return (type(made), list(vars(made).items()))


def _hashed(value: Any) -> Any:
    try:
        return hash(value)
    except TypeError as error:
        return str(error)


def test_the_attack_enumerates_every_event_class_of_domain() -> None:
    assert len(PAIRS) >= 40


@pytest.mark.parametrize(
    ("aggregate_class", "event_class"),
    PAIRS,
    ids=[f"{a.__name__}.{e.__qualname__}" for a, e in PAIRS],
)
def test_every_event_class_made_directly_is_the_librarys_event(
    aggregate_class: type[FleetAggregate], event_class: type[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever its apply does (here nothing), `_record` gives the event and aggregate
    that `trigger_event` gives, or the same error, for each event class of each
    aggregate class (subclasses included), its own fields given in order and reversed."""
    monkeypatch.setattr(event_class, "apply", lambda self, aggregate: None)
    names = tuple(f.name for f in dataclasses.fields(event_class))[5:]
    calls = [(names, RICH), (tuple(reversed(names)), RICH), (names[:-1], RICH), (names, PLAIN)]
    for given, kinds in calls:
        fields = _values(given, kinds)
        direct, library = _bare(aggregate_class), _bare(aggregate_class)
        outcomes: list[Any] = []
        for target, way in ((direct, "direct"), (library, "library")):
            try:
                if way == "direct":
                    target._record(event_class, CAUSE, **fields)
                else:
                    target.trigger_event(
                        event_class,
                        principal=CAUSE.principal,
                        correlation_id=CAUSE.correlation_id,
                        **fields,
                    )
                outcomes.append(None)
            except Exception as error:
                outcomes.append((type(error), str(error)))
        assert outcomes[0] == outcomes[1]
        if outcomes[0] is not None:
            continue
        (mine,), (theirs,) = direct.pending_events, library.pending_events
        object.__setattr__(theirs, "timestamp", mine.timestamp)
        assert type(mine) is type(theirs)
        assert list(vars(mine).items()) == list(vars(theirs).items())
        assert mine == theirs
        assert _hashed(mine) == _hashed(theirs)
        with pytest.raises(dataclasses.FrozenInstanceError):
            mine.originator_version = 9
        assert direct.version == library.version == 4
        assert direct.modified_on == mine.timestamp
        # stored: our mapper on our event, the stock mapper on the library's, same bytes
        mapper = _mapper()
        assert _stored_outcome(mapper.to_stored_event, mine) == _stored_outcome(
            functools.partial(Mapper.to_stored_event, mapper), theirs
        )


def test_an_event_recorded_for_a_subclass_then_its_base_goes_each_its_own_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`_PLAIN_EVENTS` holds one aggregate class per event class: whichever of a base and
    its subclass (one overriding `version`) records an event first, each gets the
    library's event and aggregate."""

    class Base(FleetAggregate):
        @dataclasses.dataclass(frozen=True)
        class Said(FleetAggregate.Event):
            words: str

            def apply(self, aggregate: Any) -> None:
                aggregate.words = self.words

    class Sub(Base):
        pass

    class Overriding(Base):
        @property
        def version(self) -> int:
            return int(self._version)

        @version.setter
        def version(self, value: int) -> None:
            self._version = value

    for order in ((Sub, Base, Overriding), (Base, Overriding, Sub)):
        monkeypatch.setattr(domain_base, "_PLAIN_EVENTS", {})
        for cls in order:
            mine, theirs = _bare(cls), _bare(cls)
            outcomes: list[Any] = []
            for target, direct in ((mine, True), (theirs, False)):
                try:
                    if direct:
                        target._record(Base.Said, CAUSE, words="w")
                    else:
                        target.trigger_event(
                            Base.Said,
                            principal=CAUSE.principal,
                            correlation_id=CAUSE.correlation_id,
                            words="w",
                        )
                    outcomes.append(None)
                except Exception as error:
                    outcomes.append((type(error), str(error)))
            assert outcomes[0] == outcomes[1], cls
            if outcomes[0] is None:
                assert mine.words == "w"
                assert mine.version == theirs.version == 4
                (event,) = mine.pending_events
                assert list(vars(event))[:5] == list(domain_base._COMMON_FIELDS)
        assert domain_base._PLAIN_EVENTS[Base.Said][1] is order[0]  # the first, directly


# -- the binder, against inspect, for every command and every shape of call ------------


def _calls(signature: inspect.Signature) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    rest = list(signature.parameters.values())[2:]
    names = [p.name for p in rest]
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for n in range(len(names) + 2):
        args = tuple(f"a{i}" for i in range(n))
        calls.append((args, {}))
        for k in range(len(names)):
            kwargs = {name: f"k{name}" for name in names[k:]}
            calls.append((args, kwargs))
            calls.append((args, {**kwargs, "unknown": 1}))
            calls.append((args, dict(list(kwargs.items())[1:])))
            if names[k:]:
                calls.append((args, {names[-1]: "only"}))
    calls.append(((), {name: name for name in reversed(names)}))
    return calls


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_shape_of_call_binds_as_inspect_binds_it_or_goes_to_inspect(name: str) -> None:
    from handlers import PartnerFleet

    run = getattr(PartnerFleet, name)
    signature: inspect.Signature = run.__signature__
    bind = _binder(signature)
    for args, kwargs in _calls(signature):
        mine = bind(args, dict(kwargs))
        try:
            bound = signature.bind(None, None, *args, **kwargs)
        except TypeError:
            assert mine is None, (args, kwargs)
            continue
        bound.apply_defaults()
        theirs = dict(list(bound.arguments.items())[2:])
        if mine is not None:
            assert list(mine.items()) == list(theirs.items()), (args, kwargs)


# -- hostile texts: the checks in place against the old dict of checked_argument -------


class Sneaky(str):
    """A str subclass whose methods lie."""

    def __len__(self) -> int:
        return 1

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = str.__hash__

    def isascii(self) -> bool:
        return True


class Listish(list[Any]):
    pass


HOSTILE: list[Any] = [
    "a\x00b",
    "\ud800",
    "Cafe\u0301",
    "x" * 100_000,
    b"bytes",
    7,
    None,
    True,
    1.5,
    Sneaky("e\u0301" * 600),
    Sneaky("ok"),
    Listish(["Cafe\u0301", "b"]),
    Listish(["a", "\ud800"]),
    ("Cafe\u0301",),
    [["Cafe\u0301"]],
    {"k": "\x00"},
    {"k": "v"},
    uuid.uuid4(),
    object(),
]


def _old_admitted(name: str, tenant: str | None, actor: Any, arguments: dict[str, Any]) -> Any:
    checked = {n: checked_argument(n, v) for n, v in arguments.items()}
    checked_actor = checked_argument("actor", actor)
    if tenant is not None and actor.role in TENANT_ROLES:
        owned = str(checked[tenant])
        if not owns(checked_actor, owned):
            raise NotFoundError(missing_tenant(tenant, owned))
    return checked_actor, checked


def _outcome(call: Any) -> Any:
    try:
        actor, arguments = call()
    except Exception as error:
        return (type(error), str(error))
    return (actor, [(k, type(v), v) for k, v in arguments.items()])


@pytest.mark.parametrize("value", HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])
@pytest.mark.parametrize("field", ["customer_id", "serial", "note", "messages", "location_id"])
def test_hostile_values_are_admitted_or_refused_as_the_old_path_did(field: str, value: Any) -> None:
    actor = customer("C1")
    allowed = frozenset({Role.CUSTOMER_ADMIN})
    for tenant in (None, "customer_id"):
        arguments = {"customer_id": "C1", field: value, "last": "Cafe\u0301"}
        old = _outcome(lambda: _old_admitted("cmd", tenant, actor, dict(arguments)))  # noqa: B023
        new = _outcome(lambda: _admitted("cmd", allowed, tenant, actor, dict(arguments)))  # noqa: B023
        assert new == old


def test_another_customers_id_is_not_found_in_any_form() -> None:
    actor = customer("C1")
    allowed = frozenset({Role.CUSTOMER_ADMIN})
    for other in ("C2", "C2\x00", "c1", " C1", "\ud800"):
        with pytest.raises((NotFoundError, TextError)) as refused:
            _admitted("cmd", allowed, "customer_id", actor, {"customer_id": other})
        with pytest.raises(type(refused.value)) as before:
            _old_admitted("cmd", "customer_id", actor, {"customer_id": other})
        assert str(refused.value) == str(before.value)


# -- the save's frozen records ----------------------------------------------------------


def test_stored_events_and_notifications_made_by_dict_are_the_dataclasses_own() -> None:
    originator = uuid.uuid4()
    made = stored_event(originator, 3, "t:T", b"{}")
    theirs = StoredEvent(originator_id=originator, originator_version=3, topic="t:T", state=b"{}")
    assert made == theirs
    assert hash(made) == hash(theirs)
    assert list(vars(made).items()) == list(vars(theirs).items())
    assert repr(made) == repr(theirs)
    note = notification_of(made, 42)
    their_note = Notification(
        id=42, originator_id=originator, originator_version=3, topic="t:T", state=b"{}"
    )
    assert note == their_note
    assert hash(note) == hash(their_note)
    assert list(vars(note).items()) == list(vars(their_note).items())
    assert {note, their_note} == {note}
    assert note != made  # a Notification is no StoredEvent's equal, as before
    for frozen in (made, note):
        with pytest.raises(dataclasses.FrozenInstanceError):
            frozen.topic = "changed"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            del frozen.topic
    assert dataclasses.replace(note, id=43).id == 43


# -- the save: insert_events giving no ids, the stock repository cache on ---------------


@pytest.mark.parametrize("no_ids", [None, []])
def test_a_save_given_no_ids_caches_and_records_as_applications_record(
    no_ids: list[int] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recorder whose insert_events gives no ids (None or []), with the library's
    repository cache on and no fast-forward: `Application._record` (the old path of a
    command with no encoded events) gave no recordings and still put the aggregates in
    the repository cache; the own record path does the same."""
    from eventsourcing.application import Application

    from handlers import PartnerFleet
    from tests.unit.test_session20_save_path import IN_MEMORY, processing

    env = {**IN_MEMORY, "AGGREGATE_CACHE_MAXSIZE": "10", "AGGREGATE_CACHE_FASTFORWARD": "n"}
    apps = PartnerFleet(env=env), PartnerFleet(env=env)
    for app in apps:
        assert app.repository.cache is not None
        assert not app.repository.fastforward
        monkeypatch.setattr(app.recorder, "insert_events", lambda *a, **k: no_ids)
    ours_event, theirs_event = processing(), processing()
    ours = apps[0]._record_encoded([], ours_event)
    theirs = Application._record(apps[1], theirs_event)
    assert ours == theirs == []
    ((ours_id, ours_aggregate),) = ours_event.aggregates.items()
    ((theirs_id, theirs_aggregate),) = theirs_event.aggregates.items()
    assert apps[1].repository.cache is not None
    assert apps[1].repository.cache.get(theirs_id) is theirs_aggregate
    assert apps[0].repository.cache is not None
    assert apps[0].repository.cache.get(ours_id) is ours_aggregate


# -- a model's or dataclass's text fields named as feed messages ------------------------


@dataclasses.dataclass(frozen=True)
class _Carrying:
    name: str
    messages: str
    reports: str


def _old_changed(fields: dict[str, Any]) -> dict[str, Any]:
    """`_changed` before session 20: each str field through `checked_argument`."""
    checked_texts = {f: checked_argument(f, v) for f, v in fields.items() if isinstance(v, str)}
    return {f: v for f, v in checked_texts.items() if v is not fields[f]}


def test_a_field_named_as_feed_messages_is_passed_on_unchecked_as_before() -> None:
    """`checked_argument` passes a value named `messages` or `reports` on unchecked (feed
    messages are validated one by one as they are taken); a dataclass's or model's field
    of that name was checked through it, so unchecked too."""
    from handlers.arguments import _changed

    for value in ("\ud800", "a\x00b", "x" * 100_000, "Cafe\u0301"):
        fields = {"name": "Cafe\u0301", "messages": value, "reports": value}
        assert _changed(dict(fields)) == _old_changed(dict(fields))
        carried = _Carrying("n", value, value)
        assert checked_argument("carried", carried) is carried
