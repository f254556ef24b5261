"""Auditor and partner queries of the consent view: history, "in effect at T", exports."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.base import NotAllowedError, NotFoundError
from domain.text import serial_form
from projections.base import Tx, iso
from projections.consent import HISTORY_COLUMNS

Row = dict[str, Any]
# Later than any recorded event: "in effect now" is "in effect after the last record".
LATEST = datetime.max.replace(tzinfo=UTC)


def history(
    tx: Tx, *, serial: str | None = None, customer_id: str | None = None, partner: str | None = None
) -> list[Row]:
    """R-CON-3, R-CON-4: every consent and link record of a device, customer or partner."""
    if serial is not None:
        where, params = "serial = ?", [serial_form(serial)]
    elif customer_id is not None:
        where, params = "customer_id = ?", [customer_id]
    elif partner is not None:
        where = (
            "device_id IN (SELECT device_id FROM pf_k_history WHERE kind = 'link' AND partner = ?)"
        )
        params = [partner]
    else:
        raise NotFoundError("Name a device serial, a customer id or a partner Location ID.")
    rows = tx.query(
        f"SELECT {', '.join(HISTORY_COLUMNS)} FROM pf_k_history WHERE {where}"
        " ORDER BY at, device_id, version",
        params,
    )
    return [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in rows]


@dataclass(frozen=True)
class ConsentAnswer:
    """Whether consent was in effect for a device and partner at a moment, and why."""

    serial: str
    partner: str
    at: str
    in_effect: bool
    consent_granted: bool
    partner_linked: bool
    deciding_records: list[Row]
    later_corrections: list[Row]


def consent_in_effect(tx: Tx, serial: str, partner: str, at: datetime) -> ConsentAnswer:
    """R-CON-3: replay the device's records up to `at`; corrections made later are listed."""
    records = history(tx, serial=serial)
    if not records and not _known(tx, serial):
        raise NotFoundError(f"No device with serial number {serial!r}.")
    moment = iso(at)
    until = [r for r in sorted(records, key=lambda r: r["version"]) if r["at"] <= moment]
    consent, link = _state(until, partner)
    deciding = [r for r in (consent, link) if r is not None]
    corrections = [
        r
        for r in records
        if r["action"] == "corrected"
        and r["at"] > moment
        and r["corrects_version"] in {d["version"] for d in deciding}
    ]
    granted = consent is not None and _grants(consent)
    linked = link is not None and link["action"] == "linked"
    return ConsentAnswer(
        serial_form(serial),
        partner,
        moment,
        granted and linked,
        granted,
        linked,
        deciding,
        corrections,
    )


def _grants(record: Row) -> bool:
    return record["action"] == "granted" or (
        record["action"] == "corrected" and record["text_version"] is not None
    )


def _state(records: list[Row], partner: str) -> tuple[Row | None, Row | None]:
    consent: Row | None = None
    links: dict[str, Row] = {}
    for record in records:
        if record["kind"] == "consent":
            consent = record
        elif record["action"] == "linked":
            links[record["role"]] = record
        else:
            links.pop(record["role"], None)
    linked = [r for r in links.values() if r["partner"] == partner]
    return consent, (linked[0] if linked else None)


def _known(tx: Tx, serial: str) -> bool:
    return bool(tx.query("SELECT 1 FROM pf_k_devices WHERE serial = ?", (serial_form(serial),)))


def export_jsonl(records: list[Row]) -> str:
    """R-CON-4: the records as JSON Lines, one record a line."""
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)


def export_csv(records: list[Row]) -> str:
    """R-CON-4: the records as CSV with a header row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def configuration_for(tx: Tx, serial: str, partner: str) -> dict[str, Any]:
    """R-CON-2: the device's configuration data, only while linked and consent granted now."""
    answer = consent_in_effect(tx, serial, partner, LATEST)
    if not answer.partner_linked:
        raise NotAllowedError(f"Device {answer.serial} is not linked to partner {partner}.")
    if not answer.consent_granted:
        raise NotAllowedError(
            f"The customer of device {answer.serial} has not granted consent (Optimize my IT "
            "environment), so its configuration data is not available."
        )
    rows = tx.query(
        "SELECT c.data FROM pf_k_config c JOIN pf_k_devices d"
        " ON d.device_id = c.device_id WHERE d.serial = ?",
        (answer.serial,),
    )
    if not rows:
        raise NotFoundError(f"No configuration data has been collected for {answer.serial}.")
    data: dict[str, Any] = json.loads(rows[0][0])
    return data
