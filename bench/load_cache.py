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
- `folded`: the same with a recorder that claims the check and sends nothing for it: what
  the cache gives once the save path checks read versions inside its own round trip (no
  other writer runs here, so no read goes stale);
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
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import AggregateNotFoundError, Application, Repository
from eventsourcing.persistence import Mapper, Recording
from eventsourcing.utils import get_topic
from psycopg.waiting import Wait

from bench.common import fresh_schema, open_fleet, postgres_env, quiet_logging
from domain import CustomerGroup, Device
from domain.consent import CURRENT_CONSENT_TEXT
from domain.customer_group import PLACED
from domain.partner import PartnerTenant
from domain.passport import Passport
from handlers import PartnerFleet
from handlers.access import Actor, Claims, Role, authenticate, service_actor
from handlers.fleet import NewDevice, PartnerChoice
from handlers.snapshots import replay
from infra.storage.pg_recorder import FleetProcessRecorder
from tests.read_versions import READ_CHECKING_POSTGRES_TOPIC

Step = Callable[[], object]
VARIANTS = ("cached", "folded", "uncached", "stock")


def ops() -> Actor:
    return service_actor("ops@load.example", Role.OPERATOR, correlation_id="load-ops")


def customer_admin(fleet: PartnerFleet, customer: str) -> Actor:
    return authenticate(fleet, Claims(f"it@{customer}", Role.CUSTOMER_ADMIN, customer, (), "c"))


def partner_user(fleet: PartnerFleet, user: str, location_id: str) -> Actor:
    return authenticate(fleet, Claims(user, Role.PARTNER_USER, location_id, (), "u"))


@dataclass
class Customer:
    """One customer of a variant: its device, its PC in its partner's holding tenant, its
    dashboard, and the partner's user who stars its group."""

    name: str
    serial: str
    pc: str
    dashboard: UUID
    partner: str
    user: str
    actor: Actor = field(repr=False)


def set_up(fleet: PartnerFleet, variant: str, repetition: int, n: int) -> list[Customer]:
    """A partner of its own (admin, one user, certified), and `n` customers with a
    registered device, a PC in the partner's holding tenant and a dashboard."""
    tag = f"{variant[:2].upper()}{repetition}"
    partner = f"PL{tag}"
    user, admin_id = f"user{tag}@load.example", f"admin{tag}@load.example"
    fleet.register_partner(ops(), partner, "Load Reseller")
    fleet.register_partner_user(ops(), partner, admin_id)
    fleet.register_partner_user(ops(), partner, user)
    fleet.certify_partner(ops(), partner, "resell_view_monitor")
    admin = partner_user(fleet, admin_id, partner)
    customers = []
    reports = []
    for i in range(n):
        name = f"C{tag}X{i:04d}"
        actor = customer_admin(fleet, name)
        serial, pc = f"S{tag}X{i:05d}", f"P{tag}X{i:05d}"
        fleet.register_devices(actor, name, [NewDevice(serial=serial, connection="direct_connect")])
        dashboard = fleet.create_customer_dashboard(admin, partner, name, name, "4711-2026")
        reports.append(
            {
                "serial": pc,
                "model": "EliteBook 840",
                "reseller_location_id": partner,
                "distributor": "Ingram",
                "ship_date": "2026-10-01",
            }
        )
        customers.append(Customer(name, serial, pc, dashboard, partner, user, actor))
    fleet.receive_e2open_batch(ops(), f"batch-{tag}", reports)
    return customers


def fleet_steps(fleet: PartnerFleet, customers: list[Customer]) -> list[Step]:
    """The mix through PartnerFleet's commands."""
    steps: list[Step] = []
    for c in customers:
        holding = PartnerTenant.holding_tenant_id_for(c.partner)
        choice = PartnerChoice(location_id=c.partner)
        user = partner_user(fleet, c.user, c.partner)
        group = CustomerGroup.id_for(c.partner, c.name)
        steps += [
            partial(fleet.link_devices, c.actor, c.name, [c.serial], choice, c.name),
            partial(fleet.grant_consent, c.actor, c.name, [c.serial]),
            partial(fleet.add_favourite, user, group),
            partial(fleet.withdraw_consent, c.actor, c.name, [c.serial]),
            partial(fleet.remove_favourite, user, group),
            partial(
                fleet.transfer_devices, user, c.partner, [c.pc], holding, c.dashboard, f"T-{c.pc}"
            ),
        ]
    return steps


class FoldedCheckRecorder(FleetProcessRecorder):
    """Claims to check read versions and adds no statement for it (see `folded`)."""

    checks_read_versions = True


FOLDED_TOPIC = get_topic(FoldedCheckRecorder)


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
    get = app.repository.get

    def link(c: Customer) -> list[Recording[UUID]]:
        device: Device = get(Device.id_for(c.serial))
        partner: PartnerTenant = get(PartnerTenant.id_for(c.partner))
        device.link_partner(c.actor, c.partner, "reseller", partner.partner_type)
        try:
            group: CustomerGroup = get(CustomerGroup.id_for(c.partner, c.name))
        except AggregateNotFoundError:
            group = CustomerGroup.create(c.actor, c.partner, c.name, c.name, partner.admins)
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
        group: CustomerGroup = get(CustomerGroup.id_for(c.partner, c.name))
        group.mark_favourite(user, passport.passport_id)
        passport.add_favourite(user, group.id, c.partner)
        return app.save(passport, group)

    def unstar(c: Customer, user: Actor) -> list[Recording[UUID]]:
        passport: Passport = get(Passport.id_for(c.user))
        group: CustomerGroup = get(CustomerGroup.id_for(c.partner, c.name))
        passport.remove_favourite(user, group.id)
        group.unmark_favourite(user, c.user)
        return app.save(passport, group)

    def transfer(c: Customer, user: Actor) -> list[Recording[UUID]]:
        get(PartnerTenant.id_for(c.partner))
        target: CustomerGroup = get(c.dashboard)
        device: Device = get(Device.id_for(c.pc))
        holding = PartnerTenant.holding_tenant_id_for(c.partner)
        device.transfer(user, f"T-{c.pc}", c.partner, holding, c.dashboard)
        target.add_device(user, device.serial, PLACED, device.care_plan is not None)
        return app.save(device, target)

    steps: list[Step] = []
    for c in customers:
        user = partner_user(fleet, c.user, c.partner)
        steps += [
            partial(link, c),
            partial(grant, c),
            partial(star, c, user),
            partial(withdraw, c),
            partial(unstar, c, user),
            partial(transfer, c, user),
        ]
    return steps


class Waits:
    """Counts round trips to PostgreSQL: the times psycopg waits to read from the server
    (its generators yielding `Wait.R`), on every connection of this process (so the pools
    are filled before anything is measured: a connection opening counts too)."""

    count = 0
    real = psycopg.Connection.wait

    @classmethod
    def install(cls) -> None:
        def reads(gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
            answer = None
            while True:
                try:
                    state = gen.send(answer)
                except StopIteration as stop:
                    return stop.value
                if state == Wait.R:
                    cls.count += 1
                answer = yield state

        def counted(conn: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
            return cls.real(conn, reads(gen), *args, **kwargs)

        psycopg.Connection.wait = counted  # type: ignore[method-assign,assignment]


def run(steps: list[Step]) -> tuple[float, float]:
    """Commands/s of the steps run one after another, and round trips per command."""
    waits = Waits.count
    started = time.perf_counter()
    for step in steps:
        step()
    seconds = time.perf_counter() - started
    return len(steps) / seconds, (Waits.count - waits) / len(steps)


def auth_rates(setup: PartnerFleet, uncached: PartnerFleet, users: int, calls: int) -> None:
    """authenticate() of a partner user, alternating: the cached partner fast-forwarded
    (`cached`), the partner loaded in one round trip (`one query`, cache size 0), and the
    load before issue 11 (`two queries`: the stock snapshot lookup, then the events)."""
    location = "PLAUTH"
    setup.register_partner(ops(), location, "Auth Reseller")
    for i in range(users):
        setup.register_partner_user(ops(), location, f"u{i}@auth.example")
    claims = Claims("u1@auth.example", Role.PARTNER_USER, location, (), "a")
    partner_id = PartnerTenant.id_for(location)

    def two_queries() -> object:
        partner = Repository._reconstruct_aggregate(setup.repository, partner_id, None, replay)
        assert claims.subject in partner.users
        return partner

    ways: dict[str, Step] = {
        "cached": partial(authenticate, setup, claims),
        "one query": partial(authenticate, uncached, claims),
        "two queries": two_queries,
    }
    rates: dict[str, list[float]] = {w: [] for w in ways}
    trips: dict[str, float] = {}
    for repetition in range(3):
        for way in list(ways)[repetition % 3 :] + list(ways)[: repetition % 3]:
            rate, per_call = run([ways[way]] * calls)
            rates[way].append(rate)
            trips[way] = per_call
    events = len(list(setup.events.get(partner_id)))
    print(f"authenticate, partner with {users} users ({events} events):")
    for way, samples in rates.items():
        print(
            f"  {way:11} median {statistics.median(samples):.0f}/s "
            f"(min {min(samples):.0f}, max {max(samples):.0f}), {trips[way]:.2f} round trips"
        )


def pools_filled(*apps: Application[UUID]) -> None:
    """Wait until each application's pool has its connections open (opening one counts
    round trips and takes CPU: not inside a measurement)."""
    for app in apps:
        app.recorder.datastore.pool.wait(60)  # type: ignore[attr-defined]


def summarise(rates: dict[str, list[float]], round_trips: dict[str, float]) -> None:
    """Median, min and max of each variant, its round trips, and the ratios."""
    summary: dict[str, Any] = {}
    for variant, samples in rates.items():
        summary[variant] = statistics.median(samples)
        print(
            f"{variant:9} median {summary[variant]:.0f}/s "
            f"(min {min(samples):.0f}, max {max(samples):.0f}), "
            f"{round_trips[variant]:.2f} round trips/command"
        )
    for variant in ("cached", "folded", "uncached"):
        print(f"{variant} / stock: {summary[variant] / summary['stock']:.2f}")
    for variant in ("cached", "folded"):
        print(f"{variant} / uncached: {summary[variant] / summary['uncached']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=60)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--profile", choices=[*VARIANTS], default=None)
    parser.add_argument("--auth-users", type=int, default=0, help="measure authenticate only")
    args = parser.parse_args()
    quiet_logging()
    Waits.install()
    print(f"load average before: {os.getloadavg()}")
    with fresh_schema() as schema:
        env = postgres_env(schema)
        cached_env = {**env, "PROCESS_RECORDER_TOPIC": READ_CHECKING_POSTGRES_TOPIC}
        with (
            open_fleet(env) as setup,
            open_fleet(cached_env) as cached,
            open_fleet({**env, "PROCESS_RECORDER_TOPIC": FOLDED_TOPIC}) as folded,
            open_fleet({**env, "FLEET_AGGREGATE_CACHE_SIZE": "0"}) as uncached,
        ):
            pools_filled(setup, cached, folded, uncached)
            if args.auth_users:
                auth_rates(setup, uncached, args.auth_users, calls=300)
                return
            fleets = {"cached": cached, "folded": folded, "uncached": uncached}
            stock = StockFleet(setup.mapper, {**env, "PROCESS_RECORDER_TOPIC": ""})
            pools_filled(stock)
            assert cached.caches_aggregates
            assert folded.caches_aggregates
            assert not uncached.caches_aggregates
            rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
            round_trips: dict[str, float] = {}
            order = list(VARIANTS)
            for repetition in range(args.repetitions):
                plans: dict[str, list[Step]] = {}
                for variant in order:
                    customers = set_up(setup, variant, repetition, args.customers)
                    if variant == "stock":
                        plans[variant] = stock_steps(stock, setup, customers)
                    else:
                        plans[variant] = fleet_steps(fleets[variant], customers)
                for variant in order:
                    if variant == args.profile:
                        profile = cProfile.Profile()
                        profile.enable()
                    rate, trips = run(plans[variant])
                    rates[variant].append(rate)
                    round_trips[variant] = trips
                    if variant == args.profile:
                        profile.disable()
                        pstats.Stats(profile).sort_stats(
                            os.environ.get("SORT", "cumulative")
                        ).print_stats(45)
                    print(f"rep {repetition} {variant}: {rate:.0f}/s, {trips:.2f} round trips/cmd")
                order = order[1:] + order[:1]  # who goes first rotates
            stock.close()
            for variant in ("cached", "folded"):
                cache = fleets[variant].aggregate_cache
                print(
                    f"{variant} cache: {len(cache)} held, {cache.hits} hits, {cache.misses} misses"
                )
    summarise(rates, round_trips)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
