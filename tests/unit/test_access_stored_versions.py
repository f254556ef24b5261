"""`authenticate(..., stored_versions)` and `FleetApplication.current_at` (issue 11, session
18): a partner's last stored version read by the caller decides whether the cached partner
may be used (exactly that version) or the store is read; the answer is always the store's."""

from __future__ import annotations

import pytest

from domain.partner import PartnerTenant
from handlers import PartnerFleet
from handlers.access import (
    AuthenticationError,
    Claims,
    NotCachedError,
    Role,
    authenticate,
    claimed_partner,
)
from tests.read_versions import events_reads
from tests.scenarios import OPS, in_memory_fleet, partner

LOC = PartnerTenant.id_for("LOC-1")
ANNA = Claims("anna@LOC-1", "partner_user", "LOC-1")


@pytest.fixture
def fleet() -> PartnerFleet:
    made = in_memory_fleet()
    partner(made, "LOC-1")
    made.current(PartnerTenant, LOC)  # cached at its stored version
    return made


def stored(fleet: PartnerFleet) -> int:
    found = fleet.repository.get(LOC)
    return int(found.version)


def test_the_cached_partner_at_the_stored_version_is_used_without_a_read(
    fleet: PartnerFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = stored(fleet)
    seen = events_reads(fleet, monkeypatch)

    actor = authenticate(fleet, ANNA, {LOC: version})

    assert actor.role is Role.PARTNER_ADMIN
    assert seen == []


def test_a_later_stored_version_reads_the_store_and_sees_the_new_user(
    fleet: PartnerFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    zed = Claims("zed@LOC-1", "partner_user", "LOC-1")
    cached = stored(fleet)
    with pytest.raises(AuthenticationError):
        authenticate(fleet, zed, {LOC: cached})
    # as if another process registered zed: the store moves on, this cache stays behind
    fleet.register_partner_user(OPS, "LOC-1", "zed@LOC-1")
    fleet.aggregate_cache.evict([LOC])
    fleet.aggregate_cache.put([fleet.repository.get(LOC, version=cached)])
    assert fleet.aggregate_cache.version_of(LOC) == cached
    seen = events_reads(fleet, monkeypatch)

    actor = authenticate(fleet, zed, {LOC: cached + 1})

    assert actor.role is Role.PARTNER_USER
    assert seen == [LOC]


def test_no_stored_version_is_no_partner_and_another_kind_is_none(
    fleet: PartnerFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = events_reads(fleet, monkeypatch)

    with pytest.raises(AuthenticationError, match="not a user registered"):
        authenticate(fleet, ANNA, {LOC: None})  # the store has no event of it: refused

    assert seen == []
    assert fleet.current_at(PartnerTenant, LOC, None) is None


def test_the_claimed_partner_is_the_one_authenticate_reads() -> None:
    decomposed = Claims("anna", "partner_admin", "Lo\u0301C")  # NFC: "LóC"

    assert claimed_partner(ANNA) == LOC
    assert claimed_partner(decomposed) == PartnerTenant.id_for("L\u00f3C")
    assert claimed_partner(Claims("it@c1", "customer_admin", "C1")) is None
    assert claimed_partner(Claims("ops", "operator")) is None
    assert claimed_partner(Claims("anna", "partner_user", "")) is None


def test_cached_only_refuses_to_read_the_store_for_a_partner_behind(
    fleet: PartnerFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Session 19: the page's loop path may not wait for the store; a partner cached behind
    the stored version is NotCachedError (answered in a thread), never the stale copy."""
    version = stored(fleet)
    seen = events_reads(fleet, monkeypatch)

    with pytest.raises(NotCachedError):
        authenticate(fleet, ANNA, {LOC: version + 1}, cached_only=True)
    with pytest.raises(NotCachedError):
        authenticate(fleet, ANNA, cached_only=True)  # no stored version read: not cached
    actor = authenticate(fleet, ANNA, {LOC: version}, cached_only=True)

    assert actor.role is Role.PARTNER_ADMIN
    assert seen == []


def test_cached_only_still_refuses_an_unknown_user_and_a_partner_without_events(
    fleet: PartnerFleet,
) -> None:
    zed = Claims("zed@LOC-1", "partner_user", "LOC-1")

    with pytest.raises(AuthenticationError):
        authenticate(fleet, zed, {LOC: stored(fleet)}, cached_only=True)
    with pytest.raises(AuthenticationError):
        authenticate(fleet, ANNA, {LOC: None}, cached_only=True)
