"""HP/HPE operations: partners and their users, accreditation, certification, and the
e2Open intake's rejected reports (R-PAR-1, R-PAR-4, R-HLD-1).

- `/operations`: every partner tenant (`projections.partners.partners_overview`, keyset
  paged) and a form to register one (`register_partner`, as `POST /partners`).
- `/operations/partners/{location_id}`: one partner, its users (paged), and forms to add a
  user (`register_partner_user`), accredit it as service partner with its CSDP account
  (`accredit_service_partner`) and certify it for an HP Premium programme
  (`certify_partner`), as the API's routes under `/partners/{location_id}`.
- `/operations/rejected-reports`: the rejected e2Open reports with their reasons
  (`projections.holding.rejected_reports`, as `GET /intake/e2open/rejected-reports`).

Every page makes `operator_scope` first (any other role: 403). A refused command is shown
as the refusal page with its status (an unknown programme, a second certification).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response

from domain.partner import PROGRAMMES
from handlers.access import operator_scope
from infra.web.deps import CsrfDep, PortalDep
from projections.holding import rejected_reports
from projections.partners import partner_overview, partners_overview, users_of_partner

router = APIRouter()
PAGE_SIZE = 50
Cursor = Annotated[str | None, Query(max_length=2048)]
Key = Annotated[str, Form(min_length=1, max_length=256)]


@router.get("/operations")
def partners(portal: PortalDep, cursor: Cursor = None) -> Response:
    """R-PAR-1, R-PAR-4: every partner tenant by Location ID, with a form to register one."""
    scope = operator_scope(portal.actor)
    with portal.views.transaction() as tx:
        page = partners_overview(tx, scope, after=portal.after("partners", cursor), limit=PAGE_SIZE)
    return portal.render(
        "operations/partners.html",
        page=page,
        next_cursor=portal.cursor("partners", page.next_after),
        partner_path=partner_path,
    )


@router.post("/operations/partners")
def register_partner(
    portal: PortalDep,
    _csrf: CsrfDep,
    location_id: Key,
    name: Annotated[str, Form(min_length=1, max_length=200)],
) -> Response:
    """R-PAR-1: register a partner tenant as reseller under its Partner Location ID."""
    operator_scope(portal.actor, "register partners")
    portal.fleet.register_partner(portal.actor, location_id, name)
    portal.caught_up()
    return portal.redirect(partner_path(location_id))


@router.get("/operations/partners/{location_id}")
def partner(portal: PortalDep, location_id: str, cursor: Cursor = None) -> Response:
    """R-PAR-1, R-PAR-4: one partner, its users by Passport ID, and what may be done."""
    scope = operator_scope(portal.actor)
    listing = repr(("partner-users", location_id))
    with portal.views.transaction() as tx:
        tenant = partner_overview(tx, scope, location_id)
        users = users_of_partner(
            tx, scope, location_id, after=portal.after(listing, cursor), limit=PAGE_SIZE
        )
    programmes = [p for p in PROGRAMMES if p not in tenant.certifications]
    return portal.render(
        "operations/partner.html",
        partner=tenant,
        users=users,
        next_cursor=portal.cursor(listing, users.next_after),
        programmes=programmes,
        path=partner_path(tenant.location_id),
    )


@router.post("/operations/partners/{location_id}/users")
def add_user(portal: PortalDep, _csrf: CsrfDep, location_id: str, passport_id: Key) -> Response:
    """R-PAR-1: register a Passport ID under the partner; the first user is its admin."""
    operator_scope(portal.actor, "register partner users")
    portal.fleet.register_partner_user(portal.actor, location_id, passport_id)
    portal.caught_up()
    return portal.redirect(partner_path(location_id))


@router.post("/operations/partners/{location_id}/accreditation")
def accredit(portal: PortalDep, _csrf: CsrfDep, location_id: str, csdp_account: Key) -> Response:
    """R-PAR-1: accredit a reseller as service partner with its CSDP account."""
    operator_scope(portal.actor, "accredit service partners")
    portal.fleet.accredit_service_partner(portal.actor, location_id, csdp_account)
    portal.caught_up()
    return portal.redirect(partner_path(location_id))


@router.post("/operations/partners/{location_id}/certifications")
def certify(
    portal: PortalDep,
    _csrf: CsrfDep,
    location_id: str,
    programme: Annotated[str, Form(min_length=1, max_length=64)],
) -> Response:
    """R-PAR-4: certify the partner for an HP Premium programme; its holding tenant comes once."""
    operator_scope(portal.actor, "certify partners")
    portal.fleet.certify_partner(portal.actor, location_id, programme)
    portal.caught_up()
    return portal.redirect(partner_path(location_id))


@router.get("/operations/rejected-reports")
def rejected(
    portal: PortalDep,
    batch_id: Annotated[str | None, Query(max_length=256)] = None,
    cursor: Cursor = None,
) -> Response:
    """R-HLD-1: every e2Open report kept as rejected, with its reason, oldest first."""
    scope = operator_scope(portal.actor)
    batch = (batch_id or "").strip() or None
    listing = repr(("rejected-reports", batch))
    with portal.views.transaction() as tx:
        page = rejected_reports(
            tx, scope, batch_id=batch, after=portal.after(listing, cursor), limit=PAGE_SIZE
        )
    return portal.render(
        "operations/rejected.html",
        page=page,
        batch_id=batch,
        next_cursor=portal.cursor(listing, page.next_after),
    )


def partner_path(location_id: str) -> str:
    """The partner's operations page (href percent-encodes the Location ID, once)."""
    return f"/operations/partners/{location_id}"
