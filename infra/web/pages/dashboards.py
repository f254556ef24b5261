"""A customer's dashboard: its devices linked to this partner (and why each is there), the
child groups the user may see, the group's admins (to admins only), and the actions on it
(R-LNK-1, R-GRP-1…3).

The page reads `customer_dashboard` and `customer_row` under the partner's scope, as
`GET /partners/{location_id}/customer-groups/{group_id}` does; the forms call
`create_child_group`, `share_child_group`, `delete_child_group` and `delete_customer_group`.
A refusal is shown next to the form that was refused: a refused deletion (R-GRP-2) lists
every reason and the admins to contact. Without JavaScript each form posts and comes back
(303); with htmx a child-group form swaps the child groups' section and the deletion form
its own section.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form
from fastapi.responses import Response

from domain.base import DomainError
from handlers.access import PartnerScope, partner_scope
from infra.web.deps import CsrfDep, Portal, PortalDep, Refusal
from projections.customer_queries import customer_dashboard, customer_row

router = APIRouter()
DASHBOARD = "/partners/{location_id}/customers/{group_id}"
LISTING = "/partners/{location_id}/customers"
CHILDREN = "child-groups"  # the id of the child groups' section (htmx target)
DELETION = "delete-group"  # the id of the deletion's section (htmx target)
Text = Annotated[str, Form(min_length=1, max_length=256)]


@router.get(DASHBOARD)
def dashboard(portal: PortalDep, location_id: str, group_id: UUID) -> Response:
    """R-LNK-1, R-GRP-1, R-GRP-3: a customer group's devices, child groups and admins."""
    scope = partner_scope(portal.actor, location_id)
    return portal.render("partners/dashboard.html", **_context(portal, scope, group_id, {}))


@router.post(DASHBOARD + "/child-groups")
def create_child_group(
    portal: PortalDep,
    _csrf: CsrfDep,
    location_id: str,
    group_id: UUID,
    name: Annotated[str, Form(max_length=200)],
    child_id: Text,
) -> Response:
    """R-GRP-1, R-GRP-3: an admin of the group creates a child device group in it.

    `child_id` is made when the form is shown, so sending the form twice creates one group
    (the second is refused as existing)."""
    scope = partner_scope(portal.actor, location_id)
    return _act(
        portal,
        scope,
        group_id,
        ("create", CHILDREN),
        lambda: portal.fleet.create_child_group(portal.actor, group_id, child_id, name),
    )


@router.post(DASHBOARD + "/child-groups/{child_id}/shares")
def share_child_group(
    portal: PortalDep,
    _csrf: CsrfDep,
    location_id: str,
    group_id: UUID,
    child_id: str,
    passport_id: Text,
) -> Response:
    """R-GRP-1: the creator shares a child group with another admin of the customer group."""
    scope = partner_scope(portal.actor, location_id)
    return _act(
        portal,
        scope,
        group_id,
        (f"share:{child_id}", CHILDREN),
        lambda: portal.fleet.share_child_group(portal.actor, group_id, child_id, passport_id),
    )


@router.post(DASHBOARD + "/child-groups/{child_id}/delete")
def delete_child_group(
    portal: PortalDep, _csrf: CsrfDep, location_id: str, group_id: UUID, child_id: str
) -> Response:
    """R-GRP-1: delete a child group you can see."""
    scope = partner_scope(portal.actor, location_id)
    return _act(
        portal,
        scope,
        group_id,
        (f"delete:{child_id}", CHILDREN),
        lambda: portal.fleet.delete_child_group(portal.actor, group_id, child_id),
    )


@router.post(DASHBOARD + "/delete")
def delete_customer_group(
    portal: PortalDep, _csrf: CsrfDep, location_id: str, group_id: UUID
) -> Response:
    """R-GRP-2: delete the customer group, or show every reason it cannot be and its admins;
    once deleted, back to All Customers."""
    scope = partner_scope(portal.actor, location_id)
    try:
        portal.fleet.delete_customer_group(portal.actor, group_id)
    except DomainError as refused:  # shown at the deletion form, in the page's language
        return _refused(portal, scope, group_id, ("delete-group", DELETION), refused)
    portal.caught_up()
    return portal.redirect(LISTING.format(location_id=scope.location_id))


def _act(
    portal: Portal,
    scope: PartnerScope,
    group_id: UUID,
    where: tuple[str, str],
    command: Callable[[], None],
) -> Response:
    """Run a child-group command; then the dashboard (303, or the section for htmx), or
    the refusal next to the form that was refused."""
    try:
        command()
    except DomainError as refused:  # shown next to its form, in the page's language
        return _refused(portal, scope, group_id, where, refused)
    portal.caught_up()
    if portal.htmx:
        return _section(portal, scope, group_id, where[1], {}, 200)
    return portal.redirect(DASHBOARD.format(location_id=scope.location_id, group_id=group_id))


def _refused(
    portal: Portal, scope: PartnerScope, group_id: UUID, where: tuple[str, str], error: Exception
) -> Response:
    refusal = portal.refusal(error)
    refusals = {where[0]: refusal}
    if portal.htmx:
        return _section(portal, scope, group_id, where[1], refusals, refusal.status)
    context = _context(portal, scope, group_id, refusals)
    return portal.render("partners/dashboard.html", refusal.status, **context)


def _section(
    portal: Portal,
    scope: PartnerScope,
    group_id: UUID,
    section: str,
    refusals: dict[str, Refusal],
    status: int,
) -> Response:
    """One section of the dashboard, for htmx to swap in place."""
    template = "partners/_child_groups.html" if section == CHILDREN else "partners/_delete.html"
    return portal.render(template, status, **_context(portal, scope, group_id, refusals))


def _context(
    portal: Portal, scope: PartnerScope, group_id: UUID, refusals: dict[str, Refusal]
) -> dict[str, Any]:
    """What the dashboard shows: three queries, however many devices and groups it has."""
    with portal.views.transaction() as tx:
        board = customer_dashboard(tx, scope, str(group_id))
        row = customer_row(tx, scope, str(group_id))
    me = scope.passport
    return {
        "location_id": scope.location_id,
        "board": board,
        "row": row,
        "me": me,
        "is_admin": board.admins is not None,
        "other_admins": [a for a in board.admins or [] if a != me],
        "new_child_id": uuid.uuid4().hex[:12],
        "refusals": refusals,
        "service_partner": scope.partner_type == "service_partner",
        "base": DASHBOARD.format(location_id=scope.location_id, group_id=group_id),
    }
