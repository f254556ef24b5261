"""Issue 11: the pieces of the fast rebuild and export paths say the same as the slow ones."""

from __future__ import annotations

import csv
import gc
import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from domain import Cause, CustomerGroup, Device, PartnerTenant
from handlers import PartnerFleet
from infra.follow.set_writes import as_any, copy_rows, merged_update
from infra.follow.view_runner import ViewRunner
from infra.storage.viewdb import CopyingTx, SQLiteViewDB
from projections.consent import HISTORY_COLUMNS
from projections.consent_export import csv_lines, jsonl_lines
from projections.customers import CONNECTIONS, CustomersView
from tests.views import dump, rebuilds_marked


def test_issue_11_copy_rows_fill_in_literals_in_column_order() -> None:
    table, rows = copy_rows(
        "INSERT INTO pf_c_groups VALUES (?, ?, 'x', NULL, 0, ?)", [("a", 1, None), ("b", 2, "z")]
    ) or ("", [])
    assert table == "pf_c_groups"
    assert rows == [("a", 1, "x", None, 0, None), ("b", 2, "x", None, 0, "z")]


@pytest.mark.parametrize(
    ("statement", "rows"),
    [
        ("INSERT INTO t VALUES (?) ON CONFLICT (k) DO NOTHING", [("a",)]),
        ("INSERT INTO t (k) VALUES (?)", [("a",)]),
        ("UPDATE t SET v = ? WHERE k = ?", [(1, "a")]),
        ("INSERT INTO t VALUES (?, ?)", [("a", True)]),  # a bool is no integer column value
        ("INSERT INTO t VALUES (?, ?)", [("a", 1.5)]),
        ("INSERT INTO t VALUES (?, 'a, b')", [("a",)]),
        ("INSERT INTO t VALUES (?, ?)", [("a",)]),  # fewer values than placeholders
    ],
)
def test_issue_11_what_copy_cannot_say_is_sent_as_it_came(
    statement: str, rows: list[tuple[object, ...]]
) -> None:
    assert copy_rows(statement, rows) is None


def test_issue_11_in_lists_become_one_array_and_other_parameters_keep_their_place() -> None:
    statement, params = as_any(
        "SELECT a FROM t WHERE r = ? AND k IN (?, ?, ?) AND n IN (?) AND z = ?",
        ["r", "k1", "k2", "k3", 7, "z"],
    )
    assert statement == (
        "SELECT a FROM t WHERE r = ? AND k = ANY(?::text[]) AND n = ANY(?::bigint[]) AND z = ?"
    )
    assert params == ["r", ["k1", "k2", "k3"], [7], "z"]
    assert as_any("SELECT a FROM t WHERE k NOT IN (?, ?)", ["a", "b"])[1] == ["a", "b"]


RECORDS: list[dict[str, Any]] = [
    dict.fromkeys(HISTORY_COLUMNS, None)
    | {
        "position": 7,
        "device_id": 'd"1',
        "version": 2,
        "serial": "ÄB1",
        "reason": "signed, on\npaper",
        "kind": "consent",
    },
    dict.fromkeys(HISTORY_COLUMNS, "x") | {"position": 8, "corrects_version": 3},
]


def test_issue_11_r_con_4_jsonl_lines_are_json_dumps_with_sorted_keys() -> None:
    assert list(jsonl_lines(RECORDS)) == [json.dumps(r, sort_keys=True) + "\n" for r in RECORDS]


def test_issue_11_r_con_4_csv_lines_are_what_dictwriter_writes() -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in [*RECORDS, {"position": 9}]:
        writer.writerow(record)
    assert "".join(csv_lines([*RECORDS, {"position": 9}])) == out.getvalue()
    with pytest.raises(ValueError, match="not in fieldnames"):
        list(csv_lines([{"nope": 1}]))


def test_issue_11_group_counts_do_not_depend_on_where_batches_end() -> None:
    """A command saves the group's DeviceAdded before the devices' Registered: followed one
    event at a time or rebuilt in one batch, the group counts every device."""
    fleet = PartnerFleet(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    why = Cause("admin@loc-1.example", "corr-1")
    partner = PartnerTenant.register(why, "LOC-1", "Reseller")
    group = CustomerGroup.create(why, "LOC-1", "C1", "Customer One", ["admin@loc-1.example"])
    devices = []
    for n in range(5):
        device = Device.register(why, serial=f"S{n}", connection="direct_connect", customer_id="C1")
        device.link_partner(why, "LOC-1", "reseller", "reseller")
        group.add_device(why, f"S{n}", "reseller")
        devices.append(device)
    fleet.save(partner, group, *devices)
    runner = ViewRunner(fleet, SQLiteViewDB(":memory:"), [CustomersView()], batch_size=1)
    runner.catch_up()
    live = dump(runner.db, runner.views[0])
    assert live["pf_c_groups"][0][8:11] == (0, 5, 0)
    runner.rebuild(runner.views[0])
    assert dump(runner.db, runner.views[0]) == live


def test_issue_11_a_run_of_updates_on_distinct_keys_becomes_one_update_from_arrays() -> None:
    statement, params = merged_update(
        "UPDATE pf_c_groups SET pc_agent = ?, name = ? WHERE group_id = ?",
        [(1, None, "a"), (2, None, "b")],
    ) or ("", [])
    assert statement == (
        "UPDATE pf_c_groups SET pc_agent = u.c0, name = NULL FROM unnest(?::bigint[],"
        " ?::text[]) AS u(c0, c1) WHERE pf_c_groups.group_id = u.c1"
    )
    assert params == [[1, 2], ["a", "b"]]
    # the same key twice: the single UPDATEs' order would matter, so they stay single
    assert merged_update("UPDATE t SET v = ? WHERE k = ?", [(1, "a"), (2, "a")]) is None
    assert merged_update("UPDATE t SET v = v + ? WHERE k = ?", [(1, "a"), (2, "b")]) is None


class Killed(BaseException):
    """The process ending in the middle of a rebuild (not an error a view could isolate)."""


def dies_after(boundary: int) -> Callable[[int, int], None]:
    """A rebuild's progress callback: the process ends once a batch at or beyond
    `boundary` committed (before the head)."""

    def progress(position: int, head: int) -> None:
        if boundary <= position < head:
            raise Killed

    return progress


def group_fleet(devices: int) -> PartnerFleet:
    """A partner's group listing `devices` devices saved before the devices' own events."""
    fleet = PartnerFleet(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    why = Cause("admin@loc-1.example", "corr-2")
    partner = PartnerTenant.register(why, "LOC-1", "Reseller")
    partner.accredit_as_service_partner(why, "CSDP-1")
    group = CustomerGroup.create(why, "LOC-1", "C1", "Customer One", ["admin@loc-1.example"])
    saved = []
    for n in range(devices):
        connection = CONNECTIONS[n % 3]
        hosting = "H0" if connection == "central_connect" else None
        device = Device.register(
            why, serial=f"S{n}", connection=connection, customer_id="C1", hosting_serial=hosting
        )
        device.link_partner(why, "LOC-1", "service_partner", "service_partner")
        group.add_device(why, f"S{n}", "service_partner")
        saved.append(device)
    fleet.save(partner, group, *saved)
    for n, device in enumerate(saved[::2]):
        device.record_service_event(why, f"SE-{n}", "critical" if n % 2 else "info", "Fan")
    fleet.save(*saved)
    return fleet


def later_partner(fleet: PartnerFleet) -> None:
    """Another partner's group with a device: events that touch no group of LOC-1."""
    why = Cause("admin@loc-2.example", "corr-3")
    partner = PartnerTenant.register(why, "LOC-2", "Reseller")
    group = CustomerGroup.create(why, "LOC-2", "C2", "Customer Two", ["admin@loc-2.example"])
    device = Device.register(why, serial="T1", connection="pc_agent", customer_id="C2")
    device.link_partner(why, "LOC-2", "reseller", "reseller")
    group.add_device(why, "T1", "reseller")
    fleet.save(partner, group, device)


def test_issue_11_a_rebuild_leaves_counts_to_its_last_batch_and_ends_its_mark() -> None:
    """Rebuilt in batches of 4, the group is counted once, at the end, as following one
    event at a time counts it; no rebuild is left marked."""
    fleet = group_fleet(12)
    live = ViewRunner(fleet, SQLiteViewDB(":memory:"), [CustomersView()], batch_size=1)
    live.catch_up()
    rebuilt = ViewRunner(fleet, SQLiteViewDB(":memory:"), [CustomersView()])
    rebuilt.rebuild_batch_size = 4

    rebuilt.rebuild(rebuilt.views[0])

    followed = dump(live.db, live.views[0])
    assert followed["pf_c_groups"][0][8:] == (4, 4, 4, 6, 3)
    assert dump(rebuilt.db, rebuilt.views[0]) == followed
    assert rebuilds_marked(rebuilt.db) == []


def test_issue_11_a_rebuild_that_dies_midway_is_finished_by_the_next_catch_up() -> None:
    """The process ends after the batches of LOC-1's group: the view stays marked, the group
    not yet counted; the next runner (another process) goes on deferring and counts every
    group in the batch that reaches the head, exactly as following does (counting only
    the groups its own batches touch would leave LOC-1's at zero)."""
    fleet = group_fleet(12)
    boundary = fleet.recorder.max_notification_id() or 0
    later_partner(fleet)
    live = ViewRunner(fleet, SQLiteViewDB(":memory:"), [CustomersView()], batch_size=1)
    live.catch_up()
    db = SQLiteViewDB(":memory:")
    first = ViewRunner(fleet, db, [CustomersView()])
    first.rebuild_batch_size = 4

    with pytest.raises(Killed):
        first.rebuild(first.views[0], dies_after(boundary))
    with db.transaction() as tx:
        marked = tx.query("SELECT view FROM pf_rebuilds")
        counts = tx.query("SELECT central_connect, direct_connect, pc_agent FROM pf_c_groups")
    ViewRunner(fleet, db, [CustomersView()], batch_size=3).catch_up()

    assert marked == [("customers",)]
    assert set(counts) == {(0, 0, 0)}  # left to the rebuild's end (LOC-1's group too)
    followed = dump(live.db, live.views[0])
    assert sorted(g[8:11] for g in followed["pf_c_groups"]) == [(0, 0, 1), (4, 4, 4)]
    assert dump(db, first.views[0]) == followed
    assert rebuilds_marked(db) == []


def test_issue_11_only_a_view_database_that_can_copy_gets_set_writes() -> None:
    """SQLite's Tx has no COPY: the runner hands views the Tx itself there."""
    db = SQLiteViewDB(":memory:")
    with db.transaction() as tx:
        assert not isinstance(tx, CopyingTx)


def test_issue_11_a_rebuild_with_nothing_to_apply_leaves_no_mark() -> None:
    """An empty store: no batch reaches a head, the rebuild still ends its mark."""
    fleet = PartnerFleet(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    runner = ViewRunner(fleet, SQLiteViewDB(":memory:"), [CustomersView()])

    assert runner.rebuild(runner.views[0]) == 0

    assert rebuilds_marked(runner.db) == []


@pytest.mark.parametrize("enabled", [True, False])
def test_issue_11_a_rebuild_pauses_the_collector_and_leaves_it_as_it_was(enabled: bool) -> None:
    """The cyclic collector is off while the batches run, and afterwards as it was before
    (on or off), also when the rebuild dies midway; the rows are those of following."""
    fleet = group_fleet(12)
    live = ViewRunner(fleet, SQLiteViewDB(":memory:"), [CustomersView()], batch_size=1)
    live.catch_up()
    seen: list[bool] = []
    rebuilt = ViewRunner(fleet, SQLiteViewDB(":memory:"), [CustomersView()])
    rebuilt.rebuild_batch_size = 4
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        rebuilt.rebuild(rebuilt.views[0], lambda done, head: seen.append(gc.isenabled()))
        after = gc.isenabled()
        rows = dump(rebuilt.db, rebuilt.views[0])

        def dies(done: int, head: int) -> None:
            raise Killed

        with pytest.raises(Killed):
            rebuilt.rebuild(rebuilt.views[0], dies)
        after_death = gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()

    assert seen
    assert not any(seen)
    assert after is enabled
    assert after_death is enabled
    assert rows == dump(live.db, live.views[0])
