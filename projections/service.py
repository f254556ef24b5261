"""Service events (R-SVC-1, R-SVC-2) and service levels (R-SVC-3) of devices, per partner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar

from domain.base import NotAllowedError
from domain.device import Device
from domain.service_level import ServiceLevel, active_levels
from projections.base import MomentError, Tx, View, handles, iso, query_key, query_serial


class ServiceView(View):
    """Devices, their partner links, service events and service levels."""

    name: ClassVar[str] = "service"
    tables: ClassVar[tuple[str, ...]] = ("pf_s_devices", "pf_s_links", "pf_s_events", "pf_s_levels")
    ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS pf_s_devices (device_id TEXT PRIMARY KEY,"
        " serial TEXT NOT NULL UNIQUE, customer_id TEXT)",
        "CREATE TABLE IF NOT EXISTS pf_s_links (device_id TEXT NOT NULL, role TEXT NOT NULL,"
        " partner TEXT NOT NULL, PRIMARY KEY (device_id, role))",
        "CREATE INDEX IF NOT EXISTS pf_s_links_partner ON pf_s_links (partner, role)",
        "CREATE TABLE IF NOT EXISTS pf_s_events (device_id TEXT NOT NULL, event_id TEXT NOT NULL,"
        " severity TEXT NOT NULL, summary TEXT NOT NULL, recorded_at TEXT NOT NULL,"
        " PRIMARY KEY (device_id, event_id))",
        "CREATE TABLE IF NOT EXISTS pf_s_levels (device_id TEXT NOT NULL, kind TEXT NOT NULL,"
        " name TEXT NOT NULL, starts TEXT NOT NULL, ends TEXT NOT NULL,"
        " PRIMARY KEY (device_id, kind, name, starts, ends))",
    )

    @handles(Device.Registered, Device.ReportedByE2Open)
    def _device(self, tx: Tx, e: Device.Registered | Device.ReportedByE2Open) -> None:
        customer = e.customer_id if isinstance(e, Device.Registered) else e.end_customer
        tx.execute(
            "INSERT INTO pf_s_devices VALUES (?, ?, ?)", (str(e.originator_id), e.serial, customer)
        )

    @handles(Device.EnrolledWithCpin)
    def _enrolled(self, tx: Tx, e: Device.EnrolledWithCpin) -> None:
        tx.execute(
            "UPDATE pf_s_devices SET customer_id = ? WHERE device_id = ?",
            (e.customer_id, str(e.originator_id)),
        )

    @handles(Device.PartnerLinked)
    def _linked(self, tx: Tx, e: Device.PartnerLinked) -> None:
        tx.execute(
            "INSERT INTO pf_s_links VALUES (?, ?, ?)", (str(e.originator_id), e.role, e.location_id)
        )

    @handles(Device.PartnerUnlinked)
    def _unlinked(self, tx: Tx, e: Device.PartnerUnlinked) -> None:
        tx.execute(
            "DELETE FROM pf_s_links WHERE device_id = ? AND role = ?",
            (str(e.originator_id), e.role),
        )

    @handles(Device.ServiceEventRecorded)
    def _event(self, tx: Tx, e: Device.ServiceEventRecorded) -> None:
        tx.execute(
            "INSERT INTO pf_s_events VALUES (?, ?, ?, ?, ?)",
            (str(e.originator_id), e.event_id, e.severity, e.summary, iso(e.timestamp)),
        )

    @handles(Device.ServiceLevelAdded)
    def _level(self, tx: Tx, e: Device.ServiceLevelAdded) -> None:
        tx.execute(
            "INSERT INTO pf_s_levels VALUES (?, ?, ?, ?, ?)",
            (str(e.originator_id), e.kind, e.name, e.starts.isoformat(), e.ends.isoformat()),
        )


@dataclass(frozen=True)
class ServiceEvent:
    """One service event of a device (R-SVC-1)."""

    serial: str
    customer_id: str | None
    event_id: str
    severity: str
    summary: str
    recorded_at: str


@dataclass(frozen=True)
class ServiceSummary:
    """R-SVC-2: a customer's service events, critical ones counted separately."""

    customer_id: str
    events: int
    critical: int


def service_events(
    tx: Tx, partner: str, *, customer_id: str | None = None, serial: str | None = None
) -> list[ServiceEvent]:
    """R-SVC-1, R-SVC-2: events of devices whose service partner is `partner`, newest first."""
    where, params = ["l.partner = ?"], [query_key("partner", partner)]
    if customer_id is not None:
        where.append("d.customer_id = ?")
        params.append(query_key("customer_id", customer_id))
    if serial is not None:
        where.append("d.serial = ?")
        params.append(query_serial(serial))
    rows = tx.query(
        "SELECT d.serial, d.customer_id, e.event_id, e.severity, e.summary, e.recorded_at"
        " FROM pf_s_events e JOIN pf_s_devices d ON d.device_id = e.device_id"
        " JOIN pf_s_links l ON l.device_id = e.device_id AND l.role = 'service_partner'"
        f" WHERE {' AND '.join(where)} ORDER BY e.recorded_at DESC, e.event_id",
        params,
    )
    return [ServiceEvent(*row) for row in rows]


def service_summary(tx: Tx, partner: str) -> list[ServiceSummary]:
    """R-SVC-2: per customer, how many service events and how many of them critical."""
    rows = tx.query(
        "SELECT d.customer_id, count(*), sum(CASE WHEN e.severity = 'critical' THEN 1 ELSE 0 END)"
        " FROM pf_s_events e JOIN pf_s_devices d ON d.device_id = e.device_id"
        " JOIN pf_s_links l ON l.device_id = e.device_id AND l.role = 'service_partner'"
        " WHERE l.partner = ? GROUP BY d.customer_id ORDER BY d.customer_id",
        (query_key("partner", partner),),
    )
    return [ServiceSummary(str(c), int(n), int(k)) for c, n, k in rows]


def service_levels(
    tx: Tx, partner: str, serial: str, as_of: date, *, all_active: bool = False
) -> list[ServiceLevel]:
    """R-SVC-3: the highest active level on `as_of` (or all active ones) of a linked device.

    `as_of` is a calendar day; a datetime is refused (`MomentError`), as its day depends on
    a time zone only the caller knows.
    """
    if isinstance(as_of, datetime):
        raise MomentError(
            f"Service levels are valid per calendar day: pass {as_of.isoformat()} as the date "
            "it falls on where you mean it (moment.astimezone(zone).date()), not a datetime."
        )
    device, partner = query_serial(serial), query_key("partner", partner)
    linked = tx.query(
        "SELECT 1 FROM pf_s_links l JOIN pf_s_devices d ON d.device_id = l.device_id"
        " WHERE d.serial = ? AND l.partner = ?",
        (device, partner),
    )
    if not linked:
        raise NotAllowedError(f"Device {device} is not linked to partner {partner}.")
    rows = tx.query(
        "SELECT v.kind, v.name, v.starts, v.ends FROM pf_s_levels v"
        " JOIN pf_s_devices d ON d.device_id = v.device_id WHERE d.serial = ?",
        (device,),
    )
    levels = [
        ServiceLevel(k, n, date.fromisoformat(s), date.fromisoformat(e)) for k, n, s, e in rows
    ]
    active = active_levels(levels, as_of)
    return active if all_active else active[:1]
