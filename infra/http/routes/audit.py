"""Consent audit: history, "was consent in effect", exports, corrections (R-CON-3, R-CON-4).

An auditor or operator reads every device's, customer's or partner's consent history under
`/audit/` (`AuditScopeDep`); a customer admin reads its own devices' under
`/customers/{customer_id}/` (`CustomerScopeDep`, R-PAR-2). Exports stream from the read
models' server-side cursor (infra/http/streaming.py): the scope, the device and the period
are checked before the first byte, and each line carries its store `position`, so a broken
download resumes with `after`. Corrections are new records (R-CON-4), by the auditor or
operator, with a reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from domain.iso import IsoAwareDatetime
from handlers.access import AuditScope, CustomerScope
from infra.http.deps import (
    ActorDep,
    AuditScopeDep,
    CustomerScopeDep,
    FleetDep,
    PageDep,
    ViewsDep,
)
from infra.http.paging import Paged
from infra.http.routing import FleetRoute
from infra.http.schemas.audit import (
    After,
    ConsentCorrected,
    ConsentCorrection,
    ConsentInEffect,
    ConsentRecord,
    CustomerHistoryFilter,
    Format,
    HistoryFilter,
    Key,
    KeyClaims,
)
from infra.http.schemas.common import COMMAND_STATUSES, COMMON_STATUSES, problem_responses
from infra.http.streaming import in_transaction, streamed
from infra.storage.viewdb import ViewDB
from projections.consent import HISTORY_COLUMNS
from projections.consent_export import consent_export
from projections.consent_queries import consent_in_effect, history

router = APIRouter(route_class=FleetRoute, tags=["audit"])
READS = problem_responses(*COMMON_STATUSES)
COMMANDS = problem_responses(*COMMAND_STATUSES)
EXPORT: dict[int | str, dict[str, Any]] = {
    **READS,
    200: {
        "description": "The records in store order, one a line, each with its `position`.",
        "content": {
            "application/jsonl": {"schema": {"$ref": "#/components/schemas/ConsentRecord"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    },
}


@router.get("/audit/consent-history", responses=READS)
def audit_consent_history(
    scope: AuditScopeDep,
    views: ViewsDep,
    page: PageDep,
    chosen: Annotated[HistoryFilter, Query()],
) -> Paged[ConsentRecord]:
    """R-CON-3, R-CON-4: consent and link records of a device, customer or partner, in order."""
    return _history(views, scope, chosen, page)


@router.get("/audit/consent-history/export", responses=EXPORT, response_class=StreamingResponse)
def export_audit_consent_history(
    scope: AuditScopeDep,
    views: ViewsDep,
    chosen: Annotated[HistoryFilter, Query()],
    fmt: Annotated[Format, Query(alias="format")] = "jsonl",
    after: Annotated[After, Query()] = 0,
) -> StreamingResponse:
    """R-CON-4: export that history as JSON Lines or CSV, streamed; resume with `after`."""
    return _export(views, scope, chosen, fmt, after)


@router.get("/audit/consent-in-effect", responses=READS)
def read_consent_in_effect(
    scope: AuditScopeDep,
    views: ViewsDep,
    serial: Annotated[Key, Query(description="The device's serial number")],
    partner: Annotated[Key, Query(description="The partner's Location ID")],
    at: Annotated[IsoAwareDatetime, Query(description="The moment, with an offset")],
) -> ConsentInEffect:
    """R-CON-3: was consent in effect for a device and partner at a moment, and why."""
    with views.transaction() as tx:
        return ConsentInEffect.of(consent_in_effect(tx, scope, serial, partner, at))


@router.post("/audit/devices/{serial}/consent-corrections", status_code=201, responses=COMMANDS)
def correct_consent_record(
    serial: str, body: ConsentCorrection, actor: ActorDep, fleet: FleetDep
) -> ConsentCorrected:
    """R-CON-4: correct a wrong consent record with a new one saying why (auditor, operator)."""
    fleet.correct_consent_record(
        actor, serial, body.corrects_version, body.reason, body.text_version
    )
    return ConsentCorrected(serial=serial, **body.model_dump())


@router.get("/customers/{customer_id}/consent-history", responses=READS)
def customer_consent_history(
    scope: CustomerScopeDep,
    views: ViewsDep,
    page: PageDep,
    chosen: Annotated[CustomerHistoryFilter, Query()],
) -> Paged[ConsentRecord]:
    """R-PAR-2, R-CON-3: the consent and link records of the customer's own devices."""
    return _history(views, scope, chosen, page)


@router.get(
    "/customers/{customer_id}/consent-history/export",
    responses=EXPORT,
    response_class=StreamingResponse,
)
def export_customer_consent_history(
    scope: CustomerScopeDep,
    views: ViewsDep,
    chosen: Annotated[CustomerHistoryFilter, Query()],
    fmt: Annotated[Format, Query(alias="format")] = "jsonl",
    after: Annotated[After, Query()] = 0,
) -> StreamingResponse:
    """R-PAR-2, R-CON-4: export the customer's own consent history; resume with `after`."""
    return _export(views, scope, chosen, fmt, after)


@router.post("/operations/key-claims", responses=COMMANDS)
def claim_stored_keys(actor: ActorDep, fleet: FleetDep) -> KeyClaims:
    """R-PAR-1, R-PAR-3: give stored Passport IDs and Location IDs their one spelling (operator)."""
    return KeyClaims(collisions=fleet.claim_stored_keys(actor))


def _history(
    views: ViewDB, scope: AuditScope | CustomerScope, chosen: CustomerHistoryFilter, page: PageDep
) -> Paged[ConsentRecord]:
    with views.transaction() as tx:
        found = history(tx, scope, chosen.selection(), after=page.after, limit=page.limit)
    return Paged[ConsentRecord].of_query(found, page)


def _export(
    views: ViewDB,
    scope: AuditScope | CustomerScope,
    chosen: CustomerHistoryFilter,
    fmt: Format,
    after: int,
) -> StreamingResponse:
    records = in_transaction(
        views, lambda tx: consent_export(tx, scope, chosen.selection(), after=after)
    )
    return streamed(records, fmt, "consent-history", HISTORY_COLUMNS)
