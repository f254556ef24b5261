"""Queries of the consent view: history, "in effect at T", exports, configuration data.

Auditors (`AuditScope`) read every history; a customer (`CustomerScope`) reads its own
devices' (R-PAR-2); a partner reads configuration data under R-CON-2 (`PartnerScope`) and
no consent history (docs/decisions.md, "Query scopes (issue 9)").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.base import Msg, NotAllowedError, NotFoundError
from handlers.access import AuditScope, CustomerScope, PartnerScope
from projections.base import MomentError, Tx, iso, missing_device, query_key, query_serial
from projections.consent import HISTORY_COLUMNS
from projections.consent_replay import corrections_of, replay
from projections.paging import (
    DEFAULT_LIMIT,
    Key,
    Page,
    after_clause,
    checked_limit,
    key_params,
    page_of,
)

Row = dict[str, Any]
# Later than any recorded event: "in effect now" is "in effect after the last record".
LATEST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class Selection:
    """Which consent and link records a history or an export covers (R-CON-3, R-CON-4):
    those of a device (`serial`), a customer, a partner's link periods (any given narrow
    them), recorded from `since` (inclusive) until `until` (exclusive), aware datetimes.

    Declared once for `history`, `history_statement` and the exports of
    `projections.consent_export`; checked when a query takes it (see `history`)."""

    serial: str | None = None
    customer_id: str | None = None
    partner: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def history(
    tx: Tx,
    scope: AuditScope | CustomerScope,
    selection: Selection,
    *,
    after: Key | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[Row]:
    """R-CON-3, R-CON-4: a page of the consent and link records `selection` names, in
    store order (`position`), `after` a record's `(position,)`.

    An auditor (`AuditScope`) names what to read; a customer (`CustomerScope`, R-PAR-2)
    reads its own devices' records only (those made while the device was its own), and a
    device or customer not its own is "not found" as a missing one is. A partner's history
    holds its own links and unlinks and the consent records of the periods its links
    lasted (`consent_replay.partner_records`); naming a device or a customer as well
    narrows it to those. `since` (inclusive) and `until` (exclusive) keep the records of a
    period; both must be aware datetimes, else `MomentError`. `NotFoundError` when an
    auditor names nothing, or for an unknown device; `QueryError` for a bad `limit` or
    `after`.
    """
    statement, params = history_statement(tx, scope, selection)
    limit = checked_limit(limit)
    after_sql = after_clause(["h.position"], after, (int,))
    rows = tx.query(
        f"{statement}{' AND ' + after_sql if after_sql else ''} ORDER BY h.position LIMIT ?",
        [*params, *key_params(after), limit + 1],
    )
    return page_of([record_of(row) for row in rows], limit, lambda r: (int(r["position"]),))


def history_statement(
    tx: Tx, scope: AuditScope | CustomerScope, selection: Selection
) -> tuple[str, list[str]]:
    """`SELECT … WHERE …` (no order) of the history records `history` describes, after its
    checks; raises what `history` raises, before any record is read."""
    serial, customer_id, partner = selection.serial, selection.customer_id, selection.partner
    lower, upper = _window(selection.since, selection.until)
    clauses, params = ["h.at >= ?", "h.at < ?"], [lower, upper]
    if isinstance(scope, CustomerScope):
        customer_id = _own_customer(scope, customer_id)
    if serial is not None:
        clauses.append("h.serial = ?")
        params.append(_known_device(tx, scope, serial))
    if customer_id is not None:
        clauses.append("h.customer_id = ?")
        params.append(query_key("customer_id", customer_id))
    source = "pf_k_history h"
    if partner is not None:
        # R-CON-4: the partner's records (its link periods), kept by the view per partner.
        source = (
            "pf_k_partner_rows p JOIN pf_k_history h"
            " ON h.device_id = p.device_id AND h.version = p.version"
        )
        clauses.append("p.partner = ?")
        params.append(query_key("partner", partner))
    if serial is None and customer_id is None and partner is None:
        raise NotFoundError(Msg("Name a device serial, a customer id or a partner Location ID."))
    columns = ", ".join(f"h.{c}" for c in HISTORY_COLUMNS)
    return f"SELECT {columns} FROM {source} WHERE {' AND '.join(clauses)}", params


def _own_customer(scope: CustomerScope, customer_id: str | None) -> str:
    """R-PAR-2: a customer reads its own records; another customer id is "not found"."""
    if customer_id is not None and query_key("customer_id", customer_id) != scope.customer_id:
        raise NotFoundError(Msg("No customer {customer_id!r} found.", customer_id=customer_id))
    return scope.customer_id


def _known_device(tx: Tx, scope: AuditScope | CustomerScope, serial: str) -> str:
    """The serial of a device the scope may read, or the "not found" of a missing one."""
    serial = query_serial(serial)
    rows = tx.query("SELECT customer_id FROM pf_k_devices WHERE serial = ?", (serial,))
    if not rows or (isinstance(scope, CustomerScope) and rows[0][0] != scope.customer_id):
        raise missing_device(serial)
    return serial


def record_of(row: tuple[Any, ...]) -> Row:
    """A `pf_k_history` row (HISTORY_COLUMNS) as a record."""
    return dict(zip(HISTORY_COLUMNS, row, strict=True))


def device_records(tx: Tx, serial: str) -> list[Row]:
    """Every record of one device (a serial as commands store it), in the device's order."""
    rows = tx.query(
        f"SELECT {', '.join(HISTORY_COLUMNS)} FROM pf_k_history WHERE serial = ? ORDER BY version",
        (serial,),
    )
    return [record_of(row) for row in rows]


def _window(since: datetime | None, until: datetime | None) -> tuple[str, str]:
    """The period as fixed-width UTC text; "" and "~" sort before and after every instant."""
    lower = "" if since is None else iso(since)
    upper = "~" if until is None else iso(until)
    if upper < lower:
        raise MomentError(
            Msg("The period ends ({upper}) before it starts ({lower}).", upper=upper, lower=lower)
        )
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


def consent_in_effect(
    tx: Tx, scope: AuditScope, serial: str, partner: str, at: datetime
) -> ConsentAnswer:
    """R-CON-3: replay the device's records up to `at` (an aware datetime, else `MomentError`).

    For an auditor (`AuditScope`). `NotFoundError` for an unknown device. Corrections count
    from when they were recorded, and only when they correct the record then in effect
    (`consent_replay`).
    """
    return _in_effect(tx, query_serial(serial), query_key("partner", partner), at)


def _in_effect(tx: Tx, serial: str, partner: str, at: datetime) -> ConsentAnswer:
    moment = iso(at)
    records = device_records(tx, serial)
    if not records and not _known(tx, serial):
        raise missing_device(serial)
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


def configuration_for(tx: Tx, scope: PartnerScope, serial: str) -> dict[str, Any]:
    """R-CON-2: the device's configuration data, for the partner of `scope`, only while the
    device is linked to it and consent is granted now.

    A device not linked to the partner (another's, unlinked, or unknown) is "not found"
    (`NotFoundError`, R-LNK-6); without consent, `NotAllowedError` says so.
    """
    serial = query_serial(serial)
    try:
        answer = _in_effect(tx, serial, scope.location_id, LATEST)
    except NotFoundError:
        raise missing_device(serial) from None
    if not answer.partner_linked:
        raise missing_device(serial)
    if not answer.consent_granted:
        raise NotAllowedError(
            Msg(
                "The customer of device {serial} has not granted consent (Optimize my IT "
                "environment), so its configuration data is not available (R-CON-2).",
                serial=answer.serial,
            ),
            rule="R-CON-2",
        )
    rows = tx.query(
        "SELECT c.data FROM pf_k_config c JOIN pf_k_devices d"
        " ON d.device_id = c.device_id WHERE d.serial = ?",
        (answer.serial,),
    )
    if not rows:
        raise NotFoundError(
            Msg("No configuration data has been collected for {serial}.", serial=answer.serial)
        )
    data: dict[str, Any] = json.loads(rows[0][0])
    return data
