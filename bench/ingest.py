"""`ingest.e2open` (issue 11): an e2Open delivery into stored events, beside PostgreSQL COPY.

Ours: one `receive_e2open_batch` command (the fleet's real intake command, called as the
HTTP intake calls it: the reports as JSON values, no fingerprint) of `scale.of(100_000)`
fixed-seed reports (`reports`) of 20 certified resellers, each repetition a fresh
delivery (its own batch id and serials) into the same store, timed from the call to its
return (validation, R-HLD-1 checks, events, the one transaction). Unit: devices/s.

Baseline ("PostgreSQL COPY, same rows"): binary COPY, in one transaction, of as many rows
as the delivery stores (one per device, plus the batch's) into a table of the events
table's shape (same columns, primary key and notification id index) in the same schema,
growing over the repetitions as the events table does. The rows are the stored events of
the same reports, encoded by the fleet's own mapper beforehand (untimed), so both write
the same bytes. Run alone: `python -m bench.ingest [--scale 0.1] [--profile FILE]`.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import time
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid5

import psycopg
from psycopg import sql

from bench.common import (
    PG_CONNINFO,
    fresh_schema,
    open_fleet,
    postgres_env,
    quiet_logging,
)
from bench.metrics import Metric, Scale, alternate, from_samples, positive_float, positive_int, rng
from bench.write_path import events_like_table
from domain.device import Device
from domain.intake import E2OpenBatch, E2OpenReport
from domain.partner import PartnerTenant
from handlers import PartnerFleet
from handlers.access import Role, service_actor

FULL_BATCH = 100_000
RESELLERS = 20
BASELINE = "PostgreSQL COPY, same rows"
MODELS = (
    "HP EliteBook 840 G11",
    "HP EliteBook 860 G11",
    "HP ProBook 450 G10",
    "HP ZBook Firefly 14 G11",
    "HP Elite Mini 800 G9",
    "HP EliteDesk 800 G9 SFF",
    "HP Dragonfly G4",
)
DISTRIBUTORS = ("Ingram Micro", "TD SYNNEX", "Also Holding", "Exclusive Networks", "Esprinet")
CUSTOMERS = ("Acme Corp", "Globex GmbH", "Initech Ltd", "Umbrella SE", "Stark Industries")
SERIAL_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def reseller(index: int) -> str:
    """Location ID of the `index`th certified bench reseller."""
    return f"PLINGEST{index:03d}"


def reports(count: int, delivery: int) -> list[dict[str, Any]]:
    """`count` valid e2Open reports as JSON values (fixed seed per delivery): HP serials,
    models, distributors and ship dates of the last 90 days; a fifth name their end
    customer, a quarter carry Premium+ care."""
    draw = rng(f"ingest.e2open:{delivery}")
    shipped = date(2026, 9, 1)
    out: list[dict[str, Any]] = []
    for index in range(count):
        tail = "".join(draw.choices(SERIAL_ALPHABET, k=4))
        report: dict[str, Any] = {
            "serial": f"5CG{delivery:02d}{index:06d}{tail}",
            "model": draw.choice(MODELS),
            "reseller_location_id": reseller(draw.randrange(RESELLERS)),
            "distributor": draw.choice(DISTRIBUTORS),
            "ship_date": (shipped + timedelta(days=draw.randrange(90))).isoformat(),
        }
        if draw.random() < 0.2:
            report["end_customer"] = draw.choice(CUSTOMERS)
        if draw.random() < 0.25:
            report["care_plan"] = "premium_plus"
        out.append(report)
    return out


def certify_resellers(fleet: PartnerFleet) -> None:
    """Register and certify the resellers (each gets a holding tenant)."""
    ops = service_actor("ops@bench.example", Role.OPERATOR, correlation_id="bench-ingest-setup")
    for index in range(RESELLERS):
        location = reseller(index)
        fleet.register_partner(ops, location, f"Ingest Bench Reseller {index}")
        fleet.register_partner_user(ops, location, f"admin@{location.lower()}.example")
        fleet.certify_partner(ops, location, "resell_view_monitor")


Row = tuple[UUID, int, str, bytes]


def stored_rows(fleet: PartnerFleet, delivery: list[dict[str, Any]]) -> list[Row]:
    """The rows the delivery stores (a device's event each, then the batch's), encoded by the
    fleet's mapper without saving them: the COPY baseline writes the same bytes."""
    feed = service_actor("feed:e2open", Role.FEED, correlation_id="bench-rows")
    holding: dict[str, UUID] = {}
    for index in range(RESELLERS):
        partner: PartnerTenant = fleet.repository.get(PartnerTenant.id_for(reseller(index)))
        assert partner.holding_tenant_id is not None  # certified: it has a holding tenant
        holding[reseller(index)] = partner.holding_tenant_id
    events: list[Any] = []
    serials: list[str] = []
    for raw in delivery:
        report = E2OpenReport.model_validate(raw)
        device = Device.land_in_holding_tenant(
            feed, holding[report.reseller_location_id], **report.model_dump()
        )
        events.extend(device.collect_events())
        serials.append(report.serial)
    batch = E2OpenBatch.receive(feed, "rows", serials, [], "sha256:" + "0" * 64)
    events.extend(batch.collect_events())
    out: list[Row] = []
    for event in events:
        stored = fleet.mapper.to_stored_event(event)
        aggregate_id = UUID(str(stored.originator_id))
        out.append((aggregate_id, stored.originator_version, stored.topic, stored.state))
    return out


def copy_rows(conn: psycopg.Connection[Any], table: sql.Composed, rows: Sequence[Row]) -> None:
    """All rows in one transaction with binary COPY."""
    statement = sql.SQL(
        "COPY {} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
    ).format(table)
    with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(["uuid", "int8", "text", "bytea"])
        for row in rows:
            copy.write_row(row)


def fresh_serials(rows: Sequence[Row], delivery: int) -> Iterator[Row]:
    """The rows with ids of their own per repetition (the primary key allows each once)."""
    namespace = UUID(int=delivery + 1)
    for row in rows:
        yield (uuid5(namespace, str(row[0])), row[1], row[2], row[3])


def measure(scale: Scale, profile: str | None = None) -> Metric:
    """`ingest.e2open`: ours beside COPY, alternating, median of the repetitions."""
    quiet_logging()
    size = scale.of(FULL_BATCH, floor=100)
    with fresh_schema() as schema, open_fleet(postgres_env(schema)) as fleet:
        certify_resellers(fleet)
        deliveries = [reports(size, d) for d in range(scale.repetitions + 1)]
        template = stored_rows(fleet, deliveries[-1])
        copies = [list(fresh_serials(template, d)) for d in range(scale.repetitions)]
        feed = service_actor("feed:e2open", Role.FEED, correlation_id="bench-ingest")
        rows_stored: list[int] = []

        def ours(index: int) -> float:
            before = fleet.recorder.max_notification_id() or 0
            gc.collect()
            started = time.perf_counter()
            outcome = fleet.receive_e2open_batch(feed, f"bench-ingest-{index}", deliveries[index])
            seconds = time.perf_counter() - started
            if len(outcome.accepted) != size:
                raise RuntimeError(f"{len(outcome.rejected)} rejected: {outcome.rejected[:3]}")
            rows_stored.append((fleet.recorder.max_notification_id() or 0) - before)
            return size / seconds

        with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
            table = events_like_table(conn, schema, "bench_copy")

            def baseline(index: int) -> float:
                gc.collect()
                started = time.perf_counter()
                copy_rows(conn, table, copies[index])
                return size / (time.perf_counter() - started)

            mine, theirs = alternate(ours, baseline, scale.repetitions)
        if profile:
            profiler = cProfile.Profile()
            profiler.runcall(
                fleet.receive_e2open_batch, feed, "bench-ingest-profile", deliveries[-1]
            )
            profiler.dump_stats(profile)
    return from_samples(
        "ingest.e2open",
        "devices/s",
        mine,
        baseline=(BASELINE, theirs),
        detail={
            "devices": size,
            "rows_per_batch": rows_stored,
            "resellers": RESELLERS,
            "call": "fleet.receive_e2open_batch(feed, batch_id, reports) as the HTTP intake",
        },
    )


def metrics(scale: Scale) -> list[Metric]:
    """The suite's entry point (bench/suite.py REGISTRY "ingest")."""
    return [measure(scale)]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the metric alone and print it."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument(
        "--scale", type=positive_float, default=0.1, help="1.0 is the suite's full size"
    )
    parser.add_argument("--repetitions", type=positive_int, default=3)
    parser.add_argument("--profile", help="also cProfile one more batch into this file")
    args = parser.parse_args(argv)
    metric = measure(Scale(args.scale, args.repetitions), args.profile)
    print(metric.as_json())


if __name__ == "__main__":
    main()
