"""Session 17, attack 2: two threads commanding the same aggregate through the cache,
adopted entries and group commit on PostgreSQL lose no update and decide on no stale
state; the cache then answers as the store (docs/decisions.md, "Issue 11, attack on the
command path changes")."""

from __future__ import annotations

import itertools
import pickle
import threading
from typing import Any

import pytest

from domain import Device
from domain.consent import ConsentError
from handlers.base import ConflictError
from handlers.devices import PartnerChoice
from infra.bootstrap import build_fleet
from infra.settings import Settings
from tests.scenarios import CUSTOMER, partner, servers

pytestmark = pytest.mark.postgres

ROUNDS = 40


def state(aggregate: Any) -> bytes:
    return pickle.dumps({k: v for k, v in vars(aggregate).items() if k != "_pending_events"})


def test_session17_two_threads_toggling_one_device_lose_nothing_and_decide_on_current_state(
    postgres_settings: Settings,
) -> None:
    """One thread grants consent on S1 and S2, the other withdraws it, 40 times each (each
    refused when the device is already so): every accepted command is one event per
    device, grants and withdrawals alternate in the store (a decision on a stale cached
    copy would give two in a row), and the cache then holds what the store holds."""
    fleet = build_fleet(postgres_settings)
    try:
        assert fleet.caches_aggregates
        partner(fleet, "LOC-1")
        fleet.register_devices(
            CUSTOMER, "C1", servers("S1", "S2"), PartnerChoice(location_id="LOC-1")
        )
        accepted = {"grant": 0, "withdraw": 0}
        start = threading.Barrier(2)

        def run(kind: str) -> None:
            start.wait()
            for _ in range(ROUNDS):
                try:
                    getattr(fleet, f"{kind}_consent")(CUSTOMER, "C1", ["S1", "S2"])
                except (ConsentError, ConflictError):
                    continue
                accepted[kind] += 1

        threads = [threading.Thread(target=run, args=(k,)) for k in accepted]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)

        assert sum(accepted.values()) > 2, "the threads raced at least a little"
        for serial in ("S1", "S2"):
            device_id = Device.id_for(serial)
            kinds = [
                type(e).__name__
                for e in fleet.events.get(device_id)
                if "Consent" in type(e).__name__
            ]
            assert len(kinds) == sum(accepted.values()), (serial, kinds, accepted)
            assert all(a != b for a, b in itertools.pairwise(kinds)), kinds
            stored = fleet.repository.get(device_id)
            version = fleet.aggregate_cache.version_of(device_id)
            cached = fleet.aggregate_cache.get(device_id)
            if cached is not None:
                assert version == cached.version == stored.version
                assert state(cached) == state(stored)
    finally:
        fleet.close()
