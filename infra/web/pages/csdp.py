"""A service partner's CSDP repair-case queue and the alerts told to the partner
(R-ALR-1, R-ALR-2, R-ALR-4, R-SVC-1).

Reads `projections.repair_queues.csdp_queue` (cases routed to the partner's CSDP account,
oldest first; a reseller is refused, R-SVC-1) and `alert_notifications` (alerts that
reached the partner only: self-service notifications off, R-ALR-4), as
`GET /partners/{location_id}/csdp-queue` and `/alerts` do; both keyset paged. Resellers,
who have no CSDP queue, read the alerts told to them at /partners/{location_id}/alerts.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from handlers.access import PartnerScope, partner_scope
from infra.web.deps import PortalDep
from infra.web.rendering import href
from projections import repair_queues

router = APIRouter()
PAGE = "/partners/{location_id}/csdp-queue"
ALERTS = "/partners/{location_id}/alerts"
PAGE_SIZE = 50
Cursor = Annotated[str | None, Query(max_length=2048)]


@router.get(PAGE)
def csdp_queue(
    portal: PortalDep, location_id: str, cases: Cursor = None, alerts: Cursor = None
) -> Response:
    """R-ALR-2: the cases in the partner's CSDP queue; R-ALR-4: the alerts told to it."""
    scope = partner_scope(portal.actor, location_id)
    lists = {name: _listing(scope, name) for name in ("cases", "alerts")}
    with portal.views.transaction() as tx:
        queued = repair_queues.csdp_queue(
            tx, scope, after=portal.after(lists["cases"], cases), limit=PAGE_SIZE
        )
        told = repair_queues.alert_notifications(
            tx, scope, after=portal.after(lists["alerts"], alerts), limit=PAGE_SIZE
        )
    path = PAGE.format(location_id=scope.location_id)
    next_cases = portal.cursor(lists["cases"], queued.next_after)
    next_alerts = portal.cursor(lists["alerts"], told.next_after)
    return portal.render(
        "holding/csdp_queue.html",
        location_id=scope.location_id,
        cases=queued.rows,
        alerts=told.rows,
        next_cases=next_cases and href(path, cases=next_cases, alerts=alerts),
        next_alerts=next_alerts and href(path, cases=cases, alerts=next_alerts),
    )


@router.get(ALERTS)
def alerts(portal: PortalDep, location_id: str, alerts: Cursor = None) -> Response:
    """R-ALR-1, R-ALR-4: the alerts told to the partner only (self-service notifications off
    in a customer dashboard), for resellers and service partners alike."""
    scope = partner_scope(portal.actor, location_id)
    listing = _listing(scope, "alerts")
    with portal.views.transaction() as tx:
        told = repair_queues.alert_notifications(
            tx, scope, after=portal.after(listing, alerts), limit=PAGE_SIZE
        )
    next_alerts = portal.cursor(listing, told.next_after)
    path = ALERTS.format(location_id=scope.location_id)
    return portal.render(
        "holding/alerts.html",
        location_id=scope.location_id,
        alerts=told.rows,
        next_alerts=next_alerts and href(path, alerts=next_alerts),
    )


def _listing(scope: PartnerScope, name: str) -> str:
    """What a cursor of one of the page's lists is bound to."""
    return repr(("csdp", scope.location_id, name))
