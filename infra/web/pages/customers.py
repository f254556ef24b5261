"""All Customers / Favorites Only: customer tiles with a star, search and filters, the
default view, keyset paging (R-FAV-1…5, R-SVC-1, R-SVC-2, R-LNK-1).

The listing is `projections.customer_queries.list_customers` under the partner's scope, as
`GET /partners/{location_id}/customer-groups` serves it. The star is `add_favourite` /
`remove_favourite`; the view switch is `choose_default_view`, so the choice is the user's
default from then on (R-FAV-4). Without JavaScript every control is a plain form: a star
posts and comes back to the same listing (303), a refused star (the 26th, R-FAV-2) is shown
next to its tile. With htmx, a star swaps its tile (and the view switch, out of band) and the
filters swap the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response

from domain.base import DomainError
from handlers.access import PartnerScope, partner_scope
from infra.web.deps import CsrfDep, Portal, PortalDep, Refusal
from projections.customer_queries import (
    CustomerPage,
    customer_row,
    list_customers,
    partner_user,
)

router = APIRouter()
PAGE_SIZE = 24
LISTING = "/partners/{location_id}/customers"
Connection = Literal["central_connect", "direct_connect", "pc_agent"]
View = Literal["all_customers", "favorites_only"]


@router.get(LISTING)
def all_customers(
    portal: PortalDep,
    location_id: str,
    search: Annotated[str | None, Query(max_length=256)] = None,
    connection: Connection | Literal[""] | None = None,
    has_critical: bool | None = None,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    """R-FAV-1, R-FAV-3, R-FAV-5, R-SVC-2: the user's default view, filtered, by name.
    `connection=` (empty: the filter form's "All connections") is no connection filter."""
    scope = partner_scope(portal.actor, location_id)
    filters = Filters(search or None, connection or None, has_critical)
    page = _page(portal, scope, filters, cursor)
    template = "partners/_customer_list.html" if _list_only(portal) else "partners/customers.html"
    return portal.render(template, **_context(portal, scope, filters, page, {}))


@router.post(LISTING + "/{group_id}/favourite")
def star(
    portal: PortalDep,
    _csrf: CsrfDep,
    location_id: str,
    group_id: UUID,
    favourite: Annotated[bool, Form()],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    """R-FAV-2: star (`favourite=true`) or unstar a customer; the 26th star is refused next
    to its tile. R-FAV-3: unstarring the last favourite makes All Customers the view."""
    scope = partner_scope(portal.actor, location_id)
    refusals: dict[str, Refusal] = {}
    refused: DomainError | None = None
    try:
        if favourite:
            portal.fleet.add_favourite(portal.actor, group_id)
        else:
            portal.fleet.remove_favourite(portal.actor, group_id)
    except DomainError as error:  # shown next to the tile, in the page's language
        refused = error
        refusals[str(group_id)] = portal.refusal(error)
    portal.caught_up()
    if portal.htmx:
        return _tile(portal, scope, group_id, refusals)
    if refused is None:
        return portal.go_back(_back(location_id, next))
    filters = Filters()
    page = _page(portal, scope, filters, None)
    if all(row.group_id != str(group_id) for row in page.rows):
        # No tile to show it beside (another partner's group, one deleted meanwhile, or
        # beyond the first page): the refusal page, with the refusal's own status (404).
        raise refused
    context = _context(portal, scope, filters, page, refusals)
    return portal.render("partners/customers.html", refusals[str(group_id)].status, **context)


@router.post(LISTING + "/view")
def choose_view(
    portal: PortalDep,
    _csrf: CsrfDep,
    location_id: str,
    view: Annotated[View, Form()],
) -> Response:
    """R-FAV-3, R-FAV-4: show All Customers or Favorites Only, remembered as the default."""
    partner_scope(portal.actor, location_id)
    portal.fleet.choose_default_view(portal.actor, view)
    portal.caught_up()
    return portal.redirect(LISTING.format(location_id=location_id))


@dataclass(frozen=True)
class Filters:
    """What the user narrowed the set shown to (R-FAV-5)."""

    search: str | None = None
    connection: str | None = None
    has_critical: bool | None = None

    def listing(self, location_id: str) -> str:
        """What a cursor of this listing is bound to."""
        return repr(("customers", location_id, self.search, self.connection, self.has_critical))

    def query(self) -> dict[str, object]:
        """The filters as query parameters (for links to the next page)."""
        return {
            "search": self.search,
            "connection": self.connection,
            "has_critical": "true" if self.has_critical else None,
        }


def _page(
    portal: Portal, scope: PartnerScope, filters: Filters, cursor: str | None
) -> CustomerPage:
    listing = filters.listing(scope.location_id)
    with portal.views.transaction() as tx:
        return list_customers(
            tx,
            scope,
            search=filters.search,
            connection=filters.connection,
            has_critical=filters.has_critical or None,
            after=portal.after(listing, cursor),
            limit=PAGE_SIZE,
        )


def _context(
    portal: Portal,
    scope: PartnerScope,
    filters: Filters,
    page: CustomerPage,
    refusals: dict[str, Refusal],
) -> dict[str, Any]:
    next_cursor = portal.cursor(filters.listing(scope.location_id), page.next_after)
    return {
        "location_id": scope.location_id,
        "page": page,
        "filters": filters,
        "next_cursor": next_cursor,
        "refusals": refusals,
        "service_partner": scope.partner_type == "service_partner",
        "back": portal.request.url.path.removeprefix("/portal")
        + (f"?{portal.request.url.query}" if portal.request.url.query else ""),
    }


def _tile(
    portal: Portal, scope: PartnerScope, group_id: UUID, refusals: dict[str, Refusal]
) -> Response:
    """The tile of one customer (and the view switch, out of band), after a star."""
    with portal.views.transaction() as tx:
        user = partner_user(tx, scope)
        row = customer_row(tx, scope, str(group_id))
    return portal.render(
        "partners/_tile_update.html",
        status=409 if refusals else 200,
        row=row,
        location_id=scope.location_id,
        refusals=refusals,
        favourites=user.favourites,
        view=user.default_view if user.favourites else "all_customers",
        service_partner=scope.partner_type == "service_partner",
        back=LISTING.format(location_id=scope.location_id),
    )


def _list_only(portal: Portal) -> bool:
    """An htmx request from the filter form: only the list is swapped."""
    return portal.htmx and portal.request.headers.get("HX-Target") == "customer-list"


def _back(location_id: str, given: str | None) -> str:
    own = LISTING.format(location_id=location_id)
    if given and given.startswith(own) and "\\" not in given and "//" not in given:
        return given
    return own
