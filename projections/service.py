"""Service events (R-SVC-1, R-SVC-2) and service levels (R-SVC-3) of devices, per partner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar

from domain.base import Msg, NotFoundError
from domain.device import Device
from domain.service_level import ServiceLevel, active_levels
from handlers.access import PartnerScope
from projections.base import (
    MomentError,
    Tx,
    View,
    handles,
    iso,
    missing_device,
    query_key,
    query_serial,
)
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
        # Newest first without sorting all of a big partner's events (docs/benchmarks.md).
        "CREATE INDEX IF NOT EXISTS pf_s_events_recorded ON pf_s_events (recorded_at, event_id)",
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
    """One service event of a device (R-SVC-1); its key is `(recorded_at, event_id, serial)`."""

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


SERVICE_LINK = "JOIN pf_s_links l ON l.device_id = d.device_id AND l.role = 'service_partner'"
EVENT_KEY = ("e.recorded_at", "e.event_id", "d.serial")


def service_events(
    tx: Tx,
    scope: PartnerScope,
    *,
    customer_id: str | None = None,
    serial: str | None = None,
    after: Key | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[ServiceEvent]:
    """R-SVC-1, R-SVC-2: events of the devices linked to this partner as their service
    partner, newest first, before `(recorded_at, event_id, serial)` (the key of the last
    row of the page before).

    `ForbiddenError` unless the partner is a service partner. A device or customer with no
    device linked to it as service partner is "not found" (`NotFoundError`), as an unknown
    one is.
    """
    scope.require_service_partner()
    limit = checked_limit(limit)
    conditions, params = ["l.partner = ?"], [scope.location_id]
    if customer_id is not None:
        conditions.append("d.customer_id = ?")
        params.append(_serviced_customer(tx, scope, customer_id))
    if serial is not None:
        conditions.append("d.serial = ?")
        params.append(_serviced_device(tx, scope, serial))
    conditions.append(before_clause(EVENT_KEY, after, (str, str, str)))
    rows = tx.query(
        "SELECT d.serial, d.customer_id, e.event_id, e.severity, e.summary, e.recorded_at"
        f" FROM pf_s_events e JOIN pf_s_devices d ON d.device_id = e.device_id {SERVICE_LINK}"
        f"{where(*conditions)} ORDER BY {', '.join(k + ' DESC' for k in EVENT_KEY)} LIMIT ?",
        [*params, *key_params(after), limit + 1],
    )
    found = [ServiceEvent(*row) for row in rows]
    return page_of(found, limit, lambda e: (e.recorded_at, e.event_id, e.serial))


def _serviced_device(tx: Tx, scope: PartnerScope, serial: str) -> str:
    """The serial, if the device is linked to the partner as service partner; else the
    "not found" of an unknown device (R-SVC-1: a reseller link is not enough)."""
    device = query_serial(serial)
    linked = tx.query(
        f"SELECT 1 FROM pf_s_devices d {SERVICE_LINK} WHERE d.serial = ? AND l.partner = ?",
        (device, scope.location_id),
    )
    if not linked:
        raise missing_device(device)
    return device


def _serviced_customer(tx: Tx, scope: PartnerScope, customer_id: str) -> str:
    customer = query_key("customer_id", customer_id)
    linked = tx.query(
        f"SELECT 1 FROM pf_s_devices d {SERVICE_LINK} WHERE d.customer_id = ? AND l.partner = ?",
        (customer, scope.location_id),
    )
    if not linked:
        raise NotFoundError(Msg("No customer {customer!r} found.", customer=customer))
    return customer


def service_summary(
    tx: Tx, scope: PartnerScope, *, after: Key | None = None, limit: int = DEFAULT_LIMIT
) -> Page[ServiceSummary]:
    """R-SVC-2: per customer (by id, after `(customer_id,)`), how many service events the
    devices serviced by this partner have, and how many of them are critical.

    `ForbiddenError` unless the partner is a service partner (R-SVC-1). PCs reported
    without an end customer count under customer id "".
    """
    scope.require_service_partner()
    limit = checked_limit(limit)
    customer = "COALESCE(d.customer_id, '')"
    rows = tx.query(
        f"SELECT {customer}, count(*),"
        " sum(CASE WHEN e.severity = 'critical' THEN 1 ELSE 0 END)"
        f" FROM pf_s_events e JOIN pf_s_devices d ON d.device_id = e.device_id {SERVICE_LINK}"
        f"{where('l.partner = ?', after_clause([customer], after, (str,)))}"
        f" GROUP BY {customer} ORDER BY {customer} LIMIT ?",
        [scope.location_id, *key_params(after), limit + 1],
    )
    found = [ServiceSummary(str(c), int(n), int(k)) for c, n, k in rows]
    return page_of(found, limit, lambda s: (s.customer_id,))


def service_levels(
    tx: Tx, scope: PartnerScope, serial: str, as_of: date, *, all_active: bool = False
) -> list[ServiceLevel]:
    """R-SVC-3: the highest active level on `as_of` (or all active ones) of a device linked
    to this partner as its service partner (R-SVC-1).

    `ForbiddenError` unless the partner is a service partner; a device not linked to it as
    service partner is "not found". `as_of` is a calendar day; a datetime is refused
    (`MomentError`), as its day depends on a time zone only the caller knows.
    """
    scope.require_service_partner()
    if isinstance(as_of, datetime):
        raise MomentError(
            Msg(
                "Service levels are valid per calendar day: pass {day} as "
                "the date it falls on where you mean it "
                "(moment.astimezone(zone).date()), not a datetime.",
                day=as_of.isoformat(),
            )
        )
    device = _serviced_device(tx, scope, serial)
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
