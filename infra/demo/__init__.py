"""Demo data for `make run` and `partnerfleet demo`: three partners, 200 customers, 3,000
devices and what happens to them, generated from a fixed seed and seeded once.

Everything goes through the public commands as the principal who would issue it
(`infra.demo.seeding`); `DEMO_PRINCIPALS` are the people and service accounts a UI
developer signs in as (`partnerfleet token issue --demo` mints a token for each).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from handlers import PartnerFleet
from infra.bootstrap import build_fleet, build_policy_runner
from infra.demo import seeding
from infra.demo.people import (
    CUSTOMER,
    CUSTOMER_2,
    DEMO_PRINCIPALS,
    END_USER_PC,
    RESELLER,
    RESELLER_2,
    SERVICE_PARTNER,
    Principals,
)
from infra.demo.plan import FULL_SIZE, DemoCustomer, plan
from infra.demo.summary import store_summary
from infra.settings import Settings

__all__ = [
    "CUSTOMER",
    "CUSTOMER_2",
    "DEMO_PRINCIPALS",
    "END_USER_PC",
    "FULL_SIZE",
    "RESELLER",
    "RESELLER_2",
    "SERVICE_PARTNER",
    "DemoIncompleteError",
    "Seeded",
    "open_demo_store",
    "seed_demo",
    "store_summary",
]


class DemoIncompleteError(Exception):
    """The store holds the start of the demo but not its end (a seeding stopped half-way)."""


@dataclass(frozen=True)
class Seeded:
    """What a call of `seed_demo` did: `seeded` False when the demo was there already;
    `events` stored by it; `seconds` it took (wall clock)."""

    seeded: bool
    events: int
    seconds: float


def seed_demo(fleet: PartnerFleet, customers: int = FULL_SIZE) -> Seeded:
    """Seed the demo (`customers` customers, 15 devices each) unless it is there already,
    then let the policies decide on its alerts and repair cases (R-ALR-1, R-ALR-2).

    Raises `DemoIncompleteError` when an earlier seeding stopped half-way, and ValueError
    for fewer than 2 customers.
    """
    started, before = time.perf_counter(), _head(fleet)
    complete = seeding.is_complete(fleet)
    if complete is False:
        raise DemoIncompleteError(
            "The demo data in this store is incomplete (an earlier seeding stopped half-way);"
            " delete the store (var/ for the SQLite demo) and start again."
        )
    if complete is None:
        _seed(fleet, plan(customers))
    policies = build_policy_runner(fleet)
    while policies.catch_up():  # until they have decided on their own decisions too
        pass
    return Seeded(complete is None, _head(fleet) - before, time.perf_counter() - started)


def open_demo_store(settings: Settings, customers: int = FULL_SIZE) -> tuple[PartnerFleet, Seeded]:
    """The fleet over the configured store with the demo in it (`serve --demo`).

    A SQLite store that does not exist yet is seeded aside, in `<store>.seeding`, and moved
    into place only when complete: a first seeding stopped half-way (Ctrl-C, a kill) leaves
    no store behind, and the next start seeds afresh (removing what the stopped one left).
    Any other store is seeded in place (`seed_demo`: DemoIncompleteError when an earlier
    seeding of it stopped half-way)."""
    storage = settings.storage
    store = Path(storage.location)
    if storage.kind == "sqlite" and not store.exists():
        staging = store.with_name(store.name + ".seeding")
        _remove_sqlite(staging)
        store.parent.mkdir(parents=True, exist_ok=True)
        aside = settings.model_copy(update={"database_url": SecretStr(f"sqlite:///{staging}")})
        fleet = build_fleet(aside)
        try:
            seeded = seed_demo(fleet, customers)
        finally:
            fleet.close()
        for suffix in ("-wal", "-shm"):  # a checkpoint on close leaves none; move any kept
            leftover = Path(f"{staging}{suffix}")
            if leftover.exists():
                os.replace(leftover, f"{store}{suffix}")
        os.replace(staging, store)
        return build_fleet(settings), seeded
    fleet = build_fleet(settings)
    return fleet, seed_demo(fleet, customers)


def _remove_sqlite(path: Path) -> None:
    """A SQLite database file and its journal files, if any."""
    for name in (str(path), f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        Path(name).unlink(missing_ok=True)


def _seed(fleet: PartnerFleet, customers: list[DemoCustomer]) -> None:
    who = Principals(fleet)
    seeding.partners(fleet, who)
    seeding.e2open_delivery(fleet, who, customers)
    for each in customers:
        seeding.customer(fleet, who, each)
    seeding.dashboards(fleet, who, customers)
    seeding.remote_support(fleet, who, customers)
    seeding.partner_work(fleet, who, customers)
    seeding.alerts_and_cases(fleet, who, customers)
    seeding.audit(fleet, who, customers)
    seeding.finish(fleet, who)


def _head(fleet: PartnerFleet) -> int:
    return fleet.recorder.max_notification_id() or 0
