"""Attacks on session 23's borrowed aggregates (handlers/aggregate_cache.py `borrow`,
handlers/base.py `Working._cached`, `_attempt`, `_remember_quietly`)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from domain import Device
from domain.base import DomainError, NotAllowedError
from domain.consent import CURRENT_CONSENT_TEXT
from handlers import aggregate_cache
from handlers.aggregate_cache import AggregateCache
from handlers.base import ConflictError, FleetApplication
from handlers.private_copy import private_copy
from tests.cache_probes import a_device, misbehaving_fleet
from tests.scenarios import CUSTOMER, OPS

WAIT = 10  # seconds an event is waited for at most (a hang fails, never passes)


@pytest.fixture
def paused_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The cache's first copy of a Device starts (first event set), then waits for the second."""
    started, go = threading.Event(), threading.Event()

    def paused(value: Any) -> Any:
        if isinstance(value, Device) and not started.is_set():  # the first copy only
            started.set()
            go.wait(WAIT)
        return private_copy(value)

    monkeypatch.setattr(aggregate_cache, "private_copy", paused)
    yield started, go
    go.set()


def test_s23_attack_a_copy_being_made_is_not_changed_by_a_borrower(
    paused_copy: tuple[threading.Event, threading.Event],
) -> None:
    """A reader's `get` (FleetApplication.current, an HTTP read) copies the entry outside
    the lock; a command that borrows the entry meanwhile must not be lent that very object
    (it changes it in place, and may be refused): the reader's copy is of the state stored."""
    started, go = paused_copy
    cache = AggregateCache(10)
    device = a_device()
    cache.adopt([device])  # a command changed it last: lendable
    copies: list[Any] = []
    reader = threading.Thread(target=lambda: copies.append(cache.get(device.id)))
    reader.start()
    assert started.wait(WAIT)  # the reader is copying the entry now
    borrowed: list[Any] = []

    def command() -> None:
        found = cache.borrow(device.id)
        borrowed.append(found)
        if found is device:  # the entry itself: changed in place, as a command does
            found.grant_consent(OPS, CURRENT_CONSENT_TEXT)
        go.set()

    borrower = threading.Thread(target=command)
    borrower.start()
    borrower.join(WAIT)
    go.set()
    reader.join(WAIT)
    assert not reader.is_alive()
    assert not borrower.is_alive()
    (copy,) = copies
    assert copy is not None
    assert copy is not device
    assert copy.version == 1
    assert copy.pending_events == []
    assert copy.consent is None  # not the borrower's unsaved change
    assert borrowed[0] is not device  # nobody may change what is being copied


@pytest.fixture
def fleet() -> Iterator[Any]:
    """tests/cache_probes.py's misbehaving fleet."""
    with misbehaving_fleet() as app:
        yield app


def test_s23_attack_a_read_while_a_command_borrows_sees_only_what_is_stored(
    fleet: Any, paused_copy: tuple[threading.Event, threading.Event]
) -> None:
    """`FleetApplication.current` (an HTTP read) copies device S1 while a command borrows
    it, changes it and is refused: the read answers the stored state, never the refused
    change."""
    started, go = paused_copy
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])  # S1 adopted: lendable
    device_id = Device.id_for("S1")
    read: list[Any] = []
    reader = threading.Thread(target=lambda: read.append(fleet.current(Device, device_id)))
    reader.start()
    assert started.wait(WAIT)
    try:
        with pytest.raises(NotAllowedError):
            fleet.grant_then_refuse(OPS, "S1")
    finally:
        go.set()
    reader.join(WAIT)
    assert not reader.is_alive()
    stored = fleet.repository.get(device_id)
    (found,) = read
    assert found.pending_events == []
    assert found.version == stored.version
    assert vars(found) == vars(stored)
    cached = fleet.aggregate_cache.get(device_id)
    assert cached is not None
    assert vars(cached) == vars(stored)


def test_s23_attack_eight_threads_never_hold_one_object_and_leave_the_cache_as_stored(
    fleet: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 threads run commands on two devices at once (granted, withdrawn, refused after a
    change, a result holding the device) and read them (`current`): no object the cache
    hands a command is held by another thread's command meanwhile, nothing stays lent,
    and what is cached at the end is what is stored."""
    held: dict[int, tuple[Any, int]] = {}  # borrowed object's id: (object, thread)
    clashes: list[Any] = []
    lock = threading.Lock()
    local = threading.local()
    borrow, attempt = AggregateCache.borrow, FleetApplication._attempt

    def watched_borrow(self: AggregateCache, aggregate_id: Any) -> Any:
        found = borrow(self, aggregate_id)
        if found is not None:
            me = threading.get_ident()
            with lock:
                owner = held.get(id(found))
                if owner is not None and owner[1] != me:
                    clashes.append(found)
                held[id(found)] = (found, me)
                local.mine = [*getattr(local, "mine", []), id(found)]
        return found

    def given_up() -> None:
        with lock:
            for key in getattr(local, "mine", []):
                held.pop(key, None)
            local.mine = []

    def watched_attempt(self: Any, *args: Any) -> Any:
        try:
            return attempt(self, *args)
        finally:
            given_up()

    def watched_remember(self: Any, *args: Any) -> None:
        try:
            remember(self, *args)
        finally:  # given back or up, whatever the command still reads (ids, types)
            given_up()

    remember = FleetApplication._remember_quietly
    monkeypatch.setattr(AggregateCache, "borrow", watched_borrow)
    monkeypatch.setattr(FleetApplication, "_attempt", watched_attempt)
    monkeypatch.setattr(FleetApplication, "_remember_quietly", watched_remember)
    fleet.grant_consent(CUSTOMER, "C1", ["S2"])  # both adopted: lendable
    ids = [Device.id_for("S1"), Device.id_for("S2")]
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def client(n: int) -> None:
        rng = random.Random(n)
        barrier.wait(WAIT)
        for _ in range(40):
            serial = rng.choice(["S1", "S2"])
            step = rng.randrange(5)
            try:
                if step == 0:
                    fleet.grant_consent(CUSTOMER, "C1", [serial])
                elif step == 1:
                    fleet.withdraw_consent(CUSTOMER, "C1", [serial])
                elif step == 2:
                    fleet.grant_then_refuse(OPS, serial)
                elif step == 3:
                    held_device = fleet.device_itself(OPS, serial)
                    held_device.customer_id = "CHANGED BY THE CALLER"
                else:
                    found = fleet.current(Device, Device.id_for(serial))
                    if found.pending_events or found.customer_id != "C1":
                        errors.append(AssertionError(f"read {found!r}"))
            except (DomainError, ConflictError):
                pass
            except BaseException as error:  # (reported below)
                errors.append(error)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert clashes == []
    cache = fleet.aggregate_cache
    assert not cache._lent
    for device_id in ids:
        stored = fleet.repository.get(device_id)
        cached = cache.get(device_id)
        if cached is not None:
            assert vars(cached) == vars(stored)
        for spare in cache._spares.get(device_id.int, []):
            assert vars(spare) == vars(stored)


def test_s23_attack_interrupted_between_save_and_remember_nothing_stays_lent_or_stale(
    fleet: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KeyboardInterrupt after the save, before the cache is given back what the command
    borrowed: the borrowed (and changed, saved) device goes; the next command and read
    decide on the stored one."""
    device_id = Device.id_for("S1")
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])  # S1 adopted: lent next
    lendable = fleet.aggregate_cache._entries[device_id.int][1]

    def interrupted(self: Any, *args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(FleetApplication, "_remember_quietly", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    monkeypatch.undo()
    stored = fleet.repository.get(device_id)
    assert stored.consent is not None  # granted: saved
    cache = fleet.aggregate_cache
    assert device_id not in cache  # the borrowed object went with the interrupt
    assert not cache._lent
    assert lendable.version == stored.version  # (it was changed in place, and saved)
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])  # decided on the store's S1
    again = cache.get(device_id)
    assert again is not None
    assert vars(again) == vars(fleet.repository.get(device_id))


def test_s23_interrupted_inside_remember_nothing_stays_lent(
    fleet: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KeyboardInterrupt inside `_remember_quietly`, as the cache takes back what the
    command borrowed and changed (`adopt`): `_attempt` releases what is still lent, so no
    entry stays lent at a version its object has left."""
    device_id = Device.id_for("S1")
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])  # S1 adopted: lent next
    cache = fleet.aggregate_cache

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cache, "adopt", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    monkeypatch.undo()
    assert not cache._lent
    assert cache.version_of(device_id) in (None, fleet.repository.get(device_id).version)
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    again = cache.get(device_id)
    assert again is not None
    assert vars(again) == vars(fleet.repository.get(device_id))
