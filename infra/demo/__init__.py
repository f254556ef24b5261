"""Demo data for `make run` and `partnerfleet demo`: three partners, 200 customers, 3,000
devices and what happens to them, generated from a fixed seed and seeded once.

Everything goes through the public commands as the principal who would issue it
(`infra.demo.seeding`); `DEMO_PRINCIPALS` are the people and service accounts a UI
developer signs in as (`partnerfleet token issue --demo` mints a token for each).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from handlers import PartnerFleet
from infra.bootstrap import build_policy_runner
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
