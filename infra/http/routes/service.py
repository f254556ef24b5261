"""Service events and service levels (R-SVC-1…3): remote support (the feed, or HP/HPE
operations by hand) reports them under `/devices/{serial}`; the partner linked to a device
as its *service partner* reads them under `/partners/{location_id}` (a reseller: 403).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from domain.device import normalise_serial
from domain.iso import IsoDate
from infra.http.deps import ActorDep, FleetDep, PageDep, PartnerScopeDep, ViewsDep
from infra.http.paging import Paged
from infra.http.routing import FleetRoute
from infra.http.schemas.common import COMMAND_STATUSES, problem_responses
from infra.http.schemas.partners import Serial
from infra.http.schemas.service import (
    NewServiceEvent,
    ServiceEventOut,
    ServiceEventRecorded,
    ServiceLevelAdded,
    ServiceLevelBody,
    ServiceLevelOut,
    ServiceLevels,
    ServiceSummaryOut,
)
from projections.service import service_events, service_levels, service_summary

router = APIRouter(
    route_class=FleetRoute,
    tags=["service events and levels"],
    responses=problem_responses(*COMMAND_STATUSES),
)


@router.post("/devices/{serial}/service-events", status_code=201)
def record_service_event(
    serial: str, body: NewServiceEvent, actor: ActorDep, fleet: FleetDep
) -> ServiceEventRecorded:
    """R-SVC-1: record a service event of a device, as remote support reports it."""
    fleet.record_service_event(actor, serial, body.event_id, body.severity, body.summary)
    return ServiceEventRecorded(
        serial=normalise_serial(serial), event_id=body.event_id, severity=body.severity
    )


@router.post("/devices/{serial}/service-levels", status_code=201)
def add_service_level(
    serial: str, body: ServiceLevelBody, actor: ActorDep, fleet: FleetDep
) -> ServiceLevelAdded:
    """R-SVC-3: record a warranty, Care Pack or support agreement of a device."""
    fleet.add_service_level(actor, serial, body.level())
    return ServiceLevelAdded(serial=normalise_serial(serial), **body.model_dump())


@router.get("/partners/{location_id}/service-events")
def list_service_events(
    scope: PartnerScopeDep,
    views: ViewsDep,
    page: PageDep,
    customer_id: Annotated[str | None, Query(max_length=256)] = None,
    serial: Annotated[Serial | None, Query()] = None,
) -> Paged[ServiceEventOut]:
    """R-SVC-1, R-SVC-2: events of the devices you service, newest first; per customer or device."""
    with views.transaction() as tx:
        found = service_events(
            tx, scope, customer_id=customer_id, serial=serial, after=page.after, limit=page.limit
        )
    return Paged[ServiceEventOut].of_query(found, page)


@router.get("/partners/{location_id}/service-summary")
def summarise_service_events(
    scope: PartnerScopeDep, views: ViewsDep, page: PageDep
) -> Paged[ServiceSummaryOut]:
    """R-SVC-2: per customer, how many service events your serviced devices have; critical apart."""
    with views.transaction() as tx:
        found = service_summary(tx, scope, after=page.after, limit=page.limit)
    return Paged[ServiceSummaryOut].of_query(found, page)


@router.get("/partners/{location_id}/devices/{serial}/service-levels")
def read_service_levels(
    serial: str,
    scope: PartnerScopeDep,
    views: ViewsDep,
    as_of: Annotated[
        IsoDate | None, Query(description="The day asked about; today (UTC) if not given")
    ] = None,
    all_active: Annotated[
        bool, Query(alias="all", description="Every active level, not only the highest")
    ] = False,
) -> ServiceLevels:
    """R-SVC-3: the highest active service level of a device you service (or all active ones)."""
    day = as_of or datetime.now(UTC).date()
    with views.transaction() as tx:
        levels = service_levels(tx, scope, serial, day, all_active=all_active)
    return ServiceLevels(
        serial=normalise_serial(serial),
        as_of=day,
        levels=[ServiceLevelOut.model_validate(v, from_attributes=True) for v in levels],
    )
