"""Read-model test set-up: commands on an in-memory fleet, every view in in-memory SQLite.

A test issues commands on `fleet`, then reads with `read()`: the runner applies everything
stored so far, and the queries run in one view-database transaction. Test modules import
the fixtures they use and list them in `__all__`, which is what tells ruff that pytest,
not the module, uses the import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import TypeVar
from uuid import UUID

import pytest

from domain import CustomerGroup, Device
from domain.base import FleetAggregate
from handlers import PartnerFleet
from handlers.access import Actor
from handlers.devices import PartnerChoice
from infra.follow.view_runner import ViewRunner
from infra.storage.viewdb import SQLiteViewDB
from projections import all_views
from projections.base import Tx
from tests.actors import customer, known_partner_user
from tests.scenarios import CUSTOMER, OPS, in_memory_fleet, partner, servers

__all__ = ["CUSTOMER", "OPS", "servers"]

E = TypeVar("E", bound=FleetAggregate.Event)
Reader = Callable[[], AbstractContextManager[Tx]]

LOC = "LOC-1"
OTHER_LOC = "LOC-2"
SERVICE_LOC = "LOC-S"
OTHER_SERVICE_LOC = "LOC-T"


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def fleet() -> PartnerFleet:
    """The command side, on in-memory storage."""
    return in_memory_fleet()


@pytest.fixture
def db() -> Iterator[SQLiteViewDB]:
    """The read models' database, in memory."""
    database = SQLiteViewDB(":memory:")
    yield database
    database.close()


@pytest.fixture
def runner(fleet: PartnerFleet, db: SQLiteViewDB) -> ViewRunner:
    """Every read model, following the fleet's events into the view database."""
    return ViewRunner(fleet, db, all_views())


@pytest.fixture
def read(runner: ViewRunner, db: SQLiteViewDB) -> Reader:
    """`with read() as tx:` catches every view up with the store, then opens a transaction."""

    @contextmanager
    def reading() -> Iterator[Tx]:
        runner.catch_up()
        with db.transaction() as tx:
            yield tx

    return reading


# --- building a world --------------------------------------------------------------------


def admin(location_id: str) -> Actor:
    """Anna, the partner's first user and so its admin (of a partner `new_partner` made)."""
    return known_partner_user(
        location_id, f"anna@{location_id}", admin=True, correlation_id=f"corr-anna-{location_id}"
    )


def user(location_id: str) -> Actor:
    """Ben, the partner's second user: a plain partner user."""
    return known_partner_user(
        location_id, f"ben@{location_id}", admin=False, correlation_id=f"corr-ben-{location_id}"
    )


def new_partner(fleet: PartnerFleet, location_id: str, *, service: bool = False) -> str:
    """A partner with admin Anna and user Ben, certified for HP Premium; its Location ID."""
    partner(fleet, location_id, service=service)
    return location_id


def link_new_servers(
    fleet: PartnerFleet,
    customer_id: str,
    *serials: str,
    to: str,
    role: str = "reseller",
    name: str = "",
) -> None:
    """The customer registers direct-connect servers and links them to a partner at once."""
    choice = PartnerChoice(location_id=to, role=role)
    fleet.register_devices(
        customer(customer_id), customer_id, servers(*serials), choice, customer_name=name
    )


def group_id(location_id: str, customer_id: str) -> UUID:
    """The id of the partner's customer group for the customer, as commands take it."""
    return CustomerGroup.id_for(location_id, customer_id)


def group_of(location_id: str, customer_id: str) -> str:
    """The id of the partner's customer group for the customer, as the views store it."""
    return str(group_id(location_id, customer_id))


def device_events(fleet: PartnerFleet, serial: str, event_type: type[E]) -> list[E]:
    """The device's stored events of one type, oldest first."""
    return [e for e in fleet.events.get(Device.id_for(serial)) if isinstance(e, event_type)]


def times_of(fleet: PartnerFleet, serial: str, event_type: type[E]) -> list[datetime]:
    """When the device's events of one type were recorded, oldest first."""
    return [e.timestamp for e in device_events(fleet, serial, event_type)]
