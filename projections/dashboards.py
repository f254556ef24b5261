"""Customer dashboards of HP Premium partners: their PCs, and the transfers between a
partner's holding tenant and its dashboards (R-HLD-3, R-ALR-3, R-ALR-4).

A view of its own (not columns of `holding` or `customers`), so it catches up from the
whole history on a store that ran before it existed, without a rebuild of the others. It
keeps its own copy of the facts it needs (a PC's care plan and placement, a dashboard's
name and notification setting), as every view does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from domain.customer_group import CustomerGroup
from domain.device import Device
from domain.partner import PartnerTenant
from domain.text import fold
from handlers.access import PartnerScope
from projections.base import Tx, View, handles, iso, placeholders
from projections.paging import (
    DEFAULT_LIMIT,
    Key,
    Page,
    after_clause,
    before_clause,
    checked_limit,
    key_params,
    page_of,
    where,
)


class DashboardsView(View):
    """Dashboards per partner, PCs per tenant (holding tenant or dashboard), transfers."""

    name: ClassVar[str] = "dashboards"
    tables: ClassVar[tuple[str, ...]] = (
        "pf_d_partners",
        "pf_d_groups",
        "pf_d_pcs",
        "pf_d_transfers",
        "pf_d_moved",
    )
    ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS pf_d_partners (partner_id TEXT PRIMARY KEY,"
        " partner TEXT NOT NULL, holding_tenant_id TEXT)",
        "CREATE TABLE IF NOT EXISTS pf_d_groups (group_id TEXT PRIMARY KEY,"
        " partner TEXT NOT NULL, customer_id TEXT NOT NULL, name TEXT NOT NULL,"
        " search_name TEXT NOT NULL, is_dashboard INTEGER NOT NULL,"
        " notifications INTEGER NOT NULL, deleted INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS pf_d_groups_page ON pf_d_groups"
        " (partner, is_dashboard, deleted, search_name, group_id)",
        "CREATE TABLE IF NOT EXISTS pf_d_pcs (device_id TEXT PRIMARY KEY, serial TEXT NOT NULL,"
        " model TEXT NOT NULL, care_plan TEXT, placement TEXT, partner TEXT)",
        "CREATE INDEX IF NOT EXISTS pf_d_pcs_placement ON pf_d_pcs (placement, serial)",
        "CREATE TABLE IF NOT EXISTS pf_d_transfers (partner TEXT NOT NULL,"
        " transfer_id TEXT NOT NULL, source_id TEXT NOT NULL, target_id TEXT NOT NULL,"
        " at TEXT NOT NULL, PRIMARY KEY (partner, transfer_id, source_id, target_id))",
        "CREATE INDEX IF NOT EXISTS pf_d_transfers_at ON pf_d_transfers (partner, at)",
        "CREATE TABLE IF NOT EXISTS pf_d_moved (partner TEXT NOT NULL, transfer_id TEXT NOT NULL,"
        " source_id TEXT NOT NULL, target_id TEXT NOT NULL, device_id TEXT NOT NULL,"
        " PRIMARY KEY (partner, transfer_id, source_id, target_id, device_id))",
    )

    @handles(PartnerTenant.Registered)
    def _partner(self, tx: Tx, e: PartnerTenant.Registered) -> None:
        tx.execute(
            "INSERT INTO pf_d_partners VALUES (?, ?, NULL)", (str(e.originator_id), e.location_id)
        )

    @handles(PartnerTenant.HoldingTenantCreated)
    def _tenant(self, tx: Tx, e: PartnerTenant.HoldingTenantCreated) -> None:
        tx.execute(
            "UPDATE pf_d_partners SET holding_tenant_id = ? WHERE partner_id = ?",
            (str(e.holding_tenant_id), str(e.originator_id)),
        )

    @handles(CustomerGroup.Created)
    def _group(self, tx: Tx, e: CustomerGroup.Created) -> None:
        tx.execute(
            "INSERT INTO pf_d_groups VALUES (?, ?, ?, ?, ?, 0, 0, 0)",
            (
                str(e.originator_id),
                e.partner_location_id,
                e.customer_id,
                e.customer_name,
                fold(e.customer_name),
            ),
        )

    @handles(CustomerGroup.CustomerDashboardCreated)
    def _dashboard(self, tx: Tx, e: CustomerGroup.CustomerDashboardCreated) -> None:
        self._set(tx, e, "is_dashboard", 1)

    @handles(CustomerGroup.SelfServiceNotificationsSwitched)
    def _notifications(self, tx: Tx, e: CustomerGroup.SelfServiceNotificationsSwitched) -> None:
        self._set(tx, e, "notifications", int(e.on))

    @handles(CustomerGroup.Deleted)
    def _deleted(self, tx: Tx, e: CustomerGroup.Deleted) -> None:
        self._set(tx, e, "deleted", 1)

    @handles(CustomerGroup.Reopened)
    def _reopened(self, tx: Tx, e: CustomerGroup.Reopened) -> None:
        if e.customer_name is None:  # a version 1 re-opening kept what the group held
            self._set(tx, e, "deleted", 0)
            return
        tx.execute(
            "UPDATE pf_d_groups SET deleted = 0, is_dashboard = 0, notifications = 0,"
            " name = ?, search_name = ? WHERE group_id = ?",
            (e.customer_name, fold(e.customer_name), str(e.originator_id)),
        )

    @staticmethod
    def _set(tx: Tx, e: CustomerGroup.Event, column: str, value: int) -> None:
        tx.execute(
            f"UPDATE pf_d_groups SET {column} = ? WHERE group_id = ?", (value, str(e.originator_id))
        )

    @handles(Device.ReportedByE2Open)
    def _landed(self, tx: Tx, e: Device.ReportedByE2Open) -> None:
        tx.execute(
            "INSERT INTO pf_d_pcs VALUES (?, ?, ?, ?, ?, ?)",
            (
                str(e.originator_id),
                e.serial,
                e.model,
                e.care_plan,
                str(e.holding_tenant_id),
                e.reseller_location_id,
            ),
        )

    @handles(Device.Registered)
    def _registered(self, tx: Tx, e: Device.Registered) -> None:
        if e.connection == "pc_agent":
            tx.execute(
                "INSERT INTO pf_d_pcs VALUES (?, ?, ?, ?, NULL, NULL)",
                (str(e.originator_id), e.serial, e.model, e.care_plan),
            )

    @handles(Device.EnrolledWithCpin)
    def _enrolled(self, tx: Tx, e: Device.EnrolledWithCpin) -> None:
        tx.execute(
            "UPDATE pf_d_pcs SET placement = ?, partner = ? WHERE device_id = ?",
            (str(e.dashboard_id), e.location_id, str(e.originator_id)),
        )

    @handles(Device.DeviceTransferred)
    def _transferred(self, tx: Tx, e: Device.DeviceTransferred) -> None:
        device_id = str(e.originator_id)
        # Only the PC's partner transfers it (Device.transfer): the placement's owner.
        owner = tx.query("SELECT partner FROM pf_d_pcs WHERE device_id = ?", (device_id,))
        partner = str(owner[0][0]) if owner and owner[0][0] is not None else ""
        key = (partner, e.transfer_id, str(e.source_id), str(e.target_id))
        tx.execute(
            "INSERT INTO pf_d_transfers VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (partner, transfer_id, source_id, target_id) DO NOTHING",
            (*key, iso(e.timestamp)),
        )
        tx.execute(
            "INSERT INTO pf_d_moved VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (partner, transfer_id, source_id, target_id, device_id) DO NOTHING",
            (*key, device_id),
        )
        tx.execute(
            "UPDATE pf_d_pcs SET placement = ? WHERE device_id = ?",
            (str(e.target_id), device_id),
        )


@dataclass(frozen=True)
class DashboardPC:
    """A PC placed in a customer dashboard (by transfer or cPIN enrolment, R-HLD-3)."""

    serial: str
    model: str
    care_plan: str | None


@dataclass(frozen=True)
class CustomerDashboard:
    """One of the partner's customer dashboards (R-HLD-3): its self-service notification
    setting (R-ALR-3, R-ALR-4), how many PCs it holds and how many of them are HP
    Premium/Premium+ (R-ALR-4: notifications can be switched off only with one or more).
    `pcs` is filled by `dashboard_pcs` (empty from `customer_dashboards`)."""

    dashboard_id: str
    customer_id: str
    name: str
    self_service_notifications: bool
    pc_count: int
    premium_count: int
    pcs: list[DashboardPC] = field(default_factory=list)

    @property
    def may_switch_off(self) -> bool:
        """R-ALR-4: at least one Premium/Premium+ PC is in the dashboard."""
        return self.premium_count > 0


@dataclass(frozen=True)
class TransferRecord:
    """A transfer the partner made (R-HLD-3): one source, one target, its PCs by serial.

    `source_name` / `target_name` are a dashboard's customer name, or None for the holding
    tenant. `reversible`: every PC of it is still in its target, so a transfer back (the
    same PCs, target to source) would be accepted as far as placement goes."""

    transfer_id: str
    source_id: str
    target_id: str
    source_name: str | None
    target_name: str | None
    at: str
    serials: list[str]
    reversible: bool


DASHBOARD_KEY = ("g.search_name", "g.group_id")


def customer_dashboards(
    tx: Tx, scope: PartnerScope, *, after: Key | None = None, limit: int = DEFAULT_LIMIT
) -> Page[CustomerDashboard]:
    """R-HLD-3, R-ALR-4: the partner's own customer dashboards (not deleted) by customer
    name, after `(folded name, dashboard id)`, with their counts of PCs and of Premium
    PCs; QueryError for a bad `limit` or `after`. One query."""
    limit = checked_limit(limit)
    after_sql = after_clause(DASHBOARD_KEY, after, (str, str))
    rows = tx.query(
        "SELECT g.group_id, g.customer_id, g.name, g.notifications, g.search_name,"
        " (SELECT count(*) FROM pf_d_pcs p WHERE p.placement = g.group_id),"
        " (SELECT count(*) FROM pf_d_pcs p WHERE p.placement = g.group_id"
        " AND p.care_plan IS NOT NULL) FROM pf_d_groups g"
        f"{where('g.partner = ? AND g.is_dashboard = 1 AND g.deleted = 0', after_sql)}"
        f" ORDER BY {', '.join(DASHBOARD_KEY)} LIMIT ?",
        (scope.location_id, *key_params(after), limit + 1),
    )
    keys = {str(r[0]): (str(r[4]), str(r[0])) for r in rows}
    found = [
        CustomerDashboard(str(g), str(c), str(n), bool(on), int(pcs), int(premium))
        for g, c, n, on, _, pcs, premium in rows
    ]
    return page_of(found, limit, lambda d: keys[d.dashboard_id])


def dashboard_pcs(
    tx: Tx, scope: PartnerScope, dashboards: list[CustomerDashboard]
) -> list[CustomerDashboard]:
    """R-HLD-3: `dashboards` (of `customer_dashboards` under the same scope) with their PCs
    by serial, in one query; PCs of another partner's dashboard are never read."""
    if not dashboards:
        return []
    ids = [d.dashboard_id for d in dashboards]
    rows = tx.query(
        "SELECT p.placement, p.serial, p.model, p.care_plan FROM pf_d_pcs p"
        " JOIN pf_d_groups g ON g.group_id = p.placement"
        f" WHERE g.partner = ? AND p.placement IN ({placeholders(ids)}) ORDER BY p.serial",
        (scope.location_id, *ids),
    )
    pcs: dict[str, list[DashboardPC]] = {i: [] for i in ids}
    for placement, serial, model, care_plan in rows:
        pcs[str(placement)].append(DashboardPC(serial, model, care_plan))
    return [
        CustomerDashboard(
            d.dashboard_id,
            d.customer_id,
            d.name,
            d.self_service_notifications,
            d.pc_count,
            d.premium_count,
            pcs[d.dashboard_id],
        )
        for d in dashboards
    ]


TRANSFER_KEY = ("t.at", "t.transfer_id", "t.source_id", "t.target_id")


def transfers(
    tx: Tx, scope: PartnerScope, *, after: Key | None = None, limit: int = DEFAULT_LIMIT
) -> Page[TransferRecord]:
    """R-HLD-3: the partner's transfers, newest first, before `(at, transfer id, source id,
    target id)`, each with its PCs and whether it can be reversed; two queries."""
    limit = checked_limit(limit)
    before_sql = before_clause(TRANSFER_KEY, after, (str, str, str, str))
    rows = tx.query(
        "SELECT t.transfer_id, t.source_id, t.target_id, s.name, g.name, t.at"
        " FROM pf_d_transfers t LEFT JOIN pf_d_groups s ON s.group_id = t.source_id"
        " LEFT JOIN pf_d_groups g ON g.group_id = t.target_id"
        f"{where('t.partner = ?', before_sql)}"
        f" ORDER BY {' DESC, '.join(TRANSFER_KEY)} DESC LIMIT ?",
        (scope.location_id, *key_params(after), limit + 1),
    )
    moved = _moved(tx, scope, [str(r[0]) for r in rows[:limit]])
    found = []
    for transfer_id, source, target, source_name, target_name, at in rows:
        pcs = moved.get((transfer_id, source, target), [])
        found.append(
            TransferRecord(
                transfer_id,
                source,
                target,
                source_name,
                target_name,
                at,
                [serial for serial, _ in pcs],
                bool(pcs) and all(placement == target for _, placement in pcs),
            )
        )
    return page_of(found, limit, lambda t: (t.at, t.transfer_id, t.source_id, t.target_id))


def _moved(
    tx: Tx, scope: PartnerScope, transfer_ids: list[str]
) -> dict[tuple[str, str, str], list[tuple[str, str | None]]]:
    """Per transfer: the serial and the current placement of each PC it moved."""
    if not transfer_ids:
        return {}
    unique = sorted(set(transfer_ids))
    rows = tx.query(
        "SELECT m.transfer_id, m.source_id, m.target_id, p.serial, p.placement"
        " FROM pf_d_moved m JOIN pf_d_pcs p ON p.device_id = m.device_id"
        f" WHERE m.partner = ? AND m.transfer_id IN ({placeholders(unique)}) ORDER BY p.serial",
        (scope.location_id, *unique),
    )
    moved: dict[tuple[str, str, str], list[tuple[str, str | None]]] = {}
    for transfer_id, source, target, serial, placement in rows:
        moved.setdefault((transfer_id, source, target), []).append((serial, placement))
    return moved
