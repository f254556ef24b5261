"""Attack on session 22's spare copies (`AggregateCache.give_back`) on PostgreSQL.

Eight threads of one process relink their customers' devices between two partners (each
command reads both partners and gives its copies back as spares) while another process
adds users to those partners (the spares go stale in the first process: its saves
conflict on `read_versions` and retry). Every spare handed out must be the entry's state
at its version, never a copy another command changed or kept; every command accepted;
and what the cache holds afterwards is what the store replays.
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from structlog.testing import capture_logs

from domain import CustomerGroup, Device
from domain.partner import PartnerTenant
from handlers.aggregate_cache import AggregateCache
from handlers.devices import PartnerChoice
from handlers.private_copy import private_copy
from infra.bootstrap import build_fleet
from infra.settings import Settings
from tests.actors import customer
from tests.cache_probes import replayed, state_of
from tests.scenarios import OPS, partner, servers

THREADS = 8
ROUNDS = 12


class Watched(AggregateCache):
    """The fleet's cache, checking every spare it hands out against its entry."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.spares_out = 0
        self.wrong: list[str] = []

    def _take(self, aggregate_id: UUID, *, lend: bool) -> Any | None:
        # (`get` and `borrow` both: commands borrow since session 23)
        with self._lock:
            spares = list(self._spares.get(aggregate_id.int) or ())
            entry = self._entries.get(aggregate_id.int)
        got = super()._take(aggregate_id, lend=lend)
        if got is not None and entry is not None and any(got is s for s in spares):
            self.spares_out += 1
            version, held = entry
            if got.version != version or state_of(got) != state_of(private_copy(held)):
                self.wrong.append(f"{type(got).__name__} {aggregate_id} v{got.version}")
        return got


def test_s22_attack2_eight_threads_relinking_on_spares_of_two_partners(
    postgres_settings: Settings,
) -> None:
    first, second = build_fleet(postgres_settings), build_fleet(postgres_settings)
    try:
        assert first.caches_aggregates
        watched = Watched(first.aggregate_cache.maxsize)
        first.aggregate_cache = watched
        partner(first, "LOC-1")
        partner(first, "LOC-2")
        admins = [customer(f"C{n}", f"admin@c{n}.example") for n in range(THREADS)]
        for n, admin in enumerate(admins):
            first.register_devices(
                admin, f"C{n}", servers(f"S{n}a", f"S{n}b"), PartnerChoice(location_id="LOC-1")
            )
        failed: list[BaseException] = []
        start = threading.Barrier(THREADS + 1)

        def relink(n: int) -> None:
            start.wait()
            try:
                for r in range(ROUNDS):
                    location = "LOC-2" if r % 2 == 0 else "LOC-1"
                    first.link_devices(
                        admins[n],
                        f"C{n}",
                        [f"S{n}a", f"S{n}b"],
                        PartnerChoice(location_id=location),
                    )
            except BaseException as error:  # (reported below)
                failed.append(error)

        def add_users() -> None:
            start.wait()
            for r in range(ROUNDS):
                second.register_partner_user(OPS, "LOC-1" if r % 2 else "LOC-2", f"u{r}@x")

        threads = [threading.Thread(target=relink, args=(n,)) for n in range(THREADS)]
        threads.append(threading.Thread(target=add_users))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failed == []
        assert watched.spares_out > 0  # the partners were handed out as spares
        assert watched.wrong == []
        ids = [PartnerTenant.id_for("LOC-1"), PartnerTenant.id_for("LOC-2")]
        for n in range(THREADS):
            ids += [Device.id_for(f"S{n}a"), Device.id_for(f"S{n}b")]
            ids += [CustomerGroup.id_for(loc, f"C{n}") for loc in ("LOC-1", "LOC-2")]
        for aggregate_id in ids:
            stored = replayed(first, aggregate_id)
            cached = watched.get(aggregate_id)
            if cached is not None and cached.version == stored.version:
                assert state_of(cached) == state_of(stored), aggregate_id
        for n in range(THREADS):  # relinked an even number of times: back with LOC-1
            assert replayed(first, Device.id_for(f"S{n}a")).links == {"reseller": "LOC-1"}
    finally:
        first.close()
        second.close()


def test_s22_attack2_a_refusal_decided_on_a_stale_spare_is_decided_again(
    postgres_settings: Settings,
) -> None:
    """The partner is cached in the first process (a spare, or the entry itself given back:
    session 23) when the second accredits it: the first process's link as service partner,
    refused on the cached partner ("not accredited", R-LNK-4),
    is decided again on the store's partner and accepted; a link that only read it
    conflicts on `read_versions` and is retried. Neither outcome rests on the spare."""
    first, second = build_fleet(postgres_settings), build_fleet(postgres_settings)
    try:
        partner_id = PartnerTenant.id_for("LOC-1")
        partner(first, "LOC-1")
        admin = customer("C1")
        first.register_devices(admin, "C1", servers("S1", "S2", "S3"))
        first.link_devices(admin, "C1", ["S1"], PartnerChoice(location_id="LOC-1"))
        # The partner given back: a spare copy, or (session 23) the entry itself, lent
        # to the link and back, no longer lent; either is what the next link decides on.
        cache = first.aggregate_cache
        assert cache._spares.get(partner_id.int) or (
            cache.version_of(partner_id) is not None and partner_id.int not in cache._lent
        )
        second.accredit_service_partner(OPS, "LOC-1", "CSDP-1")
        choice = PartnerChoice(location_id="LOC-1", role="service_partner")
        with capture_logs() as logs:
            first.link_devices(admin, "C1", ["S2"], choice)
        assert [e["event"] for e in logs if e["event"] != "command"] == ["command_decided_again"]
        assert replayed(first, Device.id_for("S2")).links == {"service_partner": "LOC-1"}
        first.link_devices(admin, "C1", ["S3"], PartnerChoice(location_id="LOC-1"))
        second.register_partner_user(OPS, "LOC-1", "carla@LOC-1")  # the partner moves on
        with capture_logs() as logs:
            first.link_devices(
                admin, "C1", ["S1"], choice
            )  # on the cached partner of the version before
        assert [e["event"] for e in logs if e["event"] != "command"] == ["command_conflict"]
        group = replayed(first, CustomerGroup.id_for("LOC-1", "C1"))
        assert sorted(group.devices) == ["S1", "S2", "S3"]
        cached = first.aggregate_cache.get(partner_id)
        assert cached is not None
        assert state_of(cached) == state_of(replayed(first, partner_id))
    finally:
        first.close()
        second.close()
