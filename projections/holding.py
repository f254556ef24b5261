"""Holding tenants: unassigned PCs, rejected e2Open reports, missing-device requests (R-HLD-*)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

from domain.base import Msg
from domain.device import Device
from domain.intake import E2OpenBatch
from domain.partner import PartnerTenant
from handlers.access import OperatorScope, PartnerScope
from projections.base import QueryError, Tx, View, handles, iso, query_key
from projections.paging import (
    DEFAULT_LIMIT,
    Key,
    Page,
    after_clause,
    checked_limit,
    key_params,
    page_of,
    where,
)


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
    """A PC waiting in the holding tenant (R-HLD-1); its key is `(serial,)`."""

    serial: str
    model: str
    distributor: str
    ship_date: str
    end_customer: str | None
    care_plan: str


@dataclass(frozen=True)
class RejectedReport:
    """An e2Open report kept as rejected, with its reason (R-HLD-1).

    `fingerprint` is "" for a batch's first delivery and the refused delivery's content
    fingerprint otherwise; the key is `(received_at, batch_id, fingerprint, index)`.
    """

    batch_id: str
    index: int
    serial: str | None
    reason: str
    received_at: str
    fingerprint: str = ""


@dataclass(frozen=True)
class MissingDeviceRequest:
    """An open support request for PCs missing from the holding tenant (R-HLD-2).

    `location_id` is the partner's; the key is `(opened_at, location_id, request_id)`.
    """

    request_id: str
    serials: list[str]
    opened_at: str
    location_id: str = ""


def unassigned_devices(
    tx: Tx, scope: PartnerScope, *, after: Key | None = None, limit: int = DEFAULT_LIMIT
) -> Page[UnassignedDevice]:
    """R-HLD-1, R-PAR-4: the PCs in the partner's own holding tenant, by serial, after
    `(serial,)`; QueryError for a bad `limit` or `after`, and QueryError with rule R-PAR-4
    when the partner has no holding tenant (not certified for HP Premium/Premium+ yet):
    "none yet" is not "empty"."""
    limit = checked_limit(limit)
    tenant = tx.query(
        "SELECT holding_tenant_id FROM pf_h_partners WHERE partner = ?", (scope.location_id,)
    )
    if not tenant or tenant[0][0] is None:
        raise QueryError(
            Msg(
                "Partner {location_id} has no holding tenant: it is not certified for HP "
                "Premium/Premium+ yet.",
                location_id=scope.location_id,
            ),
            rule="R-PAR-4",
        )
    after_sql = after_clause(["c.serial"], after, (str,))
    rows = tx.query(  # the tenant found above: no second join on the partners table
        "SELECT c.serial, c.model, c.distributor, c.ship_date, c.end_customer, c.care_plan"
        f" FROM pf_h_pcs c{where('c.placement = ?', after_sql)} ORDER BY c.serial LIMIT ?",
        (tenant[0][0], *key_params(after), limit + 1),
    )
    return page_of([UnassignedDevice(*row) for row in rows], limit, lambda d: (d.serial,))


REJECTED_COLUMNS = ("received_at", "batch_id", "fingerprint", "idx")


def rejected_reports(
    tx: Tx,
    scope: OperatorScope,
    *,
    batch_id: str | None = None,
    after: Key | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[RejectedReport]:
    """R-HLD-1: for HP/HPE operations, every rejected report with its reason (of one
    batch, or all), oldest first, after `(received_at, batch_id, fingerprint, index)`.

    Reports of a refused delivery (its batch id came before with other content) are listed
    too, each with that reason, after the batch's first delivery.
    """
    limit = checked_limit(limit)
    after_sql = after_clause(REJECTED_COLUMNS, after, (str, str, str, int))
    of_batch = "" if not batch_id else "batch_id = ?"
    params = () if not batch_id else (_batch(batch_id),)
    rows = tx.query(
        "SELECT batch_id, idx, serial, reason, received_at, fingerprint FROM ("
        "SELECT batch_id, idx, serial, reason, received_at, '' AS fingerprint"
        " FROM pf_h_rejections UNION ALL"
        " SELECT batch_id, idx, serial, reason, received_at, fingerprint FROM pf_h_refused"
        f") r{where(of_batch, after_sql)} ORDER BY {', '.join(REJECTED_COLUMNS)} LIMIT ?",
        (*params, *key_params(after), limit + 1),
    )
    return page_of([RejectedReport(*row) for row in rows], limit, _rejected_key)


def _rejected_key(r: RejectedReport) -> Key:
    return (r.received_at, r.batch_id, r.fingerprint, r.index)


def _batch(batch_id: str) -> str:
    return query_key("batch_id", batch_id)


def open_missing_device_requests(
    tx: Tx,
    scope: PartnerScope | OperatorScope,
    *,
    after: Key | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[MissingDeviceRequest]:
    """R-HLD-2: support requests not resolved yet, oldest first, after `(opened_at,
    location_id, request_id)`: the partner's own (`PartnerScope`), or every partner's for
    HP/HPE operations (`OperatorScope`)."""
    limit = checked_limit(limit)
    after_sql = after_clause(["r.opened_at", "p.partner", "r.request_id"], after, (str,) * 3)
    own = "p.partner = ?" if isinstance(scope, PartnerScope) else ""
    params = (scope.location_id,) if isinstance(scope, PartnerScope) else ()
    rows = tx.query(
        "SELECT r.request_id, r.serials, r.opened_at, p.partner FROM pf_h_requests r"
        " JOIN pf_h_partners p ON p.partner_id = r.partner_id"
        f"{where('r.resolution IS NULL', own, after_sql)}"
        " ORDER BY r.opened_at, p.partner, r.request_id LIMIT ?",
        (*params, *key_params(after), limit + 1),
    )
    found = [MissingDeviceRequest(i, json.loads(s), o, p) for i, s, o, p in rows]
    return page_of(found, limit, lambda r: (r.opened_at, r.location_id, r.request_id))
