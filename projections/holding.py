"""Holding tenants: unassigned PCs, rejected e2Open reports, missing-device requests (R-HLD-*)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

from domain.device import Device
from domain.intake import E2OpenBatch
from domain.partner import PartnerTenant
from projections.base import Tx, View, handles, iso, query_key


class HoldingView(View):
    """Where each HP PC is, what e2Open sent that was rejected, and open support requests."""

    name: ClassVar[str] = "holding"
    tables: ClassVar[tuple[str, ...]] = (
        "pf_h_partners",
        "pf_h_pcs",
        "pf_h_rejections",
        "pf_h_refused",
        "pf_h_requests",
    )
    ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS pf_h_partners (partner_id TEXT PRIMARY KEY,"
        " partner TEXT NOT NULL UNIQUE, holding_tenant_id TEXT)",
        "CREATE TABLE IF NOT EXISTS pf_h_pcs (device_id TEXT PRIMARY KEY, serial TEXT NOT NULL,"
        " model TEXT NOT NULL, placement TEXT, owner TEXT, distributor TEXT, ship_date TEXT,"
        " end_customer TEXT, care_plan TEXT)",
        "CREATE INDEX IF NOT EXISTS pf_h_pcs_placement ON pf_h_pcs (placement, serial)",
        "CREATE TABLE IF NOT EXISTS pf_h_rejections (batch_id TEXT NOT NULL, idx INTEGER NOT NULL,"
        " serial TEXT, reason TEXT NOT NULL, received_at TEXT NOT NULL,"
        " PRIMARY KEY (batch_id, idx))",
        # Deliveries refused because their batch id came before with other content; a table
        # of its own, as one batch id can have several refused deliveries (by fingerprint).
        "CREATE TABLE IF NOT EXISTS pf_h_refused (batch_id TEXT NOT NULL,"
        " fingerprint TEXT NOT NULL, idx INTEGER NOT NULL, serial TEXT, reason TEXT NOT NULL,"
        " received_at TEXT NOT NULL, PRIMARY KEY (batch_id, fingerprint, idx))",
        "CREATE TABLE IF NOT EXISTS pf_h_requests (partner_id TEXT NOT NULL,"
        " request_id TEXT NOT NULL, serials TEXT NOT NULL, opened_at TEXT NOT NULL,"
        " resolution TEXT, resolved_at TEXT, PRIMARY KEY (partner_id, request_id))",
    )

    @handles(PartnerTenant.Registered)
    def _partner(self, tx: Tx, e: PartnerTenant.Registered) -> None:
        tx.execute(
            "INSERT INTO pf_h_partners VALUES (?, ?, NULL)", (str(e.originator_id), e.location_id)
        )

    @handles(PartnerTenant.HoldingTenantCreated)
    def _tenant(self, tx: Tx, e: PartnerTenant.HoldingTenantCreated) -> None:
        tx.execute(
            "UPDATE pf_h_partners SET holding_tenant_id = ? WHERE partner_id = ?",
            (str(e.holding_tenant_id), str(e.originator_id)),
        )

    @handles(Device.ReportedByE2Open)
    def _landed(self, tx: Tx, e: Device.ReportedByE2Open) -> None:
        tx.execute(
            "INSERT INTO pf_h_pcs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(e.originator_id),
                e.serial,
                e.model,
                str(e.holding_tenant_id),
                e.reseller_location_id,
                e.distributor,
                e.ship_date.isoformat(),
                e.end_customer,
                e.care_plan,
            ),
        )

    @handles(Device.Registered)
    def _registered(self, tx: Tx, e: Device.Registered) -> None:
        if e.connection == "pc_agent":
            tx.execute(
                "INSERT INTO pf_h_pcs VALUES (?, ?, ?, NULL, NULL, NULL, NULL, ?, ?)",
                (str(e.originator_id), e.serial, e.model, e.customer_id, e.care_plan),
            )

    @handles(Device.DeviceTransferred)
    def _transferred(self, tx: Tx, e: Device.DeviceTransferred) -> None:
        tx.execute(
            "UPDATE pf_h_pcs SET placement = ? WHERE device_id = ?",
            (str(e.target_id), str(e.originator_id)),
        )

    @handles(Device.EnrolledWithCpin)
    def _enrolled(self, tx: Tx, e: Device.EnrolledWithCpin) -> None:
        tx.execute(
            "UPDATE pf_h_pcs SET placement = ?, owner = ? WHERE device_id = ?",
            (str(e.dashboard_id), e.location_id, str(e.originator_id)),
        )

    @handles(E2OpenBatch.Received)
    def _batch(self, tx: Tx, e: E2OpenBatch.Received) -> None:
        rows = [
            (e.batch_id, r["index"], r["serial"], r["reason"], iso(e.timestamp)) for r in e.rejected
        ]
        tx.executemany("INSERT INTO pf_h_rejections VALUES (?, ?, ?, ?, ?)", rows)

    @handles(E2OpenBatch.DeliveryRefused)
    def _refused(self, tx: Tx, e: E2OpenBatch.DeliveryRefused) -> None:
        at = iso(e.timestamp)
        rows = [
            (e.batch_id, e.fingerprint, r["index"], r["serial"], r["reason"], at)
            for r in e.rejected
        ]
        tx.executemany("INSERT INTO pf_h_refused VALUES (?, ?, ?, ?, ?, ?)", rows)

    @handles(PartnerTenant.MissingDevicesReported)
    def _missing(self, tx: Tx, e: PartnerTenant.MissingDevicesReported) -> None:
        tx.execute(
            "INSERT INTO pf_h_requests VALUES (?, ?, ?, ?, NULL, NULL)",
            (str(e.originator_id), e.request_id, json.dumps(e.serials), iso(e.timestamp)),
        )

    @handles(PartnerTenant.MissingDevicesResolved)
    def _resolved(self, tx: Tx, e: PartnerTenant.MissingDevicesResolved) -> None:
        tx.execute(
            "UPDATE pf_h_requests SET resolution = ?, resolved_at = ?"
            " WHERE partner_id = ? AND request_id = ?",
            (e.resolution, iso(e.timestamp), str(e.originator_id), e.request_id),
        )


@dataclass(frozen=True)
class UnassignedDevice:
    """A PC waiting in the holding tenant (R-HLD-1)."""

    serial: str
    model: str
    distributor: str
    ship_date: str
    end_customer: str | None
    care_plan: str


@dataclass(frozen=True)
class RejectedReport:
    """An e2Open report kept as rejected, with its reason (R-HLD-1)."""

    batch_id: str
    index: int
    serial: str | None
    reason: str
    received_at: str


@dataclass(frozen=True)
class MissingDeviceRequest:
    """An open support request for PCs missing from the holding tenant (R-HLD-2)."""

    request_id: str
    serials: list[str]
    opened_at: str


def unassigned_devices(
    tx: Tx, partner: str, *, after: str = "", limit: int = 100
) -> list[UnassignedDevice]:
    """R-HLD-1: the PCs in the partner's holding tenant, by serial (keyset `after`)."""
    rows = tx.query(
        "SELECT c.serial, c.model, c.distributor, c.ship_date, c.end_customer, c.care_plan"
        " FROM pf_h_pcs c JOIN pf_h_partners p ON p.holding_tenant_id = c.placement"
        " WHERE p.partner = ? AND c.serial > ? ORDER BY c.serial LIMIT ?",
        (query_key("partner", partner), after, limit),
    )
    return [UnassignedDevice(*row) for row in rows]


def rejected_reports(tx: Tx, *, batch_id: str | None = None) -> list[RejectedReport]:
    """R-HLD-1: every rejected report with its reason (of one batch, or all), oldest first.

    Reports of a refused delivery (its batch id came before with other content) are listed
    too, each with that reason, after the batch's first delivery.
    """
    where, params = ("", ()) if not batch_id else ("WHERE batch_id = ?", (_batch(batch_id),))
    columns = "batch_id, idx, serial, reason, received_at"
    rows = tx.query(
        f"SELECT {columns} FROM pf_h_rejections {where}"
        f" UNION ALL SELECT {columns} FROM pf_h_refused {where}"
        " ORDER BY received_at, batch_id, idx",
        params * 2,
    )
    return [RejectedReport(*row) for row in rows]


def _batch(batch_id: str) -> str:
    return query_key("batch_id", batch_id)


def open_missing_device_requests(tx: Tx, partner: str) -> list[MissingDeviceRequest]:
    """R-HLD-2: the partner's support requests not resolved yet."""
    rows = tx.query(
        "SELECT r.request_id, r.serials, r.opened_at FROM pf_h_requests r"
        " JOIN pf_h_partners p ON p.partner_id = r.partner_id"
        " WHERE p.partner = ? AND r.resolution IS NULL ORDER BY r.opened_at, r.request_id",
        (query_key("partner", partner),),
    )
    return [MissingDeviceRequest(i, json.loads(s), o) for i, s, o in rows]
