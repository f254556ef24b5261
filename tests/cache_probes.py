"""What the aggregate-cache tests share (issue 11, sessions 22-23): a device as the cache
holds one, a count of the copies the cache makes, a stored aggregate replayed without
snapshots, and a caching fleet with commands that misbehave as a buggy command could."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import reduce
from typing import Any
from uuid import UUID

from domain import Device
from domain.base import Msg, NotAllowedError
from domain.consent import CURRENT_CONSENT_TEXT
from handlers import PartnerFleet, aggregate_cache
from handlers.access import Actor, Role
from handlers.base import COMMANDS, Working, command
from handlers.devices import PartnerChoice
from handlers.private_copy import private_copy
from tests.read_versions import CachingFleet
from tests.scenarios import CUSTOMER, OPS, partner, servers


def a_device(serial: str = "S9") -> Device:
    """A device with no pending events (as the cache holds one), at version 1."""
    device = Device.register(OPS, serial=serial, connection="direct_connect", customer_id="C9")
    device.collect_events()
    return device


@contextmanager
def copies_made() -> Iterator[list[Any]]:
    """The objects the aggregate cache copies (`private_copy` as it calls it) meanwhile."""
    made: list[Any] = []

    def counting(value: Any) -> Any:
        made.append(value)
        return private_copy(value)

    setattr(aggregate_cache, "private_copy", counting)  # noqa: B010 (no attribute to mypy)
    try:
        yield made
    finally:
        setattr(aggregate_cache, "private_copy", private_copy)  # noqa: B010


def replayed(fleet: PartnerFleet, aggregate_id: UUID) -> Any:
    """The aggregate rebuilt from all its stored events, no snapshot."""
    events: list[Any] = list(fleet.events.get(aggregate_id))
    return reduce(lambda a, e: e.mutate(a), events, None)


def state_of(aggregate: Any) -> dict[str, Any]:
    """An aggregate's state, less its pending events."""
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


MISBEHAVING = ("scribble_device", "grant_then_refuse", "device_itself")


@contextmanager
def misbehaving_fleet() -> Iterator[Any]:
    """A caching fleet in memory (tests/read_versions.py): partner LOC-1, customer C1's
    servers S1 and S2 linked to it, S1 with consent; with three commands of its own,
    declared here and undeclared after (COMMANDS): `scribble_device` changes a device
    without an event, then refuses (or is interrupted); `grant_then_refuse` grants consent
    (an event), then refuses; `device_itself` answers the device unchanged (a result that
    holds an aggregate)."""
    try:

        class Misbehaving(CachingFleet):
            @command(Role.OPERATOR)
            def scribble_device(
                self, w: Working, actor: Actor, serial: str, interrupt: bool
            ) -> None:
                device = w.load(Device, Device.id_for(serial), Msg("no device"))
                device.customer_id = "SCRIBBLED"
                if interrupt:
                    raise KeyboardInterrupt
                raise NotAllowedError(Msg("refused after scribbling"))

            @command(Role.OPERATOR)
            def grant_then_refuse(self, w: Working, actor: Actor, serial: str) -> None:
                device = w.load(Device, Device.id_for(serial), Msg("no device"))
                device.grant_consent(actor, CURRENT_CONSENT_TEXT)
                raise NotAllowedError(Msg("refused after changing"))

            @command(Role.OPERATOR)
            def device_itself(self, w: Working, actor: Actor, serial: str) -> Device:
                return w.load(Device, Device.id_for(serial), Msg("no device"))

        app = Misbehaving(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        partner(app, "LOC-1")
        choice = PartnerChoice(location_id="LOC-1")
        app.register_devices(CUSTOMER, "C1", servers("S1", "S2"), choice)
        app.grant_consent(CUSTOMER, "C1", ["S1"])
        yield app
    finally:
        for name in MISBEHAVING:
            COMMANDS.pop(name, None)
