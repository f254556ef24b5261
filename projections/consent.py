"""Consent history for auditors and configuration-data access for partners (R-CON-2…4).

Every grant, withdrawal, correction, link and unlink of a device is kept as one row, in
the device's own order, never updated. Whether consent was in effect for device D and
partner P at time T is answered by replaying those rows up to T.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from domain.device import Device
from projections.base import Tx, View, handles, iso

HISTORY_COLUMNS = (
    "device_id",
    "version",
    "at",
    "serial",
    "customer_id",
    "kind",
    "action",
    "partner",
    "role",
    "text_version",
    "text_digest",
    "scope",
    "reason",
    "corrects_version",
    "principal",
    "correlation_id",
)


class ConsentView(View):
    """Consent and link history per device, and the latest configuration data."""

    name: ClassVar[str] = "consent"
    tables: ClassVar[tuple[str, ...]] = ("pf_k_devices", "pf_k_history", "pf_k_config")
    ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS pf_k_devices (device_id TEXT PRIMARY KEY,"
        " serial TEXT NOT NULL UNIQUE, customer_id TEXT)",
        "CREATE TABLE IF NOT EXISTS pf_k_history (device_id TEXT NOT NULL,"
        " version INTEGER NOT NULL, at TEXT NOT NULL, serial TEXT NOT NULL, customer_id TEXT,"
        " kind TEXT NOT NULL, action TEXT NOT NULL, partner TEXT, role TEXT,"
        " text_version TEXT, text_digest TEXT, scope TEXT, reason TEXT,"
        " corrects_version INTEGER, principal TEXT NOT NULL, correlation_id TEXT NOT NULL,"
        " PRIMARY KEY (device_id, version))",
        "CREATE INDEX IF NOT EXISTS pf_k_history_customer ON pf_k_history (customer_id)",
        "CREATE INDEX IF NOT EXISTS pf_k_history_partner ON pf_k_history (partner)",
        "CREATE TABLE IF NOT EXISTS pf_k_config (device_id TEXT PRIMARY KEY, data TEXT NOT NULL,"
        " collected_at TEXT NOT NULL)",
    )

    def __init__(self) -> None:
        # device id -> (serial, customer): what every history row repeats. Derived from the
        # events alone, so keeping it across batches (or a rolled-back batch) is harmless.
        self._devices: dict[str, tuple[str, str | None]] = {}

    @handles(Device.Registered, Device.ReportedByE2Open)
    def _device(self, tx: Tx, e: Device.Registered | Device.ReportedByE2Open) -> None:
        customer = e.customer_id if isinstance(e, Device.Registered) else e.end_customer
        self._devices[str(e.originator_id)] = (e.serial, customer)
        tx.execute(
            "INSERT INTO pf_k_devices VALUES (?, ?, ?)", (str(e.originator_id), e.serial, customer)
        )

    @handles(Device.EnrolledWithCpin)
    def _enrolled(self, tx: Tx, e: Device.EnrolledWithCpin) -> None:
        device_id = str(e.originator_id)
        self._devices[device_id] = (self._device_of(tx, device_id)[0], e.customer_id)
        tx.execute(
            "UPDATE pf_k_devices SET customer_id = ? WHERE device_id = ?",
            (e.customer_id, device_id),
        )

    def _device_of(self, tx: Tx, device_id: str) -> tuple[str, str | None]:
        found = self._devices.get(device_id)
        if found is None:
            [(serial, customer)] = tx.query(
                "SELECT serial, customer_id FROM pf_k_devices WHERE device_id = ?", (device_id,)
            )
            found = self._devices[device_id] = (serial, customer)
        return found

    @handles(Device.ConsentGranted)
    def _granted(self, tx: Tx, e: Device.ConsentGranted) -> None:
        self._record(
            tx,
            e,
            "consent",
            "granted",
            text_version=e.text_version,
            text_digest=e.text_digest,
            scope=e.scope,
        )

    @handles(Device.ConsentWithdrawn)
    def _withdrawn(self, tx: Tx, e: Device.ConsentWithdrawn) -> None:
        self._record(tx, e, "consent", "withdrawn", text_version=e.text_version, scope=e.scope)

    @handles(Device.ConsentCorrected)
    def _corrected(self, tx: Tx, e: Device.ConsentCorrected) -> None:
        self._record(
            tx,
            e,
            "consent",
            "corrected",
            text_version=e.text_version,
            reason=e.reason,
            corrects_version=e.corrects_version,
        )

    @handles(Device.PartnerLinked)
    def _linked(self, tx: Tx, e: Device.PartnerLinked) -> None:
        self._record(tx, e, "link", "linked", partner=e.location_id, role=e.role)

    @handles(Device.PartnerUnlinked)
    def _unlinked(self, tx: Tx, e: Device.PartnerUnlinked) -> None:
        self._record(tx, e, "link", "unlinked", partner=e.location_id, role=e.role)

    @handles(Device.ConfigurationCollected)
    def _configuration(self, tx: Tx, e: Device.ConfigurationCollected) -> None:
        tx.execute(
            "INSERT INTO pf_k_config VALUES (?, ?, ?) ON CONFLICT (device_id) DO UPDATE"
            " SET data = excluded.data, collected_at = excluded.collected_at",
            (str(e.originator_id), json.dumps(e.data, sort_keys=True), iso(e.timestamp)),
        )

    def _record(self, tx: Tx, e: Device.Event, kind: str, action: str, **values: Any) -> None:
        device_id = str(e.originator_id)
        serial, customer = self._device_of(tx, device_id)
        row = {
            "device_id": device_id,
            "version": e.originator_version,
            "at": iso(e.timestamp),
            "serial": serial,
            "customer_id": customer,
            "kind": kind,
            "action": action,
            "principal": e.principal,
            "correlation_id": e.correlation_id,
            **values,
        }
        tx.execute(
            f"INSERT INTO pf_k_history VALUES ({', '.join('?' for _ in HISTORY_COLUMNS)})",
            [row.get(column) for column in HISTORY_COLUMNS],
        )
