"""Unit-tier fixtures: a fleet in memory, a partner with admin and user, a customer's devices.

Tests read as given events / when command / then events or error. The helpers below read
what a command stored (`events_of`, `events_since`) and check that a refused command
recorded nothing (`refused`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar
from uuid import UUID

import pytest

from domain import CustomerGroup, DomainError
from domain.base import FleetAggregate
from handlers import PartnerFleet
from handlers.devices import NewDevice, PartnerChoice
from tests.actors import known_partner_user
from tests.scenarios import CUSTOMER, OPS, event_count, in_memory_fleet, servers
from tests.scenarios import report as e2open_report

__all__ = ["CUSTOMER", "OPS", "e2open_report", "event_count", "servers"]

E = TypeVar("E", bound=FleetAggregate.Event)
Err = TypeVar("Err", bound=DomainError)

LOC = "LOC-1"
OTHER_LOC = "LOC-2"
SERVICE_LOC = "LOC-S"
CUSTOMER_ID = "C1"
# LOC-1's first user, so its admin (the `partner` fixture registers Anna and Ben)
ANNA = known_partner_user(LOC, f"anna@{LOC}", admin=True, correlation_id="corr-anna")
# LOC-1's second user, a plain partner user
BEN = known_partner_user(LOC, f"ben@{LOC}", admin=False, correlation_id="corr-ben")
# LOC-2's admin (the `other_partner` fixture)
OTTO = known_partner_user(OTHER_LOC, f"otto@{OTHER_LOC}", admin=True, correlation_id="corr-otto")


# --- reading the store -------------------------------------------------------------------


def events_of(app: PartnerFleet, aggregate_id: UUID) -> list[FleetAggregate.Event]:
    """Every event stored for one aggregate, oldest first."""
    events = list(app.events.get(aggregate_id))
    assert all(isinstance(e, FleetAggregate.Event) for e in events)
    return [e for e in events if isinstance(e, FleetAggregate.Event)]


def events_since(app: PartnerFleet, position: int) -> list[FleetAggregate.Event]:
    """Every event stored after notification `position`, in log order."""
    notifications = app.recorder.select_notifications(start=position + 1, limit=10_000)
    events = [app.mapper.to_domain_event(n) for n in notifications]
    return [e for e in events if isinstance(e, FleetAggregate.Event)]


def names(events: Sequence[FleetAggregate.Event]) -> list[str]:
    """Event type names such as `Device.PartnerLinked`, in order."""
    return [type(e).__qualname__ for e in events]


def of_type(events: Sequence[FleetAggregate.Event], event_type: type[E]) -> list[E]:
    """The events of one type, in order."""
    return [e for e in events if isinstance(e, event_type)]


@contextmanager
def refused(app: PartnerFleet, error: type[Err], match: str) -> Iterator[pytest.ExceptionInfo[Err]]:
    """The command in the block is refused with `error` saying `match`, and records nothing."""
    assert issubclass(error, DomainError)
    before = event_count(app)
    with pytest.raises(error, match=match) as info:
        yield info
    assert event_count(app) == before, "a refused command must record nothing"


# --- building a world --------------------------------------------------------------------


def hosted_fleet(host: str, *serials: str) -> list[NewDevice]:
    """An Insight RS hosting device and the central-connect devices it manages."""
    hosting = NewDevice(serial=host, connection="direct_connect", is_hosting_device=True)
    managed = [
        NewDevice(serial=s, connection="central_connect", hosting_serial=host) for s in serials
    ]
    return [hosting, *managed]


def to(location_id: str, role: str = "reseller") -> PartnerChoice:
    """The partner a customer links, in a role."""
    return PartnerChoice(location_id=location_id, role=role)


def register_partner(app: PartnerFleet, location_id: str, *users: str) -> None:
    """A partner tenant with its users; the first user becomes its admin."""
    app.register_partner(OPS, location_id, f"Partner {location_id}")
    for user in users:
        app.register_partner_user(OPS, location_id, user)


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def app() -> PartnerFleet:
    """A fleet on in-memory storage."""
    return in_memory_fleet()


@pytest.fixture
def partner(app: PartnerFleet) -> str:
    """Reseller LOC-1 with admin Anna and user Ben; returns its Location ID."""
    register_partner(app, LOC, ANNA.principal, BEN.principal)
    return LOC


@pytest.fixture
def other_partner(app: PartnerFleet) -> str:
    """Reseller LOC-2 with admin Otto; returns its Location ID."""
    register_partner(app, OTHER_LOC, OTTO.principal)
    return OTHER_LOC


@pytest.fixture
def service_partner(app: PartnerFleet) -> str:
    """LOC-S, accredited as service partner with a CSDP account; returns its Location ID."""
    register_partner(app, SERVICE_LOC, f"sam@{SERVICE_LOC}")
    app.accredit_service_partner(OPS, SERVICE_LOC, "CSDP-77")
    return SERVICE_LOC


@pytest.fixture
def customer_devices(app: PartnerFleet) -> list[str]:
    """Customer C1's unlinked direct-connect servers S1, S2, S3."""
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers("S1", "S2", "S3"))
    return ["S1", "S2", "S3"]


@pytest.fixture
def linked_group(app: PartnerFleet, partner: str) -> UUID:
    """C1's servers S1, S2 linked to LOC-1 at registration; returns LOC-1's group for C1."""
    app.register_devices(
        CUSTOMER, CUSTOMER_ID, servers("S1", "S2"), to(partner), customer_name="Customer One"
    )
    return CustomerGroup.id_for(partner, CUSTOMER_ID)


@pytest.fixture
def holding_tenant(app: PartnerFleet, partner: str) -> UUID:
    """LOC-1 certified for HP Premium (Resell and View/Monitor); returns its holding tenant."""
    return app.certify_partner(OPS, partner, "resell_view_monitor")
