"""Read-path benchmark: All Customers rebuild rate, the stock projection runner, first-page latency.

Run with `.venv/bin/python -m bench.read_path` (or `make bench`); `--quick` for a smoke run of
about 50,000 events. In one fresh PostgreSQL schema (dropped at the end) it writes a history of
domain events (partners, customer groups, devices, consent, service levels and events, one big
partner whose admin has 25 favourites), rebuilds the All Customers view ("customers") with
ViewRunner, times list_customers for the big partner, and runs the eventsourcing library's
ProjectionRunner (one event per transaction) with the same view handlers into a second schema
for a fixed time window. Results go to bench/results/read_path.json.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from importlib.metadata import version
from itertools import count
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresTrackingRecorder,
)
from eventsourcing.projection import Projection, ProjectionRunner
from psycopg import sql
from rich import box
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from bench.common import (
    PG_CONNINFO,
    RESULTS,
    argument_parser,
    code_version,
    console,
    fresh_schema,
    open_fleet,
    postgres_env,
    postgres_settings,
    quiet_logging,
    say,
    timed,
    write_results,
)
from bench.metrics import Metric, Scale, from_samples
from domain import Cause, CustomerGroup, Device, PartnerTenant, Passport
from domain.base import FleetAggregate
from domain.consent import CURRENT_CONSENT_TEXT
from domain.service_level import ServiceLevel
from handlers import PartnerFleet
from handlers.access import PartnerScope, Role, make_actor, partner_scope
from infra.follow.view_runner import ViewRunner
from infra.storage.viewdb import PostgresViewDB
from projections.base import Params, Tx
from projections.customer_queries import list_customers
from projections.customers import CustomersView

BIG = "PLBIG00001"
BIG_ADMIN = "admin@plbig00001.example"
SEARCH = "customer 12"
REBUILD_GOAL = 20_000.0  # view events per second
P95_GOAL_MS = 10.0
SEVERITIES = ("critical", "warning", "info")
LEVEL = ServiceLevel("care_pack", "HP Care Pack 3y NBD", date(2025, 1, 1), date(2028, 1, 1))
QUERIES: dict[str, dict[str, Any]] = {
    "all customers": {},
    f"search {SEARCH!r}": {"search": SEARCH},
    "favorites_only": {"view": "favorites_only"},
}

_correlation = count(1)


@dataclass(frozen=True)
class Shape:
    """How big the generated history is."""

    partners: int
    customers: int  # per partner
    devices: int  # per customer
    big_groups: int  # customer groups (one device each) of the big partner
    favourites: int  # of the big partner's admin
    service_every: int  # every n-th partner is an accredited service partner
    big_service: bool = False  # the big partner an accredited service partner (portal bench)

    @property
    def per_partner(self) -> int:
        """Aggregates one ordinary partner brings: tenant, admin, customers' worlds."""
        return 2 + self.customers * (self.devices + 2)


@dataclass
class Rate:
    """One measured throughput: `count` units in `seconds`."""

    measure: str
    count: int
    seconds: float
    unit: str
    goal: float | None = None
    note: str = ""

    @property
    def per_second(self) -> float:
        """Units per second."""
        return self.count / self.seconds if self.seconds else 0.0


@dataclass
class Latency:
    """Latency of one query at the function call, in milliseconds."""

    query: str
    runs: int
    rows: int
    p50: float
    p95: float
    p99: float
    mean: float
    max: float
    goal: float = P95_GOAL_MS


@dataclass
class Results:
    """Everything one run measured."""

    rates: list[Rate] = field(default_factory=list)
    latencies: list[Latency] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


# --- history ---------------------------------------------------------------------------------


def cause(principal: str) -> Cause:
    """A cause with a fresh correlation id."""
    return Cause(principal, f"bench-read-{next(_correlation)}")


def location(partner: int) -> str:
    """Partner Location ID of the `partner`th ordinary partner."""
    return f"PLR{partner:05d}"


def admin_of(location_id: str) -> str:
    """Passport ID of the partner's admin (its first user)."""
    return f"admin@{location_id.lower()}.example"


def big_customer(k: int) -> str:
    """Customer id of the big partner's `k`th customer."""
    return f"CB{k:06d}"


def partner_pair(location_id: str, name: str, service: bool) -> tuple[PartnerTenant, Passport]:
    """A registered partner (accredited if `service`) and its admin's Passport."""
    admin = admin_of(location_id)
    why = cause(admin)
    partner = PartnerTenant.register(why, location_id, name)
    if service:
        partner.accredit_as_service_partner(why, f"CSDP-{location_id}")
    partner.register_user(why, admin)
    passport = Passport.open(why, admin)
    passport.join_partner(why, location_id)
    return partner, passport


def customer_world(
    partner: PartnerTenant, customer_id: str, name: str, serials: list[str]
) -> list[FleetAggregate]:
    """The customer's admin, its devices linked to the partner, and the partner's group."""
    owner = f"it@{customer_id.lower()}.example"
    why = cause(owner)
    passport = Passport.open(why, owner)
    passport.register_devices(why, serials)
    role = partner.partner_type
    group = CustomerGroup.create(why, partner.location_id, customer_id, name, partner.admins)
    devices = []
    for index, serial in enumerate(serials):
        connection = "pc_agent" if index % 4 == 3 else "direct_connect"
        device = Device.register(why, serial=serial, connection=connection, customer_id=customer_id)
        device.link_partner(why, partner.location_id, role, partner.partner_type)
        group.add_device(why, device.serial, role)
        devices.append(device)
    return [passport, *devices, group]


def partner_world(shape: Shape, p: int) -> list[FleetAggregate]:
    """One ordinary partner with its customers, their devices and groups."""
    partner, admin = partner_pair(location(p), f"Reseller {p}", p % shape.service_every == 0)
    world: list[FleetAggregate] = [partner, admin]
    for c in range(shape.customers):
        serials = [f"RP{p:05d}C{c:03d}D{d:02d}" for d in range(shape.devices)]
        world += customer_world(partner, f"C{p:05d}-{c:03d}", f"Customer {c}", serials)
    return world


def follow_up(devices: Sequence[Device]) -> None:
    """Later life of saved devices: consent on 3 in 4, care packs on 1 in 4, service events."""
    for index, device in enumerate(devices):
        why = cause(f"it@{(device.customer_id or '').lower()}.example")
        if index % 4 != 3:
            device.grant_consent(why, CURRENT_CONSENT_TEXT)
        if index % 4 == 0:
            device.add_service_level(why, LEVEL)
        if "service_partner" in device.links:
            severity = SEVERITIES[index % 3]
            device.record_service_event(why, f"SE-{device.serial}", severity, "Fan failure")


class Saver:
    """Saves chunks of aggregates with fleet.save, counting events on a progress bar."""

    def __init__(self, fleet: PartnerFleet, bar: Progress, total: int) -> None:
        self.fleet, self.bar, self.events = fleet, bar, 0
        self.task = bar.add_task("history", total=total, events=0)

    def save(self, aggregates: Sequence[FleetAggregate], customers: int = 0) -> None:
        """Save in one transaction; then advance the bar by `customers`."""
        self.events += len(self.fleet.save(*aggregates))
        self.bar.update(self.task, advance=customers, events=self.events)

    def save_with_follow_up(self, aggregates: list[FleetAggregate], customers: int) -> None:
        """Save a chunk, then the follow-up events of its devices in a second transaction."""
        self.save(aggregates, customers)
        devices = [a for a in aggregates if isinstance(a, Device)]
        follow_up(devices)
        self.save(devices)


def partner_batches(shape: Shape, chunk: int) -> Iterator[range]:
    """Ordinary partners in runs of about `chunk` aggregates."""
    step = max(1, chunk // shape.per_partner)
    for start in range(0, shape.partners, step):
        yield range(start, min(start + step, shape.partners))


def write_partners(saver: Saver, shape: Shape, chunk: int) -> None:
    """Every ordinary partner's world, in chunks."""
    for batch in partner_batches(shape, chunk):
        world = [a for p in batch for a in partner_world(shape, p)]
        saver.save_with_follow_up(world, len(batch) * shape.customers)


def write_big_partner(saver: Saver, shape: Shape, chunk: int) -> None:
    """The big partner: one device per customer group, then its admin's favourites."""
    partner, admin = partner_pair(BIG, "Big Reseller", service=shape.big_service)
    saver.save([partner, admin])
    step = max(1, chunk // 3)
    for start in range(0, shape.big_groups, step):
        ks = range(start, min(start + step, shape.big_groups))
        worlds = [
            customer_world(partner, big_customer(k), f"Customer {k}", [f"BG{k:07d}"]) for k in ks
        ]
        saver.save_with_follow_up([a for w in worlds for a in w], len(ks))
    why = cause(BIG_ADMIN)
    for group_id in favourite_groups(shape):
        admin.add_favourite(why, group_id, BIG)
    saver.save([admin])


def favourite_groups(shape: Shape) -> list[Any]:
    """The big partner's groups its admin favours, spread over the alphabet."""
    picks = min(shape.favourites, shape.big_groups)
    step = shape.big_groups // picks
    return [CustomerGroup.id_for(BIG, big_customer(i * step)) for i in range(picks)]


def generate(fleet: PartnerFleet, shape: Shape, chunk: int) -> Rate:
    """Write the whole history with the domain methods and fleet.save; events per second."""
    total = shape.partners * shape.customers + shape.big_groups
    say(f"generating: {shape.partners:,} partners + 1 with {shape.big_groups:,} groups")
    with progress("customers") as bar:
        saver = Saver(fleet, bar, total)

        def work() -> None:
            write_partners(saver, shape, chunk)
            write_big_partner(saver, shape, chunk)

        seconds, _ = timed(work)
    return Rate(
        "generate history", saver.events, seconds, "events", note="domain methods + fleet.save"
    )


def progress(unit: str) -> Progress:
    """A rich progress bar counting `unit`, with an events field."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TaskProgressColumn(),
        TextColumn("{task.fields[events]:,} events"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


# --- event counts ------------------------------------------------------------------------------


def events_table(fleet: PartnerFleet) -> sql.Composed:
    """The qualified name of the fleet's stored-events table."""
    recorder = fleet.recorder
    if not isinstance(recorder, PostgresApplicationRecorder):
        raise TypeError("the read-path benchmark needs the PostgreSQL event store")
    schema, table = recorder.datastore.schema, recorder.events_table_name
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def topic_events(fleet: PartnerFleet, after: int, upto: int) -> int:
    """Stored events of the customers view's topics with notification ids in (after, upto]."""
    statement = sql.SQL(
        "SELECT count(*) FROM {} WHERE notification_id > %s AND notification_id <= %s"
        " AND topic = ANY(%s)"
    ).format(events_table(fleet))
    with psycopg.connect(PG_CONNINFO) as conn:
        row = conn.execute(statement, (after, upto, CustomersView.topics())).fetchone()
    return 0 if row is None else int(row[0])


def last_topic_event(fleet: PartnerFleet) -> int:
    """Notification id of the last stored event the customers view reads."""
    statement = sql.SQL("SELECT max(notification_id) FROM {} WHERE topic = ANY(%s)")
    with psycopg.connect(PG_CONNINFO) as conn:
        query = statement.format(events_table(fleet))
        row = conn.execute(query, (CustomersView.topics(),)).fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def head(fleet: PartnerFleet) -> int:
    """The highest notification id in the store."""
    return fleet.recorder.max_notification_id() or 0


# --- our rebuild -------------------------------------------------------------------------------


def rebuild(runner: ViewRunner, label: str) -> tuple[float, int]:
    """Rebuild the customers view under a progress bar; seconds and events applied."""
    view = runner.view(CustomersView.name)
    with progress("notifications") as bar:
        task = bar.add_task(label, total=runner.head(), events=0)

        def moved(position: int, _head: int) -> None:
            bar.update(task, completed=position)

        seconds, applied = timed(lambda: runner.rebuild(view, moved))
        bar.update(task, events=applied)
    return seconds, applied


def measure_rebuild(fleet: PartnerFleet, db: PostgresViewDB) -> list[Rate]:
    """ViewRunner.rebuild of the customers view: view events/s and store events/s."""
    runner = ViewRunner(fleet, db, [CustomersView()])
    stored = runner.head()
    say(f"rebuilding {CustomersView.name!r} with ViewRunner over {stored:,} stored events")
    seconds, applied = rebuild(runner, "rebuild customers")
    note = f"ViewRunner, batch_size={runner.batch_size}, all stored events / rebuild time"
    return [
        Rate("rebuild: view events", applied, seconds, "events", REBUILD_GOAL),
        Rate("rebuild: store events", stored, seconds, "events", note=note),
    ]


def profile_rebuild(fleet: PartnerFleet, db: PostgresViewDB, top: int) -> None:
    """Rebuild once more under cProfile (untimed); save the stats and print the top functions."""
    say("profiling one more rebuild of 'customers' (cProfile, untimed)")
    runner = ViewRunner(fleet, db, [CustomersView()])
    profiler = cProfile.Profile()
    profiler.runcall(rebuild, runner, "rebuild under cProfile")
    RESULTS.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(RESULTS / "read_path_rebuild.prof")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


# --- queries -----------------------------------------------------------------------------------


def analyze(tables: Sequence[sql.Composable], vacuum: bool = False) -> None:
    """(VACUUM) ANALYZE the tables, as autovacuum would (off on the bench server)."""
    command = sql.SQL("VACUUM ANALYZE {}" if vacuum else "ANALYZE {}")
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        for table in tables:
            conn.execute(command.format(table))


def view_tables(schema: str) -> list[sql.Composable]:
    """The customers view's tables in `schema`."""
    return [
        sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        for table in CustomersView.tables
    ]


def big_admin_scope() -> PartnerScope:
    """The big partner's admin, as the access layer hands it to a query (no store check:
    the bench loads its partner straight into the tables)."""
    admin = make_actor(BIG_ADMIN, Role.PARTNER_ADMIN, BIG, partner_type="reseller")
    return partner_scope(admin, BIG)


def time_query(db: PostgresViewDB, kwargs: dict[str, Any]) -> tuple[float, int]:
    """One list_customers call for the big partner's admin: milliseconds and rows."""
    with db.transaction() as tx:
        start = time.perf_counter()
        page = list_customers(tx, big_admin_scope(), limit=50, **kwargs)
        elapsed = time.perf_counter() - start
    return elapsed * 1000, len(page.rows)


def measure_query(db: PostgresViewDB, name: str, kwargs: dict[str, Any], runs: int) -> Latency:
    """Warm up, then time `runs` calls, each in its own read transaction."""
    for _ in range(max(10, runs // 10)):
        time_query(db, kwargs)
    timings = [time_query(db, kwargs) for _ in range(runs)]
    ms = [t for t, _ in timings]
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    rows = timings[-1][1]
    return Latency(name, runs, rows, cuts[49], cuts[94], cuts[98], statistics.fmean(ms), max(ms))


def measure_queries(db: PostgresViewDB, runs: int) -> list[Latency]:
    """The big partner's first page: plain, with a search term, Favorites Only."""
    say(f"first page of All Customers for {BIG_ADMIN}: {runs} runs each after warm-up")
    return [measure_query(db, name, kwargs, runs) for name, kwargs in QUERIES.items()]


class RecordingTx:
    """A Tx that remembers the queries it ran (for EXPLAIN)."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.queries: list[tuple[str, Params]] = []

    def execute(self, statement: str, params: Params = ()) -> None:
        """Run one statement."""
        self.tx.execute(statement, params)

    def executemany(self, statement: str, rows: Any) -> None:
        """Run one statement per row."""
        self.tx.executemany(statement, rows)

    def query(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Rows of one query, remembered."""
        self.queries.append((statement, params))
        return self.tx.query(statement, params)

    def stream(self, statement: str, params: Params = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of one query as they are read, remembered."""
        self.queries.append((statement, params))
        return self.tx.stream(statement, params)


def explain_queries(db: PostgresViewDB) -> dict[str, list[str]]:
    """EXPLAIN ANALYZE of the page query behind each measured call."""
    plans: dict[str, list[str]] = {}
    for name, kwargs in QUERIES.items():
        with db.transaction() as tx:
            recording = RecordingTx(tx)
            list_customers(recording, big_admin_scope(), limit=50, **kwargs)
            statement, params = recording.queries[-1]
            rows = tx.query(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params)
        plans[name] = [str(r[0]) for r in rows]
        console.print(f"[bold]EXPLAIN ANALYZE {name}[/bold]", *plans[name], sep="\n")
    return plans


# --- the stock eventsourcing projection runner -----------------------------------------------


class DictRowTx:
    """Tx over an eventsourcing cursor: `?` placeholders, dict rows returned as tuples."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, statement: str, params: Params = ()) -> None:
        """Run one statement."""
        self._cursor.execute(statement.replace("?", "%s"), tuple(params))

    def executemany(self, statement: str, rows: Any) -> None:
        """Run one statement for each row of parameters."""
        self._cursor.executemany(statement.replace("?", "%s"), [tuple(r) for r in rows])

    def query(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Rows of one query, as tuples."""
        self._cursor.execute(statement.replace("?", "%s"), tuple(params))
        return [tuple(row.values()) for row in self._cursor.fetchall()]

    def stream(self, statement: str, params: Params = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of one query (fetched at once: the stock runner's views never stream)."""
        return iter(self.query(statement, params))


class StockCustomersRecorder(PostgresTrackingRecorder):
    """Tracking recorder that applies CustomersView to one event per transaction."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.view = CustomersView()
        self.search_path = sql.SQL("SET LOCAL search_path TO {}").format(
            sql.Identifier(datastore.schema)
        )

    def create_table(self) -> None:
        """The tracking table, then the view's tables in the same schema."""
        super().create_table()
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.search_path)
            self.view.create(DictRowTx(curs))

    def apply(self, event: Any, tracking: Tracking) -> None:
        """The view's handlers on one event and its tracking, in one transaction."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.search_path)
            self.view.process(DictRowTx(curs), [event])
            self._insert_tracking(curs, tracking)


class StockCustomersProjection(Projection[StockCustomersRecorder]):
    """The customers view as an eventsourcing Projection."""

    name = "stock_customers"
    topics = tuple(CustomersView.topics())

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """Apply one event."""
        self.view.apply(domain_event, tracking)


def stock_env(schema: str, view_schema: str) -> dict[str, str]:
    """The app reads `schema`; the projection's tables live in `view_schema`."""
    prefix = StockCustomersProjection.name.upper()
    return {**postgres_env(schema), f"{prefix}_POSTGRES_SCHEMA": view_schema}


StockRunner = ProjectionRunner[PartnerFleet, StockCustomersRecorder]


def stock_position(runner: StockRunner) -> tuple[float, int]:
    """Now, and the runner's tracked notification id."""
    return time.perf_counter(), runner.view.max_tracking_id(PartnerFleet.name) or 0


def run_window(runner: StockRunner, seconds: float, last: int) -> tuple[float, int]:
    """Let the runner work for `seconds` (or until it reaches `last`); time and position."""
    deadline = time.perf_counter() + seconds
    moment, position = stock_position(runner)
    while moment < deadline and position < last:
        runner.run_forever(timeout=min(0.5, deadline - moment))
        moment, position = stock_position(runner)
    return moment, position


def measure_stock(fleet: PartnerFleet, schema: str, view_schema: str, seconds: float) -> Rate:
    """ProjectionRunner for a fixed window after a short warm-up: view events per second."""
    last = last_topic_event(fleet)
    say(f"stock ProjectionRunner (one event per transaction) into {view_schema}: {seconds:.0f} s")
    with ProjectionRunner(
        application_class=PartnerFleet,
        projection_class=StockCustomersProjection,
        view_class=StockCustomersRecorder,
        env=stock_env(schema, view_schema),
    ) as runner:
        start, before = run_window(runner, min(3.0, seconds / 10), last)
        end, after = run_window(runner, seconds, last)
    runner.view.datastore.close()
    applied = topic_events(fleet, before, after)
    eta = last_topic_eta(fleet, applied, end - start)
    note = f"eventsourcing ProjectionRunner, tracked {after:,}; the whole view would take {eta}"
    return Rate("stock runner: view events", applied, end - start, "events", note=note)


def last_topic_eta(fleet: PartnerFleet, applied: int, seconds: float) -> str:
    """How long the stock runner would take for every event the view reads, at this rate."""
    total = topic_events(fleet, 0, head(fleet))
    if not applied:
        return "forever"
    return f"{total / (applied / seconds) / 60:,.1f} min"


# --- run -------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, shape: Shape) -> Results:
    """Generate, rebuild, query, then the stock runner; all in fresh schemas."""
    results = Results()
    with fresh_schema() as schema, open_fleet(postgres_env(schema)) as fleet:
        results.rates.append(generate(fleet, shape, args.chunk))
        results.counts = {
            "store_events": head(fleet),
            "view_events": topic_events(fleet, 0, head(fleet)),
        }
        if args.analyze:
            analyze([events_table(fleet)])
        results.rates += read_side(fleet, schema, args, results)
        if args.stock_seconds > 0:
            with fresh_schema() as view_schema:
                results.rates.append(measure_stock(fleet, schema, view_schema, args.stock_seconds))
    return results


def read_side(
    fleet: PartnerFleet, schema: str, args: argparse.Namespace, results: Results
) -> list[Rate]:
    """Our rebuild, optionally profiled, then the query latencies on its rows."""
    db = PostgresViewDB(PG_CONNINFO, schema)
    try:
        rates = measure_rebuild(fleet, db)
        if args.profile:
            profile_rebuild(fleet, db, args.profile_top)
        if args.analyze:
            analyze(view_tables(schema), vacuum=True)
        results.latencies = measure_queries(db, args.runs)
        if args.profile:
            explain_queries(db)
    finally:
        db.close()
    return rates


def metadata(args: argparse.Namespace, shape: Shape, settings: dict[str, str]) -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "shape": asdict(shape),
        "chunk": args.chunk,
        "quick": args.quick,
        "analyze": args.analyze,
        "query_runs": args.runs,
        "stock_seconds": args.stock_seconds,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "eventsourcing": version("eventsourcing"),
        "postgres": settings,
        "notes": [
            "rebuild rate counts events of the view's topics (what ViewRunner applies)",
            "unless --no-analyze: ANALYZE of the event table after generating, VACUUM ANALYZE"
            " of the view tables after the rebuild, as autovacuum would (off on this server)",
            "queries: timing around list_customers, each call in its own read transaction",
            "stock runner reads the app's schema and writes its view into a second schema",
        ],
    }


# --- report ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    """A goal's mark."""
    return "[green]met[/green]" if ok else "[red]missed[/red]"


def compact_table(title: str) -> Table:
    """An empty table that fits 80 columns."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )


def rate_table(rates: list[Rate]) -> Table:
    """Throughputs as a rich table."""
    title = "Throughput (rebuild, stock runner: events of the view's topics)"
    out = compact_table(title)
    for name in ["measure", "count", "seconds", "per second", "goal"]:
        out.add_column(name, justify="left" if name == "measure" else "right", no_wrap=True)
    for r in rates:
        goal = "" if r.goal is None else f"≥ {r.goal:,.0f} {verdict(r.per_second >= r.goal)}"
        out.add_row(r.measure, f"{r.count:,}", f"{r.seconds:.1f}", f"{r.per_second:,.0f}", goal)
    return out


def notes(rates: list[Rate]) -> str:
    """The rates' notes, one line each."""
    return "\n".join(f"{r.measure}: {r.note}" for r in rates if r.note)


def latency_table(latencies: list[Latency]) -> Table:
    """Query latencies as a rich table."""
    title = f"list_customers first page (limit 50) for {BIG_ADMIN}, ms"
    out = compact_table(title)
    out.add_column("query", no_wrap=True)
    for name in ["runs", "rows", "p50", "p95", "p99", "mean", "max", "goal p95"]:
        out.add_column(name, justify="right")
    for q in latencies:
        stats = [f"{v:.2f}" for v in (q.p50, q.p95, q.p99, q.mean, q.max)]
        goal = f"< {q.goal:.0f} {verdict(q.p95 < q.goal)}"
        out.add_row(q.query, str(q.runs), str(q.rows), *stats, goal)
    return out


def write_json(results: Results, meta: dict[str, Any]) -> Path:
    """Write the results to bench/results/read_path.json; the path."""
    rates = [{**asdict(r), "per_second": r.per_second} for r in results.rates]
    latencies = [asdict(q) for q in results.latencies]
    body = {"meta": meta, "counts": results.counts, "rates": rates, "latencies_ms": latencies}
    return write_results("read_path", body)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argument_parser("read_path", __doc__)
    add = parser.add_argument
    add("--quick", action="store_true", help="smoke run: ~50k events, 100 runs, 10 s stock")
    add("--partners", type=int, help="ordinary partners (default 2000; quick 80)")
    add("--customers", type=int, default=25, help="customer groups per partner (25)")
    add("--devices", type=int, default=4, help="devices per customer (4)")
    add("--big-groups", type=int, help="customer groups of the big partner (10000; quick 2000)")
    add("--favourites", type=int, default=25, help="favourites of the big partner's admin (25)")
    add("--service-every", type=int, default=10, help="every n-th partner is a service partner")
    add("--chunk", type=int, default=3_000, help="aggregates per fleet.save (3000)")
    add("--runs", type=int, help="timed calls per query (300; quick 100)")
    add("--stock-seconds", type=float, help="stock runner window (30; quick 10; 0 skips)")
    add("--no-analyze", dest="analyze", action="store_false", help="no (VACUUM) ANALYZE")
    add("--profile", action="store_true", help="also cProfile a rebuild and EXPLAIN the queries")
    add("--profile-top", type=int, default=30, help="functions to print")
    args = parser.parse_args(argv)
    defaults(parser, args)
    return args


def defaults(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill in size defaults (smaller with --quick) and check them."""
    quick = args.quick
    for name, full, small in [
        ("partners", 2_000, 80),
        ("big_groups", 10_000, 2_000),
        ("runs", 300, 100),
        ("stock_seconds", 30.0, 10.0),
    ]:
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    sizes = [args.partners, args.customers, args.devices, args.big_groups, args.favourites]
    if min(sizes) < 1 or args.runs < 2 or args.chunk < 10 or args.service_every < 1:
        parser.error("sizes must be positive, --runs at least 2, --chunk at least 10")


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, print the tables and write the JSON."""
    args = parse_args(argv)
    quiet_logging()
    shape = Shape(
        args.partners,
        args.customers,
        args.devices,
        args.big_groups,
        args.favourites,
        args.service_every,
    )
    meta = metadata(args, shape, postgres_settings())
    started = time.perf_counter()
    results = measure(args, shape)
    meta["run_seconds"] = round(time.perf_counter() - started, 1)
    console.print(rate_table(results.rates), notes(results.rates), "")
    console.print(latency_table(results.latencies))
    counts = ", ".join(f"{k}={v:,}" for k, v in results.counts.items())
    console.print(f"{counts}; run took {meta['run_seconds']:.0f} s; {os.cpu_count()} CPUs")
    console.print(f"results: {write_json(results, meta)}")


if __name__ == "__main__":
    main()


# --- the suite (bench/suite.py) --------------------------------------------------------------

QUERY_METRICS = {
    "all customers": "query.all_customers_p95_ms",
    f"search {SEARCH!r}": "query.all_customers_search_p95_ms",
    "favorites_only": "query.favorites_only_p95_ms",
}


def metrics(scale: Scale) -> list[Metric]:
    """`query.*_p95_ms`: the big partner's first page of All Customers (plain, with a search
    term, Favorites Only) in ms at the query function, with 10,000 customer groups (1,000 at
    quick scale) among 200 further partners; p95 over `runs` calls per repetition, the
    median of the repetitions' p95. No baseline: the goal is absolute (< 50 ms)."""
    quiet_logging()
    shape = Shape(
        partners=scale.of(200, 8),
        customers=25,
        devices=4,
        big_groups=scale.of(10_000, 100),
        favourites=25,
        service_every=10,
    )
    runs = scale.of(300, 100)
    p95: dict[str, list[float]] = {name: [] for name in QUERIES}
    rows: dict[str, int] = {}
    with fresh_schema() as schema, open_fleet(postgres_env(schema)) as fleet:
        generate(fleet, shape, 3_000)
        db = PostgresViewDB(PG_CONNINFO, schema)
        try:
            measure_rebuild(fleet, db)
            analyze(view_tables(schema), vacuum=True)
            for _ in range(scale.repetitions):
                for name, kwargs in QUERIES.items():
                    latency = measure_query(db, name, kwargs, runs)
                    p95[name].append(latency.p95)
                    rows[name] = latency.rows
        finally:
            db.close()
    detail = {"big_partner_groups": shape.big_groups, "partners": shape.partners + 1}
    return [
        from_samples(
            QUERY_METRICS[name],
            "ms",
            p95[name],
            higher_is_better=False,
            detail=detail | {"runs_per_repetition": runs, "rows": rows[name]},
        )
        for name in QUERIES
    ]
