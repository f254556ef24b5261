"""Issue 11: the aggregate cache (handlers/aggregate_cache.py) and loads in one round trip.

Given a fleet whose recorder checks read versions (tests/read_versions.py), commands decide
on cached copies; these tests prove a hit costs no store read, that a stale entry (written
or only read) conflicts and the retry decides on fresh state, that a refusal decided on a
cached copy is decided again on the store's, that a refused command leaves nothing it may
have changed cached, that a save leaves the saved versions cached, and that the LRU is bounded.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

import pytest
from structlog.testing import capture_logs

from domain import CustomerGroup, Device
from domain.base import Msg
from domain.consent import CURRENT_CONSENT_TEXT, ConsentError
from domain.partner import PartnerTenant
from handlers import PartnerFleet
from handlers.access import Claims, Role, authenticate
from handlers.aggregate_cache import AggregateCache
from handlers.base import Working
from handlers.devices import PartnerChoice
from tests.actors import partner_user
from tests.read_versions import CachingFleet, caching_fleet
from tests.scenarios import CUSTOMER, OPS, in_memory_fleet, partner, servers

DEVICE = Device.id_for("S1")
PARTNER = PartnerTenant.id_for("LOC-1")
GROUP = CustomerGroup.id_for("LOC-1", "C1")


@pytest.fixture
def fleet() -> CachingFleet:
    """A caching fleet: partner LOC-1, customer C1's servers S1 and S2 linked to it, S1
    with consent; the commands' aggregates are cached."""
    app = caching_fleet()
    partner(app, "LOC-1")
    app.register_devices(CUSTOMER, "C1", servers("S1", "S2"), PartnerChoice(location_id="LOC-1"))
    app.grant_consent(CUSTOMER, "C1", ["S1"])
    assert app.caches_aggregates
    return app


def held(cache: AggregateCache) -> dict[UUID, tuple[int, int, bytes]]:
    """What the cache holds, by id: version, the held object's identity and its state
    pickled (a change in place shows, though the entry's object stays the same)."""
    return {UUID(int=i): (v, id(a), pickle.dumps(a)) for i, (v, a) in cache._entries.items()}


def out_of_band(app: PartnerFleet, aggregate_id: UUID, change: Callable[[Any], None]) -> int:
    """Another process's write: the aggregate loaded from the store, changed and stored
    past this fleet's commands and cache. Returns the stored version."""
    aggregate = app.repository.get(aggregate_id)
    change(aggregate)
    app.events.put(aggregate.collect_events())
    return int(aggregate.version)


def attempts_of(logs: Sequence[Mapping[str, Any]], command: str) -> list[int]:
    return [e["attempts"] for e in logs if e.get("command") == command and "attempts" in e]


def test_issue_11_a_cache_hit_costs_no_store_read(fleet: CachingFleet) -> None:
    before = fleet.recorder.reads
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    assert fleet.recorder.reads == before
    assert fleet.device("S1").consent is not None


def test_issue_11_without_read_version_checks_every_load_goes_to_the_store() -> None:
    app = PartnerFleet(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})  # the stock
    # in-memory recorder, which does not check read versions
    partner(app, "LOC-1")
    app.register_devices(CUSTOMER, "C1", servers("S1"))
    assert not app.caches_aggregates
    app.grant_consent(CUSTOMER, "C1", ["S1"])
    assert app.aggregate_cache.hits == 0


def test_issue_11_after_a_save_the_cache_holds_the_saved_versions(fleet: CachingFleet) -> None:
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    stored = fleet.repository.get(DEVICE)
    assert fleet.aggregate_cache.version_of(DEVICE) == stored.version
    cached = fleet.aggregate_cache.get(DEVICE)
    assert cached is not None
    assert cached.consent is None
    assert not cached.pending_events


def test_issue_11_a_stale_written_aggregate_conflicts_and_the_retry_loads_it_fresh(
    fleet: CachingFleet,
) -> None:
    cached_version = fleet.aggregate_cache.version_of(DEVICE)
    stored = out_of_band(
        fleet, DEVICE, lambda d: d.collect_configuration(OPS, {"bios": "1.2"})
    )  # another process: now at cached_version + 1
    with capture_logs() as logs:
        fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    assert attempts_of(logs, "withdraw_consent") == [2]
    device = fleet.device("S1")
    assert device.version == stored + 1 == (cached_version or 0) + 2
    assert device.consent is None  # decided on the store's state, both events kept
    assert [type(e).__name__ for e in fleet.events.get(DEVICE)][-2:] == [
        "ConfigurationCollected",
        "ConsentWithdrawn",
    ]
    assert fleet.aggregate_cache.version_of(DEVICE) == device.version


def test_issue_11_a_stale_aggregate_only_read_conflicts_through_read_versions(
    fleet: CachingFleet,
) -> None:
    fleet.link_devices(CUSTOMER, "C1", ["S2"], PartnerChoice(location_id="LOC-1"))  # warm
    out_of_band(fleet, PARTNER, lambda p: p.accredit_as_service_partner(OPS, "CSDP-1"))
    with capture_logs() as logs:  # the cached partner is a reseller; the store's is not
        fleet.unlink_devices(CUSTOMER, "C1", ["S2"])
        fleet.link_devices(CUSTOMER, "C1", ["S2"], PartnerChoice(location_id="LOC-1"))
    # link read the partner (not changed), saved device and group: the stale read conflicts
    assert attempts_of(logs, "link_devices") == [2]
    assert fleet.aggregate_cache.version_of(PARTNER) == fleet.repository.get(PARTNER).version


def test_issue_11_a_refusal_decided_on_a_cached_copy_is_decided_again_on_the_store(
    fleet: CachingFleet,
) -> None:
    # another process withdrew consent: the cached S1 still has it, so a grant would be
    # refused as "already granted" if the cache decided
    out_of_band(fleet, DEVICE, lambda d: d.withdraw_consent(OPS))
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    consent = fleet.device("S1").consent
    assert consent is not None
    assert consent.text_version == CURRENT_CONSENT_TEXT


def test_issue_11_a_stale_service_partner_link_is_decided_on_the_store(
    fleet: CachingFleet,
) -> None:
    fleet.link_devices(CUSTOMER, "C1", ["S2"], PartnerChoice(location_id="LOC-1"))  # warm
    out_of_band(fleet, PARTNER, lambda p: p.accredit_as_service_partner(OPS, "CSDP-1"))
    # R-LNK-4 on the cached partner (a reseller) would refuse; the store's is accredited
    fleet.link_devices(
        CUSTOMER, "C1", ["S2"], PartnerChoice(location_id="LOC-1", role="service_partner")
    )
    assert fleet.device("S2").links == {"reseller": "LOC-1", "service_partner": "LOC-1"}


def test_issue_11_a_command_that_changes_nothing_on_a_cached_copy_is_decided_again(
    fleet: CachingFleet,
) -> None:
    # the cached S1 is linked to LOC-1; another process unlinked it: linking it again
    # changes nothing on the cached copy, and must link it on the store's
    out_of_band(fleet, DEVICE, lambda d: d.unlink_partner(OPS, "reseller"))
    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id="LOC-1"))
    assert fleet.device("S1").links == {"reseller": "LOC-1"}


def test_issue_11_a_refused_command_leaves_nothing_it_may_have_changed_cached(
    fleet: CachingFleet,
) -> None:
    """Session 23: a command borrows the entries a command changed last (no copy); refused,
    it gives up what it borrowed (the entry goes: a refusal may have changed it without
    an event), and every other entry stays as it was. The next command reads the store."""
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])  # S1 cached, without consent (adopted)
    entries = held(fleet.aggregate_cache)
    with pytest.raises(ConsentError):
        fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])  # refused on the store's state too
    with pytest.raises(ConsentError):
        fleet.withdraw_consent(CUSTOMER, "C1", ["S1", "S2"])  # S2 has none either
    after = held(fleet.aggregate_cache)
    assert DEVICE.int in {i.int for i in entries}
    assert DEVICE not in after  # borrowed by the refused command: gone
    assert {i: e for i, e in after.items() if i != DEVICE} == {
        i: e for i, e in entries.items() if i in after
    }  # the rest as it was, state and object
    reads = fleet.recorder.reads
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])  # decided on the store's S1
    assert fleet.recorder.reads > reads
    cached = fleet.aggregate_cache.get(DEVICE)
    assert cached is not None
    assert cached.consent is not None
    assert not cached.pending_events


def test_issue_11_a_command_mutates_a_private_copy_never_the_cached_one(
    fleet: CachingFleet,
) -> None:
    first, second = fleet.aggregate_cache.get(DEVICE), fleet.aggregate_cache.get(DEVICE)
    assert first is not None
    assert second is not None
    assert first is not second
    first.withdraw_consent(OPS)
    again = fleet.aggregate_cache.get(DEVICE)
    assert again is not None
    assert again.consent is not None
    assert not again.pending_events


def test_issue_11_prefetch_loads_what_find_then_answers_without_a_read(
    fleet: CachingFleet,
) -> None:
    from handlers.base import Working

    fleet.aggregate_cache.clear()
    w = Working(fleet, cache=fleet.aggregate_cache)
    missing = Device.id_for("NOPE1")
    w.prefetch(DEVICE, Device.id_for("S2"), GROUP, missing)
    before = fleet.recorder.reads
    assert w.find(Device, DEVICE) is not None
    assert w.find(CustomerGroup, GROUP) is not None
    assert w.find(Device, missing) is None
    assert fleet.recorder.reads == before
    assert w.read_versions()[DEVICE] == fleet.repository.get(DEVICE).version


def test_issue_11_a_prefetch_hint_never_changes_an_outcome(fleet: CachingFleet) -> None:
    from domain.device import SerialError

    with pytest.raises(SerialError):  # a bad serial is refused by the command, as before
        fleet.grant_consent(CUSTOMER, "C1", ["S2", "not a serial!"])
    assert fleet.device("S2").consent is None


def test_issue_11_authenticate_sees_a_new_user_at_once_in_one_read(fleet: CachingFleet) -> None:
    partner_user(fleet, "LOC-1", "anna@LOC-1")  # the partner is cached now
    out_of_band(fleet, PARTNER, lambda p: p.register_user(OPS, "carla@LOC-1"))
    before = fleet.recorder.reads
    actor = authenticate(fleet, Claims("carla@LOC-1", Role.PARTNER_USER, "LOC-1"))
    assert actor.role is Role.PARTNER_USER
    assert fleet.recorder.reads - before == 1  # the events after the cached version
    assert fleet.aggregate_cache.version_of(PARTNER) == fleet.repository.get(PARTNER).version


def test_issue_11_the_cache_is_a_bounded_lru() -> None:
    app = in_memory_fleet()
    partner(app, "LOC-1")
    app.register_devices(CUSTOMER, "C1", servers("S1", "S2", "S3", "S4"))
    devices = [app.repository.get(Device.id_for(f"S{i}")) for i in range(1, 5)]
    cache = AggregateCache(maxsize=3)
    cache.put(devices[:3])
    assert cache.get(devices[0].id) is not None  # S1 used: S2 is now the oldest
    cache.put(devices[3:])
    assert len(cache) == 3
    assert devices[1].id not in cache
    assert {d.id.int for d in (devices[0], devices[2], devices[3])} <= set(cache._entries)


def test_issue_11_a_cache_keeps_the_higher_version_of_an_aggregate() -> None:
    app = in_memory_fleet()
    partner(app, "LOC-1")
    app.register_devices(CUSTOMER, "C1", servers("S1"))
    old = app.repository.get(DEVICE)
    app.grant_consent(CUSTOMER, "C1", ["S1"])
    new = app.repository.get(DEVICE)
    cache = AggregateCache(maxsize=10)
    cache.put([new])
    cache.put([old])  # a slower thread's older copy does not replace the newer
    assert cache.version_of(DEVICE) == new.version


def test_issue_11_a_cache_of_size_0_keeps_nothing() -> None:
    app = caching_fleet(cache_size=0)
    partner(app, "LOC-1")
    assert not app.caches_aggregates
    assert len(app.aggregate_cache) == 0


def test_issue_11_the_cache_size_comes_from_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from infra.bootstrap import build_fleet
    from infra.settings import Settings

    monkeypatch.setenv("AGGREGATE_CACHE_SIZE", "5")
    app = build_fleet(Settings(database_url=f"sqlite:///{tmp_path / 'events.sqlite3'}"))
    try:
        assert app.aggregate_cache.maxsize == 5
    finally:
        app.close()


def withdraw(app: CachingFleet, *, returned: bool, stash: list[Any]) -> Any:
    """A command body run as every command's (`_run`) that lets its device escape, as no
    real command does: it returns the device, or (returned=False) returns nothing and
    keeps a hold on it in `stash` (session 17's tests of what the cache keeps)."""

    def body(w: Working) -> Any:
        device = w.load(Device, DEVICE, Msg("No device S1."))
        device.withdraw_consent(OPS)
        stash.append(device)
        return device if returned else None

    return app._run("withdraw_consent", OPS, body)


def test_session_17_a_result_holding_an_aggregate_leaves_a_copy_in_the_cache(
    fleet: CachingFleet,
) -> None:
    returned = withdraw(fleet, returned=True, stash=[])
    version = returned.version
    returned.grant_consent(OPS, CURRENT_CONSENT_TEXT)  # the caller's object, not the cache's
    returned.links["extra"] = "LOC-9"
    cached = fleet.aggregate_cache.get(DEVICE)
    assert cached is not None
    assert cached.version == version
    assert cached.consent is None
    assert "extra" not in cached.links


def test_session_17_a_command_returning_nothing_leaves_its_aggregate_adopted(
    fleet: CachingFleet,
) -> None:
    stash: list[Any] = []
    withdraw(fleet, returned=False, stash=stash)
    held = fleet.aggregate_cache._entries[DEVICE.int][1]
    assert held is stash[0]  # kept, not copied: the command gave it up
    got = fleet.aggregate_cache.get(DEVICE)
    assert got is not None
    assert got is not held
    assert got.consent is None


def test_session_17_an_adopted_aggregate_changed_since_is_forgotten(fleet: CachingFleet) -> None:
    stash: list[Any] = []
    withdraw(fleet, returned=False, stash=stash)
    stash[0].grant_consent(OPS, CURRENT_CONSENT_TEXT)  # a hold kept after all: it moves on
    assert fleet.aggregate_cache.get(DEVICE) is None
    assert DEVICE not in fleet.aggregate_cache
    assert fleet.device("S1").consent is None  # the store was never told
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])  # decided on the store's state
    assert fleet.device("S1").consent is not None


def test_session_17_with_the_stock_repository_cache_the_cache_keeps_copies() -> None:
    app = CachingFleet(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo", "AGGREGATE_CACHE_MAXSIZE": "10"}
    )
    partner(app, "LOC-1")
    app.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    app.grant_consent(CUSTOMER, "C1", ["S1"])
    assert app.repository.cache is not None
    assert app.caches_aggregates
    stash: list[Any] = []
    withdraw(app, returned=False, stash=stash)
    assert app.aggregate_cache._entries[DEVICE.int][1] is not stash[0]


def test_session_17_a_transfer_with_all_it_reads_cached_asks_the_store_nothing() -> None:
    """The holding tenant names no aggregate: a transfer from or to it does not prefetch
    its id (a read answering "none" every time)."""
    from tests.scenarios import pc_transferred_once

    app = caching_fleet()
    anna, holding, dashboard = pc_transferred_once(app)  # PC1 read once
    before = app.recorder.reads
    app.transfer_devices(anna, "LOC-1", ["PC1"], dashboard, holding, "t2")
    app.transfer_devices(anna, "LOC-1", ["PC1"], holding, dashboard, "t3")
    assert app.recorder.reads == before
    assert app.device("PC1").placement == dashboard
