"""Consent history for auditors and configuration-data access for partners (R-CON-2…4).

Every grant, withdrawal, correction, link and unlink of a device is kept as one row, in
the device's own order, never updated, with its store position. Whether consent was in
effect for device D and partner P at time T is answered by replaying those rows up to T.
A partner's history (the records of its link periods, `consent_replay.partner_records`)
is kept as rows of its own, recomputed per batch for the devices the batch touched, so it
is read, paged and streamed in store order like the rest.
"""

from __future__ import annotations

import json
from itertools import groupby
from typing import ClassVar

from domain.device import Device
from projections.base import Tx, View, handles, iso, placeholders
from projections.consent_replay import partner_records

HISTORY_COLUMNS = (
    "position",
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

HISTORY_INSERT = f"INSERT INTO pf_k_history VALUES ({', '.join('?' for _ in HISTORY_COLUMNS)})"


class ConsentView(View):
    """Consent and link history per device, and the latest configuration data."""

    name: ClassVar[str] = "consent"
    tables: ClassVar[tuple[str, ...]] = (
        "pf_k_devices",
        "pf_k_history",
        "pf_k_partner_rows",
        "pf_k_config",
    )
    ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS pf_k_devices (device_id TEXT PRIMARY KEY,"
        " serial TEXT NOT NULL UNIQUE, customer_id TEXT)",
        "CREATE TABLE IF NOT EXISTS pf_k_history (position INTEGER NOT NULL,"
        " device_id TEXT NOT NULL,"
        " version INTEGER NOT NULL, at TEXT NOT NULL, serial TEXT NOT NULL, customer_id TEXT,"
        " kind TEXT NOT NULL, action TEXT NOT NULL, partner TEXT, role TEXT,"
        " text_version TEXT, text_digest TEXT, scope TEXT, reason TEXT,"
        " corrects_version INTEGER, principal TEXT NOT NULL, correlation_id TEXT NOT NULL,"
        " PRIMARY KEY (device_id, version))",
        "CREATE INDEX IF NOT EXISTS pf_k_history_position ON pf_k_history (position)",
        "CREATE INDEX IF NOT EXISTS pf_k_history_customer ON pf_k_history (customer_id, position)",
        "CREATE INDEX IF NOT EXISTS pf_k_history_serial ON pf_k_history (serial, position)",
        "CREATE INDEX IF NOT EXISTS pf_k_history_partner ON pf_k_history (partner)",
        # R-CON-4: which records belong to a partner's history (its link periods).
        "CREATE TABLE IF NOT EXISTS pf_k_partner_rows (partner TEXT NOT NULL,"
        " device_id TEXT NOT NULL, version INTEGER NOT NULL, position INTEGER NOT NULL,"
        " PRIMARY KEY (partner, device_id, version))",
        "CREATE INDEX IF NOT EXISTS pf_k_partner_rows_position"
        " ON pf_k_partner_rows (partner, position)",
        "CREATE INDEX IF NOT EXISTS pf_k_partner_rows_device ON pf_k_partner_rows (device_id)",
        "CREATE TABLE IF NOT EXISTS pf_k_config (device_id TEXT PRIMARY KEY, data TEXT NOT NULL,"
        " collected_at TEXT NOT NULL)",
    )

    def __init__(self) -> None:
        # device id -> (serial, customer): what every history row repeats. Derived from the
        # events alone, so keeping it across batches (or a rolled-back batch) is harmless.
        self._devices: dict[str, tuple[str, str | None]] = {}
        # Devices whose partner rows this batch may change (a rolled-back batch leaves some:
        # recomputing a device from its stored rows again is harmless).
        self._touched: set[str] = set()

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

    def _record(
        self,
        tx: Tx,
        e: Device.Event,
        kind: str,
        action: str,
        *,
        partner: str | None = None,
        role: str | None = None,
        text_version: str | None = None,
        text_digest: str | None = None,
        scope: str | None = None,
        reason: str | None = None,
        corrects_version: int | None = None,
    ) -> None:
        """One pf_k_history row, its values in HISTORY_COLUMNS' order."""
        device_id = str(e.originator_id)
        serial, customer = self._device_of(tx, device_id)
        self._touched.add(device_id)
        tx.execute(
            HISTORY_INSERT,
            (
                self.position,
                device_id,
                e.originator_version,
                iso(e.timestamp),
                serial,
                customer,
                kind,
                action,
                partner,
                role,
                text_version,
                text_digest,
                scope,
                reason,
                corrects_version,
                e.principal,
                e.correlation_id,
            ),
        )

    def finish_batch(self, tx: Tx) -> None:
        """R-CON-4: recompute the partner rows of every device this batch added records to."""
        touched = sorted(self._touched)
        self._touched.clear()
        for start in range(0, len(touched), PARTNER_CHUNK):
            chunk = touched[start : start + PARTNER_CHUNK]
            rows = _partner_rows(tx, chunk)
            tx.execute(
                f"DELETE FROM pf_k_partner_rows WHERE device_id IN ({placeholders(chunk)})", chunk
            )
            tx.executemany("INSERT INTO pf_k_partner_rows VALUES (?, ?, ?, ?)", rows)


PARTNER_CHUNK = 500  # devices per query: well under any database's parameter limit


def _partner_rows(tx: Tx, device_ids: list[str]) -> list[tuple[str, str, int, int]]:
    """(partner, device id, version, position) of every record in a partner's history, for
    the devices that were ever linked to a partner."""
    ids = placeholders(device_ids)
    records = tx.query(
        f"SELECT {', '.join(HISTORY_COLUMNS)} FROM pf_k_history WHERE device_id IN ({ids})"
        " AND device_id IN (SELECT device_id FROM pf_k_history WHERE kind = 'link'"
        f" AND device_id IN ({ids})) ORDER BY device_id, version",
        [*device_ids, *device_ids],
    )
    kept = []
    for device_id, rows in groupby(
        (dict(zip(HISTORY_COLUMNS, r, strict=True)) for r in records), lambda r: r["device_id"]
    ):
        history = list(rows)
        for partner in sorted({r["partner"] for r in history if r["kind"] == "link"}):
            kept += [
                (partner, device_id, r["version"], r["position"])
                for r in partner_records(history, partner)
            ]
    return kept
