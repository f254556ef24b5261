"""The load path (issue 11): one client's command mix with the aggregate cache on and off,
beside a stock eventsourcing Application doing the same command shapes.

`python -m bench.load_cache [--customers N] [--repetitions R]` (dev extras; not in the
suite: bench/commands.py's `commands.single` is the suite's figure). One fresh PostgreSQL
schema. Each variant works on customers of its own, set up by a third fleet (so every
variant starts with a cold cache), then runs, per customer, the mix: link a device to the
partner, grant consent, star the customer group, withdraw consent, unstar it, transfer a
PC from the holding tenant into the customer's dashboard. Variants, alternating in each
repetition:

- `cached`: PartnerFleet whose recorder checks read versions (tests/read_versions.py's
  PostgreSQL double, one extra statement in the save), so commands use the cache;
- `uncached`: PartnerFleet with FLEET_AGGREGATE_CACHE_SIZE=0 and partnerfleet's recorder
  (loads in one round trip each, prefetch hints);
- `stock`: eventsourcing's Application (stock repository without snapshots, stock
  recorder) on the same tables and mapper, loading the same aggregates with
  `repository.get` and saving the same events with one `save`.

Prints commands/s per variant (median, min, max), the ratios, the cache's hits and misses
and the load average before and after.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import Mapper, Recording

from bench.common import fresh_schema, open_fleet, postgres_env, quiet_logging
from domain import CustomerGroup, Device
from domain.consent import CURRENT_CONSENT_TEXT
from domain.customer_group import PLACED
from domain.partner import PartnerTenant
from domain.passport import Passport
from handlers import PartnerFleet
from handlers.access import Actor, Claims, Role, authenticate, service_actor
from handlers.fleet import NewDevice, PartnerChoice
from tests.read_versions import READ_CHECKING_POSTGRES_TOPIC

PARTNER = "PLLOAD0001"
ADMIN = "admin@load.example"
Step = Callable[[], object]


def ops() -> Actor:
    return service_actor("ops@load.example", Role.OPERATOR, correlation_id="load-ops")


def customer_admin(fleet: PartnerFleet, customer: str) -> Actor:
    return authenticate(fleet, Claims(f"it@{customer}", Role.CUSTOMER_ADMIN, customer, (), "c"))


def partner_user(fleet: PartnerFleet, user: str) -> Actor:
    return authenticate(fleet, Claims(user, Role.PARTNER_USER, PARTNER, (), "u"))


@dataclass
class Customer:
    """One customer of a variant: its device, its PC in the holding tenant, its dashboard,
    and the partner user who stars its group."""

    name: str
    serial: str
    pc: str
    dashboard: UUID
    user: str
    actor: Actor = field(repr=False)
    user_actor: Actor = field(repr=False)


def set_up(fleet: PartnerFleet, variant: str, repetition: int, n: int) -> list[Customer]:
    """Customers with a registered device, a PC in the holding tenant and a dashboard."""
    anna = partner_user(fleet, ADMIN)
    tag = f"{variant[:2].upper()}{repetition}"
    customers = []
    reports = []
    for i in range(n):
        name, user = f"C{tag}X{i:04d}", f"user{tag}x{i:04d}@load.example"
        fleet.register_partner_user(ops(), PARTNER, user)
        actor = customer_admin(fleet, name)
        serial, pc = f"S{tag}X{i:05d}", f"P{tag}X{i:05d}"
        fleet.register_devices(actor, name, [NewDevice(serial=serial, connection="direct_connect")])
        dashboard = fleet.create_customer_dashboard(anna, PARTNER, name, name, "4711-2026")
        reports.append(
            {
                "serial": pc,
                "model": "EliteBook 840",
                "reseller_location_id": PARTNER,
                "distributor": "Ingram",
                "ship_date": "2026-10-01",
            }
        )
        customers.append(Customer(name, serial, pc, dashboard, user, actor, actor))
    fleet.receive_e2open_batch(ops(), f"batch-{tag}", reports)
    return customers


def fleet_steps(fleet: PartnerFleet, customers: list[Customer]) -> list[Step]:
    """The mix through PartnerFleet's commands."""
    holding = PartnerTenant.holding_tenant_id_for(PARTNER)
    choice = PartnerChoice(location_id=PARTNER)
    steps: list[Step] = []
    for c in customers:
        user = partner_user(fleet, c.user)
        group = CustomerGroup.id_for(PARTNER, c.name)
        steps += [
            partial(fleet.link_devices, c.actor, c.name, [c.serial], choice, c.name),
            partial(fleet.grant_consent, c.actor, c.name, [c.serial]),
            partial(fleet.add_favourite, user, group),
            partial(fleet.withdraw_consent, c.actor, c.name, [c.serial]),
            partial(fleet.remove_favourite, user, group),
            partial(
                fleet.transfer_devices, user, PARTNER, [c.pc], holding, c.dashboard, f"T-{c.pc}"
            ),
        ]
    return steps


class StockFleet(Application[UUID]):
    """eventsourcing's Application as it comes, on partnerfleet's tables and mapper."""

    name = "partnerfleet"

    def __init__(self, mapper: Mapper[UUID], env: dict[str, str]) -> None:
        self._fleet_mapper = mapper
        super().__init__(env=env)

    def construct_mapper(self) -> Mapper[UUID]:
        return self._fleet_mapper  # the same encoding of the same events


def stock_steps(app: StockFleet, fleet: PartnerFleet, customers: list[Customer]) -> list[Step]:
    """The same command shapes: the same aggregates loaded, the same events, one save."""
    holding = PartnerTenant.holding_tenant_id_for(PARTNER)
    get = app.repository.get

    def link(c: Customer) -> list[Recording[UUID]]:
        device: Device = get(Device.id_for(c.serial))
        partner: PartnerTenant = get(PartnerTenant.id_for(PARTNER))
        device.link_partner(c.actor, PARTNER, "reseller", partner.partner_type)
        try:
            group: CustomerGroup = get(CustomerGroup.id_for(PARTNER, c.name))
        except AggregateNotFoundError:
            group = CustomerGroup.create(c.actor, PARTNER, c.name, c.name, partner.admins)
        group.add_device(c.actor, device.serial, "reseller", premium=False)
        return app.save(device, group)

    def grant(c: Customer) -> list[Recording[UUID]]:
        device: Device = get(Device.id_for(c.serial))
        device.grant_consent(c.actor, CURRENT_CONSENT_TEXT)
        return app.save(device)

    def withdraw(c: Customer) -> list[Recording[UUID]]:
        device: Device = get(Device.id_for(c.serial))
        device.withdraw_consent(c.actor)
        return app.save(device)

    def star(c: Customer, user: Actor) -> list[Recording[UUID]]:
        passport: Passport = get(Passport.id_for(c.user))
        group: CustomerGroup = get(CustomerGroup.id_for(PARTNER, c.name))
        group.mark_favourite(user, passport.passport_id)
        passport.add_favourite(user, group.id, PARTNER)
        return app.save(passport, group)

    def unstar(c: Customer, user: Actor) -> list[Recording[UUID]]:
        passport: Passport = get(Passport.id_for(c.user))
        group: CustomerGroup = get(CustomerGroup.id_for(PARTNER, c.name))
        passport.remove_favourite(user, group.id)
        group.unmark_favourite(user, c.user)
        return app.save(passport, group)

    def transfer(c: Customer, user: Actor) -> list[Recording[UUID]]:
        get(PartnerTenant.id_for(PARTNER))
        target: CustomerGroup = get(c.dashboard)
        device: Device = get(Device.id_for(c.pc))
        device.transfer(user, f"T-{c.pc}", PARTNER, holding, c.dashboard)
        target.add_device(user, device.serial, PLACED, device.care_plan is not None)
        return app.save(device, target)

    steps: list[Step] = []
    for c in customers:
        user = partner_user(fleet, c.user)
        steps += [
            partial(link, c),
            partial(grant, c),
            partial(star, c, user),
            partial(withdraw, c),
            partial(unstar, c, user),
            partial(transfer, c, user),
        ]
    return steps


def run(steps: list[Step]) -> float:
    """Commands/s of the steps run one after another."""
    started = time.perf_counter()
    for step in steps:
        step()
    return len(steps) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=60)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--profile", choices=["cached", "uncached", "stock"], default=None)
    args = parser.parse_args()
    quiet_logging()
    print(f"load average before: {os.getloadavg()}")
    with fresh_schema() as schema:
        env = postgres_env(schema)
        cached_env = {**env, "PROCESS_RECORDER_TOPIC": READ_CHECKING_POSTGRES_TOPIC}
        with (
            open_fleet(env) as setup,
            open_fleet(cached_env) as cached,
            open_fleet({**env, "FLEET_AGGREGATE_CACHE_SIZE": "0"}) as uncached,
        ):
            stock = StockFleet(setup.mapper, {**env, "PROCESS_RECORDER_TOPIC": ""})
            assert cached.caches_aggregates
            assert not uncached.caches_aggregates
            setup.register_partner(ops(), PARTNER, "Load Reseller")
            setup.register_partner_user(ops(), PARTNER, ADMIN)
            setup.certify_partner(ops(), PARTNER, "resell_view_monitor")
            rates: dict[str, list[float]] = {"cached": [], "uncached": [], "stock": []}
            order = list(rates)
            for repetition in range(args.repetitions):
                plans: dict[str, list[Step]] = {}
                for variant in order:
                    customers = set_up(setup, variant, repetition, args.customers)
                    if variant == "cached":
                        plans[variant] = fleet_steps(cached, customers)
                    elif variant == "uncached":
                        plans[variant] = fleet_steps(uncached, customers)
                    else:
                        plans[variant] = stock_steps(stock, setup, customers)
                for variant in order:
                    if variant == args.profile:
                        profile = cProfile.Profile()
                        profile.enable()
                    rates[variant].append(run(plans[variant]))
                    if variant == args.profile:
                        profile.disable()
                        pstats.Stats(profile).sort_stats("cumulative").print_stats(45)
                    print(f"rep {repetition} {variant}: {rates[variant][-1]:.0f}/s", flush=True)
                order = order[1:] + order[:1]  # who goes first rotates
            stock.close()
            cache = cached.aggregate_cache
            print(f"cache: {len(cache)} held, {cache.hits} hits, {cache.misses} misses")
    summary: dict[str, Any] = {}
    for variant, samples in rates.items():
        summary[variant] = statistics.median(samples)
        print(
            f"{variant:9} median {summary[variant]:.0f}/s "
            f"(min {min(samples):.0f}, max {max(samples):.0f})"
        )
    for variant in ("cached", "uncached"):
        print(f"{variant} / stock: {summary[variant] / summary['stock']:.2f}")
    print(f"cached / uncached: {summary['cached'] / summary['uncached']:.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
