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
from datetime import date
from decimal import Decimal
from typing import Any

from handlers.aggregate_cache import AggregateCache
from handlers.private_copy import private_copy


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

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    _, held = cache._entries[original.id]
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
