"""HTTP-path benchmark: the All Customers first page and grant_consent through the served app.

Run with `.venv/bin/python -m bench.http_path` (or `make bench`); `--quick` for a smoke run
under 2 minutes. In one fresh PostgreSQL schema (dropped at the end) it writes the read-path
history (bench/read_path.py: one big partner with 10,000 customer groups, 2,000 with
`--quick`, beside ordinary partners) and starts `partnerfleet serve --workers
SERVE_WORKERS` (serving processes on one port, the first following views and policies
in-process, as in production) on a free loopback port in a subprocess, trusting a
throw-away signing key through JWKS_PATH; the loads start once /healthz shows no lag:

- reads: GET /partners/{BIG}/customer-groups?limit=50 with the big partner's admin token
  from 1 client (a request's own latency), then 50 concurrent clients (keep-alive
  connections of bench/loadgen.py: wrk when installed, else a Python generator in a process
  of its own; closed loop, so latency is also 50 / requests per second) for a fixed time,
  each answer checked byte for byte against the page read first:
  requests/s, p50/p99 latency and the server's and the generator's CPU ms per request,
  beside list_customers called in this process (one caller, then 50 threads) on the same
  view tables;
- commands: POST /customers/{id}/consent-grants (one device each) from 8 clients on 8
  customers of their own, beside fleet.grant_consent from 8 threads on 8 other customers.

Results go to bench/results/http_path.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from itertools import count
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    argument_parser,
    code_version,
    console,
    fresh_schema,
    postgres_settings,
    quiet_logging,
    say,
    write_results,
)
from bench.loadgen import closed_loop
from bench.metrics import Metric, Scale, alternate, from_samples
from bench.read_path import BIG, BIG_ADMIN, Shape, compact_table, generate, verdict
from handlers import PartnerFleet
from handlers.access import Claims, Role, authenticate, partner_scope
from handlers.fleet import NewDevice
from infra.bootstrap import build_fleet, build_view_db
from infra.settings import Settings
from infra.tokens import LOCAL_ISSUER, SigningKey, demo_signing_key, mint
from projections.customer_queries import list_customers

P99_GOAL_MS = 50.0
READ_CLIENTS = 50
COMMAND_CLIENTS = 8
PAGE = f"/partners/{BIG}/customer-groups?limit=50"

_correlation = count(1)


@dataclass
class Load:
    """One measured load: `count` calls in `seconds` by `clients`, latencies in ms."""

    measure: str
    clients: int
    count: int
    seconds: float
    unit: str
    latencies: list[float] = field(repr=False)
    goal_p99: float | None = None
    tool: str = ""  # the load generator (bench/loadgen.py): wrk or python
    client_cpu_ms: float | None = None  # the load generator's CPU ms per request
    server_cpu_ms: float | None = None  # the server process's CPU ms per request

    @property
    def per_second(self) -> float:
        """Calls per second."""
        return self.count / self.seconds if self.seconds else 0.0

    def cut(self, percent: int) -> float:
        """The `percent`th percentile latency in ms."""
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[percent - 1]

    def summary(self) -> dict[str, Any]:
        """The figures for the JSON results (no raw latencies)."""
        body = {k: v for k, v in asdict(self).items() if k != "latencies"}
        stats = {"p50": self.cut(50), "p95": self.cut(95), "p99": self.cut(99)}
        most = max(self.latencies, default=0.0)
        return {**body, "per_second": self.per_second, **stats, "max": most}


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(schema: str, jwks: Path, port: int, cpin_key: str) -> dict[str, str]:
    """The environment `partnerfleet serve` reads: PostgreSQL in `schema`, keys from `jwks`."""
    ours = ("POSTGRES_", "DATABASE_URL", "JWKS_", "JWT_", "KAFKA_", "CURSOR_KEY", "CPIN_KEY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    return {
        **env,
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_DBNAME": "test",
        "POSTGRES_SCHEMA": schema,
        "CPIN_KEY": cpin_key,
        "JWKS_PATH": str(jwks),
        "JWT_ISSUER": LOCAL_ISSUER,
        "LOG_LEVEL": "warning",  # no access log: one line per request would be measured too
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }


def bench_settings(env: dict[str, str]) -> Settings:
    """The same settings in this process (for the fleet, views and direct calls)."""
    names = ["POSTGRES_HOST", "POSTGRES_DBNAME", "POSTGRES_SCHEMA", "CPIN_KEY", "JWT_ISSUER"]
    return Settings.model_validate({name.lower(): env[name] for name in names})


@contextmanager
def bench_service() -> Iterator[tuple[SigningKey, dict[str, str], Settings, PartnerFleet, str]]:
    """A fresh schema, a throw-away signing key its JWKS file names, `partnerfleet serve`'s
    environment on a free port, the fleet over it (closed after) and the base URL."""
    with fresh_schema() as schema, tempfile.TemporaryDirectory() as tmp:
        key = demo_signing_key(Path(tmp) / "signing-key.pem")  # throw-away, for this run
        jwks = Path(tmp) / "jwks.json"
        jwks.write_text(json.dumps(key.public_jwks()))
        port = free_port()
        env = server_env(schema, jwks, port, secrets.token_urlsafe(48))
        settings = bench_settings(env)
        fleet = build_fleet(settings)
        try:
            yield key, env, settings, fleet, f"http://127.0.0.1:{port}"
        finally:
            fleet.close()


# Serving processes (`partnerfleet serve --workers`). One: on this 2-core machine a second
# serving process competes with PostgreSQL and the load generator for the same cores; at
# quick scale it measured 686 requests/s, p99 227 ms, against one process's 914/s, 123 ms
# (docs/decisions.md, "serve --workers (session 17)"). More cores would change that.
SERVE_WORKERS = 1


@contextmanager
def served(
    env: dict[str, str], base: str, workers: int = SERVE_WORKERS
) -> Iterator[subprocess.Popen[bytes]]:
    """`partnerfleet serve --workers N` in a subprocess until it answers /healthz 200;
    stopped after. The process is the parts' supervisor (tree_cpu_seconds counts them)."""
    command = [
        str(Path(sys.executable).with_name("partnerfleet")),
        "serve",
        "--workers",
        str(workers),
    ]
    server = subprocess.Popen(command, env=env)
    try:
        wait_healthy(server, base)
        yield server
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_healthy(server: subprocess.Popen[bytes], base: str, timeout: float = 900.0) -> None:
    """Poll /healthz until 200 with no view or policy lag; RuntimeError if it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"partnerfleet serve ended with {server.returncode}")
        try:
            answer = httpx.get(f"{base}/healthz", timeout=5.0)
            body = answer.json()
            lags = [*body.get("views_lag", {}).values(), *body.get("policies_lag", {}).values()]
            if answer.status_code == 200 and not any(lags):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"partnerfleet serve was not healthy within {timeout:.0f} s")


# --- clients ---------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process `pid` and all its threads so far (Linux
    /proc; 0.0 where there is none, so the figure reads 0 rather than failing the run)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """`process_cpu_seconds` of `pid` and of every process under it (Linux /proc): a
    supervised `serve --workers N` and its parts."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += process_cpu_seconds(current)
        todo += children.get(current, [])
    return total


def run_clients(clients: int, work: Callable[[int, Callable[[], object]], list[float]]) -> Load:
    """Start `clients` threads together; each runs `work(index, go_on)` and returns its
    latencies. Seconds from the common start to the last thread's end."""
    barrier = threading.Barrier(clients + 1)
    results: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def thread(index: int) -> None:
        try:
            results[index] = work(index, barrier.wait)  # work waits once, after warm-up
        except BaseException as error:  # reported below, the other threads go on
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=thread, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    latencies = [ms for r in results for ms in r]
    return Load("", clients, len(latencies), seconds, "", latencies)


def timed_until(deadline: Callable[[], float], call: Callable[[], object]) -> list[float]:
    """Call until the deadline; each call's milliseconds."""
    out: list[float] = []
    end = deadline()
    while (start := time.perf_counter()) < end:
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def expected_page(base: str, token: str) -> bytes:
    """The page's body as the server answers it now (a 200 with 50 items, else
    RuntimeError): every answer of a read load must be the same bytes."""
    answer = httpx.get(base + PAGE, headers={"Authorization": f"Bearer {token}"}, timeout=30.0)
    if answer.status_code != 200 or len(answer.json()["items"]) != 50:
        raise RuntimeError(f"GET {PAGE}: {answer.status_code} {answer.text[:300]}")
    return answer.content


def page_reads(
    base: str, token: str, seconds: float, clients: int, server_pid: int, tool: str | None = None
) -> Load:
    """The big partner's first page from `clients` keep-alive connections of the cheap load
    generator (bench/loadgen.py: wrk, else the Python one), each answer checked byte for
    byte against the page read first; the server's and the generator's CPU per request."""
    say(f"HTTP: GET {PAGE}, {clients} clients, {seconds:.0f} s")
    expected = expected_page(base, token)
    headers = {"Authorization": f"Bearer {token}"}
    before = tree_cpu_seconds(server_pid)
    run = closed_loop(base + PAGE, headers, expected, seconds, clients, tool=tool)
    used = tree_cpu_seconds(server_pid) - before
    load = Load("HTTP GET page", clients, run.count, run.seconds, "requests", run.latencies)
    load.goal_p99, load.tool = P99_GOAL_MS, run.tool
    load.client_cpu_ms = round(run.client_cpu_seconds * 1000 / max(run.count, 1), 3)
    load.server_cpu_ms = round(used * 1000 / max(run.count, 1), 3)
    return load


def direct_reads(settings: Settings, fleet: PartnerFleet, seconds: float, clients: int) -> Load:
    """list_customers (limit 50) for the big partner's admin, each call in its own read
    transaction on a pooled connection, from `clients` threads."""
    say(f"function: list_customers, {clients} thread(s), {seconds:.0f} s")
    actor = authenticate(fleet, Claims(BIG_ADMIN, Role.PARTNER_ADMIN, BIG))
    scope = partner_scope(actor, BIG)
    db = build_view_db(settings)

    def query() -> None:
        with db.transaction() as tx:
            page = list_customers(tx, scope, limit=50)
        if len(page.rows) != 50:
            raise RuntimeError(f"list_customers gave {len(page.rows)} rows")

    def work(index: int, start: Callable[[], object]) -> list[float]:
        query()
        start()
        return timed_until(lambda: time.perf_counter() + seconds, query)

    try:
        load = run_clients(clients, work)
    finally:
        db.close()
    load.measure, load.unit = f"list_customers x{clients}", "calls"
    return load


# --- commands --------------------------------------------------------------------------------


def customer(side: str, index: int) -> tuple[str, str]:
    """Customer id and its admin's Passport ID of one command client."""
    return f"CH{side}{index:02d}", f"it@ch{side.lower()}{index:02d}.example"


def serials(side: str, index: int, n: int) -> list[str]:
    """The client's devices."""
    return [f"HP{side}{index:02d}D{k:05d}" for k in range(n)]


def customer_actor(fleet: PartnerFleet, side: str, index: int) -> Any:
    """The client's customer admin, as a token's claims make it (fresh correlation id)."""
    customer_id, owner = customer(side, index)
    claims = Claims(
        owner, Role.CUSTOMER_ADMIN, customer_id, correlation_id=f"hp-{next(_correlation)}"
    )
    return authenticate(fleet, claims)


def register_command_devices(fleet: PartnerFleet, per_client: int) -> None:
    """Direct-connect devices without consent for every command client, on both sides."""
    for side in ("H", "F"):
        for index in range(COMMAND_CLIENTS):
            news = [
                NewDevice(serial=s, connection="direct_connect")
                for s in serials(side, index, per_client)
            ]
            fleet.register_devices(
                customer_actor(fleet, side, index), customer(side, index)[0], news
            )


def http_commands(base: str, key: SigningKey, audience: str, per_client: int) -> Load:
    """grant_consent over HTTP: each client grants its own devices one request at a time."""
    say(f"HTTP: POST consent-grants, {COMMAND_CLIENTS} clients x {per_client} devices")

    def work(index: int, start: Callable[[], object]) -> list[float]:
        customer_id, owner = customer("H", index)
        token = mint(Claims(owner, Role.CUSTOMER_ADMIN, customer_id), key, 3600, audience=audience)
        headers = {"Authorization": f"Bearer {token}"}
        path = f"/customers/{customer_id}/consent-grants"
        with httpx.Client(base_url=base, headers=headers, timeout=30.0, verify=False) as client:
            client.get("/healthz")  # open the connection before the clock starts
            start()
            out: list[float] = []
            for serial in serials("H", index, per_client):
                begin = time.perf_counter()
                answer = client.post(path, json={"serials": [serial]})
                out.append((time.perf_counter() - begin) * 1000)
                if answer.status_code != 200:
                    raise RuntimeError(f"POST {path}: {answer.status_code} {answer.text[:300]}")
            return out

    load = run_clients(COMMAND_CLIENTS, work)
    load.measure, load.unit = "HTTP POST grant", "commands"
    return load


def direct_commands(fleet: PartnerFleet, per_client: int) -> Load:
    """fleet.grant_consent from 8 threads, each on its own customer's devices."""
    say(f"function: fleet.grant_consent, {COMMAND_CLIENTS} threads x {per_client} devices")

    def work(index: int, start: Callable[[], object]) -> list[float]:
        customer_id = customer("F", index)[0]
        start()
        out: list[float] = []
        for serial in serials("F", index, per_client):
            begin = time.perf_counter()
            fleet.grant_consent(customer_actor(fleet, "F", index), customer_id, [serial])
            out.append((time.perf_counter() - begin) * 1000)
        return out

    load = run_clients(COMMAND_CLIENTS, work)
    load.measure, load.unit = "fleet.grant_consent", "commands"
    return load


# --- run -------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, shape: Shape) -> tuple[list[Load], dict[str, int]]:
    """Seed, serve (it catches its views and policies up), then the six loads."""
    loads: list[Load] = []
    with bench_service() as (key, env, settings, fleet, base):
        generate(fleet, shape, args.chunk)
        register_command_devices(fleet, args.commands)
        counts = {"store_events": fleet.recorder.max_notification_id() or 0}
        say(f"partnerfleet serve on {base}: catching its views and policies up")
        with served(env, base) as server:
            token = mint(
                Claims(BIG_ADMIN, Role.PARTNER_ADMIN, BIG),
                key,
                3600,
                audience=settings.jwt_audience,
            )
            for clients in (1, READ_CLIENTS):
                loads.append(page_reads(base, token, args.seconds, clients, server.pid, args.tool))
            loads.append(direct_reads(settings, fleet, args.seconds, 1))
            loads.append(direct_reads(settings, fleet, args.seconds, READ_CLIENTS))
            loads.append(http_commands(base, key, settings.jwt_audience, args.commands))
            loads.append(direct_commands(fleet, args.commands))
    return loads, counts


def metadata(args: argparse.Namespace, shape: Shape) -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "shape": asdict(shape),
        "quick": args.quick,
        "seconds_per_read_load": args.seconds,
        "commands_per_client": args.commands,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "uvicorn": version("uvicorn"),
        "fastapi": version("fastapi"),
        "postgres": postgres_settings(),
        "notes": [
            f"server: `partnerfleet serve --workers {SERVE_WORKERS}` (uvicorn processes on one"
            " port, the first following views and policies in-process, LOG_LEVEL=warning) on"
            " loopback; read clients: bench/loadgen.py"
            " (wrk on one thread, else the Python generator), one keep-alive connection"
            " each, on the same machine; command clients: httpx, one thread each",
            "latency: from sending the request to the whole answer, per client",
            "function rows: list_customers in its own read transaction on a pooled connection",
            "commands: one device per command, each client on a customer of its own",
        ],
    }


def load_table(loads: list[Load]) -> Any:
    """The loads as a rich table."""
    out = compact_table(f"HTTP path ({BIG}: big partner, first page of 50), latency in ms")
    for name in ["measure", "clients", "count", "/s", "p50", "p99", "max", "goal p99"]:
        out.add_column(name, justify="left" if name == "measure" else "right", no_wrap=True)
    for load in loads:
        goal = load.goal_p99
        mark = "" if goal is None else f"< {goal:.0f} {verdict(load.cut(99) < goal)}"
        stats = [f"{v:.1f}" for v in (load.cut(50), load.cut(99), max(load.latencies))]
        out.add_row(
            load.measure,
            str(load.clients),
            f"{load.count:,}",
            f"{load.per_second:,.0f}",
            *stats,
            mark,
        )
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argument_parser("http_path", __doc__)
    add = parser.add_argument
    add("--quick", action="store_true", help="smoke run: 2,000 groups, 3 s loads (< 2 min)")
    add("--partners", type=int, help="ordinary partners beside the big one (20; quick 4)")
    add("--big-groups", type=int, help="customer groups of the big partner (10000; quick 2000)")
    add("--seconds", type=float, help="length of each read load (20; quick 3)")
    add("--commands", type=int, help="grant_consent commands per client (250; quick 20)")
    add("--chunk", type=int, default=3_000, help="aggregates per fleet.save (3000)")
    add(
        "--load-generator",
        dest="tool",
        choices=["wrk", "python"],
        help="the reads' clients (bench/loadgen.py): wrk when installed, else python",
    )
    args = parser.parse_args(argv)
    for name, full, small in [
        ("partners", 20, 4),
        ("big_groups", 10_000, 2_000),
        ("seconds", 20.0, 3.0),
        ("commands", 250, 20),
    ]:
        if getattr(args, name) is None:
            setattr(args, name, small if args.quick else full)
    if min(args.partners, args.big_groups, args.commands) < 1 or args.big_groups < 51:
        parser.error("sizes must be positive and --big-groups more than one page (51)")
    if args.seconds <= 0 or args.chunk < 10:
        parser.error("--seconds must be positive, --chunk at least 10")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, print the table and write the JSON."""
    args = parse_args(argv)
    quiet_logging()
    shape = Shape(args.partners, 25, 4, args.big_groups, 25, 10)
    meta = metadata(args, shape)
    started = time.perf_counter()
    loads, counts = measure(args, shape)
    meta["run_seconds"] = round(time.perf_counter() - started, 1)
    console.print(load_table(loads))
    console.print(
        f"{', '.join(f'{k}={v:,}' for k, v in counts.items())}; run took "
        f"{meta['run_seconds']:.0f} s; {os.cpu_count()} CPUs; load average at start "
        + ", ".join(f"{v:.1f}" for v in meta["load_average"])
    )
    body = {"meta": meta, "counts": counts, "loads": [load.summary() for load in loads]}
    console.print(f"results: {write_results('http_path', body)}")


if __name__ == "__main__":
    main()


# --- the suite (bench/suite.py) --------------------------------------------------------------


def metrics(scale: Scale) -> list[Metric]:
    """`http.all_customers_p99_ms` and `http.rps`: the big partner's All Customers first page
    (10,000 customer groups; 1,000 at quick scale) through `partnerfleet serve` on loopback,
    50 concurrent clients (bench/loadgen.py: wrk when installed, else the Python
    generator) for 20 s (4 s quick) per repetition; baseline: the query function itself
    from 50 threads in the benchmark process (what the HTTP layer adds on top). The detail
    adds each repetition's p50, the server process's and the load generator's CPU ms per
    request, and a lone client's p50/p99 (half a repetition long, measured once before
    the others)."""
    quiet_logging()
    shape = Shape(scale.of(20, 2), 25, 4, scale.of(10_000, 1_000), 25, 10)
    seconds = 20.0 if not scale.quick else 4.0
    loads: dict[str, list[Load]] = {"http": [], "direct": []}
    with bench_service() as (key, env, settings, fleet, base):
        generate(fleet, shape, 3_000)
        with served(env, base) as server:
            claims = Claims(BIG_ADMIN, Role.PARTNER_ADMIN, BIG)
            token = mint(claims, key, 3600, audience=settings.jwt_audience)
            alone = page_reads(base, token, seconds / 2, 1, server.pid)

            def http(_: int) -> float:
                load = page_reads(base, token, seconds, READ_CLIENTS, server.pid)
                loads["http"].append(load)
                return load.per_second

            def direct(_: int) -> float:
                load = direct_reads(settings, fleet, seconds, READ_CLIENTS)
                loads["direct"].append(load)
                return load.per_second

            rps, direct_rps = alternate(http, direct, scale.repetitions)
    detail = {
        "clients": READ_CLIENTS,
        "seconds": seconds,
        "big_partner_groups": shape.big_groups,
        "server_processes": SERVE_WORKERS,
    }
    baseline = "list_customers in-process, 50 threads"
    return [
        from_samples(
            "http.all_customers_p99_ms",
            "ms",
            [load.cut(99) for load in loads["http"]],
            baseline=(baseline, [load.cut(99) for load in loads["direct"]]),
            higher_is_better=False,
            detail=detail
            | {
                "p50_ms": [round(load.cut(50), 1) for load in loads["http"]],
                "load_generator": alone.tool,
                "server_cpu_ms_per_request": [load.server_cpu_ms for load in loads["http"]],
                "client_cpu_ms_per_request": [load.client_cpu_ms for load in loads["http"]],
                "one_client_server_cpu_ms_per_request": alone.server_cpu_ms,
                "one_client_p50_ms": round(alone.cut(50), 2),
                "one_client_p99_ms": round(alone.cut(99), 2),
            },
        ),
        from_samples("http.rps", "requests/s", rps, baseline=(baseline, direct_rps), detail=detail),
    ]
