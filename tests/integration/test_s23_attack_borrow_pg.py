"""Attack on session 23's borrowed aggregates on PostgreSQL: two fleets (as two processes,
each its own cache) change the same two devices from eight threads, read them
(`current`), and ask for them in results; the devices each fleet lends its commands are
changed behind its back by the other. No command may fail other than by a refusal of the
domain, nothing may stay lent, and what each cache holds afterwards is what the store
replays."""

from __future__ import annotations

import random
import threading

from domain import Device
from domain.base import DomainError
from handlers.base import ConflictError
from handlers.devices import PartnerChoice
from infra.bootstrap import build_fleet
from infra.settings import Settings
from tests.cache_probes import replayed, state_of
from tests.scenarios import CUSTOMER, partner, servers

THREADS = 8
ROUNDS = 15
WAIT = 120


def test_s23_attack_two_processes_eight_threads_borrowing_two_devices(
    postgres_settings: Settings,
) -> None:
    first, second = build_fleet(postgres_settings), build_fleet(postgres_settings)
    try:
        assert first.caches_aggregates
        assert second.caches_aggregates
        partner(first, "LOC-1")
        first.register_devices(
            CUSTOMER, "C1", servers("S1", "S2"), PartnerChoice(location_id="LOC-1")
        )
        first.grant_consent(CUSTOMER, "C1", ["S1", "S2"])  # adopted: lendable
        ids = [Device.id_for("S1"), Device.id_for("S2")]
        barrier = threading.Barrier(THREADS)
        errors: list[BaseException] = []
        accepted = [0]
        lock = threading.Lock()

        def client(n: int) -> None:
            fleet = second if n % 4 == 3 else first  # two threads of the "other process"
            rng = random.Random(n)
            barrier.wait(WAIT)
            for _ in range(ROUNDS):
                serial = rng.choice(["S1", "S2"])
                step = rng.randrange(3)
                try:
                    if step == 0:
                        fleet.grant_consent(CUSTOMER, "C1", [serial])
                    elif step == 1:
                        fleet.withdraw_consent(CUSTOMER, "C1", [serial])
                    else:
                        found = fleet.current(Device, Device.id_for(serial))
                        if found is None or found.pending_events or found.customer_id != "C1":
                            errors.append(AssertionError(f"read {found!r}"))
                        continue
                    with lock:
                        accepted[0] += 1
                except (DomainError, ConflictError):
                    pass  # granted twice, withdrawn twice; lost on every attempt
                except BaseException as error:  # (reported below)
                    errors.append(error)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        assert accepted[0] > 0
        for fleet in (first, second):
            cache = fleet.aggregate_cache
            assert not cache._lent
            for device_id in ids:
                stored = replayed(fleet, device_id)
                cached = cache._entries.get(device_id.int)
                if cached is not None and cached[0] == stored.version:
                    assert state_of(cached[1]) == state_of(stored)
                    assert cached[1].version == cached[0]
        # Each fleet's next command decides on the stored state, and leaves it cached.
        for fleet in (first, second):
            for device_id, serial in zip(ids, ["S1", "S2"], strict=True):
                state = replayed(fleet, device_id)
                if state.consent is None:
                    fleet.grant_consent(CUSTOMER, "C1", [serial])
                else:
                    fleet.withdraw_consent(CUSTOMER, "C1", [serial])
                got = fleet.aggregate_cache.get(device_id)
                assert got is not None
                assert state_of(got) == state_of(replayed(fleet, device_id))
    finally:
        first.close()
        second.close()
