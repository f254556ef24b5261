"""A customer's consent history (R-CON-3, R-CON-4, R-PAR-2): every grant, withdrawal,
correction, link and unlink of one device, or of all the customer's devices, in store order.

The records are `projections.consent_queries.history` under the customer's own scope, as
`GET /customers/{customer_id}/consent-history` and `.../devices/{serial}/consent-history`
serve them: a device not the customer's is "not found" (404), as a missing one. Each page
lists the wording of every consent text version its records name (R-CON-3). Keyset paging
by store position.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from domain.consent import CONSENT_TEXTS
from handlers.access import CustomerScope, customer_scope
from infra.web.deps import Portal, PortalDep
from projections.consent_queries import Selection, history

router = APIRouter()
PAGE_SIZE = 50
CUSTOMER_HISTORY = "/customers/{customer_id}/consent-history"
DEVICE_HISTORY = "/customers/{customer_id}/devices/{serial}/consent-history"
Cursor = Annotated[str | None, Query(max_length=2048)]


@router.get(CUSTOMER_HISTORY)
def customer_history(portal: PortalDep, customer_id: str, cursor: Cursor = None) -> Response:
    """R-CON-3, R-CON-4: the consent and link records of all the customer's devices."""
    scope = customer_scope(portal.actor, customer_id, "read consent history")
    return _history_page(portal, scope, None, cursor)


@router.get(DEVICE_HISTORY)
def device_history(
    portal: PortalDep, customer_id: str, serial: str, cursor: Cursor = None
) -> Response:
    """R-CON-3, R-CON-4: the consent and link records of one of the customer's devices."""
    scope = customer_scope(portal.actor, customer_id, "read consent history")
    return _history_page(portal, scope, serial, cursor)


def _history_page(
    portal: Portal, scope: CustomerScope, serial: str | None, cursor: str | None
) -> Response:
    listing = repr(("consent-history", scope.customer_id, serial))
    with portal.views.transaction() as tx:
        chosen = Selection(serial=serial)
        page = history(tx, scope, chosen, after=portal.after(listing, cursor), limit=PAGE_SIZE)
    shown_serial = page.rows[0]["serial"] if serial is not None and page.rows else serial
    return portal.render(
        "customers/consent_history.html",
        customer_id=scope.customer_id,
        serial=shown_serial,
        records=page.rows,
        wordings=_wordings(page.rows),
        next_cursor=portal.cursor(listing, page.next_after),
    )


def _wordings(records: list[dict[str, Any]]) -> dict[str, str]:
    """R-CON-3: the wording of each consent text version these records name."""
    versions = {r["text_version"] for r in records if r.get("text_version")}
    return {v: CONSENT_TEXTS[v] for v in sorted(versions) if v in CONSENT_TEXTS}
