"""The holding tenant, customer dashboards, transfers and cPIN enrolment (R-HLD-*, R-ALR-4).

A partner's unassigned PCs and its dashboards are under `/partners/{location_id}/`; a
customer enrols its PCs under `/customers/{customer_id}/`; HP/HPE operations read every
partner's open missing-device requests under `/operations/`. The requests themselves are
opened and resolved in routes/partners.py. See routes/partners.py for the pattern.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from handlers.holding_queries import customer_dashboard_record
from infra.http.deps import (
    ActorDep,
    FleetDep,
    OperatorScopeDep,
    PageDep,
    PartnerScopeDep,
    ViewsDep,
)
from infra.http.paging import Paged
from infra.http.routing import ETAG_HEADER, FleetRoute, etag
from infra.http.schemas.common import COMMAND_STATUSES, problem_responses
from infra.http.schemas.holding import (
    Dashboard,
    DashboardCreated,
    Enrolled,
    Enrolment,
    MissingDeviceRequest,
    NewDashboard,
    NotificationSetting,
    NotificationsSwitched,
    Transfer,
    Transferred,
    UnassignedPC,
)
from projections import holding

router = APIRouter(
    route_class=FleetRoute,
    tags=["holding tenant and dashboards"],
    responses=problem_responses(*COMMAND_STATUSES),
)


@router.get("/partners/{location_id}/holding-tenant/pcs")
def list_unassigned_pcs(
    scope: PartnerScopeDep, views: ViewsDep, page: PageDep
) -> Paged[UnassignedPC]:
    """R-HLD-1, R-PAR-4: PCs reported through e2Open that wait in the partner's holding tenant."""
    with views.transaction() as tx:
        found = holding.unassigned_devices(tx, scope, after=page.after, limit=page.limit)
    return Paged[UnassignedPC].of_query(found, page)


@router.post("/partners/{location_id}/dashboards", status_code=201)
def create_customer_dashboard(
    location_id: str, body: NewDashboard, actor: ActorDep, fleet: FleetDep
) -> DashboardCreated:
    """R-HLD-3: create a customer dashboard for a customer and its cPIN."""
    dashboard_id = fleet.create_customer_dashboard(
        actor, location_id, body.customer_id, body.customer_name, body.cpin.get_secret_value()
    )
    return DashboardCreated(
        location_id=location_id, dashboard_id=dashboard_id, customer_id=body.customer_id
    )


@router.get(
    "/partners/{location_id}/dashboards/{dashboard_id}",
    responses={200: {"headers": {"ETag": ETAG_HEADER}}},
)
def read_customer_dashboard(
    dashboard_id: UUID, scope: PartnerScopeDep, fleet: FleetDep, response: Response
) -> Dashboard:
    """R-HLD-3, R-ALR-4: a customer dashboard's settings; the ETag is its version."""
    group = customer_dashboard_record(fleet, scope, dashboard_id)
    response.headers["ETag"] = etag(group)
    return Dashboard.of(group)


@router.put("/partners/{location_id}/dashboards/{dashboard_id}/self-service-notifications")
def switch_self_service_notifications(
    location_id: str,
    dashboard_id: UUID,
    body: NotificationSetting,
    actor: ActorDep,
    fleet: FleetDep,
) -> NotificationsSwitched:
    """R-ALR-4: switch the end users' self-service pop-ups of a customer dashboard."""
    fleet.switch_self_service_notifications(actor, location_id, dashboard_id, body.on)
    return NotificationsSwitched(dashboard_id=dashboard_id, on=body.on)


@router.post("/partners/{location_id}/transfers", status_code=201)
def transfer_devices(
    location_id: str, body: Transfer, actor: ActorDep, fleet: FleetDep
) -> Transferred:
    """R-HLD-3: move the partner's PCs from one source to one target; back again reverses it."""
    fleet.transfer_devices(
        actor, location_id, body.serials, body.source_id, body.target_id, body.transfer_id
    )
    return Transferred.model_validate(body.model_dump())


@router.post("/customers/{customer_id}/dashboards/{dashboard_id}/pcs", status_code=201)
def enrol_with_cpin(
    customer_id: str, dashboard_id: UUID, body: Enrolment, actor: ActorDep, fleet: FleetDep
) -> Enrolled:
    """R-HLD-3: the customer enrols a PC into its own customer dashboard with its cPIN."""
    fleet.enrol_with_cpin(
        actor,
        customer_id,
        dashboard_id,
        body.cpin.get_secret_value(),
        body.serial,
        body.model,
        body.care_plan,
    )
    return Enrolled(serial=body.serial, dashboard_id=dashboard_id, customer_id=customer_id)


@router.get("/partners/{location_id}/missing-device-requests")
def list_missing_device_requests(
    scope: PartnerScopeDep, views: ViewsDep, page: PageDep
) -> Paged[MissingDeviceRequest]:
    """R-HLD-2: the partner's support requests for missing PCs not resolved yet, oldest first."""
    with views.transaction() as tx:
        found = holding.open_missing_device_requests(tx, scope, after=page.after, limit=page.limit)
    return Paged[MissingDeviceRequest].of_query(found, page)


@router.get("/operations/missing-device-requests")
def list_all_missing_device_requests(
    scope: OperatorScopeDep, views: ViewsDep, page: PageDep
) -> Paged[MissingDeviceRequest]:
    """R-HLD-2: for HP/HPE operations, every partner's unresolved missing-PC requests."""
    with views.transaction() as tx:
        found = holding.open_missing_device_requests(tx, scope, after=page.after, limit=page.limit)
    return Paged[MissingDeviceRequest].of_query(found, page)
