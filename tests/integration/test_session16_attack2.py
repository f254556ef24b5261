"""Session 16, second attack, on PostgreSQL: the customers view's rebuild (crash-safe
marker, SQL inserts, bulk decoding) while commands keep writing and another runner follows,
with hostile text in the device rows; and the consent export's batches on a lost
connection. Each probe stays as a test of the property it attacked."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from domain import Cause, Device
from domain.base import NotAllowedError, NotFoundError
from handlers import PartnerFleet, conditions
from handlers.conditions import Conditions, IdempotencyKey, applied
from handlers.devices import PartnerChoice
from infra.bootstrap import build_fleet, build_view_db, build_view_runner
from infra.follow.view_runner import ViewRunner
from infra.settings import Settings
from infra.storage.pg_recorder import FleetProcessRecorder
from projections.base import QueryError
from projections.consent import HISTORY_COLUMNS
from projections.consent_export import consent_export, export_batches
from projections.consent_queries import Selection
from projections.customers import CustomersView
from tests.conftest import POSTGRES_DSN
from tests.integration.test_consent_export_batches import history as consent_history
from tests.integration.test_rebuild import history
from tests.scenarios import CUSTOMER, partner, servers
from tests.scopes import customer_of
from tests.views import dump, rebuilds_marked

# Text a handler and PostgreSQL's ->> must give alike (no NUL: PostgreSQL cannot store it).
HOSTILE_MODELS = [
    'quote " and \\ backslash',
    "tab\tline\nbreak\rcr \x01\x1f\x7f",
    "umlaut \u00e4 emoji \U0001f600 \u2028 rtl \u202e",
    '{"_type_": "datetime_iso", "_data_": "2026-01-01"}',
    "x" * 5_000,
    "",
]


def more_devices(fleet: PartnerFleet, rounds: int) -> None:
    """Commands writing while the rebuild runs: a device a save (hostile models), some with
    a service event."""
    why = Cause("admin@loc-1.example", "corr-writer")
    for n in range(rounds):
        device = Device.register(
            why,
            serial=f"WR{n:05d}",
            connection="pc_agent" if n % 2 else "direct_connect",
            customer_id="C1",
            model=HOSTILE_MODELS[n % len(HOSTILE_MODELS)],
        )
        if n % 3 == 0:
            device.record_service_event(why, f"SE-W{n}", "critical", HOSTILE_MODELS[n % 6])
        fleet.save(device)


def test_session16_a_rebuild_while_commands_write_and_another_runner_follows_ends_right(
    postgres_settings: Settings,
) -> None:
    """A rebuild in batches of 50 runs while a thread saves 60 devices (hostile model text,
    service events) and a second runner follows the same view in batches of 7 at once.
    After both, one more catch-up: the tables equal a clean rebuild's of the same history,
    whole, the counts too, and no rebuild mark is left."""
    fleet = build_fleet(postgres_settings)
    db = build_view_db(postgres_settings)
    errors: list[BaseException] = []
    try:
        history(fleet, 200)
        ViewRunner(fleet, db, [CustomersView()], batch_size=7).catch_up()
        done = threading.Event()

        def writer() -> None:
            try:
                more_devices(fleet, 60)
            except BaseException as error:
                errors.append(error)

        def follower() -> None:
            other = ViewRunner(fleet, db, [CustomersView()], batch_size=7)
            try:
                while not done.is_set():
                    other.catch_up()
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=t, daemon=True) for t in (writer, follower)]
        for thread in threads:
            thread.start()
        rebuilding = ViewRunner(fleet, db, [CustomersView()])
        rebuilding.rebuild_batch_size = 50
        rebuilding.rebuild(rebuilding.views[0])
        threads[0].join(120)
        done.set()
        threads[1].join(120)
        assert not any(thread.is_alive() for thread in threads)
        final = ViewRunner(fleet, db, [CustomersView()], batch_size=7)
        final.catch_up()
        after_race = dump(db, final.views[0])

        clean = ViewRunner(fleet, db, [CustomersView()])
        clean.rebuild(clean.views[0])

        assert errors == []
        assert dump(db, clean.views[0]) == after_race
        assert len(after_race["pf_c_devices"]) == 260
        assert rebuilds_marked(db) == []
    finally:
        db.close()
        fleet.close()


# --- Consent export: one tenant's export never holds another's records ----------------------


@pytest.fixture
def pg_stack(postgres_settings: Settings) -> Iterator[tuple[PartnerFleet, ViewRunner]]:
    """A fleet on PostgreSQL with its views."""
    fleet = build_fleet(postgres_settings)
    runner = build_view_runner(postgres_settings, fleet)
    yield fleet, runner
    runner.db.close()
    fleet.close()


EXPORT_SELECTIONS: list[dict[str, Any]] = [
    {},
    {"customer_id": "C1"},
    {"customer_id": "C2"},
    {"serial": "S00"},
    {"serial": "T1"},
    {"partner": "LOC-A"},
    {"partner": "LOC-S", "customer_id": "C1"},
]


@pytest.mark.parametrize("selection", EXPORT_SELECTIONS, ids=str)
def test_session16_a_customers_batch_export_never_holds_another_customers_records(
    pg_stack: tuple[PartnerFleet, ViewRunner], selection: dict[str, Any]
) -> None:
    """C2's admin asks for every selection, C1's among them: each is refused on the call
    (before any row) or holds C2's own records only, and the same as the record export."""
    fleet, runner = pg_stack
    consent_history(fleet, runner)
    scope = customer_of("C2")

    with runner.db.transaction() as tx:
        try:
            batches = export_batches(tx, scope, Selection(**selection), size=3)
        except (QueryError, NotFoundError, NotAllowedError):
            return  # refused before any row
        rows = [row for batch in batches for row in batch]
        records = list(consent_export(tx, scope, Selection(**selection)))

    customer_at = HISTORY_COLUMNS.index("customer_id")
    assert {row[customer_at] for row in rows} <= {"C2"}
    assert [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in rows] == records
    assert not [t for t in threading.enumerate() if t.name == "export-read-ahead"]


KILLED_REBUILD = """
import os, signal, sys
from infra.bootstrap import build_fleet, build_view_db, build_view_runner
from infra.follow.view_runner import ViewRunner
from infra.settings import Settings
from projections.customers import CustomersView

settings = Settings(database_url=sys.argv[1])
fleet, db = build_fleet(settings), build_view_db(settings)
runner = ViewRunner(fleet, db, [CustomersView()])
runner.rebuild_batch_size = 50
seen = []

def progress(position, head):
    seen.append(position)
    if len(seen) == 3 and position < head:
        os.kill(os.getpid(), signal.SIGKILL)

runner.rebuild(runner.views[0], progress)
"""


def test_session16_a_rebuild_killed_by_sigkill_is_finished_by_live_following(
    postgres_settings: Settings,
) -> None:
    """An operator's kill -9 of `projections rebuild` after its third batch: the mark
    stays, the counts are still 0; a runner following live (small batches) then ends with
    the tables a followed view had before the rebuild, counts included, and no mark."""
    fleet = build_fleet(postgres_settings)
    db = build_view_db(postgres_settings)
    try:
        history(fleet, 200)
        live = ViewRunner(fleet, db, [CustomersView()], batch_size=7)
        live.catch_up()
        followed = dump(db, live.views[0])

        assert postgres_settings.database_url is not None
        url = postgres_settings.database_url.get_secret_value()
        child = subprocess.run(
            [sys.executable, "-c", KILLED_REBUILD, url],
            capture_output=True,
            timeout=120,
            check=False,
        )

        assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
        assert rebuilds_marked(db) == [("customers",)]
        ViewRunner(fleet, db, [CustomersView()], batch_size=7).catch_up()
        assert dump(db, live.views[0]) == followed
        assert rebuilds_marked(db) == []
    finally:
        db.close()
        fleet.close()


def test_session16_every_save_shape_still_wakes_a_listening_follower(
    postgres_settings: Settings,
) -> None:
    """pg_notify in the save's opening SELECT: a LISTEN on the recorder's channel (as the
    view runner's) hears each command's save (partner set-up, a registration reading
    the partner, a grant) once the command was answered (NOTIFY is delivered at COMMIT)."""
    fleet = build_fleet(postgres_settings)
    recorder = fleet.recorder
    assert isinstance(recorder, FleetProcessRecorder)
    try:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(recorder.channel_name)))
            saves: list[Callable[[], object]] = [
                lambda: partner(fleet, "LOC-1"),
                lambda: fleet.register_devices(
                    CUSTOMER, "C1", servers("N1"), PartnerChoice(location_id="LOC-1")
                ),
                lambda: fleet.grant_consent(CUSTOMER, "C1", ["N1"]),
            ]
            for save in saves:
                save()
                head = recorder.max_notification_id()
                heard = list(conn.notifies(timeout=10, stop_after=1))
                assert heard, "no NOTIFY after a save"
                assert heard[0].channel == recorder.channel_name
                assert head is not None
                assert head > 0
                while list(conn.notifies(timeout=0.2)):  # one save may notify more than once
                    pass
    finally:
        fleet.close()


@pytest.mark.parametrize("same_body", [True, False])
def test_session16_one_key_from_two_processes_at_once_runs_the_command_once(
    postgres_settings: Settings, monkeypatch: pytest.MonkeyPatch, same_body: bool
) -> None:
    """Two processes (two fleets, the in-process in-flight claim switched off as it is
    across processes) take one key at the same moment: the record's id is the key's, so
    one save wins and the other's retry finds the record: it replays (same body) or is
    refused as reused (another body). One grant is stored."""
    monkeypatch.setattr(conditions, "_claimed", lambda _scope: contextlib.nullcontext())
    fleets = [build_fleet(postgres_settings), build_fleet(postgres_settings)]
    try:
        partner(fleets[0], "LOC-1")
        fleets[0].register_devices(
            CUSTOMER, "C1", servers("K1"), PartnerChoice(location_id="LOC-1")
        )
        key = IdempotencyKey("k-procs", "POST", "/consent-grants", "sha256:" + "3" * 64)
        keys = [key, key if same_body else IdempotencyKey(key.key, key.method, key.path, "o")]
        start = threading.Barrier(2)
        outcomes: list[str] = []

        def request(fleet: PartnerFleet, key: IdempotencyKey) -> None:
            start.wait()
            asked = Conditions(idempotency=key)
            try:
                with applied(asked):
                    fleet.grant_consent(CUSTOMER, "C1", ["K1"])
            except Exception as error:
                outcomes.append(type(error).__name__)
            else:
                outcomes.append("replayed" if asked.replayed else "ran")

        threads = [
            threading.Thread(target=request, args=pair, daemon=True)
            for pair in zip(fleets, keys, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

        assert not any(thread.is_alive() for thread in threads)
        assert outcomes.count("ran") == 1, outcomes
        other = {"replayed"} if same_body else {"IdempotencyKeyReusedError"}
        assert set(outcomes) - {"ran"} <= other, outcomes
        granted = [
            n
            for n in fleets[0].recorder.select_notifications(start=1, limit=10_000)
            if n.topic.endswith("ConsentGranted")
        ]
        assert len(granted) == 1
    finally:
        for fleet in fleets:
            fleet.close()


def test_session16_a_grant_on_a_stale_cached_copy_is_not_refused(
    postgres_settings: Settings,
) -> None:
    """Process A caches the device granted; process B withdraws; A's grant must see the
    withdrawal (its cached copy refused the grant as already granted, and the refusal on
    a cached copy is checked against the store) and succeed."""
    a, b = build_fleet(postgres_settings), build_fleet(postgres_settings)
    try:
        partner(a, "LOC-1")
        a.register_devices(CUSTOMER, "C1", servers("K2"), PartnerChoice(location_id="LOC-1"))
        a.grant_consent(CUSTOMER, "C1", ["K2"])
        b.withdraw_consent(CUSTOMER, "C1", ["K2"])

        a.grant_consent(CUSTOMER, "C1", ["K2"])

        assert b.device("K2").consent is not None
    finally:
        a.close()
        b.close()
