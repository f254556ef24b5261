"""Session 20's attack on the aggregate cache's private copies (handlers/private_copy.py):
eight threads take copies of one cached aggregate and mutate every nested part of theirs;
the cached aggregate and every other thread's copy stay as they were, and the copies keep
the original's aliasing (a value held twice is one copy held twice)."""

from __future__ import annotations

import dataclasses
import enum
import pickle
import threading
import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from domain.base import Msg, NotAllowedError
from domain.partner import PartnerTenant
from handlers.access import Actor, Role
from handlers.aggregate_cache import AggregateCache
from handlers.base import COMMANDS, Working, command
from handlers.partners import load_partner
from handlers.private_copy import private_copy
from tests.read_versions import CachingFleet, ReadCheckingPOPORecorder
from tests.scenarios import OPS, partner


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Frozen:
    name: str
    when: date


@dataclasses.dataclass(frozen=True)
class FrozenHolding:
    items: list[str]


@dataclasses.dataclass
class Loose:
    tags: list[str]
    counts: dict[str, int]


class Aggregate:
    """An aggregate-shaped object: id, version, no pending events, a nested state."""

    def __init__(self) -> None:
        self.id = uuid.uuid4()
        self.version = 3
        self.pending_events: list[Any] = []
        shared_list = ["s1", "s2"]
        shared_dict = {"k": ["v"]}
        self.rows: list[dict[str, Any]] = [{"a": [1, 2], "b": {"c": {3}}}, shared_dict, shared_dict]
        self.by_key: dict[str, Any] = {"x": [Loose(["t"], {"n": 1})], "y": {}, "z": shared_list}
        self.alias = shared_list
        self.members = {Frozen("f", date(2025, 1, 1))}
        self.holding = FrozenHolding(["h"])
        self.pair = (["in-tuple"], Decimal("1.5"), Colour.RED)
        self.loose = Loose(["l"], {"m": 2})
        self.empty: dict[str, Any] = {}


def in_eight_threads(
    work: Callable[[int], None], failures: list[BaseException], timeout: float
) -> None:
    """`work(0)` ... `work(7)` on 8 threads at once, each appending what fails it to
    `failures`; none may fail, and none may still run after `timeout` seconds."""
    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads)
    assert not failures


def _mutate(copy: Aggregate, mark: str) -> None:
    copy.rows[0]["a"].append(mark)
    copy.rows[0]["b"]["c"].add(mark)
    copy.rows[1]["k"].append(mark)  # rows[2] is the same dict: one change seen twice
    copy.by_key["x"][0].tags.append(mark)
    copy.by_key["x"][0].counts[mark] = 1
    copy.by_key["y"][mark] = mark
    copy.alias.append(mark)  # by_key["z"] is the same list
    copy.members.add(Frozen(mark, date(2025, 1, 2)))
    copy.holding.items.append(mark)
    copy.pair[0].append(mark)
    copy.loose.tags.append(mark)
    copy.loose.counts[mark] = 3
    copy.empty[mark] = mark


def test_s20_attack_eight_threads_mutating_their_copies_change_nothing_else() -> None:
    original = Aggregate()
    before = pickle.dumps(original)
    cache = AggregateCache()
    cache.put([original])
    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for round_ in range(30):
                copy = cache.get(original.id)
                assert copy is not None
                assert copy.rows[1] is copy.rows[2]
                assert copy.alias is copy.by_key["z"]
                mark = f"mark{n}x{round_}"
                snapshot = pickle.dumps(copy)
                if round_ == 0:
                    barrier.wait(10)
                _mutate(copy, mark)
                assert copy.rows[2]["k"][-1] == mark
                assert copy.by_key["z"][-1] == mark
                mutated = pickle.loads(snapshot)
                _mutate(mutated, mark)
                assert pickle.dumps(copy) == pickle.dumps(mutated)  # nobody else's marks
        except BaseException as error:
            failures.append(error)

    in_eight_threads(work, failures, 60)
    _, held = cache._entries[original.id.int]
    assert pickle.dumps(held) == before
    # the caller's own object was copied in: mutating it leaves the cache as it was
    _mutate(original, "mark-original")
    again = cache.get(original.id)
    assert again is not None
    assert pickle.dumps(again) == before


def test_s20_attack_a_copy_keeps_aliasing_and_equals_a_pickle_round_trip() -> None:
    original = Aggregate()
    copy = private_copy(original)
    theirs = pickle.loads(pickle.dumps(original))
    assert pickle.dumps(copy) == pickle.dumps(theirs)
    for name in ("rows", "by_key", "alias", "members", "loose", "empty"):
        assert getattr(copy, name) is not getattr(original, name)
    assert copy.pair[0] is not original.pair[0]
    assert copy.holding.items is not original.holding.items
    assert copy.rows[1] is copy.rows[2]
    assert copy.alias is copy.by_key["z"]


# -- through the commands: 8 threads on one partner, refusals after mutating ---------------


def _scribble(value: Any, mark: str, depth: int = 0) -> None:
    """Mutate every list, dict and set reachable in `value`'s state (not its ids)."""
    if depth > 4:
        return
    state = vars(value) if hasattr(value, "__dict__") else value
    if isinstance(state, dict):
        for key, item in list(state.items()):
            if key in ("_id", "_version", "_pending_events"):
                continue
            if isinstance(item, list):
                item.append(mark)
            elif isinstance(item, set):
                item.add(mark)
            elif isinstance(item, dict):
                _scribble(item, mark, depth + 1)
                item[mark] = mark
            elif hasattr(item, "__dict__") and not isinstance(item, type):
                _scribble(item, mark, depth + 1)


def test_s20_attack_refusals_after_mutating_leave_the_cached_partner_as_stored() -> None:
    try:  # a command of the test's own, declared here and undeclared after (COMMANDS)

        class ScribblingFleet(CachingFleet):
            @command(Role.OPERATOR)
            def scribble_then_refuse(
                self, w: Working, actor: Actor, location_id: str, mark: str
            ) -> None:
                found = load_partner(w, location_id)
                _scribble(found, mark)
                raise NotAllowedError(Msg("refused after scribbling"))

        _refusals_after_mutating(ScribblingFleet(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}))
    finally:
        COMMANDS.pop("scribble_then_refuse", None)


def _refusals_after_mutating(fleet: Any) -> None:
    assert isinstance(fleet.recorder, ReadCheckingPOPORecorder)
    partner(fleet, "LOC-1")
    partner_id = PartnerTenant.id_for("LOC-1")
    fleet.aggregate_cache.get(partner_id)  # cached by the commands above
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for round_ in range(10):
                with pytest.raises(NotAllowedError):
                    fleet.scribble_then_refuse(OPS, "LOC-1", f"mark{n}x{round_}")
                if round_ % 3 == 0:
                    fleet.register_partner_user(OPS, "LOC-1", f"u{n}x{round_}@LOC-1")
        except BaseException as error:
            failures.append(error)

    in_eight_threads(work, failures, 120)
    cached = fleet.aggregate_cache.get(partner_id)
    stored = fleet.repository.get(partner_id)
    assert cached is not None
    assert "mark" not in repr(vars(cached))
    assert cached.version == stored.version
    mine, theirs = dict(vars(cached)), dict(vars(stored))
    mine.pop("_pending_events")
    theirs.pop("_pending_events")
    assert mine == theirs


# -- states of one class whose shapes change: what a copier learnt must not be trusted ---


class Shifting:
    """An object whose attributes change kind and name between instances."""

    def __init__(self, n: int) -> None:
        self.id = uuid.uuid4()
        self.version = 1
        self.pending_events: list[Any] = []
        self.a: Any = "text"
        self.b: Any = 1
        self.c: Any = date(2025, 1, 1)
        if n % 3 == 1:
            self.a = ["now", "a", "list"]  # an attribute that was text holds a list
            self.c = self.a  # held twice
        elif n % 3 == 2:
            del self.b
            self.d: Any = {"k": ["v"]}  # as many attributes, another name


def _equal_and_private(original: Any, copy: Any) -> None:
    assert type(copy) is type(original)
    assert list(vars(copy)) == list(vars(original))
    assert vars(copy) == vars(original)
    for name, value in vars(original).items():
        if isinstance(value, list | dict | set):
            assert getattr(copy, name) is not value
            assert getattr(copy, name) == value
    if isinstance(original.a, list):
        assert copy.a is copy.c


def test_s20_attack_copies_of_a_class_whose_states_change_shape_stay_private() -> None:
    originals = [Shifting(n) for n in range(30)]
    for original in originals + originals[::-1]:
        copy = private_copy(original)
        _equal_and_private(original, copy)
        before = pickle.dumps(original)
        if isinstance(copy.a, list):
            copy.a.append("mark")
        for value in vars(copy).values():
            if isinstance(value, dict):
                value["mark"] = ["mark"]
                for item in value.values():
                    item.append("mark")
            if isinstance(value, list):
                value.append("mark")
        assert pickle.dumps(original) == before


def test_s20_attack_eight_threads_copy_changing_shapes_at_once() -> None:
    originals = [Shifting(n) for n in range(12)]
    befores = [pickle.dumps(o) for o in originals]
    failures: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            barrier.wait(10)
            for round_ in range(200):
                original = originals[(n + round_) % len(originals)]
                copy = private_copy(original)
                _equal_and_private(original, copy)
                for value in vars(copy).values():
                    if isinstance(value, list):
                        value.append(f"mark{n}")
                    if isinstance(value, dict):
                        value[f"mark{n}"] = n
        except BaseException as error:
            failures.append(error)

    in_eight_threads(work, failures, 60)
    assert [pickle.dumps(o) for o in originals] == befores
