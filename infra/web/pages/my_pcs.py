"""My PCs, for an end user (R-ALR-1, R-ALR-2, R-ALR-4): the PCs it works on, the
self-service pop-ups of their alerts, and submitting a repair case from one.

The PCs are `projections.repair_queues.end_user_pcs` under the end user's own scope (its
customer, the PCs its token names). Submitting is the fleet's `submit_repair_case`, as
`POST /devices/{serial}/repair-cases` calls it: a PC the end user does not work on is "not
found" (404); where the case goes is the routing policy's decision (R-ALR-2), shown once
made. A refused submission (a case already submitted for that alert) is shown on the page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from domain.base import DomainError
from handlers.access import EndUserScope, end_user_scope
from infra.web.deps import CsrfDep, Portal, PortalDep, Refusal
from projections.repair_queues import end_user_pcs

router = APIRouter()
MY_PCS = "/customers/{customer_id}/my-pcs"
MAX_CASE_ID = 100  # infra/http/schemas/repairs.py: a case id's length


@router.get(MY_PCS)
def my_pcs(portal: PortalDep, customer_id: str) -> Response:
    """R-ALR-1: the end user's PCs and the pop-ups of their alerts, newest first."""
    scope = end_user_scope(portal.actor, customer_id)
    return _page(portal, scope)


@router.post(MY_PCS + "/{serial}/repair-cases")
def submit_repair_case(
    portal: PortalDep,
    _csrf: CsrfDep,
    customer_id: str,
    serial: str,
    alert_id: Annotated[str, Form(min_length=1, max_length=200)],
) -> Response:
    """R-ALR-1, R-ALR-2: submit the repair case of a pop-up, for a PC the end user works on;
    the case id is made from the alert's (one case per alert)."""
    scope = end_user_scope(portal.actor, customer_id, "submit repair cases")
    case_id = f"CASE-{alert_id}"[:MAX_CASE_ID]
    try:
        portal.fleet.submit_repair_case(portal.actor, serial, alert_id, case_id)
    except DomainError as refused:  # shown on the page, beside the PCs' pop-ups
        return _page(portal, scope, portal.refusal(refused))
    portal.caught_up()
    return portal.redirect(MY_PCS.format(customer_id=scope.customer_id))


def _page(portal: Portal, scope: EndUserScope, refusal: Refusal | None = None) -> Response:
    with portal.views.transaction() as tx:
        pcs = end_user_pcs(tx, scope)
    return portal.render(
        "customers/my_pcs.html",
        refusal.status if refusal else 200,
        customer_id=scope.customer_id,
        pcs=pcs,
        refusal=refusal,
    )
