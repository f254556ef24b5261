"""Write-path throughput: PartnerFleet commands and e2Open intake beside plain INSERTs.

Run with `.venv/bin/python -m bench.write_path` (not in `make bench`); `--quick` for a smoke run.
Everything runs in one fresh PostgreSQL schema, dropped at the end; the SQLite reference
runs in a temporary file. Results go to bench/results/write_path.json.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import sqlite3
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from importlib.metadata import version
from itertools import count
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from rich import box
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
from domain import CustomerGroup
from domain.passport import MAX_FAVOURITES
from handlers import PartnerFleet
from handlers.access import Actor, Claims, Role, authenticate, service_actor
from handlers.fleet import NewDevice, PartnerChoice

PARTNER = "PLBENCH0001"
ADMIN = "partner-admin@bench.example"
DEVICES_PER_CUSTOMER = 10
PG, SQLITE = "PostgreSQL", "SQLite"
SINGLE, BATCH = "single commands", "e2Open batch"

Row = tuple[UUID, int, str, bytes]
Call = Callable[[], object]

_correlation = count(1)


@dataclass
class Rate:
    """One measured throughput: `count` units of work in `seconds`, writing `event_rows` rows."""

    section: str
    measure: str
    store: str
    unit: str
    count: int
    seconds: float
    event_rows: int
    baseline: bool = False

    @property
    def per_second(self) -> float:
        """Units of work per second."""
        return self.count / self.seconds


# --- plumbing -------------------------------------------------------------------------------


def run_all(calls: Sequence[Call]) -> None:
    """Make the calls one after another."""
    for call in calls:
        call()


def _correlation_id() -> str:
    return f"bench-{next(_correlation)}"


def operator() -> Actor:
    """HP/HPE operations (registers and certifies the partner) with a fresh correlation id."""
    return service_actor("ops@bench.example", Role.OPERATOR, correlation_id=_correlation_id())


def feed() -> Actor:
    """The e2Open feed's service account with a fresh correlation id."""
    return service_actor("feed:e2open", Role.FEED, correlation_id=_correlation_id())


def as_customer(fleet: PartnerFleet, customer: int) -> Actor:
    """The customer's admin, as a token's claims make it, with a fresh correlation id."""
    claims = Claims(owner(customer), Role.CUSTOMER_ADMIN, customer_id(customer))
    return authenticate(fleet, replace(claims, correlation_id=_correlation_id()))


def as_user(fleet: PartnerFleet, index: int) -> Actor:
    """A user of the bench partner, checked against the store, with a fresh correlation id."""
    claims = Claims(user(index), Role.PARTNER_USER, PARTNER, correlation_id=_correlation_id())
    return authenticate(fleet, claims)


def sqlite_env(path: Path) -> dict[str, str]:
    """PartnerFleet's environment for a SQLite file."""
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}


def max_id(fleet: PartnerFleet) -> int:
    """The highest notification id in the fleet's event store (0 when empty)."""
    return fleet.recorder.max_notification_id() or 0


def stored_rows(fleet: PartnerFleet, after: int, limit: int) -> list[Row]:
    """Up to `limit` stored events after notification `after`, as plain rows."""
    found = fleet.recorder.select_notifications(start=after + 1, limit=limit)
    return [
        (UUID(str(n.originator_id)), n.originator_version, n.topic, bytes(n.state)) for n in found
    ]


# --- set-up (untimed) -----------------------------------------------------------------------


def user(index: int) -> str:
    """Passport ID of the partner's `index`th bench user."""
    return f"user-{index}@bench.example"


def owner(customer: int) -> str:
    """Passport ID of the customer's admin (devices are registered under it)."""
    return f"customer-admin-{customer}@bench.example"


def customer_id(customer: int) -> str:
    """The bench customer's id."""
    return f"customer-{customer}"


def devices(n: int) -> list[tuple[int, str]]:
    """`n` (customer, serial) pairs, DEVICES_PER_CUSTOMER devices per customer."""
    return [(i // DEVICES_PER_CUSTOMER, f"BN{i:07d}") for i in range(n)]


def set_up_partner(fleet: PartnerFleet) -> None:
    """Register the partner and its admin; certify it, which opens its holding tenant."""
    fleet.register_partner(operator(), PARTNER, "Bench Reseller")
    fleet.register_partner_user(operator(), PARTNER, ADMIN)
    fleet.certify_partner(operator(), PARTNER, "resell_view_monitor")


def register_users(fleet: PartnerFleet, users: int) -> None:
    """Register `users` further users of the partner."""
    for index in range(users):
        fleet.register_partner_user(operator(), PARTNER, user(index))


def register_devices(fleet: PartnerFleet, pairs: list[tuple[int, str]]) -> None:
    """Register the devices as direct-connect, one command per customer."""
    by_customer: dict[int, list[NewDevice]] = {}
    for customer, serial in pairs:
        device = NewDevice(serial=serial, connection="direct_connect")
        by_customer.setdefault(customer, []).append(device)
    for customer, news in by_customer.items():
        fleet.register_devices(as_customer(fleet, customer), customer_id(customer), news)


def favourite_plan(n: int, groups: int) -> list[tuple[int, int]]:
    """`n` (user, group) pairs: each user favourites up to MAX_FAVOURITES distinct groups."""
    per_user = min(MAX_FAVOURITES, groups)
    return [(i // per_user, (i // per_user + i % per_user) % groups) for i in range(n)]


# --- single commands ------------------------------------------------------------------------


def link_calls(fleet: PartnerFleet, pairs: list[tuple[int, str]]) -> list[Call]:
    """One link_devices command per device, linking it to the partner as reseller."""
    choice = PartnerChoice(location_id=PARTNER)
    return [
        partial(fleet.link_devices, as_customer(fleet, c), customer_id(c), [s], choice, f"Cust {c}")
        for c, s in pairs
    ]


def consent_calls(fleet: PartnerFleet, pairs: list[tuple[int, str]]) -> list[Call]:
    """One grant_consent command per device."""
    return [
        partial(fleet.grant_consent, as_customer(fleet, c), customer_id(c), [s]) for c, s in pairs
    ]


def favourite_calls(fleet: PartnerFleet, plan: list[tuple[int, int]], groups: int) -> list[Call]:
    """One add_favourite command per (user, customer group) of the plan."""
    ids = [CustomerGroup.id_for(PARTNER, customer_id(k)) for k in range(groups)]
    return [partial(fleet.add_favourite, as_user(fleet, u), ids[g]) for u, g in plan]


def measure_calls(fleet: PartnerFleet, measure: str, calls: list[Call]) -> Rate:
    """Time the calls one after another; count the event rows they wrote."""
    say(f"{measure}: {len(calls):,} commands on {PG}")
    before = max_id(fleet)
    seconds, _ = timed(partial(run_all, calls))
    return Rate(SINGLE, measure, PG, "cmd", len(calls), seconds, max_id(fleet) - before)


def command_rates(fleet: PartnerFleet, n: int) -> tuple[list[Rate], list[Row]]:
    """Set up partner and devices, then time link, consent and favourite commands."""
    pairs = devices(n)
    groups = pairs[-1][0] + 1
    say(f"set-up: partner, {n:,} devices of {groups} customers")
    set_up_partner(fleet)
    register_devices(fleet, pairs)
    first = max_id(fleet)
    rates = [
        measure_calls(fleet, "link_devices", link_calls(fleet, pairs)),
        measure_calls(fleet, "grant_consent", consent_calls(fleet, pairs)),
    ]
    plan = favourite_plan(n, groups)
    say(f"set-up: {plan[-1][0] + 1} partner users")
    register_users(fleet, plan[-1][0] + 1)
    rates.append(measure_calls(fleet, "add_favourite", favourite_calls(fleet, plan, groups)))
    return rates, stored_rows(fleet, first, n)


# --- e2Open batch ---------------------------------------------------------------------------


def e2open_reports(n: int, prefix: str = "E2O") -> list[Mapping[str, Any]]:
    """`n` resold-PC reports for the bench partner, as dicts like e2Open's."""
    shipped = date(2025, 1, 6)
    return [
        {
            "serial": f"{prefix}{i:07d}",
            "model": "HP EliteBook 840 G11",
            "reseller_location_id": PARTNER,
            "distributor": "Ingram Micro",
            "ship_date": (shipped + timedelta(days=i % 90)).isoformat(),
        }
        for i in range(n)
    ]


def measure_batch(fleet: PartnerFleet, store: str, size: int) -> tuple[Rate, list[Row]]:
    """Time one e2Open batch of `size` reports; return the rate and the rows it stored."""
    say(f"e2Open batch of {size:,} devices on {store}")
    reports = e2open_reports(size)
    before = max_id(fleet)
    work = partial(fleet.receive_e2open_batch, feed(), f"bench-{store}", reports)
    seconds, outcome = timed(work)
    if len(outcome.accepted) != size:
        raise RuntimeError(f"{len(outcome.rejected)} reports rejected: {outcome.rejected[:3]}")
    rows = stored_rows(fleet, before, size + 1)
    measure = "receive_e2open_batch"
    return Rate(BATCH, measure, store, "dev", size, seconds, len(rows)), rows


def profile_batch(fleet: PartnerFleet, size: int, top: int) -> None:
    """Run one more batch under cProfile; save the stats and print the top functions."""
    say(f"profiling an e2Open batch of {size:,} devices on {PG} (cProfile)")
    reports = e2open_reports(size, prefix="E2P")
    profiler = cProfile.Profile()
    profiler.runcall(fleet.receive_e2open_batch, feed(), "bench-profile", reports)
    RESULTS.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(RESULTS / "e2open_batch.prof")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


# --- plain-INSERT baselines -----------------------------------------------------------------


def events_like_table(conn: psycopg.Connection[Any], schema: str, name: str) -> sql.Composed:
    """Create a table shaped like eventsourcing's events table; its qualified name."""
    table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
            "topic text, state bytea, notification_id bigserial, "
            "PRIMARY KEY (originator_id, originator_version))"
        ).format(table)
    )
    conn.execute(sql.SQL("CREATE UNIQUE INDEX ON {} (notification_id ASC)").format(table))
    return table


def insert_statement(table: sql.Composed) -> sql.Composed:
    """INSERT of one event row into `table`."""
    return sql.SQL(
        "INSERT INTO {} (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)"
    ).format(table)


def insert_one_by_one(schema: str, rows: list[Row]) -> Rate:
    """One autocommitted, prepared single-row INSERT per row."""
    say(f"plain INSERTs: {len(rows):,} autocommitted single-row statements on {PG}")
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        statement = insert_statement(events_like_table(conn, schema, "bench_single"))

        def work() -> None:
            for row in rows:
                conn.execute(statement, row, prepare=True)

        seconds, _ = timed(work)
    measure = "INSERT 1 row, autocommit"
    return Rate(SINGLE, measure, PG, "rows", len(rows), seconds, len(rows), baseline=True)


def insert_executemany(schema: str, rows: list[Row]) -> Rate:
    """All rows in one transaction with executemany (psycopg pipelines it)."""
    say(f"plain INSERTs: {len(rows):,} rows, executemany, one transaction on {PG}")
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        statement = insert_statement(events_like_table(conn, schema, "bench_executemany"))

        def work() -> None:
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(statement, rows)

        seconds, _ = timed(work)
    measure = "INSERT executemany, 1 tx"
    return Rate(BATCH, measure, PG, "rows", len(rows), seconds, len(rows), baseline=True)


def insert_copy(schema: str, rows: list[Row]) -> Rate:
    """All rows in one transaction with binary COPY."""
    say(f"plain COPY: {len(rows):,} rows, one transaction on {PG}")
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        table = events_like_table(conn, schema, "bench_copy")
        statement = sql.SQL(
            "COPY {} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
        ).format(table)

        def work() -> None:
            with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
                copy.set_types(["uuid", "int8", "text", "bytea"])
                for row in rows:
                    copy.write_row(row)

        seconds, _ = timed(work)
    measure = "COPY binary, 1 tx"
    return Rate(BATCH, measure, PG, "rows", len(rows), seconds, len(rows), baseline=True)


def sqlite_executemany(path: Path, rows: list[Row]) -> Rate:
    """All rows in one SQLite transaction with executemany, beside the app's own table."""
    say(f"plain INSERTs: {len(rows):,} rows, executemany, one transaction on {SQLITE}")
    plain = [(r[0].hex, r[1], r[2], r[3]) for r in rows]
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute(
            "CREATE TABLE bench_rows (originator_id TEXT, originator_version INTEGER, "
            "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
        )

        def work() -> None:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO bench_rows VALUES (?,?,?,?)", plain)
            conn.execute("COMMIT")

        seconds, _ = timed(work)
    measure = "INSERT executemany, 1 tx"
    return Rate(BATCH, measure, SQLITE, "rows", len(rows), seconds, len(rows), baseline=True)


# --- runs -----------------------------------------------------------------------------------


def postgres_rates(args: argparse.Namespace) -> list[Rate]:
    """Commands and the e2Open batch through PartnerFleet, then the plain baselines."""
    with fresh_schema() as schema:
        with open_fleet(postgres_env(schema)) as fleet:
            rates, command_rows = command_rates(fleet, args.n)
            batch, batch_rows = measure_batch(fleet, PG, args.batch)
            if args.profile:
                profile_batch(fleet, args.batch, args.profile_top)
        return [
            *rates,
            insert_one_by_one(schema, command_rows),
            batch,
            insert_executemany(schema, batch_rows),
            insert_copy(schema, batch_rows),
        ]


def sqlite_rates(size: int) -> list[Rate]:
    """The e2Open batch on a SQLite file, beside plain executemany into the same file."""
    with tempfile.TemporaryDirectory(prefix="partnerfleet-bench-") as tmp:
        path = Path(tmp) / "events.sqlite3"
        with open_fleet(sqlite_env(path)) as fleet:
            set_up_partner(fleet)
            batch, rows = measure_batch(fleet, SQLITE, size)
        return [batch, sqlite_executemany(path, rows)]


def metadata(args: argparse.Namespace, settings: dict[str, str]) -> dict[str, object]:
    """What the numbers were measured on."""
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "n": args.n,
        "batch": args.batch,
        "quick": args.quick,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "eventsourcing": version("eventsourcing"),
        "sqlite": sqlite3.sqlite_version,
        "postgres": settings,
        "baselines": "plain INSERT/COPY of byte-identical copies of rows the app stored",
    }


# --- report ---------------------------------------------------------------------------------


def versus(rate: Rate, rates: list[Rate]) -> str:
    """Rate as a share of the first plain baseline of its section and store."""
    base = next(
        (r for r in rates if r.baseline and (r.section, r.store) == (rate.section, rate.store)),
        None,
    )
    return "" if base is None else f"{rate.per_second / base.per_second:.1%}"


def section_table(title: str, rates: list[Rate]) -> Table:
    """One section's rates as a rich table; plain baselines dimmed."""
    out = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    out.add_column("measure", no_wrap=True)
    out.add_column("store", no_wrap=True)
    for name in ["seconds", "rate", "rows/op", "vs plain"]:
        out.add_column(name, justify="right")
    for r in rates:
        out.add_row(
            r.measure,
            r.store,
            f"{r.seconds:.2f}",
            f"{r.per_second:,.0f} {r.unit}/s",
            f"{r.event_rows / r.count:.2f}",
            versus(r, rates),
            style="dim" if r.baseline else None,
        )
    return out


def tables(rates: list[Rate], args: argparse.Namespace) -> list[Table]:
    """The single-command and the batch table."""
    titles = {
        SINGLE: f"Single commands, one after another: {args.n:,} of each",
        BATCH: f"e2Open batch: {args.batch:,} devices in one command ({args.batch + 1:,} rows)",
    }
    return [
        section_table(title, [r for r in rates if r.section == section])
        for section, title in titles.items()
    ]


def write_json(rates: list[Rate], meta: dict[str, object]) -> Path:
    """Write the results to bench/results/write_path.json."""
    results = [{**asdict(r), "per_second": r.per_second} for r in rates]
    return write_results("write_path", {"meta": meta, "results": results})


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argument_parser("write_path", __doc__)
    parser.add_argument("--quick", action="store_true", help="small run: --n 200 --batch 1000")
    parser.add_argument("--n", type=int, help="single commands of each kind (default 2000)")
    parser.add_argument("--batch", type=int, help="devices in the e2Open batch (default 10000)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite reference")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also run one PostgreSQL batch under cProfile (untimed)",
    )
    parser.add_argument("--profile-top", type=int, default=30, help="functions to print")
    args = parser.parse_args(argv)
    if args.n is None:
        args.n = 200 if args.quick else 2_000
    if args.batch is None:
        args.batch = 1_000 if args.quick else 10_000
    if args.n < 1 or args.batch < 1:
        parser.error("--n and --batch must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, print the table and write the JSON."""
    args = parse_args(argv)
    quiet_logging()
    settings = postgres_settings()
    meta = metadata(args, settings)
    rates = postgres_rates(args) + ([] if args.no_sqlite else sqlite_rates(args.batch))
    for out in tables(rates, args):
        console.print(out, "")
    shown = ", ".join(f"{k}={v}" for k, v in settings.items())
    console.print(f"PostgreSQL: {shown}; {os.cpu_count()} CPUs")
    console.print(f"results: {write_json(rates, meta)}")


if __name__ == "__main__":
    main()
