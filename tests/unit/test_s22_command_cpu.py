"""Issue 11, session 22: less client CPU per command, the same outcomes.

The aggregate cache keys its entries by `UUID.int` and takes back the copies of what a
command only read (`give_back`: spares, handed out once each by a later `get` instead of a
new copy); the Working hashes fewer UUIDs (a UUID's hash is a Python call); event classes
say their class version (no AttributeError raised and caught per event); recordings are
made as stored events are; a one-item list is copied inline.
"""

from __future__ import annotations

import json
import pickle
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import Notification, Recording

from domain import CustomerGroup, Device
from domain.base import FleetAggregate
from domain.consent import CURRENT_CONSENT_TEXT
from domain.partner import PartnerTenant
from handlers.aggregate_cache import MAX_SPARES, AggregateCache
from handlers.base import Working, _distinct
from handlers.devices import PartnerChoice
from handlers.private_copy import private_copy
from handlers.transcoding import recording
from tests.cache_probes import a_device, copies_made
from tests.read_versions import CachingFleet, caching_fleet
from tests.scenarios import CUSTOMER, OPS, partner, pc_transferred_once, servers

DEVICE = Device.id_for("S1")
PARTNER = PartnerTenant.id_for("LOC-1")


@pytest.fixture
def fleet() -> CachingFleet:
    """A caching fleet: partner LOC-1, customer C1's servers S1 and S2 linked to it."""
    app = caching_fleet()
    partner(app, "LOC-1")
    app.register_devices(CUSTOMER, "C1", servers("S1", "S2"), PartnerChoice(location_id="LOC-1"))
    return app


# --- the cache's keys ----------------------------------------------------------------------


def test_s22_an_equal_id_of_another_object_finds_the_entry() -> None:
    cache = AggregateCache(10)
    device = a_device()
    cache.put([device])
    other = UUID(str(device.id))
    assert other is not device.id
    assert other in cache
    assert cache.version_of(other) == 1
    found = cache.get(other)
    assert found is not None
    assert found.id == device.id
    assert str(device.id) not in cache  # an id of another type names no entry
    cache.evict([other])
    assert device.id not in cache


# --- spares (give_back) ------------------------------------------------------------------------


def a_cache_with_a_spare() -> tuple[AggregateCache, UUID, Device]:
    """A cache holding `a_device()` and one spare copy of it, given back: (the cache, the
    device's id, the spare)."""
    cache = AggregateCache(10)
    cache.put([a_device()])
    device_id = Device.id_for("S9")
    spare = cache.get(device_id)
    assert spare is not None
    cache.give_back([spare])
    return cache, device_id, spare


def test_s22_a_copy_given_back_is_handed_out_once_instead_of_a_new_copy() -> None:
    cache, device_id, first = a_cache_with_a_spare()
    with copies_made() as made:
        again = cache.get(device_id)
    assert again is first
    assert made == []  # no copy made for it
    later = cache.get(device_id)
    assert later is not None
    assert later is not first
    assert pickle.dumps(later) == pickle.dumps(first)


def test_s22_a_changed_copy_or_one_of_another_version_is_not_taken_back() -> None:
    cache = AggregateCache(10)
    cache.put([a_device()])
    changed = cache.get(Device.id_for("S9"))
    assert changed is not None
    changed.grant_consent(OPS, CURRENT_CONSENT_TEXT)  # pending events: it changed
    cache.give_back([changed])
    assert cache.get(changed.id) is not changed
    old = cache.get(changed.id)
    assert old is not None
    newer = cache.get(changed.id)
    assert newer is not None
    newer.grant_consent(OPS, CURRENT_CONSENT_TEXT)
    newer.collect_events()
    cache.put([newer])  # the entry moves on to version 2
    cache.give_back([old])  # a copy of version 1
    got = cache.get(old.id)
    assert got is not None
    assert got is not old
    assert got.version == 2


def test_s22_a_spare_goes_when_its_entry_moves_on_or_goes() -> None:
    cache, device_id, spare = a_cache_with_a_spare()
    newer = cache.get(Device.id_for("S9"))  # (the spare itself: handed out)
    assert newer is spare
    cache.give_back([newer])
    moved = private_copy(newer)
    moved.grant_consent(OPS, CURRENT_CONSENT_TEXT)
    moved.collect_events()
    cache.put([moved])  # version 2: the spare of version 1 goes
    got = cache.get(device_id)
    assert got is not None
    assert got is not spare
    assert got.version == 2
    cache.give_back([got])
    cache.evict([device_id])
    assert cache.get(device_id) is None
    cache.put([moved])
    again = cache.get(device_id)
    assert again is not None
    cache.give_back([again])
    cache.clear()
    cache.put([moved])
    assert cache.get(device_id) is not again


def test_s22_a_spare_changed_after_it_was_given_back_is_dropped() -> None:
    cache = AggregateCache(10)
    cache.put([a_device()])
    spare = cache.get(Device.id_for("S9"))
    assert spare is not None
    cache.give_back([spare])
    spare.grant_consent(OPS, CURRENT_CONSENT_TEXT)  # a hold kept after all
    got = cache.get(spare.id)
    assert got is not None
    assert got is not spare
    assert got.version == 1
    assert got.consent is None


def test_s22_an_entry_keeps_at_most_max_spares() -> None:
    cache = AggregateCache(10)
    cache.put([a_device()])
    device_id = Device.id_for("S9")
    copies = [cache.get(device_id) for _ in range(MAX_SPARES + 2)]
    cache.give_back(copies)
    handed = [cache.get(device_id) for _ in range(MAX_SPARES + 1)]
    assert sum(any(h is c for c in copies) for h in handed) == MAX_SPARES


def test_s22_eight_threads_never_hold_one_spare_at_once() -> None:
    cache = AggregateCache(10)
    cache.put([a_device()])
    device_id = Device.id_for("S9")
    held: set[int] = set()
    lock = threading.Lock()
    shared: list[int] = []

    def run() -> None:
        for _ in range(300):
            copy = cache.get(device_id)
            assert copy is not None
            with lock:
                if id(copy) in held:
                    shared.append(id(copy))
                held.add(id(copy))
            assert copy.version == 1
            with lock:
                held.discard(id(copy))
            cache.give_back([copy])

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert shared == []
    assert len(cache._spares[device_id.int]) <= MAX_SPARES


def test_s22_a_command_reading_the_partner_gives_its_copy_to_the_next_one() -> None:
    app = caching_fleet()
    anna, holding, dashboard = pc_transferred_once(app)
    with copies_made() as made:
        app.transfer_devices(anna, "LOC-1", ["PC1"], dashboard, holding, "t2")
    assert not [a for a in made if isinstance(a, PartnerTenant)]  # the spare, no copy
    assert app.device("PC1").placement is None or app.device("PC1").placement == holding
    app.transfer_devices(anna, "LOC-1", ["PC1"], holding, dashboard, "t3")
    assert app.device("PC1").placement == dashboard


def test_s22_a_refused_command_gives_nothing_back(fleet: CachingFleet) -> None:
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    with pytest.raises(Exception):  # noqa: B017,PT011 (any refusal)
        fleet.link_devices(CUSTOMER, "C1", ["S1", "NOPE"], PartnerChoice(location_id="LOC-1"))
    assert not fleet.aggregate_cache._spares.get(PARTNER.int)


# --- the Working -------------------------------------------------------------------------


def test_s22_distinct_ids_are_told_by_their_ints() -> None:
    a, b = Device.id_for("S1"), Device.id_for("S2")
    assert _distinct((a, b))
    assert not _distinct((a, UUID(str(a))))
    assert not _distinct((a, str(b)))  # no UUID: made unique by equality instead


def test_s22_prefetch_loads_an_id_given_twice_once(fleet: CachingFleet) -> None:
    w = Working(fleet, cache=fleet.aggregate_cache)
    w.prefetch(DEVICE, UUID(str(DEVICE)), PARTNER)
    assert list(w) == [DEVICE, PARTNER]
    assert w.from_cache == {DEVICE, PARTNER}
    assert w.find(Device, UUID(str(DEVICE))) is w[DEVICE]


def test_s22_read_versions_are_the_loaded_unchanged_ones(fleet: CachingFleet) -> None:
    w = Working(fleet, cache=fleet.aggregate_cache)
    w.prefetch(DEVICE, PARTNER, CustomerGroup.id_for("LOC-1", "C1"))
    device = w.load(Device, DEVICE, "missing")  # type: ignore[arg-type]
    expected = {i: v for i, v in w.loaded.items() if i != DEVICE}
    device.grant_consent(OPS, CURRENT_CONSENT_TEXT)
    created = w.add(a_device("S7"))
    created.grant_consent(OPS, CURRENT_CONSENT_TEXT)
    assert w.read_versions() == expected
    assert list(w.read_versions()) == list(expected)


def test_s22_a_command_on_cached_aggregates_hashes_few_uuids(
    fleet: CachingFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A UUID's hash is a Python call (~1,200 instructions): this grant on a cached
    device asked for 10 of them before session 22, 6 since."""
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])  # both cached, adopted
    hashes = 0
    original = uuid.UUID.__hash__

    def counting(self: UUID) -> int:
        nonlocal hashes
        hashes += 1
        return original(self)

    monkeypatch.setattr(uuid.UUID, "__hash__", counting)
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    monkeypatch.undo()
    assert 0 < hashes <= 7


# --- the save path -----------------------------------------------------------------------


def test_s22_every_event_class_says_its_class_version() -> None:
    def classes(cls: type) -> Iterator[type]:
        yield cls
        sub: type
        for sub in cls.__subclasses__():
            yield from classes(sub)

    for cls in classes(FleetAggregate.Event):
        assert isinstance(vars_of(cls).get("class_version"), int), cls


def vars_of(cls: type) -> dict[str, Any]:
    """The class's attributes, inherited ones included (no `getattr` default)."""
    found: dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        found.update(vars(base))
    return found


def test_s22_a_stored_event_holds_its_class_version_beyond_1_only(fleet: CachingFleet) -> None:
    device = a_device("S8")
    device.grant_consent(OPS, CURRENT_CONSENT_TEXT)
    device.withdraw_consent(OPS)
    events = device.collect_events()
    assert {vars_of(type(e))["class_version"] for e in events} == {1, 2}
    for event in events:
        stored = fleet.mapper.to_stored_event(event)
        state = json.loads(stored.state)
        assert state.get("class_version", 1) == vars_of(type(event))["class_version"]
        assert fleet.mapper.to_domain_event(stored).__dict__ == event.__dict__


def test_s22_a_recording_is_the_dataclass_made_by_its_init() -> None:
    device = a_device("S6")
    device.grant_consent(OPS, CURRENT_CONSENT_TEXT)
    (event,) = device.collect_events()
    notification = Notification(
        originator_id=DEVICE, originator_version=1, topic="t", state=b"{}", id=7
    )
    made = recording(event, notification)
    assert type(made) is Recording
    assert made == Recording(event, notification)
    assert vars(made) == vars(Recording(event, notification))
