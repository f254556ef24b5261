"""Issue 11, attack: the new write path (group commit, binary COPY, aggregate cache) probed
as a hostile tester would, on PostgreSQL and SQLite. Each test names the rule it proves;
a finding that breaks today is marked xfail(strict=True) with what should have happened."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking
from psycopg import sql

from domain import CustomerGroup, Device, DomainError
from domain.consent import ConsentError
from domain.partner import PartnerTenant
from handlers import PartnerFleet
from handlers.devices import PartnerChoice
from infra.settings import Settings
from infra.storage.group_commit import Unit
from infra.storage.pg_copy import COPY_MIN_ROWS
from tests.actors import partner_user
from tests.conftest import POSTGRES_DSN
from tests.integration.streams import lose_first_reply, recorder_of
from tests.scenarios import CUSTOMER, OPS, SCENARIOS, partner, servers

FleetFactory = Callable[[], PartnerFleet]


def names(fleet: PartnerFleet, aggregate_id: uuid.UUID) -> list[str]:
    return [type(e).__name__ for e in fleet.events.get(aggregate_id)]


def event(aggregate_id: uuid.UUID, version: int = 1, topic: str = "tests:Event") -> StoredEvent:
    return StoredEvent(aggregate_id, version, topic, b"{}")


def stored_count(fleet: PartnerFleet, aggregate_id: uuid.UUID) -> int:
    return len(list(fleet.recorder.select_events(aggregate_id)))


# --- two processes on one store: A decides on its cache, B changes the aggregate --------


def test_issue_11_attack_consent_withdrawn_elsewhere_refuses_a_cached_collect(
    fleet_factory: FleetFactory,
) -> None:
    """R-CON-2 across processes: A's cached S1 has consent, B withdraws it, A's collect
    must be refused and record nothing (both stores)."""
    a, b = fleet_factory(), fleet_factory()
    partner(a, "LOC-1")
    a.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    a.grant_consent(CUSTOMER, "C1", ["S1"])
    assert Device.id_for("S1") in a.aggregate_cache
    b.withdraw_consent(CUSTOMER, "C1", ["S1"])
    with pytest.raises(ConsentError):
        a.collect_configuration(OPS, "S1", {"bios": "1.2"})
    assert names(a, Device.id_for("S1"))[-1] == "ConsentWithdrawn"
    assert not a.may_read_configuration("S1", "LOC-1")


def test_issue_11_attack_group_deleted_elsewhere_is_nobodys_favourite(
    fleet_factory: FleetFactory,
) -> None:
    """R-FAV-2 across processes: A has the group and Anna's passport cached; B deletes the
    group; A's add_favourite must be refused (the deleted group read, not written)."""
    a, b = fleet_factory(), fleet_factory()
    partner(a, "LOC-1")
    anna = partner_user(a, "LOC-1", "anna@LOC-1")
    a.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    group_id = CustomerGroup.id_for("LOC-1", "C1")
    a.add_favourite(anna, group_id)
    a.remove_favourite(anna, group_id)  # A caches the group and the passport
    assert group_id in a.aggregate_cache
    b.unlink_devices(CUSTOMER, "C1", ["S1"])
    b.delete_customer_group(anna, group_id)
    before = stored_count(a, group_id)
    with pytest.raises(DomainError, match="deleted"):
        a.add_favourite(anna, group_id)
    assert stored_count(a, group_id) == before
    assert a.passport("anna@LOC-1").favourites == []


def test_issue_11_attack_favourite_removed_elsewhere_is_removed_once(
    fleet_factory: FleetFactory,
) -> None:
    """R-FAV-2 across processes: B removes Anna's favourite; A (cached: favourite set)
    removes it again: refused or a no-op, never a second FavouriteRemoved on stale state."""
    a, b = fleet_factory(), fleet_factory()
    partner(a, "LOC-1")
    anna = partner_user(a, "LOC-1", "anna@LOC-1")
    a.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    group_id = CustomerGroup.id_for("LOC-1", "C1")
    a.add_favourite(anna, group_id)
    b.remove_favourite(anna, group_id)
    with contextlib.suppress(DomainError):
        a.remove_favourite(anna, group_id)
    passport_id = a.passport("anna@LOC-1").id
    removed = [n for n in names(a, passport_id) if "Removed" in n or "Unmarked" in n]
    assert len(removed) <= 1, names(a, passport_id)


def test_issue_11_attack_authenticate_sees_a_user_added_elsewhere(
    fleet_factory: FleetFactory,
) -> None:
    """authenticate uses current(): a partner cached in A, a user registered in B, A's
    next `current` must show the user (a read that must see every change at once)."""
    a, b = fleet_factory(), fleet_factory()
    partner(a, "LOC-1")
    tenant_id = PartnerTenant.id_for("LOC-1")
    before = a.current(PartnerTenant, tenant_id)
    assert before is not None
    b.register_partner_user(OPS, "LOC-1", "carl@LOC-1")
    after = a.current(PartnerTenant, tenant_id)
    assert after is not None
    assert after.version == b.current(PartnerTenant, tenant_id).version  # type: ignore[union-attr]
    assert after.version > before.version


# --- the cache: refusals, exceptions midway, callers' mutations, its bound ------------


def test_issue_11_attack_a_caller_mutating_current_does_not_leak(
    fleet_factory: FleetFactory,
) -> None:
    """The cache hands out private copies: what an HTTP handler does to the aggregate
    `current()` returned never reaches the next command or read."""
    fleet = fleet_factory()
    partner(fleet, "LOC-1")
    tenant_id = PartnerTenant.id_for("LOC-1")
    got = fleet.current(PartnerTenant, tenant_id)
    assert got is not None
    state = dict(vars(got))
    for _key, value in vars(got).items():
        if isinstance(value, list):
            value.append("LEAKED")
        elif isinstance(value, dict):
            value["LEAKED"] = "LEAKED"
        elif isinstance(value, set):
            value.add("LEAKED")
    again = fleet.current(PartnerTenant, tenant_id)
    assert again is not None
    assert "LEAKED" not in repr(vars(again)), state


def test_issue_11_attack_a_non_domain_exception_midway_leaves_the_cache_clean(
    fleet_factory: FleetFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command that raises a non-domain error after changing a cached copy records
    nothing, and the next command decides on the stored state, not the half-changed copy."""
    fleet = fleet_factory()
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    real = Device.withdraw_consent

    def half(self: Any, *args: Any, **kwargs: Any) -> Any:
        real(self, *args, **kwargs)
        raise RuntimeError("midway")

    monkeypatch.setattr(Device, "withdraw_consent", half)
    with pytest.raises(RuntimeError):
        fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    monkeypatch.undo()
    assert names(fleet, Device.id_for("S1"))[-1] == "ConsentGranted"
    fleet.collect_configuration(OPS, "S1", {"bios": "1.2"})  # consent still stands
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    assert names(fleet, Device.id_for("S1"))[-1] == "ConsentWithdrawn"


def test_issue_11_attack_the_cache_stays_within_its_size(
    postgres_settings: Settings,
) -> None:
    """AGGREGATE_CACHE_SIZE bounds the cache whatever the commands touch."""
    fleet = PartnerFleet(
        env={**_env(postgres_settings), "FLEET_AGGREGATE_CACHE_SIZE": "3"},
        cpin_key=postgres_settings.cpin_secret(),
    )
    try:
        partner(fleet, "LOC-1")
        fleet.register_devices(
            CUSTOMER,
            "C1",
            servers(*[f"S{i}" for i in range(10)]),
            PartnerChoice(location_id="LOC-1"),
        )
        for i in range(10):
            fleet.grant_consent(CUSTOMER, "C1", [f"S{i}"])
            fleet.current(Device, Device.id_for(f"S{i}"))
            assert len(fleet.aggregate_cache) <= 3
    finally:
        fleet.close()


def _env(settings: Settings) -> dict[str, str]:
    from infra.bootstrap import storage_ready

    with storage_ready(settings.storage):
        return dict(settings.storage.env)


# --- group commit on PostgreSQL: refused data, read versions, tracking twice ---------


@pytest.mark.postgres
@pytest.mark.parametrize("where", ["topic", "state"])
def test_issue_11_attack_a_unit_postgres_refuses_leaves_its_neighbours_committed(
    fleets: FleetFactory, where: str
) -> None:
    """Bad input never stops the input behind it: a unit with a NUL byte in its topic
    (text refuses NUL) fails alone, its group's neighbours commit."""
    recorder = recorder_of(fleets())
    good, other = uuid.uuid4(), uuid.uuid4()
    bad_event = (
        event(uuid.uuid4(), topic="tests:Bad\x00Event")
        if where == "topic"
        else StoredEvent(uuid.uuid4(), 1, "tests:Event", b"\x00\xff")
    )
    units = [Unit([event(good)]), Unit([bad_event]), Unit([event(other)], read_versions={})]
    recorder.committer._lead(units)
    assert units[0].error is None
    assert units[0].notification_ids
    assert units[2].error is None
    assert units[2].notification_ids
    if where == "topic":
        assert units[1].error is not None
    assert len(recorder.select_events(good)) == 1
    assert len(recorder.select_events(other)) == 1


@pytest.mark.postgres
def test_issue_11_attack_a_group_read_against_a_neighbours_write_is_refused(
    fleets: FleetFactory,
) -> None:
    """read_versions within one group: a unit that read X at 1 while a neighbour writes
    X at 2 is refused (before or after it in the group); the writer commits."""
    recorder = recorder_of(fleets())
    x, y, z = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    recorder.insert_events([event(x)])
    units = [
        Unit([event(y)], read_versions={x: 1}),
        Unit([event(x, 2)]),
        Unit([event(z)], read_versions={x: 1}),
    ]
    recorder.committer._lead(units)
    assert isinstance(units[0].error, IntegrityError)
    assert units[1].error is None
    assert isinstance(units[2].error, IntegrityError)
    assert recorder.select_events(y) == []
    assert recorder.select_events(z) == []


@pytest.mark.postgres
def test_issue_11_attack_the_same_policy_position_twice_in_one_group_records_once(
    fleets: FleetFactory,
) -> None:
    """Exactly once: two runners of one policy save the same position in one group;
    one is recorded with its events, the other refused with nothing recorded."""
    recorder = recorder_of(fleets())
    x, y = uuid.uuid4(), uuid.uuid4()
    tracking = Tracking("alerts", 5)
    units = [Unit([event(x)], tracking), Unit([event(y)], Tracking("alerts", 5))]
    recorder.committer._lead(units)
    outcomes = [u.error is None for u in units]
    assert outcomes.count(True) == 1
    assert len(recorder.select_events(x)) + len(recorder.select_events(y)) == 1
    assert recorder.max_tracking_id("alerts") == 5


@pytest.mark.postgres
def test_issue_11_attack_a_later_position_behind_an_earlier_one_in_a_group(
    fleets: FleetFactory,
) -> None:
    """A policy's positions 6 then 5 in one group: 6 is recorded, 5 refused (it is not
    beyond 6), the recorded position never goes back."""
    recorder = recorder_of(fleets())
    x, y = uuid.uuid4(), uuid.uuid4()
    units = [Unit([event(x)], Tracking("alerts", 6)), Unit([event(y)], Tracking("alerts", 5))]
    recorder.committer._lead(units)
    assert units[0].error is None
    assert isinstance(units[1].error, IntegrityError)
    assert recorder.max_tracking_id("alerts") == 6


@pytest.mark.postgres
def test_issue_11_attack_a_copy_batch_with_a_stale_read_records_nothing_not_its_tracking(
    fleets: FleetFactory,
) -> None:
    """A COPY batch (>= COPY_MIN_ROWS) whose read version went stale is refused whole:
    no event, and its policy position is not recorded either (exactly once)."""
    recorder = recorder_of(fleets())
    x = uuid.uuid4()
    recorder.insert_events([event(x), event(x, 2)])
    batch = [event(uuid.uuid4()) for _ in range(COPY_MIN_ROWS)]
    with pytest.raises(IntegrityError):
        recorder.insert_events(batch, tracking=Tracking("ingest", 3), read_versions={x: 1})
    assert recorder.max_tracking_id("ingest") in (None, 0)
    assert recorder.select_events(batch[0].originator_id) == []


@pytest.mark.postgres
def test_issue_11_attack_last_position_after_a_copy_save_and_a_group(
    fleets: FleetFactory,
) -> None:
    """Read-your-writes: after a save by COPY and after saves committed in one group,
    each context's last_position is its own last notification id."""
    fleet = fleets()
    recorder = recorder_of(fleet)
    batch = [event(uuid.uuid4()) for _ in range(COPY_MIN_ROWS)]
    ids = recorder.insert_events(batch)
    assert ids is not None
    with psycopg.connect(POSTGRES_DSN) as conn:
        schema = fleet.recorder.datastore.schema  # type: ignore[attr-defined]
        row = conn.execute(
            sql.SQL("SELECT max(notification_id) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(recorder.events_table_name)
            )
        ).fetchone()
    assert row is not None
    assert list(ids)[-1] == row[0]
    assert list(ids) == list(range(ids[0], ids[0] + COPY_MIN_ROWS))
    partner(fleet, "LOC-1")
    seen: dict[str, int] = {}
    errors: list[BaseException] = []

    def register(serial: str) -> None:
        try:
            fleet.register_devices(
                CUSTOMER, "C1", servers(serial), PartnerChoice(location_id="LOC-1")
            )
            seen[serial] = fleet.last_position()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=register, args=(f"T{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors or all(isinstance(e, DomainError) for e in errors), errors
    for serial, position in seen.items():
        mine = [
            n.id
            for n in fleet.recorder.select_notifications(1, 100_000)
            if n.originator_id == Device.id_for(serial)
        ]
        assert mine
        assert position >= max(mine)


# --- kill -9 mid COPY and mid group commit -------------------------------------------

KILLED_MID_COPY = """
import os, signal, sys, uuid
import psycopg
from eventsourcing.persistence import StoredEvent
from infra.bootstrap import build_fleet
from infra.settings import Settings

fleet = build_fleet(Settings(database_url=sys.argv[1]))
real = psycopg.Copy.write
written = [0]

def write(self, data):  # COPY data goes in chunks (pg_copy.BinaryRows): die at the third
    written[0] += 1
    if written[0] == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, data)

psycopg.Copy.write = write
batch = [StoredEvent(uuid.uuid4(), 1, "tests:Copied", b"{}") for _ in range(10000)]
fleet.recorder.insert_events(batch)
print("answered")
"""

KILLED_MID_GROUP = """
import sys
from psycopg.sql import SQL
from handlers.conditions import Conditions, IdempotencyKey, applied
from infra.bootstrap import build_fleet
from infra.settings import Settings
from tests.actors import customer
from tests.scenarios import servers

fleet = build_fleet(Settings(database_url=sys.argv[1]))
fleet.recorder.closing_statements.append(SQL("SELECT pg_sleep(4)"))
key = IdempotencyKey("key-mid", "POST", "/devices", "sha256:mid")
admin = customer("C-MID", "admin@mid.example", "c")
print("saving", flush=True)
with applied(Conditions(idempotency=key)):
    fleet.register_devices(admin, "C-MID", servers("MID1"))
print("answered")
"""


def _copied_rows(fleet: PartnerFleet) -> int:
    recorder = recorder_of(fleet)
    with psycopg.connect(POSTGRES_DSN) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.{} WHERE topic = 'tests:Copied'").format(
                sql.Identifier(recorder.datastore.schema),
                sql.Identifier(recorder.events_table_name),
            )
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.postgres
def test_issue_11_attack_a_process_killed_mid_copy_leaves_nothing_partial(
    fleets: FleetFactory, postgres_settings: Settings
) -> None:
    """Nothing accepted is lost, nothing partial is kept: SIGKILL in the middle of a COPY
    batch stores none of it; the next process saves, and a follower reads ids in order."""
    from tests.conftest import url_of

    fleet = fleets()
    recorder = recorder_of(fleet)
    first = recorder.insert_events([event(uuid.uuid4())])
    assert first
    done = subprocess.run(
        [sys.executable, "-c", KILLED_MID_COPY, url_of(postgres_settings)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert _copied_rows(fleet) == 0
    after = recorder.insert_events([event(uuid.uuid4())])
    assert after
    assert after[0] > first[0]
    batch = [StoredEvent(uuid.uuid4(), 1, "tests:Copied", b"{}") for _ in range(COPY_MIN_ROWS)]
    copied = recorder.insert_events(batch)
    assert copied
    assert copied[0] > after[0]
    ids = [n.id for n in recorder.select_notifications(1, 10_000)]
    assert ids == sorted(ids)
    assert len(ids) == 2 + COPY_MIN_ROWS


@pytest.mark.postgres
def test_issue_11_attack_a_process_killed_mid_group_commit_commits_whole_and_the_key_replays(
    fleets: FleetFactory, postgres_settings: Settings
) -> None:
    """SIGKILL while the group's pipelined transaction runs (COMMIT already sent): the
    server still commits it, whole; the caller never heard, so the same Idempotency-Key in
    another process answers `replayed` and the device is registered once."""
    from handlers.conditions import Conditions, IdempotencyKey, applied
    from tests.actors import customer
    from tests.conftest import url_of

    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_GROUP, url_of(postgres_settings)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "saving"
    time.sleep(2)  # the child's transaction sleeps 4 s before its COMMIT
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    fleet = fleets()  # waits for the orphaned transaction's lock
    key = IdempotencyKey("key-mid", "POST", "/devices", "sha256:mid")
    with applied(Conditions(idempotency=key)) as conditions:
        fleet.register_devices(
            customer("C-MID", "admin@mid.example", "c"), "C-MID", servers("MID1")
        )
    assert conditions.replayed
    assert names(fleet, Device.id_for("MID1")) == ["Registered"]


@pytest.mark.postgres
@pytest.mark.parametrize("position", [4, 5])
def test_issue_11_attack_a_copy_batch_at_a_position_not_beyond_records_nothing(
    fleets: FleetFactory, position: int
) -> None:
    """Exactly once by COPY too: a batch whose policy position is not beyond the recorded
    one (a second runner) raises IntegrityError and stores none of its rows."""
    recorder = recorder_of(fleets())
    recorder.insert_events([event(uuid.uuid4())], tracking=Tracking("ingest", 5))
    batch = [StoredEvent(uuid.uuid4(), 1, "tests:Copied", b"{}") for _ in range(COPY_MIN_ROWS)]
    with pytest.raises(IntegrityError):
        recorder.insert_events(batch, tracking=Tracking("ingest", position))
    assert recorder.max_tracking_id("ingest") == 5
    assert recorder.select_events(batch[0].originator_id) == []


def test_issue_11_attack_conflict_exhaustion_leaves_no_cached_copy_behind(
    fleet_factory: FleetFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ConflictError (every attempt lost), nothing was recorded, the aggregates the
    command touched are out of the cache, and the next command decides on the store's."""
    from handlers import base

    fleet = fleet_factory()
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    device_id = Device.id_for("S1")
    assert device_id in fleet.aggregate_cache
    before = names(fleet, device_id)

    def always_conflicts(*args: Any, **kwargs: Any) -> Any:
        raise IntegrityError("lost to a concurrent writer")

    monkeypatch.setattr(base, "_back_off", lambda attempt: None)
    monkeypatch.setattr(fleet.recorder, "insert_events", always_conflicts)
    with pytest.raises(base.ConflictError):
        fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    monkeypatch.undo()
    assert device_id not in fleet.aggregate_cache
    assert names(fleet, device_id) == before
    fleet.collect_configuration(OPS, "S1", {"bios": "1.2"})  # consent still stands
    assert names(fleet, device_id)[-1] != "ConsentWithdrawn"


def test_issue_11_attack_two_caching_processes_racing_on_consent_keep_r_con_2(
    fleet_factory: FleetFactory,
) -> None:
    """R-CON-2 under a race: two fleets (processes), four threads each, grant, withdraw and
    collect on one device, deciding on cached copies in groups. Afterwards every collected
    configuration was recorded while consent stood, versions have no gap, and every
    accepted collect is stored exactly once."""
    import random

    from handlers.base import ConflictError

    a, b = fleet_factory(), fleet_factory()
    partner(a, "LOC-1")
    a.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    accepted: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def run(fleet: PartnerFleet, seed: int) -> None:
        rng = random.Random(seed)
        for n in range(12):
            op = rng.choice(["grant", "withdraw", "collect", "collect"])
            try:
                if op == "grant":
                    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
                elif op == "withdraw":
                    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
                else:
                    fleet.collect_configuration(OPS, "S1", {"n": f"{seed}-{n}"})
                    with lock:
                        accepted.append(f"{seed}-{n}")
            except (DomainError, ConflictError):
                pass
            except BaseException as error:
                with lock:
                    failures.append(error)

    threads = [
        threading.Thread(target=run, args=(fleet, seed))
        for seed, fleet in enumerate([a, a, a, a, b, b, b, b])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    events = list(a.events.get(Device.id_for("S1")))
    assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
    consent = False
    collected: list[str] = []
    for e in events:
        kind = type(e).__name__
        if kind == "ConsentGranted":
            consent = True
        elif kind == "ConsentWithdrawn":
            consent = False
        elif kind == "ConfigurationCollected":
            assert consent, "collected without consent"
            collected.append(e.data["n"])  # type: ignore[attr-defined]
    assert sorted(collected) == sorted(accepted)


def _stored_state(fleet: PartnerFleet, aggregate_id: uuid.UUID, version: int) -> Any:
    from functools import reduce

    events: list[Any] = list(fleet.events.get(aggregate_id, lte=version))
    return reduce(lambda a, e: e.mutate(a), events, None)


def _state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k not in ("_pending_events",)}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_issue_11_attack_every_cached_copy_is_its_stored_state_after_the_scenarios(
    fleet_factory: FleetFactory, scenario: Callable[[PartnerFleet], None]
) -> None:
    """The cache never holds state the store does not: after each scenario (commands
    accepted, refused, policies), every cached aggregate equals its events replayed up to
    its cached version, and that version is not beyond the stored one (no in-place
    mutation without an event, no copy of a refused command)."""
    fleet = fleet_factory()
    scenario(fleet)
    cache = fleet.aggregate_cache
    assert len(cache) > 0
    for aggregate_id in [uuid.UUID(int=key) for key in cache._entries]:  # (held by UUID.int)
        cached = cache.get(aggregate_id)
        assert cached is not None
        stored = _stored_state(fleet, aggregate_id, cached.version)
        assert stored is not None
        assert stored.version == cached.version
        assert _state(cached) == _state(stored), type(cached).__name__


@pytest.mark.postgres
def test_issue_11_attack_a_group_whose_connection_dies_before_commit_is_recorded_once(
    fleets: FleetFactory,
) -> None:
    """Nothing accepted is lost, nothing twice: the server ends the group's connection
    inside its transaction (before COMMIT); the recorder retries on a new connection and
    each unit of the group is recorded exactly once, with its own ids."""
    recorder = recorder_of(fleets())
    schema = recorder.datastore.schema
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SEQUENCE {}.once").format(sql.Identifier(schema)))
    recorder.closing_statements.append(
        sql.SQL("SELECT pg_terminate_backend(pg_backend_pid()) WHERE nextval({}) = 1").format(
            sql.Literal(f"{schema}.once")
        )
    )
    x, y = uuid.uuid4(), uuid.uuid4()
    units = [Unit([event(x)], Tracking("alerts", 1)), Unit([event(y)], read_versions={})]
    recorder.committer._lead(units)
    assert [u.error for u in units] == [None, None]
    assert len(recorder.select_events(x)) == 1
    assert len(recorder.select_events(y)) == 1
    assert recorder.max_tracking_id("alerts") == 1
    assert sorted(units[0].notification_ids + units[1].notification_ids) == [
        n.id for n in recorder.select_notifications(1, 10)
    ]
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        row = conn.execute(
            sql.SQL("SELECT last_value FROM {}.once").format(sql.Identifier(schema))
        ).fetchone()
    assert row is not None
    assert row[0] >= 2  # the connection was ended once, and the group sent again


def test_issue_11_attack_one_idempotency_key_twice_at_once_records_once(
    fleet_factory: FleetFactory,
) -> None:
    """Idempotency keys under group commit: the same Idempotency-Key sent twice at once
    (two threads of one process, two processes) registers the device once; every other
    answer is `replayed` or KeyInFlightError (retry later), none records a second event."""
    from handlers.conditions import Conditions, IdempotencyKey, KeyInFlightError, applied
    from tests.actors import customer

    a, b = fleet_factory(), fleet_factory()
    admin = customer("C-TWICE", "admin@twice.example", "c")
    key = IdempotencyKey("key-twice", "POST", "/devices", "sha256:twice")
    replayed: list[bool] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def send(fleet: PartnerFleet) -> None:
        barrier.wait()
        try:
            with applied(Conditions(idempotency=key)) as conditions:
                fleet.register_devices(admin, "C-TWICE", servers("TW1"))
            with lock:
                replayed.append(conditions.replayed)
        except BaseException as error:
            with lock:
                failures.append(error)

    threads = [threading.Thread(target=send, args=(f,)) for f in (a, a, a, b, b, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert names(a, Device.id_for("TW1")) == ["Registered"]
    assert replayed.count(False) == 1, (replayed, failures)
    assert all(isinstance(f, KeyInFlightError) for f in failures), failures


@pytest.mark.postgres
def test_issue_11_attack_a_lone_refused_unit_leaves_the_connection_usable(
    fleets: FleetFactory,
) -> None:
    """Bad input never stops the input behind it: a save PostgreSQL refuses alone (a NUL
    in its topic; a duplicate version inside one unit) fails its caller only; the saves
    after it, on the same pool, commit (the pipeline's failed transaction is rolled back)."""
    fleet = fleets()
    recorder = recorder_of(fleet)
    x = uuid.uuid4()
    for bad in (
        [event(uuid.uuid4(), topic="tests:Bad\x00")],
        [event(x), event(x)],
        [event(uuid.uuid4(), topic="tests:Bad\x00")],
    ):
        with pytest.raises(Exception):  # noqa: B017, PT011 - any refusal, its caller's alone
            recorder.insert_events(bad, read_versions={uuid.uuid4(): 1} if len(bad) > 1 else None)
        good = uuid.uuid4()
        assert recorder.insert_events([event(good)], tracking=None)
        assert len(recorder.select_events(good)) == 1
    assert recorder.select_events(x) == []
    partner(fleet, "LOC-1")  # commands still run


@pytest.mark.postgres
def test_issue_11_attack_a_reply_lost_after_commit_never_answers_an_accepted_command_refused(
    fleets: FleetFactory,
) -> None:
    """Nothing accepted is lost, and an accepted command is never answered as refused:
    the server commits the group, the reply is lost (connection dropped), the recorder
    retries. The caller must hear `accepted` or an error that says the outcome is unknown
    (retry with its Idempotency-Key) - not 'Consent is already granted' (a 4xx refusal)."""
    from eventsourcing.persistence import OperationalError

    fleet = fleets()
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    recorder = recorder_of(fleet)
    real = recorder._send
    lose = [True]

    def reply_lost(statement: Any, parameters: dict[str, list[Any]]) -> list[tuple[Any, ...]]:
        rows = real(statement, parameters)  # committed on the server
        if lose[0]:
            lose[0] = False
            raise OperationalError("server closed the connection unexpectedly")
        return rows

    recorder._send = reply_lost  # type: ignore[method-assign]
    refused: DomainError | None = None
    try:
        fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    except DomainError as error:
        refused = error
    assert names(fleet, Device.id_for("S1"))[-1] == "ConsentGranted"  # it was recorded
    assert refused is None, f"an accepted command answered refused: {refused}"


@pytest.mark.postgres
@pytest.mark.parametrize("shape", ["alone", "with tracking", "with reads", "group"])
def test_issue_11_a_reply_lost_after_commit_is_answered_with_the_units_own_ids(
    fleets: FleetFactory, shape: str
) -> None:
    """The kind of the attack's finding, at the recorder, on each of its statements: the
    plain insert (a lone unit), the lone unit with tracking, the lone unit with reads, a
    group of two. The retry recognises events stored as sent and answers their ids;
    nothing is stored twice; a unit that really conflicts (other content at its version)
    is still refused."""

    recorder = recorder_of(fleets())
    taken = uuid.uuid4()
    recorder.insert_events([event(taken, topic="tests:First")])
    lose_first_reply(recorder)
    mine = uuid.uuid4()
    if shape == "group":
        units = [Unit([event(mine)]), Unit([event(taken, topic="tests:Other")])]
        recorder._commit_group(units)
        ids = units[0].result()
        with pytest.raises(IntegrityError):
            units[1].result()
    else:
        tracking = Tracking("attack-policy", 7) if shape == "with tracking" else None
        reads = {taken: 1} if shape == "with reads" else None
        ids = list(
            recorder.insert_events([event(mine)], tracking=tracking, read_versions=reads) or []
        )
    stored = recorder.select_events(mine)
    assert len(stored) == 1
    assert len(ids) == 1
    [notification] = recorder.select_notifications(start=ids[0], limit=1)
    assert (notification.id, notification.originator_id) == (ids[0], mine)
    assert [e.topic for e in recorder.select_events(taken)] == ["tests:First"]
