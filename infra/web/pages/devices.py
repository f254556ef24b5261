"""A device as its partner sees it: the groups it is in and why, the highest active service
level (all of them on request), its configuration data while consent allows, and its
service events for its service partner (R-LNK-1, R-SVC-1, R-SVC-3, R-CON-2).

The page reads `partner_device` (404 for a device not linked to this partner), then the same
queries as the API's routes: `service_levels`, `configuration_for` and `service_events`,
in one transaction of the read models brought up to the store first (R-CON-3: a withdrawal
ends access at once, as `GET .../configuration` does). What a query refuses for this device
(no consent, R-CON-2; a device this partner does not service, R-SVC-1) is said in place of
its section, not as an error page. A reseller gets no service-event section at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from domain.base import DomainError
from handlers.access import PartnerScope, partner_scope
from infra.http.deps import CurrentViews
from infra.web.deps import Portal, PortalDep, Refusal
from projections.base import Tx
from projections.consent_queries import configuration_for
from projections.customer_queries import partner_device
from projections.service import service_events, service_levels

router = APIRouter()
DEVICE = "/partners/{location_id}/devices/{serial}"
EVENTS_SHOWN = 10  # the newest events on the device page; the list has the rest
LEVELS = "service-levels"  # the id of the levels' section (htmx target)
T = TypeVar("T")


@dataclass(frozen=True)
class Shown(Generic[T]):
    """A section's answer: what the query gave, or why it gave nothing (in place)."""

    value: T | None
    refusal: Refusal | None


@router.get(DEVICE)
def device_page(
    portal: PortalDep,
    location_id: str,
    serial: Annotated[str, Path(max_length=256)],
    all_active: Annotated[bool, Query(alias="all")] = False,
) -> Response:
    """R-SVC-3, R-CON-2, R-SVC-1: the device's levels, configuration data and events;
    `?all=true` lists every active service level, not only the highest."""
    scope = partner_scope(portal.actor, location_id)
    with CurrentViews(portal.runner).now().transaction() as tx:
        device = partner_device(tx, scope, serial)
        context = _sections(portal, tx, scope, device.serial, all_active)
    template = "partners/device.html"
    if portal.htmx and portal.request.headers.get("HX-Target") == LEVELS:
        template = "partners/_service_levels.html"
    return portal.render(
        template,
        device=device,
        location_id=scope.location_id,
        all_active=all_active,
        service_partner=scope.partner_type == "service_partner",
        base=DEVICE.format(location_id=scope.location_id, serial=device.serial),
        **context,
    )


def _sections(
    portal: Portal, tx: Tx, scope: PartnerScope, serial: str, all_active: bool
) -> dict[str, Any]:
    """Levels, configuration data and (service partners) events: each query once."""
    today = datetime.now(UTC).date()
    sections: dict[str, Any] = {
        "today": today,
        "levels": _shown(
            portal, lambda: service_levels(tx, scope, serial, today, all_active=all_active)
        ),
        "configuration": _shown(portal, lambda: configuration_for(tx, scope, serial)),
        "events": None,
    }
    if scope.partner_type == "service_partner":  # R-SVC-1: resellers never see events
        sections["events"] = _shown(
            portal, lambda: service_events(tx, scope, serial=serial, limit=EVENTS_SHOWN)
        )
    return sections


def _shown(portal: Portal, query: Callable[[], T]) -> Shown[T]:
    """The query's answer, or its refusal as the page shows it in place."""
    try:
        return Shown(query(), None)
    except DomainError as refused:  # said in place of the section, in the page's language
        return Shown(None, portal.refusal(refused))
