"""Commands/s through PartnerFleet beside a stock eventsourcing Application (issue 11).

Metrics (`metrics(scale)`, registered in bench/suite.py as "commands"):
- `commands.single`: commands/s, one client, over a realistic mix. Each round of a client:
  link a device to the partner, grant consent on it, withdraw it, star (or unstar, every
  other round) the customer's group as a partner user's favourite, transfer a PC from the
  partner's holding tenant to the client's customer dashboard (5 commands, each a real
  PartnerFleet command with its checks). A customer's devices serve 5 rounds.
- `commands.concurrent`: the same mix from 8 client threads of one process, each on
  aggregates of its own (its customers, user, dashboard, PCs; the partner is read by all).
- `commands.insert_limit`: raw single-row INSERT transactions/s from 8 threads (a
  connection each, autocommit, prepared) into a table shaped like the events table; the
  ceiling for one transaction per command. No baseline.

`commands.concurrent`'s detail also holds its share of `commands.insert_limit`, and what
bounds it (session 20): `commit_free_commands_per_s`, the rate of the same 8 threads on
batches of their own whose group commits skip the server (`commit_free`: each group's
parameters packed as for the real commit, then ids made up in the process instead of the
round trip), measured last; with its client CPU per command and its own share of
insert_limit. It is what the client's Python alone allows under one GIL: the real rate
cannot pass it, whatever the commit costs.

The baseline of the first two is a stock `eventsourcing.application.Application` (stock
repository: one SELECT of the events per aggregate; stock recorder: the table lock and its
round trips; stock `save`) doing the same command shapes: it loads the aggregates the
command loaded, triggers the same events on them and saves them once. The shapes are taken
from the same commands run on an in-memory fleet seeded the same way; the stock app reads
and writes its own copy of the seeded events (the fleet's transcoder, so it can decode
them). Ours and stock run alternately (bench.metrics.interleave), each repetition on fresh
clients; the median of `scale.repetitions` is reported. `commands.insert_limit` runs in
`commands.concurrent`'s rotation (ours, limit, stock, spread; then the reverse), so the
share of the ceiling compares rates measured side by side; `share_by_repetition` gives each
repetition's rate over the limit run next to it.

The process runs as `partnerfleet serve` does (session 24): every thread on one CPU
(PROCESS_CPU, `infra.cli.processes.one_cpu`), ours and the stock app's alike;
`detail.process_cpu` names it (None: left to the kernel). The insert limit's threads are
left where the kernel puts them (faster so; the share is of the higher ceiling), and
`spread_commands_per_s` is ours again that way, in the same rotation (ours, limit, stock,
spread; then reversed): what the one CPU gives.

Run alone: `.venv/bin/python -m bench.commands [--quick]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import JSONTranscoder, Mapper, Recording, Tracking, Transcoder
from psycopg import sql

from bench.common import (
    PG_CONNINFO,
    fresh_schema,
    open_fleet,
    postgres_env,
    quiet_logging,
    say,
)
from bench.metrics import Metric, Scale, from_samples, interleave, rng
from domain import CustomerGroup
from domain.passport import MAX_FAVOURITES
from handlers import PartnerFleet
from handlers.access import Actor, Claims, Role, authenticate, service_actor
from handlers.base import STATE_DATACLASSES, Working
from handlers.fleet import NewDevice, PartnerChoice
from handlers.transcoding import DataclassAsDict, DateAsISO, FleetMapper, FleetTranscoder
from infra.cli.processes import one_cpu

PARTNER = "PLCMD0001"
PARTNER_ADMIN = "admin@plcmd.example"
THREADS = 8
KINDS = ("link", "grant", "withdraw", "star", "transfer")
SINGLE_ROUNDS = 100  # per repetition at full scale (x5 commands)
CONCURRENT_ROUNDS = 30  # per thread and repetition at full scale (x5 commands x 8 threads)
INSERT_ROWS = 2_000  # per thread at full scale
ROUNDS_PER_CUSTOMER = 5  # a customer's devices linked one round each

Call = Callable[[], object]
# The CPUs this process may use, read before `one_cpu` narrows them (`_spread`).
ALLOWED_CPUS = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()


# --- the clients and their data ---------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    """One client thread's aggregates in one batch: its customers, user, dashboard, PCs."""

    batch: str
    thread: int
    rounds: int

    def key(self, r: int) -> str:
        return f"{self.batch}-{self.thread}-{r}"

    def code(self, r: int) -> str:
        """The key in letters and digits only (a serial's alphabet)."""
        return f"{self.batch}T{self.thread}R{r}".upper()

    def customers(self) -> range:
        """Indices of the client's customers: each serves ROUNDS_PER_CUSTOMER rounds."""
        return range(-(-self.rounds // ROUNDS_PER_CUSTOMER))

    def customer_of(self, r: int) -> int:
        return r // ROUNDS_PER_CUSTOMER

    def customer(self, k: int) -> str:
        return f"K{self.key(k)}"

    def owner(self, k: int) -> str:
        return f"owner-{self.key(k)}@plcmd.example"

    def linked(self, k: int) -> str:
        """The customer's device linked at set-up (so its customer group exists)."""
        return f"SA{self.code(k)}"

    def measured(self, r: int) -> str:
        """The device round `r` links, grants and withdraws consent on."""
        return f"SB{self.code(r)}"

    def pc(self, r: int) -> str:
        return f"P{self.code(r)}"

    def user(self, k: int) -> str:
        """The partner user starring customer k's group (at most MAX_FAVOURITES each)."""
        return f"user-{self.batch}-{self.thread}-{k // MAX_FAVOURITES}@plcmd.example"

    def dashboard_customer(self) -> str:
        return f"D{self.batch}-{self.thread}"


@dataclass(frozen=True)
class Batch:
    """Fresh clients for one run of one side: `threads` clients of `rounds` rounds."""

    name: str
    threads: int
    rounds: int

    @property
    def clients(self) -> list[Client]:
        return [Client(self.name, t, self.rounds) for t in range(self.threads)]


def operator() -> Actor:
    return service_actor("ops@plcmd.example", Role.OPERATOR, correlation_id="bench-commands")


def feed() -> Actor:
    return service_actor("feed:e2open", Role.FEED, correlation_id="bench-commands")


def customer_admin(fleet: PartnerFleet, owner: str, customer_id: str) -> Actor:
    return authenticate(fleet, Claims(owner, Role.CUSTOMER_ADMIN, customer_id, correlation_id="c"))


def partner_actor(fleet: PartnerFleet, subject: str, role: Role) -> Actor:
    return authenticate(fleet, Claims(subject, role, PARTNER, correlation_id="bench-commands"))


def seed(fleet: PartnerFleet, batches: Sequence[Batch]) -> None:
    """The partner (certified: a holding tenant), and per client: customers with two
    devices (one linked, so the group exists), users, a dashboard, PCs in holding."""
    ops = operator()
    fleet.register_partner(ops, PARTNER, "Commands Bench Reseller")
    fleet.register_partner_user(ops, PARTNER, PARTNER_ADMIN)
    fleet.certify_partner(ops, PARTNER, "resell_view_monitor")
    admin = partner_actor(fleet, PARTNER_ADMIN, Role.PARTNER_ADMIN)
    choice = PartnerChoice(location_id=PARTNER)
    reports: list[dict[str, str]] = []
    ship = rng("commands")
    for batch in batches:
        for client in batch.clients:
            for k in client.customers():
                actor = customer_admin(fleet, client.owner(k), client.customer(k))
                rounds = [r for r in range(client.rounds) if client.customer_of(r) == k]
                serials = [client.linked(k), *map(client.measured, rounds)]
                news = [NewDevice(serial=s, connection="direct_connect") for s in serials]
                fleet.register_devices(actor, client.customer(k), news)
                fleet.link_devices(actor, client.customer(k), serials[:1], choice, f"Cust {k}")
            for r in range(client.rounds):
                reports.append(
                    {
                        "serial": client.pc(r),
                        "model": "HP EliteBook 840 G11",
                        "reseller_location_id": PARTNER,
                        "distributor": ship.choice(["Ingram Micro", "TD SYNNEX", "Also"]),
                        "ship_date": f"2026-{ship.randint(1, 9):02d}-{ship.randint(10, 28)}",
                    }
                )
            for user in sorted({client.user(k) for k in client.customers()}):
                fleet.register_partner_user(ops, PARTNER, user)
            fleet.create_customer_dashboard(
                admin, PARTNER, client.dashboard_customer(), f"Dashboard {client.thread}", "4711"
            )
    fleet.receive_e2open_batch(feed(), "BENCH-COMMANDS", reports)


def client_calls(fleet: PartnerFleet, client: Client) -> list[tuple[str, Call]]:
    """The client's commands, round by round (actors made here, untimed)."""
    admin = partner_actor(fleet, PARTNER_ADMIN, Role.PARTNER_ADMIN)
    holding = fleet.partner(PARTNER).holding_tenant_id
    assert holding is not None
    dashboard = CustomerGroup.id_for(PARTNER, client.dashboard_customer())
    choice = PartnerChoice(location_id=PARTNER)
    users: dict[str, Actor] = {}
    calls: list[tuple[str, Call]] = []
    for r in range(client.rounds):
        k = client.customer_of(r)
        owner = customer_admin(fleet, client.owner(k), client.customer(k))
        user = client.user(k)
        star = users.get(user) or users.setdefault(
            user, partner_actor(fleet, user, Role.PARTNER_USER)
        )
        customer = client.customer(k)
        serial = client.measured(r)
        group = CustomerGroup.id_for(PARTNER, customer)
        # Star, unstar, star ... the customer's group: a favourite toggled as users do.
        starred = (
            fleet.add_favourite if r % ROUNDS_PER_CUSTOMER % 2 == 0 else fleet.remove_favourite
        )
        transfer = f"T{client.key(r)}"
        calls += [
            ("link", partial(fleet.link_devices, owner, customer, [serial], choice)),
            ("grant", partial(fleet.grant_consent, owner, customer, [serial])),
            ("withdraw", partial(fleet.withdraw_consent, owner, customer, [serial])),
            ("star", partial(starred, star, group)),
            (
                "transfer",
                partial(
                    fleet.transfer_devices,
                    admin,
                    PARTNER,
                    [client.pc(r)],
                    holding,
                    dashboard,
                    transfer,
                ),
            ),
        ]
    return calls


# --- command shapes for the stock baseline ----------------------------------------------------


@dataclass
class Shape:
    """What one command did: the aggregates it loaded and the events it triggered on them."""

    loaded: list[UUID]
    events: list[tuple[UUID, type[Any], dict[str, Any]]]


class ShapeRecorder(PartnerFleet):
    """An in-memory fleet noting each saved command's shape."""

    def __init__(self) -> None:
        super().__init__(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.shapes: list[Shape] = []
        self.noting = False  # set while the measured commands run

    def _save(self, working: Working, tracking: Tracking | None) -> list[Recording[UUID]]:
        if not self.noting:
            return super()._save(working, tracking)
        events: list[tuple[UUID, type[Any], dict[str, Any]]] = []
        for aggregate in working.values():
            for event in aggregate.pending_events:
                if event.originator_version == 1:
                    raise RuntimeError("a measured command created an aggregate")
                kwargs = {
                    f.name: getattr(event, f.name)
                    for f in dataclasses.fields(event)  # type: ignore[arg-type]
                    if f.name not in ("originator_id", "originator_version", "timestamp")
                }
                events.append((aggregate.id, type(event), kwargs))
        self.shapes.append(Shape(list(working), events))
        return super()._save(working, tracking)


def shapes_of(batches: Sequence[Batch]) -> dict[str, list[list[Shape]]]:
    """Per batch, per client: the shapes of its commands, in order (run in memory)."""
    fleet = ShapeRecorder()
    seed(fleet, batches)
    shapes: dict[str, list[list[Shape]]] = {}
    for batch in batches:
        shapes[batch.name] = []
        for client in batch.clients:
            fleet.shapes = []
            calls = client_calls(fleet, client)
            fleet.noting = True
            for _, call in calls:
                call()
            fleet.noting = False
            shapes[batch.name].append(fleet.shapes)
    return shapes


class StockFleet(Application[UUID]):
    """The stock Application (repository, recorder, save), reading the fleet's events:
    the same transcoder and mapper, no snapshots."""

    name = "partnerfleet"  # the same table names as the fleet's
    env: ClassVar[dict[str, str]] = {}

    def construct_transcoder(self) -> Transcoder:
        transcoder = FleetTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(self.construct_transcoder(), mapper_class=FleetMapper)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        for cls in STATE_DATACLASSES:
            transcoder.register(DataclassAsDict(cls))

    def run(self, shape: Shape) -> None:
        """The command shape: load each aggregate, trigger the events, one save."""
        loaded: dict[UUID, Aggregate] = {i: self.repository.get(i) for i in shape.loaded}
        for aggregate_id, event_class, kwargs in shape.events:
            loaded[aggregate_id].trigger_event(event_class, **kwargs)
        self.save(*loaded.values())


def stock_env(schema: str) -> dict[str, str]:
    """The stock recorder: the fleet's environment without its PROCESS_RECORDER_TOPIC."""
    env = postgres_env(schema)
    env.pop("PROCESS_RECORDER_TOPIC")
    return env


def copy_events(source: str, target: str) -> None:
    """The seeded events of `source`'s store into `target`'s, in notification order."""
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.partnerfleet_events (originator_id, originator_version, topic, "
                "state) SELECT originator_id, originator_version, topic, state "
                "FROM {}.partnerfleet_events ORDER BY notification_id"
            ).format(sql.Identifier(target), sql.Identifier(source))
        )


# --- timing ----------------------------------------------------------------------------------


@contextmanager
def commit_free(fleet: PartnerFleet) -> Iterator[None]:
    """Within: the fleet's group commits never reach the server. Each group's parameters are
    packed as for the real commit (`_commit_together`), then its events get notification
    ids counted up from 10**12 in place of the statement's rows; nothing is stored. The
    cache then holds versions the store has not: use the fleet for nothing else after.
    Raises TypeError for a recorder without the libpq group commit."""
    recorder: Any = fleet.recorder
    if not getattr(recorder, "packs_arrays", False):
        raise TypeError("commit_free needs the PostgreSQL recorder's group commit.")
    together, send = recorder._commit_together, recorder._send
    ids = iter(range(10**12, 10**13))
    events = [0]

    def commit_together(units: list[Any]) -> None:
        if any(unit.tracking is not None for unit in units):
            raise TypeError("commit_free takes no policy positions.")
        events[0] = sum(len(unit.stored_events) for unit in units)
        together(units)

    def no_round_trip(statement: bytes, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [(0, next(ids), None, None) for _ in range(events[0])]

    recorder._commit_together, recorder._send = commit_together, no_round_trip
    try:
        yield
    finally:
        recorder._commit_together, recorder._send = together, send


def rate_of(work: Sequence[Sequence[Call]]) -> float:
    """Commands/s of the clients' calls, each client a thread (one: this thread)."""
    if len(work) == 1:
        start = time.perf_counter()
        for call in work[0]:
            call()
        return len(work[0]) / (time.perf_counter() - start)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(work) + 1)

    def run(calls: Sequence[Call]) -> None:
        barrier.wait()
        try:
            for call in calls:
                call()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(calls,)) for calls in work]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    return sum(map(len, work)) / seconds


@dataclass
class Sides:
    """The fleet and the stock app, each on its copy of the seeded store."""

    fleet: PartnerFleet
    stock: StockFleet
    shapes: dict[str, list[list[Shape]]]
    kinds: dict[str, int] = field(default_factory=dict)
    # Client CPU ms per command of each timed run, by side ("ours", "stock", "spread"): this
    # process's CPU time (all its threads) over the commands run.
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)

    def ours(self, batch: Batch, side: str = "ours") -> float:
        work = [[call for _, call in client_calls(self.fleet, c)] for c in batch.clients]
        return self._timed(side, work)

    def theirs(self, batch: Batch) -> float:
        work = [[partial(self.stock.run, s) for s in client] for client in self.shapes[batch.name]]
        return self._timed("stock", work)

    def _timed(self, side: str, work: Sequence[Sequence[Call]]) -> float:
        started = time.process_time()
        rate = rate_of(work)
        spent = (time.process_time() - started) * 1000 / sum(map(len, work))
        self.cpu_ms.setdefault(side, []).append(spent)
        return rate

    def cpu_medians(self) -> dict[str, float]:
        """Median client CPU ms per command of each side since the last call (then reset)."""
        medians = {
            f"client_cpu_ms_per_command_{side}": round(statistics.median(v), 3)
            for side, v in self.cpu_ms.items()
        }
        self.cpu_ms = {}
        return medians


@contextmanager
def sides(batches: Sequence[Batch]) -> Iterator[Sides]:
    """Both stores seeded alike (the fleet's commands, then a copy of its events)."""
    say(f"commands: shapes of {len(batches)} batches, in memory")
    shapes = shapes_of(batches)
    with (
        fresh_schema() as ours,
        fresh_schema() as theirs,
        open_fleet(postgres_env(ours)) as fleet,
    ):
        say("commands: seeding PostgreSQL")
        seed(fleet, batches)
        stock = StockFleet(env=stock_env(theirs))
        try:
            copy_events(ours, theirs)
            yield Sides(fleet, stock, shapes)
        finally:
            stock.close()


def insert_limit(schema: str, threads: int, rows: int) -> float:
    """Single-row INSERT transactions/s from `threads` connections (autocommit, prepared)."""
    from bench.write_path import events_like_table, insert_statement

    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        table = events_like_table(conn, schema, f"insert_limit_{uuid.uuid4().hex[:8]}")
    statement = insert_statement(table)
    state = b'{"cause": "bench"}' * 16
    connections = [psycopg.connect(PG_CONNINFO, autocommit=True) for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def run(conn: psycopg.Connection[Any]) -> None:
        barrier.wait()
        for _ in range(rows):
            conn.execute(statement, (uuid.uuid4(), 1, "bench:Event", state), prepare=True)

    workers = [threading.Thread(target=run, args=(c,)) for c in connections]
    try:
        for worker in workers:
            worker.start()
        barrier.wait()
        start = time.perf_counter()
        for worker in workers:
            worker.join()
        seconds = time.perf_counter() - start
    finally:
        for conn in connections:
            conn.close()
    return threads * rows / seconds


# --- the suite's entry -----------------------------------------------------------------------


def metrics(scale: Scale) -> list[Metric]:
    """commands.single, commands.concurrent (each beside the stock Application) and
    commands.insert_limit; see the module's docstring."""
    quiet_logging()
    # As `partnerfleet serve` runs its commands: every thread on one CPU (PROCESS_CPU,
    # infra/cli/processes.py `one_cpu`); the stock app's threads too, in this process.
    try:
        cpu = one_cpu(os.environ.get("PROCESS_CPU", "auto").strip().lower())
    except ValueError as error:  # (the setting's one line, as `serve` says it)
        raise SystemExit(f"bench.commands: {error}") from None
    reps = scale.repetitions
    single_rounds = scale.of(SINGLE_ROUNDS, 5)
    concurrent_rounds = scale.of(CONCURRENT_ROUNDS, 2)
    # Repetition i of either side runs batch i on its own copy of the seeded store.
    single = [Batch(f"s{i}", 1, single_rounds) for i in range(reps)]
    concurrent = [Batch(f"c{i}", THREADS, concurrent_rounds) for i in range(reps)]
    free = [Batch(f"f{i}", THREADS, concurrent_rounds) for i in range(reps)]
    # Ours again with the threads left where the kernel puts them: what the CPU gives.
    spread = [Batch(f"u{i}", THREADS, concurrent_rounds) for i in range(reps)]
    rows = scale.of(INSERT_ROWS, 100)
    found: list[Metric] = []
    limits: list[float] = []
    spread_rates: list[float] = []
    with sides(single + concurrent + free + spread) as both, fresh_schema() as limit_schema:
        for name, batches, threads in (
            ("commands.single", single, 1),
            ("commands.concurrent", concurrent, THREADS),
        ):
            say(f"{name}: {batches[0].rounds * len(KINDS) * threads} commands per repetition")
            # Ours' commits alone (not the spread runs', also the fleet's: session 24's attack).
            commits: dict[str, float] = {}
            runs: list[Callable[[int], float]] = [
                _counting(both.fleet, lambda i, b=batches: both.ours(b[i]), commits),  # type: ignore[misc]
                lambda i, b=batches: both.theirs(b[i]),  # type: ignore[misc]
            ]
            if threads == THREADS:
                # The ceiling whose share is a goal runs in the same rotation, next to ours
                # (O L B, B L O, ...), so drift on the machine touches the share's two sides
                # alike.
                # The ceiling's threads where the kernel puts them: on one CPU with the
                # server it runs slower (3,128-3,982 against 3,144-4,370 tx/s, alternating;
                # session 24), and the share is of the higher ceiling.
                say(f"commands.insert_limit: {THREADS} x {rows} single-row INSERT transactions")
                runs.insert(1, lambda _: _spread(insert_limit, limit_schema, THREADS, rows))
                runs.append(lambda i: _spread(both.ours, spread[i], "spread"))
            samples = interleave(runs, reps)
            ours, theirs = samples[0], samples[2 if threads == THREADS else 1]
            if threads == THREADS:
                limits, spread_rates = samples[1], samples[3]
            found.append(
                from_samples(
                    name,
                    "commands/s",
                    ours,
                    baseline=("stock eventsourcing Application, same command shapes", theirs),
                    detail={
                        "mix": list(KINDS),
                        "threads": threads,
                        "process_cpu": cpu,
                        "rounds_per_thread": batches[0].rounds,
                        "group_commits": _per_group(commits),
                        **both.cpu_medians(),
                    },
                )
            )
        # Last: the fleet's cache is past its store from here on (`commit_free`).
        say(f"commands.concurrent: {len(free)} batches with the commit free (the bound)")
        with commit_free(both.fleet):
            free_rates = [both.ours(batch) for batch in free]
        free_cpu = both.cpu_medians().get("client_cpu_ms_per_command_ours")
        by_name = {metric.name: metric for metric in found}
        by_name["commands.concurrent"].detail |= {
            "commit_free_commands_per_s": round(statistics.median(free_rates)),
            "commit_free_client_cpu_ms_per_command": free_cpu,
        }
    found.append(
        from_samples(
            "commands.insert_limit",
            "transactions/s",
            limits,
            detail={
                "threads": THREADS,
                "rows_per_thread": rows,
                "measured": "interleaved with commands.concurrent's repetitions",
            },
        )
    )
    limit = statistics.median(limits)
    concurrent_metric = by_name["commands.concurrent"]
    concurrent_metric.detail |= {
        "share_of_insert_limit": round(concurrent_metric.value / limit, 3),
        # Each repetition's rate over the limit measured next to it (the spread of the share).
        "share_by_repetition": [
            round(rate / ceiling, 3)
            for rate, ceiling in zip(concurrent_metric.samples, limits, strict=True)
        ],
        "commit_free_share_of_insert_limit": round(
            concurrent_metric.detail["commit_free_commands_per_s"] / limit, 3
        ),
        "spread_commands_per_s": round(statistics.median(spread_rates)),
        "spread_share_of_insert_limit": round(statistics.median(spread_rates) / limit, 3),
    }
    return found


def _spread(run: Callable[..., float], *args: Any) -> float:
    """`run(*args)` with the threads it starts where the kernel puts them (this thread's
    CPU affinity widened to every CPU allowed, then put back)."""
    get_affinity = getattr(os, "sched_getaffinity", None)
    set_affinity = getattr(os, "sched_setaffinity", None)
    if get_affinity is None or set_affinity is None:
        return run(*args)
    pinned = get_affinity(0)
    set_affinity(0, ALLOWED_CPUS)
    try:
        return run(*args)
    finally:
        set_affinity(0, pinned)


def _counting(
    fleet: PartnerFleet, run: Callable[[int], float], into: dict[str, float]
) -> Callable[[int], float]:
    """`run`, adding the groups and units the fleet's recorder commits meanwhile to `into`."""

    def counted(index: int) -> float:
        before = _group_commits(fleet)
        try:
            return run(index)
        finally:
            for key, value in _group_commits(fleet, since=before).items():
                if key != "units_per_group":
                    into[key] = into.get(key, 0) + value

    return counted


def _per_group(commits: dict[str, float]) -> dict[str, float]:
    """`_group_commits`' form of the sums `_counting` made ({} without a group committer)."""
    if not commits:
        return {}
    groups, units = commits["groups"], commits["units"]
    return {"groups": groups, "units": units, "units_per_group": round(units / max(groups, 1), 2)}


def _group_commits(fleet: PartnerFleet, since: dict[str, float] | None = None) -> dict[str, float]:
    """Groups committed by the fleet's recorder and their units (since `since`, if given)."""
    committer = getattr(fleet.recorder, "committer", None)
    if committer is None:
        return {}
    groups = committer.groups - (since or {}).get("groups", 0)
    units = committer.units - (since or {}).get("units", 0)
    return {"groups": groups, "units": units, "units_per_group": round(units / max(groups, 1), 2)}


def main(argv: Sequence[str] | None = None) -> None:
    """Print the metrics of one run."""
    parser = argparse.ArgumentParser(prog="python -m bench.commands", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the size")
    args = parser.parse_args(argv)
    scale = Scale(0.1 if args.quick else 1.0)
    for metric in metrics(scale):
        ratio = "" if metric.ratio is None else f"  x{metric.ratio:.2f} of baseline"
        spread = f"[{metric.min:,.0f}-{metric.max:,.0f}]"
        print(f"{metric.name}: {metric.value:,.0f} {metric.unit} {spread}{ratio}")
        if metric.baseline is not None:
            print(f"  baseline {metric.baseline.name}: {metric.baseline.value:,.0f}")
        if metric.detail:
            print(f"  {metric.detail}")
    print(f"median of {scale.repetitions} repetitions")


if __name__ == "__main__":
    main()
