"""e2Open and alert intake over HTTP, beside the Kafka feeds (R-HLD-1, R-ALR-1).

Under `/intake/` so the larger body bound applies (limits.py: 8 MiB). A feed's service
account or HP/HPE operations posts a batch; the batch id is the idempotency key of its
content (handlers/intake.py), so a retry of the same batch answers the first outcome and
records nothing, whatever the Idempotency-Key. The answer is the outcome, 200 whatever
became of each message: what was accepted, and what was rejected with each reason. HP/HPE
operations read the rejected reports back. See routes/partners.py for the pattern.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from infra.http.deps import ActorDep, FleetDep, OperatorScopeDep, PageDep, ViewsDep
from infra.http.paging import Paged
from infra.http.routing import FleetRoute
from infra.http.schemas.common import COMMAND_STATUSES, problem_responses
from infra.http.schemas.intake import AlertBatchIn, BatchOutcome, E2OpenBatchIn, RejectedReport
from projections import holding

router = APIRouter(
    prefix="/intake",
    route_class=FleetRoute,
    tags=["intake"],
    responses=problem_responses(*COMMAND_STATUSES),
)


@router.post("/e2open/batches")
def receive_e2open_batch(body: E2OpenBatchIn, actor: ActorDep, fleet: FleetDep) -> BatchOutcome:
    """R-HLD-1: land reported PCs in their partners' holding tenants; rejections kept with why."""
    return BatchOutcome.of(fleet.receive_e2open_batch(actor, body.batch_id, body.reports))


@router.post("/alerts/batches")
def receive_alert_batch(body: AlertBatchIn, actor: ActorDep, fleet: FleetDep) -> BatchOutcome:
    """R-ALR-1: raise every valid alert of the batch; rejections kept with their reasons."""
    return BatchOutcome.of(fleet.receive_alert_batch(actor, body.batch_id, body.alerts))


@router.get("/e2open/rejected-reports")
def list_rejected_reports(
    scope: OperatorScopeDep,
    views: ViewsDep,
    page: PageDep,
    batch_id: Annotated[
        str | None, Query(min_length=1, max_length=256, description="Of one batch only")
    ] = None,
) -> Paged[RejectedReport]:
    """R-HLD-1: for HP/HPE operations, every e2Open report kept as rejected, oldest first."""
    with views.transaction() as tx:
        found = holding.rejected_reports(
            tx, scope, batch_id=batch_id, after=page.after, limit=page.limit
        )
    return Paged[RejectedReport].of_query(found, page)
