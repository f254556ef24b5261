"""Issue 11: the rebuild path on PostgreSQL (COPY, arrays for IN lists, large batches) keeps
the meaning of the views' statements, exactly once."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic

from domain import Cause, CustomerGroup, Device, PartnerTenant
from handlers import PartnerFleet
from infra.bootstrap import build_fleet, build_view_db
from infra.follow.set_writes import SetWrites
from infra.follow.stored_inserts import stored_inserts
from infra.follow.view_faults import ViewStuckError
from infra.follow.view_runner import ViewRunner
from infra.settings import Settings
from infra.storage.viewdb import CopyingTx, ViewDB
from projections.customers import CustomersView
from tests.views import dump, rebuilds_marked


def test_issue_11_runs_of_inserts_go_by_copy_and_keep_their_order_per_table(
    pg_db: ViewDB,
) -> None:
    """A run of INSERTs is sent by COPY (literals filled in); an UPDATE and a DELETE of the
    same table written after it see its rows; an IN list reads as an array."""
    with pg_db.transaction() as tx:
        tx.execute("CREATE TABLE t1 (k TEXT PRIMARY KEY, kind TEXT NOT NULL, n INTEGER)")
        tx.execute("CREATE TABLE t2 (k TEXT PRIMARY KEY)")
    with pg_db.transaction() as tx:
        writes = SetWrites(tx)
        writes.executemany(
            "INSERT INTO t1 VALUES (?, 'x', ?)",
            [(f"k{i}", i if i % 3 else None) for i in range(20)],
        )
        writes.execute("INSERT INTO t2 VALUES (?)", ("only",))
        writes.execute("UPDATE t1 SET n = ? WHERE k = ?", (100, "k0"))
        writes.executemany(  # one UPDATE … FROM unnest: distinct keys
            "UPDATE t1 SET n = ? WHERE k = ?", [(i * 10, f"k{i}") for i in range(10, 20)]
        )
        writes.execute("DELETE FROM t1 WHERE k IN (?, ?)", ("k1", "k2"))
        found = writes.query("SELECT k FROM t1 WHERE k IN (?, ?, ?) ORDER BY k", ("k0", "k1", "k3"))
        assert found == [("k0",), ("k3",)]
        assert writes.copied == 20
        writes.execute("INSERT INTO t2 VALUES (?)", ("after",))
        writes.flush()
    with pg_db.transaction() as tx:
        assert tx.query("SELECT k, kind, n FROM t1 WHERE k IN ('k0', 'k3', 'k4')") == [
            ("k0", "x", 100),
            ("k3", "x", None),
            ("k4", "x", 4),
        ]
        assert tx.query("SELECT count(*) FROM t1") == [(18,)]
        assert tx.query("SELECT n FROM t1 WHERE k IN ('k10', 'k19') ORDER BY k") == [
            (100,),
            (190,),
        ]
        assert sorted(tx.query("SELECT k FROM t2")) == [("after",), ("only",)]


def test_issue_11_a_failed_copy_leaves_nothing_of_the_batch(pg_db: ViewDB) -> None:
    """A duplicate key inside a COPY fails the whole transaction, as an INSERT would."""
    with pg_db.transaction() as tx:
        tx.execute("CREATE TABLE t3 (k TEXT PRIMARY KEY)")

    def duplicate_in_one_copy() -> None:
        with pg_db.transaction() as tx:
            writes = SetWrites(tx)
            writes.executemany("INSERT INTO t3 VALUES (?)", [(f"k{i % 9}",) for i in range(10)])
            writes.flush()

    with pytest.raises(Exception, match="duplicate key"):
        duplicate_in_one_copy()
    with pg_db.transaction() as tx:
        assert tx.query("SELECT count(*) FROM t3") == [(0,)]


def test_issue_11_the_view_databases_copy_sends_buffered_writes_first(pg_db: ViewDB) -> None:
    """`copy` is the PostgreSQL Tx's own bulk write: rows written before it are in the table
    first (a DELETE buffered before the COPY does not remove the copied row)."""
    with pg_db.transaction() as tx:
        tx.execute("CREATE TABLE t4 (k TEXT PRIMARY KEY, n INTEGER)")
    with pg_db.transaction() as tx:
        assert isinstance(tx, CopyingTx)
        tx.execute("INSERT INTO t4 VALUES (?, ?)", ("before", 1))
        tx.execute("DELETE FROM t4 WHERE k = ?", ("copied",))
        sent = tx.copy("t4", iter([("copied", None), ("also", 3)]))
        tx.execute("UPDATE t4 SET n = ? WHERE k = ?", (2, "copied"))
    with pg_db.transaction() as tx:
        assert sent == 2
        assert sorted(tx.query("SELECT k, n FROM t4")) == [
            ("also", 3),
            ("before", 1),
            ("copied", 2),
        ]


class Killed(BaseException):
    """The process ending in the middle of a rebuild."""


def history(fleet: PartnerFleet, devices: int) -> None:
    """A partner and a customer group listing devices saved before the devices' own
    events (as one command saves them), some with service events."""
    why = Cause("admin@loc-1.example", "corr-rebuild")
    partner = PartnerTenant.register(why, "LOC-1", "Reseller")
    partner.accredit_as_service_partner(why, "CSDP-1")
    group = CustomerGroup.create(why, "LOC-1", "C1", "Customer One", ["admin@loc-1.example"])
    saved = []
    for n in range(devices):
        serial = f"RB{n:05d}"
        device = Device.register(
            why,
            serial=serial,
            connection="pc_agent" if n % 4 == 3 else "direct_connect",
            customer_id="C1",
        )
        device.link_partner(why, "LOC-1", "service_partner", "service_partner")
        group.add_device(why, serial, "service_partner")
        saved.append(device)
    fleet.save(partner, group, *saved)
    for n, device in enumerate(saved):
        if n % 5 == 0:
            device.record_service_event(why, f"SE-{n}", "critical" if n % 2 else "info", "Fan")
    fleet.save(*saved)


def test_issue_11_a_rebuild_in_large_batches_equals_following_in_small_ones(
    postgres_settings: Settings,
) -> None:
    """Exactly-once views: followed 7 events at a time, then rebuilt in batches of 10,000
    through COPY, the customers view holds the same rows (its group counts too, though the
    group listed the devices before they were registered)."""
    fleet = build_fleet(postgres_settings)  # makes the schema under its DDL lock
    db = build_view_db(postgres_settings)
    try:
        history(fleet, 300)
        runner = ViewRunner(fleet, db, [CustomersView()], batch_size=7)
        runner.catch_up()
        live = dump(db, runner.views[0])
        [group] = live["pf_c_groups"]
        assert group[8:] == (0, 225, 75, 60, 30)  # by connection, service events, critical
        assert runner.rebuild(runner.views[0]) > 600
        assert dump(db, runner.views[0]) == live
        assert runner.lag() == {"customers": 0}
    finally:
        db.close()
        fleet.close()


def test_issue_11_a_rebuild_killed_midway_is_finished_by_the_next_process(
    postgres_settings: Settings,
) -> None:
    """A rebuild (batches of 100, counts left to its end) ends after its second batch; a
    new runner catches up and leaves the rows following 7 events at a time leaves."""
    fleet = build_fleet(postgres_settings)
    db = build_view_db(postgres_settings)

    def killed_after_two(position: int, head: int) -> None:
        batches.append(position)
        if len(batches) == 2 and position < head:
            raise Killed

    try:
        history(fleet, 300)
        live = ViewRunner(fleet, db, [CustomersView()], batch_size=7)
        live.catch_up()
        followed = dump(db, live.views[0])
        dying = ViewRunner(fleet, db, [CustomersView()])
        dying.rebuild_batch_size = 100
        batches: list[int] = []
        with pytest.raises(Killed):
            dying.rebuild(dying.views[0], killed_after_two)
        with db.transaction() as tx:
            assert tx.query("SELECT view FROM pf_rebuilds") == [("customers",)]
            assert tx.query("SELECT direct_connect FROM pf_c_groups") == [(0,)]
        ViewRunner(fleet, db, [CustomersView()], batch_size=50).catch_up()
        assert dump(db, live.views[0]) == followed
        assert rebuilds_marked(db) == []
    finally:
        db.close()
        fleet.close()


class ReopeningView(CustomersView):
    """The customers view with a set-based insert for a class at version 2."""

    rebuild_inserts: ClassVar[dict[type[Any], str]] = {
        CustomerGroup.Reopened: "INSERT INTO pf_c_devices SELECT {id}, '', '', ''",
    }


def test_issue_11_a_rebuild_inserts_devices_in_sql_with_the_handlers_rows(
    postgres_settings: Settings,
) -> None:
    """Registered devices (and e2Open's, in test_views' scenarios) and service events are
    inserted by INSERT … SELECT over the stored states in a rebuild of the view in the
    store's own database; the rows equal the handlers' (the group's counts too) and every
    event is counted as applied."""
    fleet = build_fleet(postgres_settings)
    db = build_view_db(postgres_settings)
    try:
        history(fleet, 40)
        live = ViewRunner(fleet, db, [CustomersView()], batch_size=7)
        live.catch_up()
        followed = dump(db, live.views[0])
        view = CustomersView()
        inserts = stored_inserts(fleet.recorder, fleet.mapper, db, view)

        applied = ViewRunner(fleet, db, [view]).rebuild(view)

        assert inserts is not None
        assert inserts.topics == {
            get_topic(Device.Registered),
            get_topic(Device.ReportedByE2Open),
            get_topic(Device.ServiceEventRecorded),
        }
        assert applied == topic_count(fleet, view)
        assert dump(db, view) == followed
    finally:
        db.close()
        fleet.close()


def test_issue_11_sql_inserts_are_not_used_where_they_could_differ(
    postgres_settings: Settings,
) -> None:
    """No set-based inserts for a class with upcasting to repeat, nor for a store whose
    states are compressed (no JSON for PostgreSQL to read)."""
    fleet = build_fleet(postgres_settings)
    env = {
        **postgres_settings.storage.env,
        "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
    }
    compressed = PartnerFleet(env=env)
    db = build_view_db(postgres_settings)
    try:
        assert stored_inserts(fleet.recorder, fleet.mapper, db, ReopeningView()) is None
        assert stored_inserts(compressed.recorder, compressed.mapper, db, CustomersView()) is None
        assert stored_inserts(fleet.recorder, fleet.mapper, db, CustomersView()) is not None
    finally:
        db.close()
        compressed.close()
        fleet.close()


def topic_count(fleet: PartnerFleet, view: CustomersView) -> int:
    """Stored events of the view's topics."""
    found = fleet.recorder.select_notifications(1, 1_000_000, topics=view.topics())
    return len(found)


def test_issue_11_a_device_event_sql_cannot_insert_stops_the_rebuild_just_before_it(
    postgres_settings: Settings,
) -> None:
    """A stored `Device.Registered` without its model: the batch's INSERT … SELECT fails,
    the batch is applied again event by event through the handlers, and the view stops
    just before that event (as following stops), with everything before it applied."""
    fleet = build_fleet(postgres_settings)
    db = build_view_db(postgres_settings)
    try:
        history(fleet, 20)
        state = b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
        state += b'"principal":"p","correlation_id":"c","serial":"BAD1","connection":"pc_agent",'
        state += b'"customer_id":"C1"}'
        bad = StoredEvent(Device.id_for("BAD1"), 1, get_topic(Device.Registered), state)
        fleet.recorder.insert_events([bad])
        bad_position = fleet.recorder.max_notification_id() or 0
        history_after(fleet)
        runner = ViewRunner(fleet, db, [CustomersView()])

        with pytest.raises(ViewStuckError) as stuck:
            runner.rebuild(runner.views[0])

        assert stuck.value.fault.notification_id == bad_position
        assert runner.position(runner.views[0]) == bad_position - 1
        with db.transaction() as tx:
            assert tx.query("SELECT count(*) FROM pf_c_devices") == [(20,)]
            assert tx.query("SELECT view FROM pf_rebuilds") == [("customers",)]
    finally:
        db.close()
        fleet.close()


def history_after(fleet: PartnerFleet) -> None:
    """One more device, stored after the bad event."""
    why = Cause("admin@loc-1.example", "corr-after")
    device = Device.register(why, serial="AFTER1", connection="pc_agent", customer_id="C1")
    fleet.save(device)


def test_issue_11_a_batch_dying_while_its_inserts_run_beside_it_leaves_nothing_of_it(
    postgres_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash mid-rebuild on the overlapped path: the third batch's handlers fail while its
    INSERT … SELECT runs on the other thread. The runner waits for that statement, the
    batch's transaction leaves nothing (no device row past the second batch's position),
    the view stays at the second batch, and the next catch-up ends equal to following."""
    fleet = build_fleet(postgres_settings)
    db = build_view_db(postgres_settings)
    try:
        history(fleet, 300)
        live = ViewRunner(fleet, db, [CustomersView()], batch_size=7)
        live.catch_up()
        followed = dump(db, live.views[0])
        view, batches = CustomersView(), [0]
        process = view.process

        def dies_third(tx: Any, events: Any, positions: Any = None, **flags: Any) -> None:
            batches[0] += 1
            if batches[0] == 3:
                raise Killed
            process(tx, events, positions, **flags)

        monkeypatch.setattr(view, "process", dies_third)
        dying = ViewRunner(fleet, db, [view])
        dying.rebuild_batch_size = 100
        with pytest.raises(Killed):
            dying.rebuild(dying.views[0])
        assert batches == [3]
        stopped = dying.position(dying.views[0])
        devices = fleet.recorder.select_notifications(
            1, 1_000_000, stop=stopped, topics=[get_topic(Device.Registered)]
        )
        with db.transaction() as tx:
            assert tx.query("SELECT count(*) FROM pf_c_devices") == [(len(devices),)]
            assert tx.query("SELECT view FROM pf_rebuilds") == [("customers",)]
            running = tx.query(  # this test's own schema: other tests may run beside it
                "SELECT count(*) FROM pg_stat_activity WHERE state <> 'idle'"
                " AND left(query, 9) = 'WITH e AS' AND strpos(query, ?) > 0",
                (f'"{postgres_settings.storage.env["POSTGRES_SCHEMA"]}".',),
            )
            assert running == [(0,)]
        ViewRunner(fleet, db, [CustomersView()], batch_size=50).catch_up()
        assert dump(db, live.views[0]) == followed
    finally:
        db.close()
        fleet.close()


def events_table(fleet: PartnerFleet) -> str:
    """The quoted name of the events table of `fleet`'s schema."""
    recorder = fleet.recorder
    assert isinstance(recorder, PostgresApplicationRecorder)
    return f'"{fleet.env["POSTGRES_SCHEMA"]}"."{recorder.events_table_name}"'


def events_statistics(fleet: PartnerFleet, db: ViewDB) -> tuple[int, int, int]:
    """The events table of `fleet`'s schema in pg_stat_user_tables: rows inserted, times
    analyzed by hand, rows changed since the last ANALYZE."""
    table = events_table(fleet)
    with db.read() as tx:
        [row] = tx.query(
            "SELECT n_tup_ins, analyze_count, n_mod_since_analyze FROM pg_stat_user_tables"
            " WHERE relid = to_regclass(?)",
            (table,),
        )
    return int(row[0]), int(row[1]), int(row[2])


def test_issue_11_a_rebuild_analyzes_the_events_table_only_where_its_statistics_are_old(
    postgres_settings: Settings,
) -> None:
    """Session 18: the first rebuild analyzes a store never analyzed; the next finds the
    statistics recent and leaves the ANALYZE out; with the table's statistics reset (as
    after a crash) it analyzes again. Rows equal following each time."""
    writer = build_fleet(postgres_settings)
    history(writer, 120)
    stored = writer.recorder.max_notification_id() or 0
    writer.close()  # its backends report their inserts as they end
    fleet = build_fleet(postgres_settings)
    db = build_view_db(postgres_settings)
    try:
        deadline = time.monotonic() + 30
        while events_statistics(fleet, db)[0] < stored and time.monotonic() < deadline:
            time.sleep(0.05)
        assert events_statistics(fleet, db) == (stored, 0, stored)
        live = ViewRunner(fleet, db, [CustomersView()], batch_size=7)
        live.catch_up()
        followed = dump(db, live.views[0])
        runner = ViewRunner(fleet, db, [CustomersView()])
        runner.rebuild(runner.views[0])
        assert events_statistics(fleet, db) == (stored, 1, 0)
        assert dump(db, runner.views[0]) == followed
        runner.rebuild(runner.views[0])
        assert events_statistics(fleet, db) == (stored, 1, 0)  # left out
        assert dump(db, runner.views[0]) == followed
        table = events_table(fleet)
        with db.read() as tx:
            tx.query("SELECT pg_stat_reset_single_table_counters(to_regclass(?))", (table,))
        assert events_statistics(fleet, db)[1] == 0
        runner.rebuild(runner.views[0])
        assert events_statistics(fleet, db)[1:] == (1, 0)  # analyzed again
        assert dump(db, runner.views[0]) == followed
    finally:
        db.close()
        fleet.close()


def groups_storage(db: ViewDB) -> list[tuple[Any, ...]]:
    """pf_c_groups' storage parameters in this test's schema."""
    with db.read() as tx:
        rows: list[tuple[Any, ...]] = tx.query(
            "SELECT reloptions FROM pg_class WHERE oid = to_regclass('pf_c_groups')"
        )
    return rows


def test_issue_11_the_groups_table_leaves_room_for_hot_updates_wherever_it_is_made(
    postgres_settings: Settings,
) -> None:
    """Session 18: pf_c_groups is made at fillfactor 50 by a runner's start and by a
    rebuild (which drops and makes it again); the other tables keep PostgreSQL's default."""
    fleet = build_fleet(postgres_settings)
    db = build_view_db(postgres_settings)
    try:
        runner = ViewRunner(fleet, db, [CustomersView()])
        assert groups_storage(db) == [(["fillfactor=50"],)]
        with db.transaction() as tx:
            tx.execute("ALTER TABLE pf_c_groups RESET (fillfactor)")
        runner.rebuild(runner.views[0])
        assert groups_storage(db) == [(["fillfactor=50"],)]
        with db.read() as tx:
            others = tx.query(
                "SELECT relname FROM pg_class WHERE left(relname, 5) = 'pf_c_' AND relkind = 'r'"
                " AND relnamespace = to_regnamespace(current_schema())"
                " AND reloptions IS NOT NULL"
            )
        assert others == [("pf_c_groups",)]
    finally:
        db.close()
        fleet.close()


def test_issue_11_a_rebuild_dying_in_its_last_batch_recount_leaves_nothing_of_that_batch(
    postgres_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Session 18: the last batch's recount (the in-place updates of every group) fails
    after its rows were written: the batch's transaction leaves nothing (counts 0, the
    position at the batch before, the mark kept), and the next catch-up ends equal to
    following 7 events at a time."""
    fleet = build_fleet(postgres_settings)
    db = build_view_db(postgres_settings)
    try:
        history(fleet, 300)
        live = ViewRunner(fleet, db, [CustomersView()], batch_size=7)
        live.catch_up()
        followed = dump(db, live.views[0])
        view = CustomersView()
        recount = view.finish_rebuild

        def dies_after_recount(tx: Any) -> None:
            recount(tx)
            if isinstance(tx, SetWrites):
                tx.flush()  # the recount reached the database, then the process dies
            raise Killed

        monkeypatch.setattr(view, "finish_rebuild", dies_after_recount)
        dying = ViewRunner(fleet, db, [view])
        dying.rebuild_batch_size = 100
        reached: list[int] = []
        with pytest.raises(Killed):
            dying.rebuild(dying.views[0], lambda position, _head: reached.append(position))
        assert dying.position(view) == reached[-1] < dying.head()
        with db.transaction() as tx:
            assert tx.query("SELECT direct_connect, pc_agent FROM pf_c_groups") == [(0, 0)]
            assert tx.query("SELECT view FROM pf_rebuilds") == [("customers",)]
        ViewRunner(fleet, db, [CustomersView()], batch_size=50).catch_up()
        assert dump(db, live.views[0]) == followed
        assert rebuilds_marked(db) == []
    finally:
        db.close()
        fleet.close()


def members_analyzed(db: ViewDB) -> int:
    """How many times pf_c_members of this test's schema was analyzed (by hand)."""
    with db.read() as tx:
        [(count,)] = tx.query(
            "SELECT analyze_count FROM pg_stat_user_tables"
            " WHERE relid = to_regclass('pf_c_members')"
        )
    return int(count)


class ReadingCustomersView(CustomersView):
    """The customers view as a view whose rebuild batches read its tables."""

    rebuild_reads: ClassVar[bool] = True


ReadingCustomersView._handlers = CustomersView._handlers  # a View's own methods only


def analyzed_after(batches: int) -> int:
    """How many times following analyzes a view's tables in `batches` batches."""
    return sum(1 for n in range(1, batches + 1) if n % 20 == 0 or n in (1, 4, 16))


@pytest.mark.parametrize("view_class", [CustomersView, ReadingCustomersView])
def test_issue_11_a_rebuild_analyzes_a_view_that_only_writes_once_at_its_end(
    postgres_settings: Settings, view_class: type[CustomersView]
) -> None:
    """Session 18: rebuilt in 60+ batches, the customers view (whose rebuild batches only
    write) has its tables analyzed once, after the last batch; a view whose batches read
    its tables still after batches 1, 4, 16 and every 20th. Rows equal following."""
    fleet = build_fleet(postgres_settings)
    db = build_view_db(postgres_settings)
    try:
        history(fleet, 300)
        live = ViewRunner(fleet, db, [CustomersView()], batch_size=7)
        live.catch_up()
        followed = dump(db, live.views[0])
        runner = ViewRunner(fleet, db, [view_class()])
        runner.rebuild_batch_size = 5
        batches: list[int] = []
        runner.rebuild(runner.views[0], lambda position, _head: batches.append(position))
        assert len(batches) >= 60
        reads = view_class.rebuild_reads
        assert members_analyzed(db) == (analyzed_after(len(batches)) if reads else 1)
        assert dump(db, runner.views[0]) == followed
    finally:
        db.close()
        fleet.close()
