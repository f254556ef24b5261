"""Repair queues and alert notifications: where the policies sent each case and alert (R-ALR-*).

One queue per destination of R-ALR-2: `hp_customer_support`, `hpe_support`, and one
`csdp:<account>` queue per service partner. Cases submitted but not routed yet (the routing
policy is behind) are listed apart, so none is ever invisible. An end user reads the
pop-ups of the PCs it works on (`end_user_pcs`), with the PCs' models from the My IT
Environment view beside it in the same view database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from domain.base import Msg, NotFoundError
from domain.device import Device
from handlers.access import EndUserScope, OperatorScope, PartnerScope
from projections.base import Tx, View, handles, iso, placeholders, query_key, query_serial
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


class RepairQueuesView(View):
    """Repair cases by destination queue, and alerts by who was told of them."""

    name: ClassVar[str] = "repairs"
    tables: ClassVar[tuple[str, ...]] = ("pf_r_devices", "pf_r_alerts", "pf_r_cases")
    ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS pf_r_devices (device_id TEXT PRIMARY KEY,"
        " serial TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS pf_r_alerts (device_id TEXT NOT NULL, alert_id TEXT NOT NULL,"
        " severity TEXT NOT NULL, message TEXT NOT NULL, raised_at TEXT NOT NULL,"
        " audience TEXT, partner TEXT, reason TEXT, notified_at TEXT,"
        " PRIMARY KEY (device_id, alert_id))",
        "CREATE INDEX IF NOT EXISTS pf_r_alerts_audience"
        " ON pf_r_alerts (audience, partner, notified_at)",
        "CREATE TABLE IF NOT EXISTS pf_r_cases (device_id TEXT NOT NULL, case_id TEXT NOT NULL,"
        " alert_id TEXT NOT NULL, source TEXT NOT NULL, submitted_at TEXT NOT NULL,"
        " destination TEXT, partner TEXT, reason TEXT, routed_at TEXT,"
        " PRIMARY KEY (device_id, case_id))",
        "CREATE INDEX IF NOT EXISTS pf_r_cases_destination"
        " ON pf_r_cases (destination, routed_at, case_id)",
    )

    @handles(Device.Registered, Device.ReportedByE2Open)
    def _device(self, tx: Tx, e: Device.Registered | Device.ReportedByE2Open) -> None:
        tx.execute("INSERT INTO pf_r_devices VALUES (?, ?)", (str(e.originator_id), e.serial))

    @handles(Device.AlertRaised)
    def _raised(self, tx: Tx, e: Device.AlertRaised) -> None:
        tx.execute(
            "INSERT INTO pf_r_alerts VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, NULL)",
            (str(e.originator_id), e.alert_id, e.severity, e.message, iso(e.timestamp)),
        )

    @handles(Device.AlertNotified)
    def _notified(self, tx: Tx, e: Device.AlertNotified) -> None:
        tx.execute(
            "UPDATE pf_r_alerts SET audience = ?, partner = ?, reason = ?, notified_at = ?"
            " WHERE device_id = ? AND alert_id = ?",
            (
                e.audience,
                e.location_id,
                e.reason,
                iso(e.timestamp),
                str(e.originator_id),
                e.alert_id,
            ),
        )

    @handles(Device.RepairCaseSubmitted)
    def _submitted(self, tx: Tx, e: Device.RepairCaseSubmitted) -> None:
        tx.execute(
            "INSERT INTO pf_r_cases VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, NULL)",
            (str(e.originator_id), e.case_id, e.alert_id, e.source, iso(e.timestamp)),
        )

    @handles(Device.RepairCaseRouted)
    def _routed(self, tx: Tx, e: Device.RepairCaseRouted) -> None:
        tx.execute(
            "UPDATE pf_r_cases SET destination = ?, partner = ?, reason = ?, routed_at = ?"
            " WHERE device_id = ? AND case_id = ?",
            (
                e.destination,
                e.location_id,
                e.reason,
                iso(e.timestamp),
                str(e.originator_id),
                e.case_id,
            ),
        )


@dataclass(frozen=True)
class QueuedRepairCase:
    """A repair case in a destination's queue (R-ALR-2), with why it was routed there."""

    serial: str
    case_id: str
    alert_id: str
    source: str
    partner: str | None
    reason: str
    routed_at: str


@dataclass(frozen=True)
class PendingRepairCase:
    """A submitted repair case the routing policy has not decided on yet."""

    serial: str
    case_id: str
    alert_id: str
    source: str
    submitted_at: str


@dataclass(frozen=True)
class AlertNotification:
    """An alert and who was told of it (R-ALR-1, R-ALR-4), with why."""

    serial: str
    alert_id: str
    severity: str
    message: str
    partner: str | None
    reason: str
    notified_at: str


CASE_COLUMNS = "d.serial, c.case_id, c.alert_id, c.source"
FROM_CASES = "FROM pf_r_cases c JOIN pf_r_devices d ON d.device_id = c.device_id"
ROUTED_KEY = ("c.routed_at", "c.case_id", "d.serial")


def repair_queue(
    tx: Tx,
    scope: OperatorScope,
    destination: str,
    *,
    after: Key | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[QueuedRepairCase]:
    """R-ALR-2: for HP/HPE operations, the cases routed to one destination queue, oldest
    first, after `(routed_at, case_id, serial)`."""
    return _routed(tx, "c.destination = ?", query_key("destination", destination), after, limit)


def csdp_queue(
    tx: Tx, scope: PartnerScope, *, after: Key | None = None, limit: int = DEFAULT_LIMIT
) -> Page[QueuedRepairCase]:
    """R-ALR-2: the cases routed to this service partner's CSDP account, oldest first,
    after `(routed_at, case_id, serial)`; `ForbiddenError` for a reseller (R-SVC-1)."""
    scope.require_service_partner()
    # Only a case routed to a CSDP account names a partner (handlers/policies.py).
    return _routed(tx, "c.partner = ?", scope.location_id, after, limit)


def _routed(
    tx: Tx, condition: str, value: str, after: Key | None, limit: int
) -> Page[QueuedRepairCase]:
    limit = checked_limit(limit)
    after_sql = after_clause(ROUTED_KEY, after, (str, str, str))
    rows = tx.query(
        f"SELECT {CASE_COLUMNS}, c.partner, c.reason, c.routed_at {FROM_CASES}"
        f"{where(condition, after_sql)} ORDER BY {', '.join(ROUTED_KEY)} LIMIT ?",
        (value, *key_params(after), limit + 1),
    )
    found = [QueuedRepairCase(*row) for row in rows]
    return page_of(found, limit, lambda c: (c.routed_at, c.case_id, c.serial))


def unrouted_repair_cases(
    tx: Tx, scope: OperatorScope, *, after: Key | None = None, limit: int = DEFAULT_LIMIT
) -> Page[PendingRepairCase]:
    """For HP/HPE operations: submitted cases no queue holds yet (the routing policy is
    behind), oldest first, after `(submitted_at, case_id, serial)`."""
    limit = checked_limit(limit)
    key = ("c.submitted_at", "c.case_id", "d.serial")
    after_sql = after_clause(key, after, (str, str, str))
    rows = tx.query(
        f"SELECT {CASE_COLUMNS}, c.submitted_at {FROM_CASES}"
        f"{where('c.destination IS NULL', after_sql)} ORDER BY {', '.join(key)} LIMIT ?",
        (*key_params(after), limit + 1),
    )
    found = [PendingRepairCase(*row) for row in rows]
    return page_of(found, limit, lambda c: (c.submitted_at, c.case_id, c.serial))


def alert_notifications(
    tx: Tx,
    scope: PartnerScope | OperatorScope,
    *,
    audience: str | None = None,
    partner: str | None = None,
    after: Key | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[AlertNotification]:
    """R-ALR-1, R-ALR-4: alerts and who was told of them, oldest first, after
    `(notified_at, alert_id, serial)`.

    A partner (`PartnerScope`) reads the alerts told to it (audience "partner"); HP/HPE
    operations (`OperatorScope`) read every audience ("end_user", "partner",
    "hpe_support", …), or one, of every partner or of `partner`.
    """
    limit = checked_limit(limit)
    key = ("a.notified_at", "a.alert_id", "d.serial")
    conditions, params = ["a.notified_at IS NOT NULL"], []
    if isinstance(scope, PartnerScope):
        if partner is not None and query_key("partner", partner) != scope.location_id:
            raise NotFoundError(
                Msg("No partner with Location ID {partner!r} found.", partner=partner)
            )
        conditions.append("a.partner = ?")
        params.append(scope.location_id)
    elif partner is not None:
        conditions.append("a.partner = ?")
        params.append(query_key("partner", partner))
    if audience is not None:
        conditions.append("a.audience = ?")
        params.append(query_key("audience", audience))
    conditions.append(after_clause(key, after, (str, str, str)))
    rows = tx.query(
        "SELECT d.serial, a.alert_id, a.severity, a.message, a.partner, a.reason, a.notified_at"
        " FROM pf_r_alerts a JOIN pf_r_devices d ON d.device_id = a.device_id"
        f"{where(*conditions)} ORDER BY {', '.join(key)} LIMIT ?",
        (*params, *key_params(after), limit + 1),
    )
    found = [AlertNotification(*row) for row in rows]
    return page_of(found, limit, lambda a: (a.notified_at, a.alert_id, a.serial))


@dataclass(frozen=True)
class PopUp:
    """R-ALR-1: an alert told to a PC's end user as a self-service pop-up (UTC text times),
    with the repair case submitted from it (`case_id` None: none yet) and the queue the
    case was routed to (`routed_to` None: not routed yet, R-ALR-2)."""

    serial: str
    alert_id: str
    severity: str
    message: str
    notified_at: str
    case_id: str | None
    routed_to: str | None


@dataclass(frozen=True)
class EndUserPC:
    """A PC an end user works on: serial, model, and its pop-ups, newest first."""

    serial: str
    model: str
    pop_ups: list[PopUp]


def end_user_pcs(tx: Tx, scope: EndUserScope, *, limit: int = DEFAULT_LIMIT) -> list[EndUserPC]:
    """R-ALR-1, R-ALR-4: the PCs of the end user (`scope.pcs`), by serial, with the newest
    `limit` (1…200) pop-ups told to their end user; two queries however many PCs.

    A PC is the end user's while it is its customer's, or no customer's yet (an unassigned
    PC in a holding tenant), as `handlers.holding.device_for` lets it submit cases; a PC
    of another customer the token names is left out. Alerts told to the partner only
    (self-service off, R-ALR-4) are not pop-ups. `QueryError` for a bad `limit`.
    """
    limit = checked_limit(limit)
    serials = sorted({query_serial(pc) for pc in scope.pcs})
    if not serials:
        return []
    pcs = tx.query(
        "SELECT device_id, serial, model FROM pf_e_devices"
        f" WHERE serial IN ({placeholders(serials)})"
        " AND (customer_id = ? OR customer_id IS NULL) ORDER BY serial",
        (*serials, scope.customer_id),
    )
    pop_ups = _pop_ups(tx, [row[0] for row in pcs], limit)
    return [
        EndUserPC(serial, model, [p for p in pop_ups if p.serial == serial])
        for _, serial, model in pcs
    ]


def _pop_ups(tx: Tx, device_ids: list[str], limit: int) -> list[PopUp]:
    if not device_ids:
        return []
    rows = tx.query(
        "SELECT d.serial, a.alert_id, a.severity, a.message, a.notified_at, c.case_id,"
        " c.destination FROM pf_r_alerts a JOIN pf_r_devices d ON d.device_id = a.device_id"
        " LEFT JOIN pf_r_cases c ON c.device_id = a.device_id AND c.alert_id = a.alert_id"
        f" WHERE a.device_id IN ({placeholders(device_ids)}) AND a.audience = 'end_user'"
        " ORDER BY a.notified_at DESC, a.alert_id DESC LIMIT ?",
        (*device_ids, limit),
    )
    return [PopUp(*row) for row in rows]
