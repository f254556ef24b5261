"""My Customers: All Customers / Favorites Only, customer groups, child groups, group
admins, favourites, the default view and the partner user's own profile.

Partner users' routes live under `/partners/{location_id}` (the path's partner is checked
against the token's: 404 for another's); the customer's own child groups under
`/customers/{customer_id}`. Pages read the views (`Partnerfleet-Wait-For` for
read-your-writes); commands go through FleetRoute (Idempotency-Key, If-Match with the
ETag of the dashboard or profile, Partnerfleet-Position). See routes/partners.py.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from handlers.access import (
    NotCachedError,
    PartnerScope,
    authenticate,
    claimed_partner,
    partner_scope,
)
from handlers.group_queries import own_passport, partner_customer_group
from infra.http.deps import (
    ActorDep,
    CurrentViewsDep,
    FleetDep,
    PageDep,
    PartnerActorDep,
    PartnerScopeDep,
    PlainList,
    Reads,
    ReadsDep,
    claims_of,
    in_plain_thread,
    page_of,
    plain_list,
    reads_of,
)
from infra.http.loop_reads import LoopReadError, LoopReads
from infra.http.paging import Page
from infra.http.routing import ETAG_HEADER, FleetRoute, etag, plain_path
from infra.http.schemas.common import COMMAND_STATUSES, problem_responses
from infra.http.schemas.customers import (
    ChildGroupCreated,
    ChildGroupShared,
    Connection,
    CustomerDashboard,
    CustomerList,
    DefaultView,
    Favourite,
    GroupAdminAdded,
    NewChildGroup,
    NewFavourite,
    NewGroupAdmin,
    NewShare,
    Profile,
    View,
    ViewChoice,
    customer_list_json,
)
from projections.base import Tx
from projections.customer_queries import customer_dashboard, list_customers, partner_user

router = APIRouter(
    route_class=FleetRoute,
    tags=["customer groups"],
    responses=problem_responses(*COMMAND_STATUSES),
)
GROUPS = "/partners/{location_id}/customer-groups"
GROUP = GROUPS + "/{group_id}"
CHILD = GROUP + "/child-groups/{child_id}"
ME = "/partners/{location_id}/me"
WITH_ETAG: dict[int | str, dict[str, Any]] = {200: {"headers": {"ETag": ETAG_HEADER}}}


async def plain_groups_page(request: Request) -> Response | None:
    """GET GROUPS in its plain form (deps.plain_list: a bearer token, `limit`, `cursor`),
    answered without FastAPI's dependencies: on the event loop where nothing but the one
    query waits (`groups_page_on_loop`, session 19), else in one worker thread: the same
    checks in the same order as `list_customer_groups`' dependencies (get_actor: the token,
    then authenticate; partner_scope; reads_of; page_of), so the same answer or the same
    error; None for any other form. On PostgreSQL the partner's stored version is read in the same
    query as the views' positions (`Reads.positions_and_version`), so `authenticate`
    confirms the membership from the aggregate cache when the partner is cached at that
    version, with no round trip of its own (issue 11, session 18)."""
    plain = await plain_list(request)
    if plain is None:
        return None
    state = request.app.state
    if state.loop_reads is not None and getattr(state.verifier, "never_waits", False):
        answer_here = await groups_page_on_loop(request, plain, state.loop_reads)
        if answer_here is not None:
            return answer_here

    def answer() -> Response:
        claims = claims_of(request, plain.credentials)
        reads = reads_of(request, state.views.db)
        partner = claimed_partner(claims)
        positions, stored = (
            (None, None) if partner is None else reads.positions_and_version(partner)
        )
        actor = authenticate(state.fleet, claims, stored)
        scope = partner_scope(actor, request.path_params["location_id"])
        page = page_of(request, actor, plain.limit, plain.cursor)
        return groups_page(scope, reads, page, positions=positions)

    return await in_plain_thread(answer)


async def groups_page_on_loop(
    request: Request, plain: PlainList, loop_reads: LoopReads
) -> Response | None:
    """`plain_groups_page`'s answer without a worker thread where nothing waits but the
    one query (issue 11, session 19): the same checks in the same order, the positions and
    the partner's version read by `loop_reads` (one query for every request waiting), the
    partner taken from the aggregate cache at that version, the body from the page cache,
    or built in a worker thread. None (the thread path answers, from the start) when the
    partner is not cached at its stored version or the query failed: the thread path then
    reads them itself and gives the errors it always gave."""
    state = request.app.state
    claims = claims_of(request, plain.credentials)  # the verifier reads no network here
    partner = claimed_partner(claims)
    if partner is None:
        return None
    reads = reads_of(request, state.views.db)
    try:
        positions, version = await loop_reads.read(partner)
        actor = authenticate(state.fleet, claims, {partner: version}, cached_only=True)
    except (LoopReadError, NotCachedError):
        return None
    scope = partner_scope(actor, request.path_params["location_id"])
    page = page_of(request, actor, plain.limit, plain.cursor)
    body = reads.cached(groups_key(scope, page), positions)
    if body is None:
        return await in_plain_thread(lambda: groups_page(scope, reads, page, positions=positions))
    return Response(body, media_type="application/json")


@router.get(GROUPS, response_model=CustomerList)
@plain_path(plain_groups_page)
def list_customer_groups(
    scope: PartnerScopeDep,
    reads: ReadsDep,
    page: PageDep,
    view: Annotated[View | None, Query(description="Default: the user's default view")] = None,
    search: Annotated[str | None, Query(max_length=256, description="Part of the name")] = None,
    connection: Connection | None = None,
    has_critical: Annotated[bool | None, Query(description="R-SVC-2: critical events")] = None,
) -> Response:
    """R-FAV-1, R-FAV-3, R-FAV-5, R-SVC-2: All Customers or Favorites Only, filtered, by name."""
    # The body is CustomerList (response_model: the schema), serialized without a model per
    # tile (customer_list_json) and remembered while the views stand still (Reads.page: the
    # key is who asks and what, the positions are added); the docstring is the OpenAPI
    # description, kept as it was. The plain form is answered by plain_groups_page.
    return groups_page(scope, reads, page, view, search, connection, has_critical)


def groups_page(
    scope: PartnerScope,
    reads: Reads,
    page: Page,
    view: View | None = None,
    search: str | None = None,
    connection: Connection | None = None,
    has_critical: bool | None = None,
    *,
    positions: tuple[int, ...] | None = None,
) -> Response:
    """The All Customers / Favorites Only page (application/json, CustomerList) for
    `scope`, from the page cache or built from the views (`positions`: the views'
    positions read a moment ago, see `Reads.page`)."""

    def body(tx: Tx) -> bytes:
        found = list_customers(
            tx,
            scope,
            view=view,
            search=search,
            connection=connection,
            has_critical=has_critical,
            after=page.after,
            limit=page.limit,
        )
        after = found.next_after
        return customer_list_json(found, None if after is None else page.next_cursor(after))

    key = groups_key(scope, page, view, search, connection, has_critical)
    return Response(reads.page(key, body, positions), media_type="application/json")


def groups_key(
    scope: PartnerScope,
    page: Page,
    view: View | None = None,
    search: str | None = None,
    connection: Connection | None = None,
    has_critical: bool | None = None,
) -> tuple[object, ...]:
    """The page cache's key of a groups page: who asks and what (the views' positions are
    added by `Reads`)."""
    asked = (view, search, connection, has_critical, page.after, page.limit)
    return ("customer-groups", scope, page.principal, page.listing, asked)


@router.get(GROUP, responses=WITH_ETAG)
def read_customer_group(
    group_id: UUID,
    scope: PartnerScopeDep,
    views: CurrentViewsDep,
    fleet: FleetDep,
    response: Response,
) -> CustomerDashboard:
    """R-LNK-1, R-GRP-1, R-GRP-3, R-HLD-3: a customer group's devices, child groups, admins;
    the views are brought up to the store after its ETag is read, so the body shows it."""
    tag = etag(partner_customer_group(fleet, scope, group_id))
    with views.now().transaction() as tx:
        dashboard = customer_dashboard(tx, scope, str(group_id))
    response.headers["ETag"] = tag
    return CustomerDashboard.of(dashboard)


@router.delete(GROUP, status_code=204, response_class=Response)
def delete_customer_group(group_id: UUID, actor: PartnerActorDep, fleet: FleetDep) -> None:
    """R-GRP-2: delete a group without devices or partner child groups; else why, and admins."""
    fleet.delete_customer_group(actor, group_id)


@router.post(GROUP + "/child-groups", status_code=201)
def create_child_group(
    group_id: UUID, body: NewChildGroup, actor: PartnerActorDep, fleet: FleetDep
) -> ChildGroupCreated:
    """R-GRP-1, R-GRP-3: an admin of the customer group creates a child device group in it."""
    fleet.create_child_group(actor, group_id, body.child_id, body.name)
    return ChildGroupCreated(group_id=group_id, child_id=body.child_id, name=body.name.strip())


@router.post(CHILD + "/shares", status_code=201)
def share_child_group(
    group_id: UUID, child_id: str, body: NewShare, actor: PartnerActorDep, fleet: FleetDep
) -> ChildGroupShared:
    """R-GRP-1: the creator shares a child group with another admin of the customer group."""
    fleet.share_child_group(actor, group_id, child_id, body.passport_id)
    return ChildGroupShared(group_id=group_id, child_id=child_id, shared_with=body.passport_id)


@router.delete(CHILD, status_code=204, response_class=Response)
def delete_child_group(
    group_id: UUID, child_id: str, actor: PartnerActorDep, fleet: FleetDep
) -> None:
    """R-GRP-1: delete a child group you can see."""
    fleet.delete_child_group(actor, group_id, child_id)


@router.post(GROUP + "/admins", status_code=201)
def add_group_admin(
    group_id: UUID, body: NewGroupAdmin, actor: PartnerActorDep, fleet: FleetDep
) -> GroupAdminAdded:
    """R-GRP-3: an admin of the customer group makes another user of the partner one."""
    fleet.add_group_admin(actor, group_id, body.passport_id)
    return GroupAdminAdded(group_id=group_id, passport_id=body.passport_id)


@router.post("/customers/{customer_id}/customer-groups/{group_id}/child-groups", status_code=201)
def create_customer_child_group(
    customer_id: str, group_id: UUID, body: NewChildGroup, actor: ActorDep, fleet: FleetDep
) -> ChildGroupCreated:
    """R-GRP-1: the customer creates its own subgroup, which no partner sees."""
    fleet.create_customer_child_group(actor, customer_id, group_id, body.child_id, body.name)
    return ChildGroupCreated(group_id=group_id, child_id=body.child_id, name=body.name.strip())


@router.get(ME, responses=WITH_ETAG)
def read_profile(
    scope: PartnerScopeDep, views: CurrentViewsDep, fleet: FleetDep, response: Response
) -> Profile:
    """R-PAR-2, R-FAV-3, R-FAV-4: you as My Customers knows you; the ETag is your Passport's,
    and the views are brought up to the store after reading it, so the body shows it."""
    tag = etag(own_passport(fleet, scope))
    with views.now().transaction() as tx:
        user = partner_user(tx, scope)
    response.headers["ETag"] = tag
    return Profile.of(user, admin=scope.admin)


@router.post(ME + "/favourites", status_code=201)
def add_favourite(body: NewFavourite, actor: PartnerActorDep, fleet: FleetDep) -> Favourite:
    """R-FAV-2: mark a customer group of your partner as favourite; the 26th is refused."""
    fleet.add_favourite(actor, body.group_id)
    return Favourite(group_id=body.group_id)


@router.delete(ME + "/favourites/{group_id}", status_code=204, response_class=Response)
def remove_favourite(group_id: UUID, actor: PartnerActorDep, fleet: FleetDep) -> None:
    """R-FAV-2, R-FAV-3: unmark a favourite; without any, the default is All Customers again."""
    fleet.remove_favourite(actor, group_id)


@router.put(ME + "/default-view")
def choose_default_view(body: ViewChoice, actor: PartnerActorDep, fleet: FleetDep) -> DefaultView:
    """R-FAV-3, R-FAV-4: remember All Customers or Favorites Only as your default view."""
    fleet.choose_default_view(actor, body.view)
    return DefaultView(view=body.view)
