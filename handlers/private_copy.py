"""A private deep copy of an aggregate, several times cheaper than a pickle round trip (issue 11).

The aggregate cache (handlers/aggregate_cache.py) copies every aggregate it keeps and every
aggregate it gives out, so that no command ever mutates what is cached. Pickling did that
for 15-25 us an aggregate (a fifth of a command's CPU with 8 client threads, session 17);
`private_copy` walks the state instead and copies what can change, sharing what cannot:

- immutable values (str, int, float, bool, None, bytes, UUID, dates and times, Decimal,
  enum members) are shared; tuples and frozensets are shared when all they hold is;
- lists, dicts and sets are copied, their items copied the same way;
- a plain object (an aggregate, a dataclass: its state in `__dict__`, no slots, no custom
  pickling) is copied attribute by attribute; a frozen dataclass whose fields are all
  shared is shared itself;
- anything else goes to `copy.deepcopy`, as do cycles (a container holding itself).

An object reached twice is copied once (the copy keeps the original's sharing), as pickle
and deepcopy do; a list or dict only one dict holds (its reference count says so) is
copied without that bookkeeping. The result is equal (==) to a pickle round trip of the value; tests
(tests/unit/test_private_copy.py) compare the two on every kind of aggregate.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import decimal
import enum
import uuid
from collections.abc import Callable
from sys import getrefcount
from typing import Any, TypeVar

T = TypeVar("T")
Memo = dict[int, Any]  # id of an original: its copy (copy.deepcopy's memo, the same shape)
Copier = Callable[[Any, Memo], Any]

_SHARED: frozenset[type] = frozenset(
    {
        *(str, int, float, complex, bool, type(None), bytes, range),
        *(uuid.UUID, decimal.Decimal),
        *(datetime.datetime, datetime.date, datetime.time, datetime.timedelta),
        datetime.timezone,
    }
)


def private_copy(value: T) -> T:
    """A deep copy of `value` sharing only immutable parts (see the module's docstring)."""
    try:
        return _copy(value, {})  # type: ignore[no-any-return]
    except RecursionError:  # a cycle: deepcopy's memo handles it
        return copy.deepcopy(value)


def _copy(value: Any, memo: Memo) -> Any:
    cls = type(value)
    if cls in _SHARED:
        return value
    copier = _COPIERS.get(cls)
    if copier is None:
        copier = _COPIERS.setdefault(cls, _copier_for(cls))
    return copier(value, memo)


def _list(value: list[Any], memo: Memo) -> list[Any]:
    made = memo.get(id(value))
    if made is None:
        made = memo[id(value)] = _list_items(value, memo)
    return made


def _list_items(value: list[Any], memo: Memo) -> list[Any]:
    """A copy of a list's items (`_list` without the memo entry of the list itself)."""
    if not value:
        return []
    if len(value) >= _MANY and _all_shared(value):
        return value.copy()
    shared = _SHARED
    return [v if type(v) in shared else _copy(v, memo) for v in value]


def _dict(value: dict[Any, Any], memo: Memo) -> dict[Any, Any]:
    made = memo.get(id(value))
    if made is None:
        made = memo[id(value)] = _items(value, memo)
    return made


def _count_alone() -> int:
    """A value's reference count seen as `_items` sees it (the same loop) when nothing
    but the dict being copied holds it: the dict, the loop's variable and item tuple,
    getrefcount's argument (4 on CPython 3.11). Such a list or dict can be reached no
    other way, so it needs no memo entry (a third of a big group's copy); one held
    anywhere else counts more and goes through the memo."""
    probe: dict[int, list[Any]] = {0: []}
    counts = [getrefcount(v) for _, v in probe.items()]
    for _, v in probe.items():
        counts.append(getrefcount(v))
    return min(counts)


_ONLY_HERE = _count_alone()


# From this many items on, a dict or list is first tested in C for holding only shared
# values (`_all_shared`): then it is copied in C (a partner's users, hundreds of texts by
# text, copied for every command that reads the partner; session 21).
_MANY = 8


def _all_shared(values: Any) -> bool:
    """Whether every one of `values` (an iterable) is of a type in _SHARED; stops at the
    first that is not."""
    return _SHARED.issuperset(map(type, values))


def _items(value: dict[Any, Any], memo: Memo) -> dict[Any, Any]:
    # A loop, not a comprehension: a list or dict value (a group's reasons per device,
    # most of a big aggregate's state) is copied inline, without two calls per value.
    shared = _SHARED
    if len(value) >= _MANY and _all_shared(value.values()) and _all_shared(value):
        return value.copy()  # (what the loop makes: the same keys and values, in order)
    made: dict[Any, Any] = {}
    for key, v in value.items():
        k = key if type(key) in shared else _copy(key, memo)
        kind = type(v)
        if kind in shared:
            made[k] = v
        elif getrefcount(v) > _ONLY_HERE:  # held elsewhere too: through the memo
            made[k] = _copy(v, memo)
        elif kind is list:  # held by this dict alone: no memo entry needed
            # (an empty or a short one inline, without `_list_items`'s call; session 21)
            n = len(v)
            if not n:
                made[k] = []
            elif n == 1:  # (a group's reasons per device: without a comprehension's frame)
                x = v[0]
                made[k] = [x] if type(x) in shared else [_copy(x, memo)]
            elif n < _MANY:
                made[k] = [x if type(x) in shared else _copy(x, memo) for x in v]
            else:
                made[k] = _list_items(v, memo)
        elif kind is dict:
            made[k] = _items(v, memo) if v else {}
        else:
            made[k] = _copy(v, memo)
    return made


def _state(value: dict[Any, Any], memo: Memo) -> dict[Any, Any]:
    """`_items` of an object's `__dict__`: most of its values are shared (text, numbers,
    ids, dates), so the dict is copied in C and only the others are replaced in the copy
    (a Device's 24 attributes: 5.5 -> 4 us, session 19). Keys are the attribute names,
    text; any other key (set by hand) sends the whole dict to `_items`."""
    shared = _SHARED
    made = value.copy()
    for key, v in value.items():
        kind = type(v)
        if type(key) is not str:
            return _items(value, memo)
        if kind in shared:
            continue
        if getrefcount(v) > _ONLY_HERE + 1:  # + `made`'s reference; else as in `_items`
            made[key] = _copy(v, memo)
        elif kind is list:  # (as in `_items`)
            n = len(v)
            if not n:
                made[key] = []
            elif n == 1:  # (a group's reasons per device: without a comprehension's frame)
                x = v[0]
                made[key] = [x] if type(x) in shared else [_copy(x, memo)]
            elif n < _MANY:
                made[key] = [x if type(x) in shared else _copy(x, memo) for x in v]
            else:
                made[key] = _list_items(v, memo)
        elif kind is dict:
            made[key] = _items(v, memo) if v else {}
        else:
            made[key] = _copy(v, memo)
    return made


def _set(value: set[Any], memo: Memo) -> set[Any]:
    made = memo.get(id(value))
    if made is None:
        made = memo[id(value)] = {_copy(v, memo) for v in value}
    return made


def _tuple(value: tuple[Any, ...], memo: Memo) -> tuple[Any, ...]:
    items = [_copy(v, memo) for v in value]
    if all(new is old for new, old in zip(items, value, strict=True)):
        return value
    return tuple(items)


def _frozenset(value: frozenset[Any], memo: Memo) -> frozenset[Any]:
    items = [_copy(v, memo) for v in value]
    if all(new is old for new, old in zip(items, value, strict=True)):
        return value
    return frozenset(items)


def _shared(value: Any, memo: Memo) -> Any:
    return value


def _deep(value: Any, memo: Memo) -> Any:
    return copy.deepcopy(value, memo)


def _object_copier(frozen: bool) -> Copier:
    def copy_object(value: Any, memo: Memo) -> Any:
        made = memo.get(id(value))
        if made is not None:
            return made
        state = value.__dict__
        copied = _state(state, memo)
        if frozen and all(copied[k] is v for k, v in state.items()):
            made = value
        else:
            made = object.__new__(type(value))
            made.__dict__.update(copied)
        memo[id(value)] = made
        return made

    return copy_object


_COPIERS: dict[type, Copier] = {
    list: _list,
    dict: _dict,
    set: _set,
    tuple: _tuple,
    frozenset: _frozenset,
}


def _copier_for(cls: type) -> Copier:
    """How to copy instances of `cls` (a type not met before)."""
    if issubclass(cls, enum.Enum) or issubclass(cls, type):
        return _shared  # members and classes are singletons; deepcopy shares them too
    if _is_plain(cls):
        params = getattr(cls, "__dataclass_params__", None)
        frozen = dataclasses.is_dataclass(cls) and params is not None and params.frozen
        return _object_copier(frozen)
    return _deep


def _is_plain(cls: type) -> bool:
    """State in `__dict__` only, pickled and copied the default way, made by object.__new__."""
    for base in cls.__mro__[:-1]:  # all but object
        if base.__module__ == "builtins" or vars(base).get("__slots__"):
            return False  # a builtin's subclass (str, dict, Exception) or state in slots
    inherited = ("__reduce_ex__", "__reduce__", "__getstate__", "__new__")
    default = all(getattr(cls, name) is getattr(object, name) for name in inherited)
    custom = ("__setstate__", "__copy__", "__deepcopy__", "__getnewargs__", "__getnewargs_ex__")
    return default and not any(hasattr(cls, name) for name in custom)
