"""Session 17, attack 2: what the aggregate cache holds after every kind of command
outcome (refused or raising after a change, results that hold an aggregate or hold none,
callers keeping and changing what they were given), compared with the store
(docs/decisions.md, "Issue 11, attack on the command path changes")."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any
from uuid import UUID

import pytest

from domain import Device
from domain.base import DomainError, Msg
from domain.consent import CURRENT_CONSENT_TEXT
from handlers.access import Actor, Role
from handlers.base import Working, command
from handlers.devices import PartnerChoice
from tests.actors import operator
from tests.conftest import commands_kept_local
from tests.read_versions import CachingFleet
from tests.scenarios import CUSTOMER, OPS, partner, servers

DEVICE = Device.id_for("S1")


@dataclasses.dataclass
class Box:
    device: Any


with commands_kept_local():  # not commands of the service (tests/conftest.py)

    class ProbeFleet(CachingFleet):
        """A caching fleet with one more command, changing S1 then ending the way it is told."""

        @command(Role.OPERATOR)
        def probe(self, w: Working, actor: Actor, serial: str, how: str) -> Any:  # noqa: PLR0911
            device = w.load(Device, Device.id_for(serial), Msg("No such device."))
            if device.consent is None:
                device.grant_consent(actor, CURRENT_CONSENT_TEXT)
            else:
                device.withdraw_consent(actor)
            if how in ("refuse", "raise"):
                device.links["probe"] = "changed in place"  # never saved: the command fails
                device.alerts.clear()
                device.hosted.append("X")
            if how == "refuse":
                raise DomainError(Msg("Refused after a change."))
            if how == "raise":
                raise RuntimeError("failed after a change")
            if how == "aggregate":
                return device
            if how == "list":
                return [device]
            if how == "dataclass":
                return Box(device)
            if how == "tuple":
                return (device.id, device)
            if how == "id":
                return device.id
            if how == "text":
                return device.serial
            return None


@pytest.fixture
def fleet() -> ProbeFleet:
    app = ProbeFleet(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    partner(app, "LOC-1")
    app.register_devices(CUSTOMER, "C1", servers("S1", "S2"), PartnerChoice(location_id="LOC-1"))
    app.grant_consent(CUSTOMER, "C1", ["S1"])
    app.probe(OPS, "S1", "none")  # S1 cached (adopted), then changed again below
    assert app.caches_aggregates
    assert DEVICE in app.aggregate_cache
    return app


def state(aggregate: Any) -> bytes:
    return pickle.dumps({k: v for k, v in vars(aggregate).items() if k != "_pending_events"})


def assert_cache_is_store(fleet: ProbeFleet, aggregate_id: UUID) -> None:
    version = fleet.aggregate_cache.version_of(aggregate_id)
    cached = fleet.aggregate_cache.get(aggregate_id)
    stored = fleet.repository.get(aggregate_id)
    if cached is None:  # forgotten: never wrong
        return
    assert version == cached.version == stored.version
    assert state(cached) == state(stored), "the cache answers from a state the store lacks"


@pytest.mark.parametrize("how", ["refuse", "raise"])
def test_session17_a_command_failing_after_a_change_leaves_the_cache_as_the_store(
    fleet: ProbeFleet, how: str
) -> None:
    """Refused or raising after changing an aggregate (an event and changes in place) taken
    from the cache, itself an adopted entry: the cache keeps what the store has."""
    before = fleet.aggregate_cache._entries[DEVICE.int]
    with pytest.raises((DomainError, RuntimeError)):
        fleet.probe(OPS, "S1", how)
    held = fleet.aggregate_cache._entries.get(DEVICE.int)
    assert held is None or (held[0] == before[0] and not held[1].pending_events)
    assert_cache_is_store(fleet, DEVICE)


@pytest.mark.parametrize("how", ["aggregate", "list", "dataclass", "tuple", "id", "text", "none"])
def test_session17_a_caller_changing_what_a_command_gave_it_never_changes_the_cache(
    fleet: ProbeFleet, how: str
) -> None:
    """Whatever the result holds (an aggregate, one in a list, a dataclass or a tuple, or
    no aggregate: then the cache adopts the command's own), a caller who keeps it and
    changes what it reaches (in place, and by events never saved) leaves the cache
    answering as the store."""
    result = fleet.probe(OPS, "S1", how)
    reached: list[Any] = []
    if how == "aggregate":
        reached = [result]
    elif how == "list":
        reached = result
    elif how == "dataclass":
        reached = [result.device]
    elif how == "tuple":
        reached = [result[1]]
    for device in reached:
        device.links["caller"] = "changed in place"
        device.hosted.append("Y")
        if device.consent:
            device.withdraw_consent(OPS)
        else:
            device.grant_consent(OPS, CURRENT_CONSENT_TEXT)
    assert_cache_is_store(fleet, DEVICE)
    fleet.probe(OPS, "S1", "none")  # decided on what the cache gives
    assert fleet.aggregate_cache.get(DEVICE) is not None, "compared with something"
    assert_cache_is_store(fleet, DEVICE)


with commands_kept_local():  # not commands of the service (tests/conftest.py)

    class NestingFleet(CachingFleet):
        """A command that runs another command, of another actor, and fails or not after it."""

        seen: list[dict[str, Any]]

        @command(Role.OPERATOR)
        def outer(self, w: Working, actor: Actor, fail: bool) -> None:
            import structlog

            self.seen.append(structlog.contextvars.get_contextvars())
            self.inner(OTHER, fail)
            self.seen.append(structlog.contextvars.get_contextvars())

        @command(Role.OPERATOR)
        def inner(self, w: Working, actor: Actor, fail: bool) -> None:
            import structlog

            self.seen.append(structlog.contextvars.get_contextvars())
            if fail:
                raise DomainError(Msg("Inner refused."))


OTHER = operator("hp-other", "corr-other")


@pytest.mark.parametrize("fail", [False, True])
def test_session17_a_nested_command_restores_its_callers_log_context(fail: bool) -> None:
    """Log context bound and reset by tokens: a command run inside another (another actor)
    logs as its own actor, and the outer one logs as itself again after it, refused or
    not; afterwards the context is what it was before."""
    import structlog

    fleet = NestingFleet(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    fleet.seen = []
    structlog.contextvars.bind_contextvars(request="r-1")
    try:
        if fail:
            with pytest.raises(DomainError):
                fleet.outer(OPS, fail)
        else:
            fleet.outer(OPS, fail)
        after = structlog.contextvars.get_contextvars()
    finally:
        structlog.contextvars.unbind_contextvars("request")
    principals = [seen.get("principal") for seen in fleet.seen]
    assert principals == (["hp-ops", "hp-other"] if fail else ["hp-ops", "hp-other", "hp-ops"])
    assert all(seen.get("request") == "r-1" for seen in fleet.seen)
    assert after == {"request": "r-1"}
