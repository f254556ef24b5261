"""Issue 11, session 23: a command borrows the cached aggregate a command changed last.

`AggregateCache.borrow` lends the entry itself, not a copy, when a command changed it last
(`adopt`) and nobody holds it; it comes back changed (`adopt`), unchanged (`give_back`), or
is given up by a command that failed (`release`: the entry goes). While lent, nobody else
gets it or a copy of it. These tests prove each of those, and that the command path
(handlers/base.py) hands every borrowed entry back or up, on success, refusal and
interrupt.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from domain import Device
from domain.base import NotAllowedError
from domain.consent import CURRENT_CONSENT_TEXT
from handlers.aggregate_cache import AggregateCache
from handlers.private_copy import private_copy
from tests.cache_probes import a_device, copies_made, misbehaving_fleet
from tests.scenarios import CUSTOMER, OPS

DEVICE = Device.id_for("S1")


def adopted() -> tuple[AggregateCache, Device]:
    """A cache holding a device a command changed (adopted): (the cache, the device)."""
    cache = AggregateCache(10)
    device = a_device()
    cache.adopt([device])
    return cache, device


# --- the cache ------------------------------------------------------------------------------


def test_s23_an_adopted_entry_is_lent_itself_and_nobody_else_gets_it_meanwhile() -> None:
    cache, device = adopted()
    with copies_made() as made:
        lent = cache.borrow(device.id)
        assert lent is device  # the entry itself, no copy
        assert cache.borrow(device.id) is None  # lent: a miss, not the object nor a copy
        assert cache.get(device.id) is None
    assert made == []
    assert cache.version_of(device.id) == 1  # still known, for the stale checks


def test_s23_an_entry_wanted_while_lent_is_copied_from_then_on() -> None:
    cache, device = adopted()
    cache.borrow(device.id)
    assert cache.borrow(device.id) is None  # two commands want it at once
    cache.give_back([device])  # back, unchanged
    with copies_made() as made:
        again = cache.borrow(device.id)
    assert again is not device
    assert made == [device]  # a copy, from now on
    cache.adopt([again])  # until a command changes it again
    assert cache.borrow(device.id) is again


def test_s23_given_back_unchanged_the_entry_is_lent_again() -> None:
    cache, device = adopted()
    assert cache.borrow(device.id) is device
    cache.give_back([device])
    assert cache.borrow(device.id) is device
    assert cache._spares.get(device.id.int) is None  # the entry, not a spare


def test_s23_only_changed_aggregates_are_lent() -> None:
    cache = AggregateCache(10)
    read, put = a_device("S7"), a_device("S8")
    cache.adopt([read], changed=False)  # only read by the command that adopted it
    cache.put([put])
    for original in (read, put):
        borrowed = cache.borrow(original.id)
        assert borrowed is not None
        assert borrowed is not original
        assert vars(borrowed) == vars(original)


def test_s23_a_failed_command_gives_up_what_it_borrowed_changed_or_not() -> None:
    cache, device = adopted()
    other = a_device("S8")
    cache.adopt([other])
    unchanged = cache.borrow(device.id)
    changed = cache.borrow(other.id)
    assert unchanged is device
    assert changed is other
    changed.grant_consent(OPS, CURRENT_CONSENT_TEXT)  # pending events, never saved
    cache.release([unchanged, changed])
    assert device.id not in cache  # may have been changed without an event
    assert other.id not in cache


def test_s23_release_passes_by_what_is_not_lent() -> None:
    cache, device = adopted()
    copy = cache.get(device.id)  # a copy, the entry not lent
    assert copy is not None
    copy.grant_consent(OPS, CURRENT_CONSENT_TEXT)
    cache.release([copy])
    assert cache.version_of(device.id) == 1
    assert cache._entries[device.id.int][1] is device  # kept, as it was
    # (copied by `get`: not lent since, attack session 23)
    assert cache.borrow(device.id) is not device


def test_s23_kept_by_its_caller_an_unchanged_entry_is_replaced_by_a_copy() -> None:
    cache, device = adopted()
    other = a_device("S8")
    cache.adopt([other])
    kept_unchanged, kept_changed = cache.borrow(device.id), cache.borrow(other.id)
    assert kept_changed is not None
    kept_changed.grant_consent(OPS, CURRENT_CONSENT_TEXT)
    cache.release([kept_unchanged, kept_changed], kept=True)
    assert other.id not in cache
    assert cache.version_of(device.id) == 1
    entry = cache._entries[device.id.int][1]
    assert entry is not device  # the caller keeps the object: the cache a copy of it
    assert vars(entry) == vars(device)
    assert device.id.int not in cache._lent


def test_s23_a_spare_is_handed_out_while_the_entry_is_lent() -> None:
    cache, device = adopted()
    spare = private_copy(device)
    cache.give_back([spare])
    assert cache.borrow(device.id) is spare  # spares first
    assert cache.borrow(device.id) is device
    assert cache.get(device.id) is None


def test_s23_replaced_evicted_or_cleared_an_entry_is_no_longer_lent() -> None:
    cache, device = adopted()
    borrowed = cache.borrow(device.id)
    assert borrowed is device
    borrowed.grant_consent(OPS, CURRENT_CONSENT_TEXT)
    borrowed.collect_events()  # saved: version 2
    cache.adopt([borrowed])
    assert cache.version_of(device.id) == 2
    assert cache.borrow(device.id) is borrowed  # lendable again, lent again
    cache.evict([device.id])
    assert device.id.int not in cache._lent
    assert device.id.int not in cache._lendable
    cache.adopt([borrowed])
    assert cache.borrow(device.id) is borrowed
    cache.clear()
    assert not cache._lent
    assert not cache._lendable


def test_s23_the_least_recently_used_entry_goes_lent_or_not() -> None:
    cache = AggregateCache(1)
    first, second = a_device("S7"), a_device("S8")
    cache.adopt([first])
    assert cache.borrow(first.id) is first
    cache.adopt([second])  # beyond maxsize: the first goes
    assert first.id not in cache
    assert first.id.int not in cache._lent
    assert first.id.int not in cache._lendable
    cache.give_back([first])  # its borrower gives it back: passed by
    assert first.id not in cache


# --- the command path -----------------------------------------------------------------------


@pytest.fixture
def fleet() -> Iterator[Any]:
    """tests/cache_probes.py's misbehaving fleet."""
    with misbehaving_fleet() as app:
        yield app


def test_s23_a_command_changes_the_object_the_previous_command_saved(
    fleet: Any,
) -> None:
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    saved = fleet.aggregate_cache._entries[DEVICE.int][1]
    with copies_made() as made:
        fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    assert not [m for m in made if isinstance(m, Device)]  # the device was not copied
    now = fleet.aggregate_cache._entries[DEVICE.int][1]
    assert now is saved  # borrowed, changed, adopted back
    stored = fleet.repository.get(DEVICE)
    assert now.version == stored.version
    assert now.consent is not None
    assert now.consent.text_version == CURRENT_CONSENT_TEXT
    assert DEVICE.int not in fleet.aggregate_cache._lent


@pytest.mark.parametrize("interrupt", [False, True], ids=["refused", "interrupted"])
def test_s23_a_command_that_fails_after_changing_a_borrowed_device_leaves_none_cached(
    fleet: Any, interrupt: bool
) -> None:
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])  # S1 adopted: lent next
    assert fleet.aggregate_cache.version_of(DEVICE) is not None
    with pytest.raises(KeyboardInterrupt if interrupt else NotAllowedError):
        fleet.scribble_device(OPS, "S1", interrupt)
    assert DEVICE not in fleet.aggregate_cache  # the scribbled object went
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])  # decided on the store's S1
    cached = fleet.aggregate_cache.get(DEVICE)
    assert cached is not None
    assert cached.customer_id == "C1"
    assert vars(cached) == vars(fleet.repository.get(DEVICE)) | {"_pending_events": []}


def test_s23_a_result_holding_a_borrowed_aggregate_leaves_a_copy_cached(
    fleet: Any,
) -> None:
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])  # S1 adopted: lent next
    held = fleet.device_itself(OPS, "S1")
    entry = fleet.aggregate_cache._entries[DEVICE.int][1]
    assert entry is not held  # the result holds it: the cache keeps a copy
    assert vars(entry) == vars(held)
    assert DEVICE.int not in fleet.aggregate_cache._lent
    held.customer_id = "CHANGED BY THE CALLER"
    again = fleet.aggregate_cache.get(DEVICE)
    assert again is not None
    assert again.customer_id == "C1"
