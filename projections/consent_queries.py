"""Auditor and partner queries of the consent view: history, "in effect at T", exports."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.base import NotAllowedError, NotFoundError
from projections.base import MomentError, Tx, iso, query_key, query_serial
from projections.consent import HISTORY_COLUMNS
from projections.consent_replay import corrections_of, partner_records, replay

Row = dict[str, Any]
# Later than any recorded event: "in effect now" is "in effect after the last record".
LATEST = datetime.max.replace(tzinfo=UTC)


def history(
    tx: Tx,
    *,
    serial: str | None = None,
    customer_id: str | None = None,
    partner: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Row]:
    """R-CON-3, R-CON-4: the consent and link records of a device, a customer or a partner.

    A partner's history holds its own links and unlinks and the consent records of the
    periods its links lasted (`consent_replay.partner_records`); naming a device or a
    customer as well narrows it to those. `since` (inclusive) and `until` (exclusive) keep
    the records of a period; both must be aware datetimes, else `MomentError`. Records are
    ordered by time, then device and version. `NotFoundError` when nothing is named.
    """
    lower, upper = _window(since, until)
    where, params = _where(serial, customer_id, partner)
    records = _rows(tx, where, params)
    if partner is not None:
        records = _of_partner(records, query_key("partner", partner))
    return [r for r in records if lower <= r["at"] < upper]


def _where(
    serial: str | None, customer_id: str | None, partner: str | None
) -> tuple[str, list[str]]:
    clauses, params = [], []
    if serial is not None:
        clauses.append("serial = ?")
        params.append(query_serial(serial))
    if customer_id is not None:
        clauses.append("customer_id = ?")
        params.append(query_key("customer_id", customer_id))
    if partner is not None:
        # Every record of every device ever linked to the partner: its periods are cut
        # out of the devices' whole histories (the consent in effect when a period began).
        clauses.append(
            "device_id IN (SELECT device_id FROM pf_k_history WHERE kind = 'link' AND partner = ?)"
        )
        params.append(query_key("partner", partner))
    if not clauses:
        raise NotFoundError("Name a device serial, a customer id or a partner Location ID.")
    return " AND ".join(clauses), params


def _rows(tx: Tx, where: str, params: list[str]) -> list[Row]:
    rows = tx.query(
        f"SELECT {', '.join(HISTORY_COLUMNS)} FROM pf_k_history WHERE {where}"
        " ORDER BY at, device_id, version",
        params,
    )
    return [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in rows]


def _of_partner(records: list[Row], partner: str) -> list[Row]:
    """R-CON-4: per device, the records of the partner's link periods, in the same order."""
    devices: dict[str, list[Row]] = {}
    for record in sorted(records, key=lambda r: r["version"]):
        devices.setdefault(record["device_id"], []).append(record)
    kept = {
        (r["device_id"], r["version"])
        for rows in devices.values()
        for r in partner_records(rows, partner)
    }
    return [r for r in records if (r["device_id"], r["version"]) in kept]


def _window(since: datetime | None, until: datetime | None) -> tuple[str, str]:
    """The period as fixed-width UTC text; "" and "~" sort before and after every instant."""
    lower = "" if since is None else iso(since)
    upper = "~" if until is None else iso(until)
    if upper < lower:
        raise MomentError(f"The period ends ({upper}) before it starts ({lower}).")
    return lower, upper


@dataclass(frozen=True)
class PartnerLink:
    """R-LNK-4: the partner link an answer relied on: role, Location ID, linked since."""

    role: str
    location_id: str
    since: str  # UTC, as `projections.base.iso` writes it


@dataclass(frozen=True)
class ConsentAnswer:
    """Whether consent was in effect for a device and partner at a moment, and why.

    `deciding_records` are the consent record in effect and the partner's link record;
    `link` names that link (None when the partner was not linked); `later_corrections`
    are corrections recorded after the moment of the deciding records (and of those
    corrections), listed beside the answer rather than rewriting it (R-CON-4).
    """

    serial: str
    partner: str
    at: str
    in_effect: bool
    consent_granted: bool
    partner_linked: bool
    deciding_records: list[Row]
    later_corrections: list[Row]
    link: PartnerLink | None


def consent_in_effect(tx: Tx, serial: str, partner: str, at: datetime) -> ConsentAnswer:
    """R-CON-3: replay the device's records up to `at` (an aware datetime, else `MomentError`).

    `NotFoundError` for an unknown device. Corrections count from when they were recorded,
    and only when they correct the record then in effect (`consent_replay`).
    """
    moment = iso(at)
    serial, partner = query_serial(serial), query_key("partner", partner)
    records = sorted(history(tx, serial=serial), key=lambda r: r["version"])
    if not records and not _known(tx, serial):
        raise NotFoundError(f"No device with serial number {serial!r}.")
    state = replay((r for r in records if r["at"] <= moment), partner)
    deciding = [r for r in (state.consent, state.link) if r is not None]
    later = [r for r in records if r["at"] > moment]
    return ConsentAnswer(
        serial=serial,
        partner=partner,
        at=moment,
        in_effect=state.granted and state.link is not None,
        consent_granted=state.granted,
        partner_linked=state.link is not None,
        deciding_records=deciding,
        later_corrections=corrections_of(later, {r["version"] for r in deciding}),
        link=_link(state.link),
    )


def _link(record: Row | None) -> PartnerLink | None:
    if record is None:
        return None
    return PartnerLink(record["role"], record["partner"], record["at"])


def _known(tx: Tx, serial: str) -> bool:
    return bool(tx.query("SELECT 1 FROM pf_k_devices WHERE serial = ?", (serial,)))


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
