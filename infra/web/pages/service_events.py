"""Service events: the service partner's list, newest first, critical ones marked, for one
customer or one device if asked (R-SVC-1, R-SVC-2).

The list is `projections.service.service_events` under the partner's scope, as
`GET /partners/{location_id}/service-events` serves it: a reseller is refused (403 page,
R-SVC-1). The tiles of All Customers and the dashboard link here with `customer_id`; the
device page with `serial`. A customer or device this partner does not service is said next
to the filter (404), so the filter can be corrected. Keyset paging: "Older events".
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from domain.base import NotFoundError
from handlers.access import partner_scope
from infra.web.deps import PortalDep, Refusal
from projections.paging import Page
from projections.service import ServiceEvent, service_events

router = APIRouter()
EVENTS = "/partners/{location_id}/service-events"
PAGE_SIZE = 50
LIST = "event-list"  # the id of the list's section (htmx target)
Filter = Annotated[str | None, Query(max_length=256)]


@router.get(EVENTS)
def events_page(
    portal: PortalDep,
    location_id: str,
    customer_id: Filter = None,
    serial: Filter = None,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    """R-SVC-1, R-SVC-2: the events of the devices you service, per customer or device."""
    scope = partner_scope(portal.actor, location_id)
    customer_id, serial = customer_id or None, serial or None
    listing = repr(("service-events", scope.location_id, customer_id, serial))
    refusal: Refusal | None = None
    page: Page[ServiceEvent] = Page([], None)
    with portal.views.transaction() as tx:
        try:
            page = service_events(
                tx,
                scope,
                customer_id=customer_id,
                serial=serial,
                after=portal.after(listing, cursor),
                limit=PAGE_SIZE,
            )
        except NotFoundError as missing:
            if customer_id is None and serial is None:
                raise
            refusal = portal.refusal(missing)  # said next to the filter that found nothing
    htmx_list = portal.htmx and portal.request.headers.get("HX-Target") == LIST
    return portal.render(
        "partners/_event_list.html" if htmx_list else "partners/service_events.html",
        404 if refusal else 200,
        location_id=scope.location_id,
        page=page,
        customer_id=customer_id,
        serial=serial,
        refusal=refusal,
        next_cursor=portal.cursor(listing, page.next_after),
    )
