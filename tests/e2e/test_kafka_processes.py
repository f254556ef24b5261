"""The Kafka processes as an operator runs them: several supervised parts, one stop."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer

from domain import Device
from handlers import PartnerFleet
from infra.bootstrap import build_fleet
from infra.demo import RESELLER
from infra.kafka.feeds import FEEDS, feed_for
from infra.kafka.relay import domain_topics, ensure_topics
from infra.settings import DEFAULT_SQLITE_PATH, Settings
from tests.e2e.test_serve import CLI, run_cli, unconfigured
from tests.kafka import Broker, read_topics
from tests.scenarios import report
from tests.unit.test_processes import alive, children, wait_until


def test_relay_shards_publish_the_store_and_stop_together(tmp_path: Path, broker: Broker) -> None:
    """Both shards reach lag 0, the topics hold every event once, SIGTERM stops both."""
    prefix = f"pfe2e{uuid.uuid4().hex[:8]}"
    env = {
        **unconfigured(),
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "KAFKA_TOPIC_PREFIX": prefix,
    }
    assert run_cli(tmp_path, env, "demo", "--customers", "2").returncode == 0
    relay = subprocess.Popen(
        [str(CLI), "relay", "--shards", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lag: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            lag = shard_lags(run_cli(tmp_path, env, "relay-lag").stdout, prefix)
            if lag == ["1/2: 0", "2/2: 0"]:
                break
            time.sleep(0.5)
        assert lag == ["1/2: 0", "2/2: 0"], lag
    finally:
        relay.send_signal(signal.SIGTERM)
        _, errors = relay.communicate(timeout=30)
    assert relay.returncode == 0, errors
    fleet = build_fleet(Settings(sqlite_path=tmp_path / DEFAULT_SQLITE_PATH))
    stored = fleet.recorder.max_notification_id() or 0
    fleet.close()
    assert stored > 40
    records = read_topics(broker.bootstrap, domain_topics(prefix), stored)
    assert len(records) == stored
    assert len({(r.topic, r.partition, r.offset) for r in records}) == stored


def shard_lags(relay_lag: str, prefix: str) -> list[str]:
    """`I/N: LAG` of each shard publishing under `prefix`, from `relay-lag`'s lines
    `relay@CLUSTER/PREFIX#TOPICS:I/N: LAG` (the cluster and topic ids are the broker's own)."""
    shard = re.compile(rf"/{re.escape(prefix)}(?:#[^:]*)?:(.*)$")
    return [m.group(1) for line in relay_lag.splitlines() if (m := shard.search(line))]


def test_consumer_workers_share_the_feed_and_stop_together(tmp_path: Path, broker: Broker) -> None:
    """`consume e2open --workers 2`: every report lands once; SIGTERM stops both workers."""
    env = {**unconfigured(), "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}
    assert run_cli(tmp_path, env, "demo", "--customers", "2").returncode == 0
    feed = FEEDS["e2open"]
    ensure_topics(broker.bootstrap, [feed.topic, feed.dead_letters])
    serials = [f"E2E{uuid.uuid4().hex[:8].upper()}{i:03d}" for i in range(60)]
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    for serial in serials:
        value = json.dumps(report(serial, location_id=RESELLER)).encode()
        producer.send(feed.topic, key=serial.encode(), value=value)
    producer.flush(timeout=30)
    producer.close()
    consumers = subprocess.Popen(
        [str(CLI), "consume", "e2open", "--workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    fleet = build_fleet(Settings(sqlite_path=tmp_path / DEFAULT_SQLITE_PATH))
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and landed(fleet, serials) < len(serials):
            time.sleep(0.5)
        assert landed(fleet, serials) == len(serials)
    finally:
        consumers.send_signal(signal.SIGTERM)
        _, errors = consumers.communicate(timeout=30)
        fleet.close()
    assert consumers.returncode == 0, errors


def landed(fleet: PartnerFleet, serials: list[str]) -> int:
    """How many of these PCs landed in a holding tenant (once each: version 1)."""
    found = [Device.id_for(s) for s in serials if Device.id_for(s) in fleet.repository]
    assert all(fleet.repository.get(i).version == 1 for i in found)
    return len(found)


@pytest.mark.parametrize(
    "command", [["relay", "--shards", "2"], ["consume", "e2open", "--workers", "2"]], ids=str
)
def test_the_parts_of_a_supervised_command_end_when_it_is_killed(
    tmp_path: Path, broker: Broker, command: list[str]
) -> None:
    """Kind 9: SIGKILL of the parent (no chance to stop its parts): the parts end too."""
    env = {**unconfigured(), "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}
    assert run_cli(tmp_path, env, "demo", "--customers", "2").returncode == 0
    parent = subprocess.Popen(
        [str(CLI), *command],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert wait_until(lambda: len(children(parent.pid)) == 2)
    parts = children(parent.pid)
    time.sleep(3)  # let them get going: the kernel's signal is set early in each part

    parent.kill()
    parent.wait()

    assert wait_until(lambda: not any(alive(p) for p in parts), timeout=12)


def test_the_inbound_feed_and_its_dead_letters_live_under_the_topic_prefix(
    tmp_path: Path, broker: Broker
) -> None:
    """Kind 9: with KAFKA_TOPIC_PREFIX=acme…, `consume e2open` reads acme….e2open.reports.v1
    and dead-letters to acme….e2open.reports.dlq.v1, as the relay's topics are prefixed."""
    prefix = f"pfin{uuid.uuid4().hex[:8]}"
    env = {
        **unconfigured(),
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "KAFKA_TOPIC_PREFIX": prefix,
    }
    assert run_cli(tmp_path, env, "demo", "--customers", "2").returncode == 0
    feed = feed_for("e2open", prefix)
    assert (feed.topic, feed.dead_letters) == (
        f"{prefix}.e2open.reports.v1",
        f"{prefix}.e2open.reports.dlq.v1",
    )
    ensure_topics(broker.bootstrap, [feed.topic, feed.dead_letters])
    serials = [f"PFX{uuid.uuid4().hex[:8].upper()}{i}" for i in range(3)]
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    for serial in serials:
        producer.send(feed.topic, json.dumps(report(serial, location_id=RESELLER)).encode())
    producer.send(feed.topic, b"{not json")
    producer.flush(timeout=30)
    producer.close()
    consumer = subprocess.Popen(
        [str(CLI), "consume", "e2open"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    fleet = build_fleet(Settings(sqlite_path=tmp_path / DEFAULT_SQLITE_PATH))
    try:
        assert wait_until(lambda: landed(fleet, serials) == len(serials), timeout=90)
        [dead] = read_topics(broker.bootstrap, [feed.dead_letters], 1)
    finally:
        consumer.send_signal(signal.SIGTERM)
        consumer.communicate(timeout=30)
        fleet.close()
    assert dead.value == b"{not json"
