"""Alerts, repair cases and the queues they go to (R-ALR-1, R-ALR-2, R-ALR-4).

Alerts are raised and repair cases submitted on the device (`/devices/{serial}/...`); who
hears of an alert and where a case goes are the policies' decisions (handlers/routing.py),
read back as lists: a partner's own alerts and, for a service partner, its CSDP queue under
`/partners/{location_id}/`; every queue, unrouted cases and every alert for HP/HPE
operations under `/operations/`. See routes/partners.py for the pattern.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from infra.http.deps import (
    ActorDep,
    FleetDep,
    OperatorScopeDep,
    PageDep,
    PartnerScopeDep,
    ViewsDep,
)
from infra.http.paging import Paged
from infra.http.routing import FleetRoute
from infra.http.schemas.common import COMMAND_STATUSES, problem_responses
from infra.http.schemas.repairs import (
    AlertNotification,
    AlertRaised,
    NewAlert,
    NewRepairCase,
    PendingRepairCase,
    QueuedRepairCase,
    RepairCaseSubmitted,
)
from projections import repair_queues

router = APIRouter(
    route_class=FleetRoute,
    tags=["alerts and repair cases"],
    responses=problem_responses(*COMMAND_STATUSES),
)

Audience = Literal["end_user", "partner", "hp_customer_support", "hpe_support"]
Destination = Annotated[
    str,
    Path(
        pattern=r"^(hp_customer_support|hpe_support|csdp:.+)$",
        max_length=300,
        description="hp_customer_support, hpe_support, or csdp:<a service partner's account>",
        examples=["hp_customer_support", "csdp:CSDP-DEMO-1"],
    ),
]


@router.post("/devices/{serial}/alerts", status_code=201)
def raise_alert(serial: str, body: NewAlert, actor: ActorDep, fleet: FleetDep) -> AlertRaised:
    """R-ALR-1: record an alert for a device (remote support, or HP/HPE operations by hand)."""
    fleet.raise_alert(actor, serial, body.alert_id, body.severity, body.message)
    return AlertRaised(serial=serial, alert_id=body.alert_id, severity=body.severity)


@router.post("/devices/{serial}/repair-cases", status_code=201)
def submit_repair_case(
    serial: str, body: NewRepairCase, actor: ActorDep, fleet: FleetDep
) -> RepairCaseSubmitted:
    """R-ALR-1, R-ALR-2: submit the repair case of a device's alert (end user, customer, feed)."""
    fleet.submit_repair_case(actor, serial, body.alert_id, body.case_id, body.source)
    return RepairCaseSubmitted(
        serial=serial, case_id=body.case_id, alert_id=body.alert_id, source=body.source
    )


@router.get("/partners/{location_id}/alerts")
def list_partner_alerts(
    scope: PartnerScopeDep, views: ViewsDep, page: PageDep
) -> Paged[AlertNotification]:
    """R-ALR-4: the alerts told to the partner (not to end users), oldest first."""
    with views.transaction() as tx:
        found = repair_queues.alert_notifications(tx, scope, after=page.after, limit=page.limit)
    return Paged[AlertNotification].of_query(found, page)


@router.get("/partners/{location_id}/csdp-queue")
def list_csdp_queue(
    scope: PartnerScopeDep, views: ViewsDep, page: PageDep
) -> Paged[QueuedRepairCase]:
    """R-ALR-2: the repair cases routed to the service partner's CSDP account, oldest first."""
    with views.transaction() as tx:
        found = repair_queues.csdp_queue(tx, scope, after=page.after, limit=page.limit)
    return Paged[QueuedRepairCase].of_query(found, page)


@router.get("/operations/repair-queues/{destination}")
def list_repair_queue(
    destination: Destination, scope: OperatorScopeDep, views: ViewsDep, page: PageDep
) -> Paged[QueuedRepairCase]:
    """R-ALR-2: for HP/HPE operations, the cases routed to one destination, oldest first."""
    with views.transaction() as tx:
        found = repair_queues.repair_queue(
            tx, scope, destination, after=page.after, limit=page.limit
        )
    return Paged[QueuedRepairCase].of_query(found, page)


@router.get("/operations/repair-cases/unrouted")
def list_unrouted_repair_cases(
    scope: OperatorScopeDep, views: ViewsDep, page: PageDep
) -> Paged[PendingRepairCase]:
    """R-ALR-2: for HP/HPE operations, submitted cases no queue holds yet, oldest first."""
    with views.transaction() as tx:
        found = repair_queues.unrouted_repair_cases(tx, scope, after=page.after, limit=page.limit)
    return Paged[PendingRepairCase].of_query(found, page)


@router.get("/operations/alerts")
def list_alert_notifications(
    scope: OperatorScopeDep,
    views: ViewsDep,
    page: PageDep,
    audience: Audience | None = None,
    partner: Annotated[
        str | None, Query(min_length=1, max_length=256, description="One partner's alerts")
    ] = None,
) -> Paged[AlertNotification]:
    """R-ALR-1, R-ALR-4: for HP/HPE operations, alerts and who was told of them, filtered."""
    with views.transaction() as tx:
        found = repair_queues.alert_notifications(
            tx, scope, audience=audience, partner=partner, after=page.after, limit=page.limit
        )
    return Paged[AlertNotification].of_query(found, page)
