"""Faults of the world for tests: PostgreSQL ends the service's connections; deadlines."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain.customer_group import CustomerGroup
from handlers import PartnerFleet
from infra.storage.pg_conn import application_name
from tests.conftest import POSTGRES_DSN


def terminate_backends(schema: str, role: str | None = None) -> int:
    """pg_terminate_backend the service's connections on `schema` of `role` (every role if
    None), found by their application_name; returns how many were ended.

    Every termination in the tests passes a timeout (ms): without one, the signal is sent
    and the call returns before the backend has ended, so a pool's liveness check could
    still pass the connection in between (stop 20's CI failure).
    """
    pattern = application_name(role, schema) if role else f"partnerfleet-% {schema}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
            " WHERE application_name LIKE %s AND pid <> pg_backend_pid()",
            (pattern,),
        ).fetchall()
    return len(rows)


def eventually(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Wait for `condition` with a deadline (the deadline bounds the wait; nothing is timed)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def store_customer_group_named(fleet: PartnerFleet, name: str) -> int:
    """Write a `CustomerGroup.Created` straight into the event store, named `name` (which a
    command may refuse, e.g. with a NUL), copied from the store's first one; returns its
    notification id."""
    topic = get_topic(CustomerGroup.Created)
    first = next(n for n in fleet.recorder.select_notifications(1, 10_000) if n.topic == topic)
    state = json.loads(first.state)
    state["customer_name"] = name
    event = StoredEvent(uuid.uuid4(), 1, topic, json.dumps(state).encode())
    ids = fleet.recorder.insert_events([event])
    assert ids
    return ids[-1]
