"""Portal-path benchmark: each portal page's server time, and the All Customers page weight.

Run with `.venv/bin/python -m bench.portal_path` (not in `make bench`); `--quick` for a smoke run
under 2 minutes. In one fresh PostgreSQL schema (dropped at the end) it writes the read-path
history (bench/read_path.py: one big partner with 10,000 customer groups, 2,000 with
`--quick`, whose admin has 25 favourites), with the big partner an accredited service
partner here (so its tiles carry service-event summaries and every partner page is the big
partner's). Through the public commands it adds what the other pages need: the big partner
certified, e2Open PCs in its holding tenant (one report rejected), customer dashboards with
PCs transferred to them, alerts and self-service repair cases routed to its CSDP queue, and
a consent withdrawal and re-grant on a customer's devices.

It then builds the service as `partnerfleet serve` does (views and policies followed
in-process, the portal mounted at /portal, bearer tokens checked against a throw-away
signing key) and waits until the views and policies have caught up. Each page is requested
by calling the ASGI application directly (no sockets, no HTTP parsing: only what the server
runs per request), with a session cookie holding a token the verifier accepts: a warm-up,
then `--runs` timed requests one after another. Latency is from calling the application to
its last body chunk, in ms; the goal is p95 < 50 ms per page (issue 10).

The All Customers page weight is its HTML plus every style sheet and script it loads
(goal < 200 KB), raw and gzip-compressed (level 6). Results go to
bench/results/portal_path.json.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gzip
import json
import os
import platform
import pstats
import re
import secrets
import statistics
import tempfile
import time
from collections.abc import MutableMapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from fastapi import FastAPI
from psycopg import sql

from bench.common import (
    PG_CONNINFO,
    RESULTS,
    argument_parser,
    code_version,
    console,
    fresh_schema,
    postgres_settings,
    quiet_logging,
    say,
    write_results,
)
from bench.read_path import (
    BIG,
    BIG_ADMIN,
    SEARCH,
    Shape,
    big_customer,
    compact_table,
    generate,
    location,
    verdict,
)
from domain import CustomerGroup
from handlers import PartnerFleet
from handlers.access import Actor, Claims, Role, authenticate, make_actor, service_actor
from infra.bootstrap import Service, build_fleet, build_verifier, start_service
from infra.settings import Settings
from infra.tokens import LOCAL_ISSUER, SigningKey, demo_signing_key, mint
from infra.web.session import CSRF_COOKIE, SESSION_COOKIE

P95_GOAL_MS = 50.0
WEIGHT_GOAL = 200 * 1024
HOLDING_PCS = 20  # e2Open PCs reported for the big partner
DASHBOARDS = 3  # customer dashboards the big partner creates
CASES = 10  # repair cases routed to the big partner's CSDP queue
ALERTS_TOLD = 5  # alerts of PCs whose dashboard has self-service notifications off
CSRF = "ab" * 32  # a browser's CSRF cookie (pages repeat it in their forms)


@dataclass(frozen=True)
class Page:
    """One measured page: who asks for what."""

    name: str
    who: str  # a key of the run's tokens
    path: str  # under /portal, with its query


@dataclass
class Timing:
    """One page's latencies in ms."""

    page: str
    path: str
    status: int
    bytes: int
    runs: int
    p50: float
    p95: float
    p99: float
    max: float
    goal_p95: float = P95_GOAL_MS


# --- the world beyond the read-path history ----------------------------------------------------


def customer_admin(customer_id: str) -> Actor:
    """The customer's admin as a token's claims make it (customer claims are not looked up)."""
    return make_actor(
        f"it@{customer_id.lower()}.example",
        Role.CUSTOMER_ADMIN,
        customer_id,
        correlation_id="bench-portal",
    )


def report(serial: str, model: str = "EliteBook 840") -> dict[str, str]:
    """An e2Open report of a PC the big partner resold."""
    return {
        "serial": serial,
        "model": model,
        "reseller_location_id": BIG,
        "distributor": "Ingram",
        "ship_date": "2026-10-01",
    }


def add_portal_world(fleet: PartnerFleet) -> dict[str, str]:
    """What the pages beyond All Customers show, through the public commands; the ids the
    measured paths name."""
    ops = service_actor("bench-ops", Role.OPERATOR, correlation_id="bench-portal")
    feed = service_actor("feed:e2open", Role.FEED, correlation_id="bench-portal")
    admin = authenticate(fleet, Claims(BIG_ADMIN, Role.PARTNER_ADMIN, BIG, correlation_id="b"))
    fleet.certify_partner(ops, BIG, "service_delivery")
    pcs = [f"BH{k:05d}" for k in range(HOLDING_PCS)]
    reports = [report(s) for s in pcs] + [report("BHBAD00001", model="")]
    fleet.receive_e2open_batch(feed, "BENCH-PORTAL-1", reports)
    tenant = fleet.partner(BIG).holding_tenant_id
    assert tenant is not None
    boards = [
        fleet.create_customer_dashboard(admin, BIG, f"CD{i:03d}", f"Dashboard {i}", "4711")
        for i in range(DASHBOARDS)
    ]
    fleet.transfer_devices(admin, BIG, pcs[:CASES], tenant, boards[0], "BENCH-T1")
    fleet.transfer_devices(admin, BIG, pcs[CASES : CASES + ALERTS_TOLD], tenant, boards[1], "T2")
    fleet.switch_self_service_notifications(admin, BIG, boards[1], False)
    for k, serial in enumerate(pcs[:CASES]):
        fleet.raise_alert(ops, serial, f"AL{k:04d}", "critical", f"Battery of {serial}")
        owner = make_actor(
            f"user{k}@cd000.example", Role.END_USER, "CD000", pcs=frozenset({serial})
        )
        fleet.submit_repair_case(owner, serial, f"AL{k:04d}", f"CASE{k:04d}")
    for k, serial in enumerate(pcs[CASES : CASES + ALERTS_TOLD]):
        fleet.raise_alert(ops, serial, f"AT{k:04d}", "warning", f"Fan of {serial}")
    customer = f"C{0:05d}-000"  # the first ordinary partner's first customer (4 devices)
    serials = [f"RP{0:05d}C000D{d:02d}" for d in range(4)]
    fleet.withdraw_consent(customer_admin(customer), customer, serials[:2])
    fleet.grant_consent(customer_admin(customer), customer, serials[:2])
    return {
        "customer": customer,
        "customer_serial": serials[0],
        "customer_partner": location(0),
        "group": str(CustomerGroup.id_for(BIG, big_customer(0))),
        "device": "BG0000000",
    }


def pages(ids: dict[str, str], cursor: str) -> list[Page]:
    """The measured pages (All Customers' next page through `cursor`)."""
    partner = f"/partners/{BIG}"
    customer = ids["customer"]
    serial, at = ids["customer_serial"], datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")
    audit = f"/audit?serial={serial}&partner={ids['customer_partner']}&at={at}&zone=UTC"
    return [
        Page("All Customers, first page", "big", f"{partner}/customers"),
        Page("All Customers, search", "big", f"{partner}/customers?search={SEARCH}"),
        Page("All Customers, next page", "big", f"{partner}/customers?cursor={cursor}"),
        Page("Favorites Only (25)", "big-favourites", f"{partner}/customers"),
        Page("customer dashboard", "big", f"{partner}/customers/{ids['group']}"),
        Page("device page", "big", f"{partner}/devices/{ids['device']}"),
        Page("service events", "big", f"{partner}/service-events"),
        Page("holding tenant", "big", f"{partner}/holding"),
        Page("CSDP queue", "big", f"{partner}/csdp-queue"),
        Page("My IT Environment", "customer", f"/customers/{customer}/environment"),
        Page("consent history (customer)", "customer", f"/customers/{customer}/consent-history"),
        Page("audit: consent at a time", "auditor", audit),
        Page("audit history (partner)", "auditor", f"/audit/history?partner={BIG}"),
        Page("operations: partners", "operator", "/operations"),
        Page("operations: rejected reports", "operator", "/operations/rejected-reports"),
    ]


# --- calling the application -------------------------------------------------------------------


class Caller:
    """GET requests straight into the ASGI application, as uvicorn hands them over."""

    def __init__(self, app: FastAPI, tokens: dict[str, str]) -> None:
        self.app, self.tokens = app, tokens
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        """Close the event loop."""
        self.loop.close()

    def get(self, who: str | None, path: str) -> tuple[float, int, bytes, dict[str, str]]:
        """Milliseconds, status, body and headers of one GET of `path` (under /portal for a
        page; as given when it starts with /portal/static)."""
        return self.loop.run_until_complete(self._get(who, path))

    async def _get(self, who: str | None, path: str) -> tuple[float, int, bytes, dict[str, str]]:
        full = path if path.startswith("/portal/") else f"/portal{path}"
        parts = urlsplit(full)
        cookies = f"{CSRF_COOKIE}={CSRF}"
        if who is not None:
            cookies += f"; {SESSION_COOKIE}={self.tokens[who]}"
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"accept", b"text/html"),
                (b"accept-language", b"en"),
                (b"cookie", cookies.encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        status, headers, body = 0, {}, bytearray()

        sent, done = False, asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:  # the (empty) body once, then the client waits for the answer
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        start = time.perf_counter()
        await self.app(scope, receive, send)
        return (time.perf_counter() - start) * 1000, status, bytes(body), headers


def measure_page(caller: Caller, page: Page, runs: int, warm_up: int) -> Timing:
    """Warm up, then `runs` GETs one after another; each must answer 200."""
    size = 0
    ms: list[float] = []
    for index in range(warm_up + runs):
        elapsed, status, body, _ = caller.get(page.who, page.path)
        if status != 200:
            raise RuntimeError(f"{page.name}: GET {page.path} answered {status}: {body[:400]!r}")
        size = len(body)
        if index >= warm_up:
            ms.append(elapsed)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return Timing(page.name, page.path, 200, size, runs, cuts[49], cuts[94], cuts[98], max(ms))


def next_cursor(caller: Caller) -> str:
    """The cursor of All Customers' next-page link for the big partner's admin."""
    _, _, body, _ = caller.get("big", f"/partners/{BIG}/customers")
    found = re.search(r'href="[^"]*[?&;]cursor=([^"&]+)', body.decode())
    if found is None:
        raise RuntimeError("All Customers shows no link to a next page")
    return found.group(1).replace("&amp;", "&")


def page_weight(caller: Caller) -> dict[str, Any]:
    """All Customers' HTML and every style sheet and script it loads: bytes raw and gzip."""
    _, _, html, _ = caller.get("big", f"/partners/{BIG}/customers")
    text = html.decode()
    assets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', text)
    assets += re.findall(r'<script[^>]* src="([^"]+)"', text)
    files = {"html": (len(html), len(gzip.compress(html, 6)))}
    for url in assets:
        _, status, body, _ = caller.get(None, url.replace("&amp;", "&"))
        if status != 200:
            raise RuntimeError(f"{url}: {status}")
        files[urlsplit(url).path] = (len(body), len(gzip.compress(body, 6)))
    raw = sum(r for r, _ in files.values())
    zipped = sum(z for _, z in files.values())
    return {
        "files": {name: {"bytes": r, "gzip": z} for name, (r, z) in files.items()},
        "bytes": raw,
        "gzip": zipped,
        "goal_bytes": WEIGHT_GOAL,
        "tiles": len(re.findall(r'<li class="tile"', text)),
    }


def profile_page(caller: Caller, page: Page, runs: int, top: int) -> None:
    """cProfile `runs` requests of `page` (untimed); stats saved and the top printed."""
    say(f"profiling {page.name} ({runs} requests, cProfile)")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        caller.get(page.who, page.path)
    profiler.disable()
    slug = re.sub(r"[^a-z0-9]+", "-", page.name.lower()).strip("-")
    RESULTS.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(RESULTS / f"portal_{slug}.prof")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


# --- run -------------------------------------------------------------------------------------


def settings_for(schema: str, jwks: Path) -> Settings:
    """PostgreSQL in `schema`, tokens of the throw-away key trusted through `jwks`."""
    return Settings.model_validate(
        {
            "postgres_host": "127.0.0.1",
            "postgres_dbname": "test",
            "postgres_schema": schema,
            "jwks_path": str(jwks),
            "jwt_issuer": LOCAL_ISSUER,
            "cpin_key": secrets.token_urlsafe(48),
        }
    )


def wait_caught_up(service: Service, timeout: float = 1800.0) -> float:
    """Poll until the views and policies have applied every stored event; seconds taken."""
    start = time.perf_counter()
    shown = start
    while time.perf_counter() - start < timeout:
        lags = {**service.views.lag(), **service.policies.lag()}
        if not any(lags.values()):
            return time.perf_counter() - start
        if time.perf_counter() - shown > 10:
            behind = {k: v for k, v in lags.items() if v}
            say(f"still behind (events): {behind}")
            shown = time.perf_counter()
        time.sleep(0.5)
    raise RuntimeError(f"the views and policies did not catch up within {timeout:.0f} s")


def analyze_schema(schema: str) -> None:
    """VACUUM ANALYZE every table of `schema`, as autovacuum would (off on the bench server):
    the planner needs the big partner's row counts to choose its plans."""
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
        for (table,) in rows:
            name = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(name))


def tokens_for(key: SigningKey, settings: Settings, ids: dict[str, str]) -> dict[str, str]:
    """Session tokens of the principals the pages are measured as."""
    claims = {
        "big": Claims(BIG_ADMIN, Role.PARTNER_ADMIN, BIG),
        "customer": Claims(
            f"it@{ids['customer'].lower()}.example", Role.CUSTOMER_ADMIN, ids["customer"]
        ),
        "auditor": Claims("dpo@bench.example", Role.AUDITOR),
        "operator": Claims("ops@bench.example", Role.OPERATOR),
    }
    made = {who: mint(c, key, 3600, audience=settings.jwt_audience) for who, c in claims.items()}
    made["big-favourites"] = made["big"]
    return made


def measure(args: argparse.Namespace, shape: Shape) -> tuple[list[Timing], dict[str, Any]]:
    """Seed, build the service, catch up, then every page and the weight."""
    extra: dict[str, Any] = {}
    with fresh_schema() as schema, tempfile.TemporaryDirectory() as tmp:
        key = demo_signing_key(Path(tmp) / "signing-key.pem")  # throw-away, for this run
        jwks = Path(tmp) / "jwks.json"
        jwks.write_text(json.dumps(key.public_jwks()))
        settings = settings_for(schema, jwks)
        fleet = build_fleet(settings)
        service: Service | None = None
        try:
            extra["generate_seconds"] = round(generate(fleet, shape, args.chunk).seconds, 1)
            ids = add_portal_world(fleet)
            extra["store_events"] = fleet.recorder.max_notification_id() or 0
            service = start_service(
                settings, fleet, run_relay=False, verifier=build_verifier(settings)
            )
            say("views and policies catching up in-process")
            extra["catch_up_seconds"] = round(wait_caught_up(service), 1)
            analyze_schema(schema)
            caller = Caller(service.api(), tokens_for(key, settings, ids))
            try:
                timings, extra["weight"] = run_pages(caller, fleet, ids, args)
            finally:
                caller.close()
        finally:
            if service is not None:
                service.views.stop()
                service.policies.stop()
            fleet.close()
    return timings, extra


def run_pages(
    caller: Caller, fleet: PartnerFleet, ids: dict[str, str], args: argparse.Namespace
) -> tuple[list[Timing], dict[str, Any]]:
    """Every page (Favorites Only with that view chosen as the default), then the weight."""
    admin = authenticate(fleet, Claims(BIG_ADMIN, Role.PARTNER_ADMIN, BIG, correlation_id="b"))
    fleet.choose_default_view(admin, "all_customers")
    time.sleep(1.0)  # the views follower applies the choice
    weight = page_weight(caller)
    timings = []
    rounds = args.rounds
    measured = pages(ids, next_cursor(caller))
    say(f"{len(measured)} pages x {args.runs} requests (+{args.warm_up} warm-up), {rounds} rounds")
    per_page: dict[str, list[Timing]] = {p.name: [] for p in measured}
    for _ in range(rounds):  # alternate the pages, so a burst of load does not hit one only
        for page in measured:
            view = "favorites_only" if page.who == "big-favourites" else "all_customers"
            fleet.choose_default_view(admin, view)
            if view == "favorites_only":
                time.sleep(1.0)
            runs = max(2, args.runs // rounds)
            per_page[page.name].append(measure_page(caller, page, runs, args.warm_up))
            if view == "favorites_only":
                fleet.choose_default_view(admin, "all_customers")
                time.sleep(1.0)
    for page in measured:
        timings.append(merge(per_page[page.name]))
    if args.profile:
        slow = [p for p, t in zip(measured, timings, strict=True) if t.p95 >= args.profile_over]
        for page in slow:
            profile_page(caller, page, 50, args.profile_top)
    return timings, weight


def merge(parts: list[Timing]) -> Timing:
    """One page's rounds as one timing (percentiles of the rounds' worst: the max of each)."""
    first = parts[0]
    runs = sum(t.runs for t in parts)
    return Timing(
        first.page,
        first.path,
        first.status,
        first.bytes,
        runs,
        statistics.median(t.p50 for t in parts),
        max(t.p95 for t in parts),
        max(t.p99 for t in parts),
        max(t.max for t in parts),
    )


def metadata(args: argparse.Namespace, shape: Shape) -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "shape": asdict(shape),
        "quick": args.quick,
        "runs_per_page": args.runs,
        "rounds": args.rounds,
        "warm_up": args.warm_up,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "fastapi": version("fastapi"),
        "jinja2": version("jinja2"),
        "postgres": postgres_settings(),
        "notes": [
            "in-process: the ASGI application (API with the portal mounted) called directly,"
            " one request at a time, views and policies followed in background threads",
            "latency: from calling the application to its last body chunk (no sockets)",
            "the runs of a page are split into rounds over all pages; p50 is the median of"
            " the rounds' p50, p95/p99/max the worst round's",
            "goal: p95 < 50 ms per page; weight: HTML + CSS + JS of All Customers < 200 KB",
        ],
    }


def timing_table(timings: list[Timing], groups: int) -> Any:
    """The pages as a rich table."""
    out = compact_table(f"Portal pages ({BIG}: service partner, {groups:,} groups), ms")
    for name in ["page", "KB", "runs", "p50", "p95", "p99", "max", "goal p95"]:
        out.add_column(name, justify="left" if name == "page" else "right", no_wrap=True)
    for t in timings:
        goal = f"< {t.goal_p95:.0f} {verdict(t.p95 < t.goal_p95)}"
        stats = [f"{v:.1f}" for v in (t.p50, t.p95, t.p99, t.max)]
        out.add_row(t.page, f"{t.bytes / 1024:.0f}", str(t.runs), *stats, goal)
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argument_parser("portal_path", __doc__)
    add = parser.add_argument
    add("--quick", action="store_true", help="smoke run: 2,000 groups, 40 requests (< 2 min)")
    add("--partners", type=int, help="ordinary partners beside the big one (20; quick 4)")
    add("--big-groups", type=int, help="customer groups of the big partner (10000; quick 2000)")
    add("--runs", type=int, help="timed requests per page (240; quick 40)")
    add("--rounds", type=int, help="rounds the runs are split into (3; quick 1)")
    add("--warm-up", type=int, default=10, help="untimed requests per page and round (10)")
    add("--chunk", type=int, default=3_000, help="aggregates per fleet.save (3000)")
    add("--profile", action="store_true", help="cProfile the pages at or over --profile-over")
    add("--profile-over", type=float, default=P95_GOAL_MS, help="p95 in ms to profile (50)")
    add("--profile-top", type=int, default=30, help="functions to print")
    args = parser.parse_args(argv)
    for name, full, small in [
        ("partners", 20, 4),
        ("big_groups", 10_000, 2_000),
        ("runs", 240, 40),
        ("rounds", 3, 1),
    ]:
        if getattr(args, name) is None:
            setattr(args, name, small if args.quick else full)
    if min(args.partners, args.big_groups, args.runs, args.rounds) < 1 or args.big_groups < 25:
        parser.error("sizes must be positive and --big-groups more than one page (25)")
    if args.runs // args.rounds < 2 or args.warm_up < 0 or args.chunk < 10:
        parser.error("--runs at least 2 per round, --warm-up not negative, --chunk at least 10")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, print the table and write the JSON."""
    args = parse_args(argv)
    quiet_logging()
    shape = Shape(args.partners, 25, 4, args.big_groups, 25, 10, big_service=True)
    meta = metadata(args, shape)
    started = time.perf_counter()
    timings, extra = measure(args, shape)
    meta["run_seconds"] = round(time.perf_counter() - started, 1)
    meta["load_average_at_end"] = os.getloadavg()
    console.print(timing_table(timings, shape.big_groups))
    weight = extra["weight"]
    console.print(
        f"All Customers weight: {weight['bytes'] / 1024:.1f} KB "
        f"({weight['gzip'] / 1024:.1f} KB gzip), {weight['tiles']} tiles; goal < 200 KB "
        + verdict(weight["bytes"] < WEIGHT_GOAL)
    )
    console.print(
        f"store events {extra['store_events']:,}; run took {meta['run_seconds']:.0f} s; "
        f"{os.cpu_count()} CPUs; load average at start "
        + ", ".join(f"{v:.1f}" for v in meta["load_average_at_start"])
        + ", at end "
        + ", ".join(f"{v:.1f}" for v in meta["load_average_at_end"])
    )
    body = {"meta": meta, **extra, "pages": [asdict(t) for t in timings]}
    console.print(f"results: {write_results('portal_path', body)}")


if __name__ == "__main__":
    main()
