"""`replay.consent` (issue 11): an auditor's full consent-history export, events/s.

The history: one customer (`AUDIT-BIG`) with `Scale.of(100,000)` devices, each linked to a
reseller and then granted, withdrawn and granted again in turn: 10 consent and link
records a device, 1,000,000 at full size (100,000 quick); and a customer a tenth of that
size (`AUDIT-SMALL`) for the memory check. The events are encoded once per customer by the
domain and the application's mapper (one device's history), copied per device with its
own serial and id, and COPYed into the events table; the consent view is then rebuilt
from them by ViewRunner (seeding: not measured).

Ours: the export `partnerfleet audit consent --output FILE` writes
(`projections.consent_export.export_batches` in one read-model transaction, written by
`encoded(…, "jsonl")` a batch of rows at a time) of the big customer's whole history, to a
file: records/s. Baseline: a raw read of the same rows, the export's own SELECT
through a psycopg server-side cursor, tuples discarded. Memory: each export of the two
customers runs once more in a child process of its own; its peak RSS is in `detail`
(flat in the size of the history: the same peak for 10x the records).
Run alone with `python -m bench.replay [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from bench.common import (
    PG_CONNINFO,
    fresh_schema,
    open_fleet,
    postgres_env,
    quiet_logging,
    say,
)
from bench.metrics import Metric, Scale, alternate, from_samples, peak_rss_mb, positive_int
from domain import Cause, Device
from domain.consent import CURRENT_CONSENT_TEXT
from handlers import PartnerFleet
from handlers.access import Role, audit_scope, make_actor
from infra.follow.view_runner import ViewRunner
from infra.storage.viewdb import PostgresViewDB
from projections.consent import ConsentView
from projections.consent_export import encoded, export_batches
from projections.consent_queries import Selection, history_statement

BIG, SMALL = "AUDIT-BIG", "AUDIT-SMALL"
RESELLER = "PLAUDIT01"
RECORDS_PER_DEVICE = 10  # a link, then grants and withdrawals in turn
COPY_ROWS = 50_000  # rows per COPY transaction while seeding
ITERSIZE = 10_000  # rows a FETCH of the raw read brings


def scope() -> Any:
    """The auditor's scope, as the access layer hands it to an export."""
    return audit_scope(make_actor("auditor@example.com", Role.AUDITOR))


def device_history(fleet: PartnerFleet, customer: str, serial: str) -> list[StoredEvent]:
    """One device's events, encoded: registered, linked, then consent in turn."""
    why = Cause(f"it@{customer.lower()}.example", f"bench-replay-{customer}")
    device = Device.register(why, serial=serial, connection="direct_connect", customer_id=customer)
    device.link_partner(why, RESELLER, "reseller", "reseller")
    for turn in range(RECORDS_PER_DEVICE - 1):
        if turn % 2 == 0:
            device.grant_consent(why, CURRENT_CONSENT_TEXT)
        else:
            device.withdraw_consent(why)
    return [fleet.mapper.to_stored_event(e) for e in device.collect_events()]


def serial_of(customer: str, index: int) -> str:
    """The `index`th device's serial (all of one customer's the same length)."""
    return f"{customer[6]}{index:08d}"


def seed(fleet: PartnerFleet, customer: str, devices: int) -> int:
    """COPY `devices` device histories of `customer` into the events table; events."""
    template = device_history(fleet, customer, serial_of(customer, 0))
    marker = serial_of(customer, 0).encode()
    recorder: Any = fleet.recorder
    table = sql.SQL("{}.{}").format(
        sql.Identifier(recorder.datastore.schema), sql.Identifier(recorder.events_table_name)
    )
    copy = sql.SQL("COPY {} (originator_id, originator_version, topic, state) FROM STDIN").format(
        table
    )
    written = 0
    with psycopg.connect(PG_CONNINFO) as conn:
        for start in range(0, devices, COPY_ROWS // len(template)):
            stop = min(devices, start + COPY_ROWS // len(template))
            with conn.cursor() as cursor, cursor.copy(copy) as rows:
                for index in range(start, stop):
                    serial = serial_of(customer, index)
                    device_id: UUID = Device.id_for(serial)
                    named = serial.encode()
                    for event in template:
                        state = event.state.replace(marker, named)
                        rows.write_row((device_id, event.originator_version, event.topic, state))
                        written += 1
            conn.commit()
        conn.execute(sql.SQL("ANALYZE {}").format(table))
        conn.commit()
    return written


def build_view(fleet: PartnerFleet, schema: str) -> int:
    """The consent view rebuilt from the seeded events; view events applied."""
    db = PostgresViewDB(PG_CONNINFO, schema)
    try:
        runner = ViewRunner(fleet, db, [ConsentView()])
        started = time.perf_counter()
        applied = runner.rebuild(runner.view(ConsentView.name))
        seconds = time.perf_counter() - started
    finally:
        db.close()
    say(f"consent view: {applied:,} events in {seconds:.1f} s ({applied / seconds:,.0f}/s)")
    return applied


def export(schema: str, customer: str, out: Path) -> int:
    """The auditor's export of `customer`'s whole history to `out` (JSON Lines); records."""
    db = PostgresViewDB(PG_CONNINFO, schema)
    count = 0
    try:
        with db.transaction() as tx, out.open("w", encoding="utf-8", newline="") as file:
            for chunk in encoded(
                export_batches(tx, scope(), Selection(customer_id=customer)), "jsonl"
            ):
                file.write(chunk.text)
                count += chunk.records
    finally:
        db.close()
    return count


def raw_read(schema: str, customer: str) -> int:
    """The export's own SELECT through a server-side cursor, rows discarded; rows read."""
    db = PostgresViewDB(PG_CONNINFO, schema)
    try:
        with db.transaction() as tx:
            statement, params = history_statement(tx, scope(), Selection(customer_id=customer))
    finally:
        db.close()
    text = f"{statement} AND h.position > ? ORDER BY h.position".replace("?", "%s")
    count = 0
    with psycopg.connect(PG_CONNINFO) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        with conn.cursor(name="raw_read") as cursor:
            cursor.itersize = ITERSIZE
            cursor.execute(text, [*params, 0])
            for _ in cursor:
                count += 1
    return count


def rate(work: Any, label: str, cpu: list[float] | None = None) -> float:
    """Records/s of one run of `work` (returning records); the run's CPU seconds (this
    process, every thread) per 100,000 records are appended to `cpu`."""
    started, cpu_started = time.perf_counter(), time.process_time()
    records = work()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    per_100k = cpu_seconds * 100_000 / max(records, 1)
    say(
        f"{label}: {records:,} records in {seconds:.2f} s = {records / seconds:,.0f}/s,"
        f" client CPU {cpu_seconds:.2f} s ({per_100k:.2f} s per 100,000)"
    )
    if cpu is not None:
        cpu.append(per_100k)
    return float(records / seconds)


def child_peak(schema: str, customer: str) -> dict[str, float]:
    """The export of `customer` in a fresh process: its records/s and peak RSS (MB)."""
    command = [sys.executable, "-m", "bench.replay", "--child-export", schema, customer]
    root = Path(__file__).resolve().parent.parent  # `bench` is imported from the checkout
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=root)
    body: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return body


def child_export(schema: str, customer: str) -> None:
    """In the child: one export to a temporary file; prints records, rate and peak RSS."""
    quiet_logging()
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        records = export(schema, customer, Path(folder) / "export.jsonl")
        seconds = time.perf_counter() - started
    body = {"records": records, "per_second": records / seconds, "peak_rss_mb": own_peak_mb()}
    print(json.dumps(body))


def own_peak_mb() -> float:
    """This process's own peak resident memory in MB (10^6 B): Linux's VmHWM, which starts
    afresh at exec. `ru_maxrss` keeps the peak of the image before exec, so a child spawned
    by a large parent reported the parent's size (issue 11, session 16); elsewhere that."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return peak_rss_mb()
    [kib] = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    return round(int(kib) * 1024 / 1e6, 1)


def metrics(scale: Scale) -> Metric:
    """`replay.consent`: the export vs a raw read of its rows, alternating."""
    quiet_logging()
    devices = scale.of(100_000, floor=100)
    small = max(10, devices // 10)
    with (
        fresh_schema() as schema,
        open_fleet(postgres_env(schema)) as fleet,
        tempfile.TemporaryDirectory() as folder,
    ):
        started = time.perf_counter()
        stored = seed(fleet, BIG, devices) + seed(fleet, SMALL, small)
        say(f"seeded {stored:,} events in {time.perf_counter() - started:.1f} s")
        build_view(fleet, schema)
        out = Path(folder) / "export.jsonl"
        cpu_mine: list[float] = []
        cpu_theirs: list[float] = []
        mine, theirs = alternate(
            lambda _: rate(lambda: export(schema, BIG, out), "export", cpu_mine),
            lambda _: rate(lambda: raw_read(schema, BIG), "raw read", cpu_theirs),
            scale.repetitions,
        )
        size = out.stat().st_size
        peaks = {SMALL: child_peak(schema, SMALL), BIG: child_peak(schema, BIG)}
    return from_samples(
        "replay.consent",
        "events/s",
        mine,
        baseline=("raw read of the same rows (server-side cursor)", theirs),
        detail={
            "records": devices * RECORDS_PER_DEVICE,
            "stored_events": stored,
            "export_bytes": size,
            "format": "jsonl",
            "client_cpu_s_per_100k": {
                "export": round(statistics.median(cpu_mine), 3),
                "raw_read": round(statistics.median(cpu_theirs), 3),
            },
            "child_exports": {
                f"{p['records']:,.0f} records": {
                    "per_second": round(p["per_second"]),
                    "peak_rss_mb": p["peak_rss_mb"],
                }
                for p in peaks.values()
            },
        },
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the metric alone and print it (or, as a child, one export)."""
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the size")
    parser.add_argument("--repetitions", type=positive_int, default=3)
    parser.add_argument("--child-export", nargs=2, metavar=("SCHEMA", "CUSTOMER"))
    args = parser.parse_args(argv)
    if args.child_export:
        child_export(*args.child_export)
        return
    metric = metrics(Scale(0.1 if args.quick else 1.0, args.repetitions))
    print(json.dumps(metric.as_json(), indent=2))


if __name__ == "__main__":
    main()
