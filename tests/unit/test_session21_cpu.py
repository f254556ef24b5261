"""Issue 11, session 21: the command path's cuts give what the old path gave.

- `Signal.set` on a flag already up leaves it up, from one thread and from many at
  once (a cut tried there, a `locked()` test before the release, was measured at about
  0.05 % and dropped; these tests stay).
- `FleetApplication._take_snapshots` takes the snapshots `Application._take_snapshots`
  takes (the same calls, or the same error), whatever the events' versions and the
  classes' intervals.
- `FleetApplication._save` hands `_record_encoded` the aggregates by their own ids, as
  the loop over `working.values()` did, a Working keyed otherwise included.
- `Working.changed` answers as its `any(...)` did.
- `private_copy` copies an empty list to a new empty list, in an object's state and in a
  dict, as the comprehension did.
"""

from __future__ import annotations

import pickle
import threading
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application, ProcessingEvent

from domain import Device
from domain.base import Cause
from handlers import PartnerFleet
from handlers.base import SNAPSHOT_INTERVAL, Working, _one_interval
from handlers.private_copy import private_copy
from infra.storage.group_commit import Signal
from tests.scenarios import in_memory_fleet

CAUSE = Cause(principal="ops@example.com", correlation_id="s21")


# --- Signal.set ---------------------------------------------------------------------------


def test_session21_a_signal_set_twice_stays_set() -> None:
    signal = Signal()
    assert not signal.is_set()
    assert not signal.wait(0.001)
    signal.set()
    signal.set()  # already up: nothing more, no error
    assert signal.is_set()
    assert signal.wait(0)
    assert signal.is_set()  # a wait hands the flag back up
    signal.set()
    assert signal.wait(0)


def test_session21_signals_set_by_many_threads_at_once_wake_their_waiter() -> None:
    for _ in range(30):
        signal = Signal()
        barrier = threading.Barrier(9)
        woken: list[bool] = []

        def setter(flag: Signal = signal, start: threading.Barrier = barrier) -> None:
            start.wait()
            flag.set()
            flag.set()

        def waiter(
            flag: Signal = signal, start: threading.Barrier = barrier, woken: list[bool] = woken
        ) -> None:
            start.wait()
            woken.append(flag.wait(5))

        threads = [threading.Thread(target=setter) for _ in range(8)]
        threads.append(threading.Thread(target=waiter))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert woken == [True]
        assert signal.is_set()


# --- _take_snapshots ----------------------------------------------------------------------


@dataclass
class Event:
    """Enough of a domain event for `_take_snapshots` (it has `mutate`: CanMutateProtocol)."""

    originator_id: UUID
    originator_version: int

    def mutate(self, aggregate: Any) -> Any:
        return aggregate


def device() -> Device:
    made = Device.register(
        CAUSE, serial=f"S21{uuid4().hex[:8]}", connection="direct_connect", customer_id="C21"
    )
    made.collect_events()
    return made


def snapshot_calls(
    app: PartnerFleet, method: Any, processing_event: ProcessingEvent[UUID]
) -> list[dict[str, Any]] | str:
    made: list[dict[str, Any]] = []
    app.take_snapshot = lambda **kw: made.append(kw)  # type: ignore[method-assign]
    try:
        method(app, processing_event)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return made


VERSIONS = [
    [],
    [1],
    [2, 3, 4],
    [SNAPSHOT_INTERVAL],
    [SNAPSHOT_INTERVAL - 1, SNAPSHOT_INTERVAL, SNAPSHOT_INTERVAL + 1],
    [3 * SNAPSHOT_INTERVAL],
    [0],
]
INTERVALS: list[dict[type[Any], int] | None] = [
    None,  # the application's own
    {Device: 3},
    {Device: 3, PartnerFleet: 5},
    {Device: 0},
    {},
]


@pytest.mark.parametrize("versions", VERSIONS)
@pytest.mark.parametrize("intervals", INTERVALS)
@pytest.mark.parametrize("found", [True, False])
def test_session21_snapshots_are_taken_as_the_library_takes_them(
    versions: list[int], intervals: dict[type[Any], int] | None, found: bool
) -> None:
    app = in_memory_fleet()
    if intervals is not None:
        app.snapshotting_intervals = intervals  # type: ignore[misc]
    aggregate = device()
    processing_event: ProcessingEvent[UUID] = ProcessingEvent()
    # An event of an aggregate not in the processing event is skipped by the library.
    originator = aggregate.id if found else uuid4()
    processing_event.events.extend(Event(originator, v) for v in versions)
    processing_event.aggregates[aggregate.id] = aggregate
    ours = snapshot_calls(app, PartnerFleet._take_snapshots, processing_event)
    theirs = snapshot_calls(app, Application._take_snapshots, processing_event)
    assert ours == theirs


def test_session21_no_snapshot_store_takes_none() -> None:
    app = in_memory_fleet()
    app.snapshots = None
    aggregate = device()
    processing_event: ProcessingEvent[UUID] = ProcessingEvent()
    processing_event.events.append(Event(aggregate.id, SNAPSHOT_INTERVAL))
    processing_event.aggregates[aggregate.id] = aggregate
    assert snapshot_calls(app, PartnerFleet._take_snapshots, processing_event) == []


@pytest.mark.parametrize(
    ("intervals", "one"),
    [
        ({Device: 50, PartnerFleet: 50}, 50),
        ({Device: 50, PartnerFleet: 7}, None),
        ({Device: 0}, None),
        ({Device: -2}, None),
        ({Device: 2.0}, None),
        ({Device: True}, None),
    ],
)
def test_session21_one_interval(intervals: dict[type[Any], Any], one: int | None) -> None:
    assert _one_interval(intervals) == one


# --- _save's aggregates -------------------------------------------------------------------


def saved_aggregates(app: PartnerFleet, working: Working) -> list[tuple[UUID, Any]]:
    seen: list[tuple[UUID, Any]] = []

    def record(encoded: Any, processing_event: ProcessingEvent[UUID], stream: Any = None) -> Any:
        seen.extend(processing_event.aggregates.items())
        return []

    app._record_encoded = record  # type: ignore[method-assign]
    app._save(working, None)
    return seen


def test_session21_the_save_keys_its_aggregates_by_their_ids() -> None:
    app = in_memory_fleet()
    first, second = device(), device()
    working = Working(app)
    working[first.id] = first
    working[UUID(str(second.id))] = second  # an equal id, another object
    assert saved_aggregates(app, working) == [(first.id, first), (second.id, second)]


def test_session21_a_working_keyed_otherwise_is_saved_by_the_aggregates_ids() -> None:
    app = in_memory_fleet()
    first, second = device(), device()
    working = Working(app)
    working[first.id] = first
    working[uuid4()] = second  # (no command does this: the old loop's answer all the same)
    saved = saved_aggregates(app, working)
    assert saved == [(first.id, first), (second.id, second)]
    assert all(key is aggregate.id for key, aggregate in saved)


# --- Working.changed ----------------------------------------------------------------------


def test_session21_working_changed_as_before() -> None:
    def before(w: Working) -> bool:
        return bool(w.encoded) or any(a.pending_events for a in w.values())

    app = in_memory_fleet()
    working = Working(app)
    assert working.changed is before(working) is False
    quiet = device()
    working[quiet.id] = quiet
    assert working.changed is before(working) is False
    busy = Device.register(CAUSE, serial="S21BUSY", connection="direct_connect", customer_id="C21")
    working[busy.id] = busy
    assert working.changed is before(working) is True
    working = Working(app)
    working.encoded[uuid4()] = object()
    assert working.changed is before(working) is True


# --- private_copy of empty lists ----------------------------------------------------------


class Plain:
    items: list[Any]
    nested: dict[str, Any]
    first: list[Any]
    second: list[Any]


def test_session21_empty_lists_are_copied_to_new_lists() -> None:
    value = Plain()
    value.items = []
    value.nested = {"a": [], "b": [[]], "c": [1]}
    copied = private_copy(value)
    assert vars(copied) == vars(pickle.loads(pickle.dumps(value)))
    assert copied.items == []
    assert copied.items is not value.items
    for key in ("a", "b", "c"):
        assert copied.nested[key] is not value.nested[key]
    assert copied.nested["b"][0] is not value.nested["b"][0]
    copied.items.append(1)
    copied.nested["a"].append(1)
    assert value.items == []
    assert value.nested["a"] == []


def test_session21_an_empty_list_held_twice_stays_one_list() -> None:
    shared: list[Any] = []
    value = Plain()
    value.first = shared
    value.second = shared
    copied = private_copy(value)
    assert copied.first is copied.second
    assert copied.first is not shared


# --- private_copy of long dicts and lists of shared values ----------------------------------


class Frozen:
    pass


LONG_CASES: dict[str, Any] = {
    "texts by text": {f"user{i}@example.com": "user" for i in range(50)},
    "mixed shared values": {f"k{i}": v for i, v in enumerate([1, "a", None, True, 2.5, b"x"] * 3)},
    "a list value last": {**{f"k{i}": i for i in range(10)}, "last": [1, 2]},
    "a dict value first": {"first": {"a": []}, **{f"k{i}": i for i in range(10)}},
    "tuple keys": {(i, "x"): i for i in range(10)},
    "uuid keys": {uuid4(): i for i in range(10)},
    "object value in the middle": {
        **{f"a{i}": i for i in range(5)},
        "obj": Frozen(),
        **{f"b{i}": i for i in range(5)},
    },
    "exactly MANY": {f"k{i}": i for i in range(8)},
    "one fewer": {f"k{i}": i for i in range(7)},
}


@pytest.mark.parametrize("name", list(LONG_CASES))
def test_session21_long_dicts_copy_as_pickle_does(name: str) -> None:
    value = Plain()
    value.nested = LONG_CASES[name]
    value.items = list(LONG_CASES[name].values())
    copied = private_copy(value)
    round_trip = pickle.loads(pickle.dumps(value))
    assert list(copied.nested) == list(round_trip.nested)  # the same keys, in order
    assert [type(v) for v in copied.nested.values()] == [
        type(v) for v in round_trip.nested.values()
    ]
    assert copied.nested is not value.nested
    assert copied.items is not value.items
    for key, original in value.nested.items():
        made = copied.nested[key]
        if type(original) in (list, dict, Frozen):
            assert made is not original  # mutable: a copy of its own
        else:
            assert made is original  # shared, as the loop shared it
    copied.nested["new"] = 1
    copied.items.append(1)
    assert "new" not in value.nested
    assert len(value.items) == len(LONG_CASES[name])


def test_session21_long_lists_keep_their_aliasing() -> None:
    inner: list[int] = [1]
    value = Plain()
    value.items = [inner] * 10  # one list held ten times
    value.first = list(range(20))
    value.second = value.first  # a long list of shared values held twice
    copied = private_copy(value)
    assert all(item is copied.items[0] for item in copied.items)
    assert copied.items[0] is not inner
    assert copied.first is copied.second
    assert copied.first is not value.first
    assert copied.first == value.first
    nested = {"many": list(range(20))}
    as_dict = Plain()
    as_dict.nested = {"a": nested, "b": nested}
    again = private_copy(as_dict)
    assert again.nested["a"] is again.nested["b"]
    assert again.nested["a"]["many"] is not nested["many"]
