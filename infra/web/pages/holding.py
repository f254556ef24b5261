"""The holding tenant (HP Premium): Unassigned Devices, transfers to customer dashboards and
back, creating a dashboard, self-service notifications, missing-device requests
(R-PAR-4, R-HLD-1…3, R-ALR-3, R-ALR-4).

Reads: the partner's record (`handlers.partner_queries.partner_tenant`: its holding tenant,
certifications and missing-device requests with their status), `projections.holding.
unassigned_devices` and `projections.dashboards` (dashboards, their PCs, transfers), as
the HTTP API reads them. Commands: `transfer_devices`, `create_customer_dashboard`,
`switch_self_service_notifications`, `report_missing_devices`, as routes/holding.py and
routes/partners.py call them. A fixed number of queries per page, whatever it lists.

Every control is a plain form (303 back to the page). R-ALR-4's conditions are shown on
each dashboard (why switching off is not available now), not only refused. The cPIN is
write-only: a password field, never put back into a page, never logged.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response

from domain.base import DomainError, Msg
from domain.partner import PartnerTenant
from handlers.access import PartnerScope, partner_scope
from handlers.partner_queries import partner_tenant
from infra.http.errors import ProblemError
from infra.web.deps import CsrfDep, Portal, PortalDep, Refusal
from infra.web.rendering import href
from projections import dashboards, holding

router = APIRouter()
PAGE = "/partners/{location_id}/holding"
PCS_PAGE, DASHBOARDS_PAGE, TRANSFERS_PAGE = 50, 10, 10
CHOICES = 200  # dashboards offered as a transfer's target
MAX_SERIALS = 1_000  # as the API's Transfer and MissingDevices schemas
Cursor = Annotated[str | None, Query(max_length=2048)]
SERIAL_SPLIT = re.compile(r"[\s,;]+")


@router.get(PAGE)
def holding_tenant(
    portal: PortalDep,
    location_id: str,
    pcs: Cursor = None,
    dashboards_after: Cursor = None,
    transfers_after: Cursor = None,
) -> Response:
    """R-PAR-4, R-HLD-1…3, R-ALR-4: the holding tenant page of the partner."""
    scope = partner_scope(portal.actor, location_id)
    cursors = {"pcs": pcs, "dashboards_after": dashboards_after, "transfers_after": transfers_after}
    return portal.render("holding/holding.html", **_context(portal, scope, cursors))


@router.post(PAGE + "/transfers")
def transfer(
    portal: PortalDep,
    _csrf: CsrfDep,
    location_id: str,
    transfer_id: Annotated[str, Form(min_length=1, max_length=256)],
    source_id: Annotated[UUID, Form()],
    target_id: Annotated[UUID, Form()],
    serials: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """R-HLD-3: move the chosen PCs from one source to one target. The holding tenant's
    selection goes to a dashboard; a reversal is the same with source and target swapped."""
    partner_scope(portal.actor, location_id, "transfer devices")
    chosen = _bounded(serials or [])
    portal.fleet.transfer_devices(
        portal.actor, location_id, chosen, source_id, target_id, transfer_id
    )
    portal.caught_up()
    return portal.redirect(PAGE.format(location_id=location_id))


@router.post(PAGE + "/dashboards")
def create_dashboard(
    portal: PortalDep,
    _csrf: CsrfDep,
    location_id: str,
    customer_id: Annotated[str, Form(min_length=1, max_length=256)],
    customer_name: Annotated[str, Form(min_length=1, max_length=256)],
    cpin: Annotated[str, Form(min_length=1, max_length=64)],
) -> Response:
    """R-HLD-3: create a customer dashboard for a customer and its cPIN. A refusal is shown
    at the form, which keeps the customer's id and name but never the cPIN."""
    scope = partner_scope(portal.actor, location_id, "create customer dashboards")
    try:
        portal.fleet.create_customer_dashboard(
            portal.actor, location_id, customer_id, customer_name, cpin
        )
    except DomainError as refused:  # shown at the form, in the page's language
        given = {"customer_id": customer_id, "customer_name": customer_name}
        return _refused_at(portal, scope, "dashboard", refused, given)
    portal.caught_up()
    return portal.redirect(PAGE.format(location_id=location_id))


@router.post(PAGE + "/dashboards/{dashboard_id}/self-service-notifications")
def switch_notifications(
    portal: PortalDep,
    _csrf: CsrfDep,
    location_id: str,
    dashboard_id: UUID,
    on: Annotated[bool, Form()],
) -> Response:
    """R-ALR-4: switch the end users' self-service pop-ups of a customer dashboard."""
    partner_scope(portal.actor, location_id, "switch self-service notifications")
    portal.fleet.switch_self_service_notifications(portal.actor, location_id, dashboard_id, on)
    portal.caught_up()
    return portal.redirect(PAGE.format(location_id=location_id))


@router.post(PAGE + "/missing-device-requests")
def report_missing(
    portal: PortalDep,
    _csrf: CsrfDep,
    location_id: str,
    request_id: Annotated[str, Form(min_length=1, max_length=256)],
    serials: Annotated[str, Form(max_length=64_000)] = "",
) -> Response:
    """R-HLD-2: open a support request listing the serial numbers missing from the holding
    tenant (separated by spaces, commas or new lines). A refusal is shown at the form."""
    scope = partner_scope(portal.actor, location_id, "report missing devices")
    listed = [s for s in SERIAL_SPLIT.split(serials) if s]
    try:
        portal.fleet.report_missing_devices(portal.actor, location_id, request_id, _bounded(listed))
    except DomainError as refused:
        return _refused_at(portal, scope, "missing", refused, {"serials": serials})
    portal.caught_up()
    return portal.redirect(PAGE.format(location_id=location_id))


def _bounded(serials: list[str]) -> list[str]:
    if len(serials) > MAX_SERIALS:
        raise ProblemError(
            "invalid-fields", Msg("List at most {limit} serial numbers.", limit=MAX_SERIALS)
        )
    return serials


def _refused_at(
    portal: Portal,
    scope: PartnerScope,
    form: str,
    refused: DomainError,
    given: dict[str, str],
) -> Response:
    """The page again, `refused` shown at `form`, with what was typed (never the cPIN)."""
    refusal: Refusal = portal.refusal(refused)
    context = _context(portal, scope, {}, refusals={form: refusal}, given=given)
    return portal.render("holding/holding.html", refusal.status, **context)


def _context(
    portal: Portal,
    scope: PartnerScope,
    cursors: dict[str, str | None],
    *,
    refusals: dict[str, Refusal] | None = None,
    given: dict[str, str] | None = None,
) -> dict[str, Any]:
    partner = partner_tenant(portal.fleet, scope)
    context: dict[str, Any] = {
        "location_id": scope.location_id,
        "partner": partner,
        "certified": partner.holding_tenant_id is not None,
        "refusals": refusals or {},
        "given": given or {},
        "requests": _requests(partner),
        "new_transfer_id": _new_id("T"),
        "new_request_id": _new_id("MDR"),
    }
    if context["certified"]:
        context.update(_listings(portal, scope, cursors))
    return context


def _listings(
    portal: Portal, scope: PartnerScope, cursors: dict[str, str | None]
) -> dict[str, Any]:
    """The page's lists: five queries, whatever they hold."""
    lists = {name: _listing(scope, name) for name in ("pcs", "dashboards", "transfers")}
    with portal.views.transaction() as tx:
        pcs = holding.unassigned_devices(
            tx, scope, after=portal.after(lists["pcs"], cursors.get("pcs")), limit=PCS_PAGE
        )
        choices = dashboards.customer_dashboards(tx, scope, limit=CHOICES)
        shown = dashboards.customer_dashboards(
            tx,
            scope,
            after=portal.after(lists["dashboards"], cursors.get("dashboards_after")),
            limit=DASHBOARDS_PAGE,
        )
        moved = dashboards.transfers(
            tx,
            scope,
            after=portal.after(lists["transfers"], cursors.get("transfers_after")),
            limit=TRANSFERS_PAGE,
        )
        with_pcs = dashboards.dashboard_pcs(tx, scope, shown.rows)
    return {
        "pcs": pcs,
        "choices": choices.rows,
        "dashboards": with_pcs,
        "transfers": moved,
        "next_links": _next_links(
            scope,
            cursors,
            {
                "pcs": portal.cursor(lists["pcs"], pcs.next_after),
                "dashboards_after": portal.cursor(lists["dashboards"], shown.next_after),
                "transfers_after": portal.cursor(lists["transfers"], moved.next_after),
            },
        ),
    }


def _next_links(
    scope: PartnerScope, cursors: dict[str, str | None], nexts: dict[str, str | None]
) -> dict[str, str | None]:
    """Per list, the link to its next page (the other lists stay where they are)."""
    path = PAGE.format(location_id=scope.location_id)
    return {
        name: None if cursor is None else href(path, **{**cursors, name: cursor})
        for name, cursor in nexts.items()
    }


def _listing(scope: PartnerScope, name: str) -> str:
    """What a cursor of one of the page's lists is bound to."""
    return repr(("holding", scope.location_id, name))


def _requests(partner: PartnerTenant) -> list[dict[str, Any]]:
    """R-HLD-2: every missing-device request of the partner, newest first, with its status."""
    found = [
        {"request_id": r.request_id, "serials": r.serials, "resolution": r.resolution}
        for r in partner.missing_device_requests.values()
    ]
    return list(reversed(found))


def _new_id(prefix: str) -> str:
    """An id for a form's command, made when the form is shown, so sending the same form
    twice is one request (the second is refused), not two."""
    return f"{prefix}-{secrets.token_hex(6).upper()}"
