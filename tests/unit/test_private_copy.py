"""Session 17: the aggregate cache's private copies (handlers/private_copy.py).

A copy equals a pickle round trip of every aggregate the scenarios make, shares nothing
that can change with its original (so a mutation of either never reaches the other),
keeps the original's own sharing, and falls back to deepcopy for what it does not know.
"""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import Device
from domain.base import Msg
from domain.consent import CURRENT_CONSENT_TEXT, ConsentState
from handlers import PartnerFleet
from handlers.aggregate_cache import AggregateCache
from handlers.private_copy import private_copy
from tests.scenarios import CUSTOMER, OPS, SCENARIOS, in_memory_fleet, partner, servers

MUTABLE = (list, dict, set)


@dataclass
class Holder:
    items: list[Any] = field(default_factory=list)
    again: list[Any] = field(default_factory=list)
    by_key: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Frozen:
    name: str
    items: list[int]


class Slotted:
    __slots__ = ("items",)

    def __init__(self, items: list[int]) -> None:
        self.items = items

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Slotted) and other.items == self.items

    __hash__ = None  # type: ignore[assignment]


def every_aggregate(fleet: PartnerFleet) -> list[Any]:
    """Every aggregate of the fleet's store, loaded from its events."""
    notifications = fleet.recorder.select_notifications(start=1, limit=1_000_000)
    ids = dict.fromkeys(UUID(str(n.originator_id)) for n in notifications)
    return [fleet.repository.get(i) for i in ids]


def mutable_parts(value: Any, found: dict[int, Any] | None = None) -> dict[int, Any]:
    """Every list, dict, set and object with a `__dict__` reachable from `value`, by id."""
    found = {} if found is None else found
    if id(value) in found:
        return found
    if isinstance(value, MUTABLE) or hasattr(value, "__dict__"):
        found[id(value)] = value
    children: Any = ()
    if isinstance(value, dict):
        children = [*value.keys(), *value.values()]
    elif isinstance(value, list | set | tuple | frozenset):
        children = value
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        children = vars(value).values()
    for child in children:
        mutable_parts(child, found)
    return found


def shares_nothing_mutable(original: Any, made: Any) -> bool:
    """No mutable part of `made` is one of `original`'s (frozen dataclasses aside)."""
    theirs = mutable_parts(original)
    return not [
        v
        for i, v in mutable_parts(made).items()
        if i in theirs and not getattr(getattr(v, "__dataclass_params__", None), "frozen", False)
    ]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_session_17_a_copy_of_every_aggregate_equals_its_pickle_round_trip(
    scenario: Any,
) -> None:
    fleet = in_memory_fleet()
    scenario(fleet)
    aggregates = every_aggregate(fleet)
    assert aggregates
    for aggregate in aggregates:
        made = private_copy(aggregate)
        assert made is not aggregate
        assert type(made) is type(aggregate)
        assert vars(made) == vars(pickle.loads(pickle.dumps(aggregate)))
        assert shares_nothing_mutable(aggregate, made), type(aggregate).__name__


def test_session_17_a_mutated_copy_leaves_its_original_as_it_was() -> None:
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    device = fleet.repository.get(Device.id_for("S1"))
    before = pickle.dumps(device)
    made = private_copy(device)
    made.withdraw_consent(OPS)  # an event, applied to the copy in place
    made.links["extra"] = "LOC-9"
    made.consent_versions.append(99)
    assert pickle.dumps(device) == before
    assert not device.pending_events
    assert made.consent is None
    assert device.consent is not None


def test_session_17_an_object_reached_twice_is_copied_once() -> None:
    shared: list[int] = [1, 2]
    holder = Holder(items=shared, again=shared, by_key={"a": shared})
    made = private_copy(holder)
    assert made.items is made.again is made.by_key["a"]
    assert made.items is not shared
    made.items.append(3)
    assert shared == [1, 2]
    assert made.again == [1, 2, 3]


def test_session_17_a_list_or_dict_shared_only_inside_the_copied_state_stays_shared() -> None:
    def held_twice() -> Holder:  # no reference to them is left outside the holder
        shared: list[int] = [1]
        inner: dict[str, int] = {"x": 1}
        return Holder(items=shared, by_key={"a": shared, "b": [2], "c": inner, "d": inner})

    made = private_copy(held_twice())
    assert made.items is made.by_key["a"]
    assert made.by_key["c"] is made.by_key["d"]
    assert made.by_key["b"] == [2]
    made.items.append(3)
    assert made.by_key["a"] == [1, 3]
    made.by_key["c"]["y"] = 2
    assert made.by_key["d"] == {"x": 1, "y": 2}


def test_session_17_a_frozen_dataclass_of_immutables_is_shared_and_others_copied() -> None:
    consent = ConsentState(text_version="v1", scope="device")
    holding = Frozen(name="x", items=[1])
    made = private_copy([consent, holding])
    assert made[0] is consent
    assert made[1] is not holding
    assert made[1] == holding
    assert made[1].items is not holding.items


def test_session_17_tuples_and_frozensets_are_shared_unless_they_hold_something_mutable() -> None:
    plain = (1, "a", uuid4())
    frozen = frozenset({1, 2})
    holding = ([1], 2)
    made = private_copy({"plain": plain, "frozen": frozen, "holding": holding})
    assert made["plain"] is plain
    assert made["frozen"] is frozen
    assert made["holding"] == holding
    assert made["holding"][0] is not holding[0]


def test_session_17_what_it_does_not_know_is_deep_copied() -> None:
    message = Msg("Device {serial} is gone.", serial="S1")  # a str with params, own pickling
    slotted = Slotted([1])
    made_message, made_slotted = private_copy((message, slotted))
    assert made_message == message
    assert made_message.params == {"serial": "S1"}
    assert made_slotted is not slotted
    assert made_slotted.items == [1]
    assert made_slotted.items is not slotted.items


def test_session_17_a_cycle_is_copied_as_deepcopy_copies_it() -> None:
    looped: list[Any] = [1]
    looped.append(looped)
    made = private_copy(looped)
    assert made is not looped
    assert made[1] is made
    assert made[0] == 1


def test_session_17_the_cache_copies_in_and_out() -> None:
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    device = fleet.repository.get(Device.id_for("S1"))
    cache = AggregateCache(maxsize=10)
    cache.put([device])
    device.links["after"] = "put"  # the caller's object is not the cached one
    got = cache.get(device.id)
    assert got is not None
    assert "after" not in got.links
    got.links["after"] = "get"
    got.grant_consent(OPS, CURRENT_CONSENT_TEXT)
    again = cache.get(device.id)
    assert again is not None
    assert "after" not in again.links
    assert again.consent is None
    assert not again.pending_events
    assert again.version == cache.version_of(device.id) == device.version


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.uuids(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=3), inner, max_size=4)
        | st.tuples(inner, inner)
        | st.builds(Holder, items=st.lists(inner, max_size=3))
    ),
    max_leaves=20,
)


@given(values)
def test_session_17_any_nesting_copies_equal_to_deepcopy_and_share_nothing_mutable(
    value: Any,
) -> None:
    made = private_copy(value)
    assert made == copy.deepcopy(value)
    assert shares_nothing_mutable(value, made)
