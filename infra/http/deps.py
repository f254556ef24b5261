"""What routes are given: the actor, the fleet, read models (read-your-writes), a page, scopes.

- `ActorDep`: `Authorization: Bearer <token>` -> the verifier's claims -> `authenticate`
  (partner roles are checked against the store). No or a refused token: 401 with
  `WWW-Authenticate`. The request id is the correlation id of what the actor causes.
- `FleetDep`: the command application.
- `ViewsDep`: the read-model database, once the views have reached the position the request
  names in `Partnerfleet-Wait-For` (a `Partnerfleet-Position` a command answered): up to
  `WAIT_SECONDS`, then 503 `views-behind` with `Retry-After`. Without the header: at once.
  A position beyond the store's last is 400 `malformed-request` (no wait could reach it).
- `CurrentViewsDep`: the read models brought up to the store's last position when the route
  asks (`.now()`): configuration data (R-CON-3: a withdrawal ends access at once) and a body
  sent with its aggregate's ETag. 503 `views-behind` if they do not get there in time.
- `PageDep`: `limit` and `cursor` of a list (infra/http/paging.py).
- `ReadsDep`: the read models (as `ViewsDep`), their positions and the page cache: a list
  route's body remembered while the views stand still (infra/http/page_cache.py).
- `PartnerScopeDep`: the `{location_id}` partner's scope (403 for other roles, 404 for
  another partner's Location ID).
- `PartnerActorDep`: the actor, checked as `PartnerScopeDep` checks it, for partner users'
  commands whose path names the partner (`/partners/{location_id}/...`).

- `OperatorScopeDep`: HP/HPE operations' scope (403 for every other role).

- `CustomerScopeDep`: the `{customer_id}` customer's scope, for its customer admin (403 for
  other roles, 404 for another customer's id).
- `AuditScopeDep`: consent history for the auditor and operator roles (403 for others).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, TypeVar
from uuid import UUID

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from handlers import PartnerFleet
from handlers.access import (
    Actor,
    AuditScope,
    Claims,
    ClaimsVerifier,
    CustomerScope,
    OperatorScope,
    PartnerScope,
    audit_scope,
    authenticate,
    customer_scope,
    operator_scope,
    partner_scope,
)
from infra.follow.view_runner import ViewRunner
from infra.http.errors import MissingTokenError, ProblemError, request_id
from infra.http.page_cache import PageCache, PageCaches
from infra.http.paging import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT, Cursors, Page
from infra.storage.tracking import read_positions, read_positions_and_version
from infra.storage.viewdb import ViewDB
from projections.base import Tx

T = TypeVar("T")
WAIT_SECONDS = 1.0
WAIT_HEADER = "Partnerfleet-Wait-For"
VIEWS_RETRY_SECONDS = 1


_bearer = HTTPBearer(auto_error=False, description="A JWT from the operator's identity provider")


async def get_fleet(request: Request) -> PartnerFleet:
    """The application the API was created over."""
    fleet: PartnerFleet = request.app.state.fleet
    return fleet


FleetDep = Annotated[PartnerFleet, Depends(get_fleet)]


def get_actor(
    request: Request,
    fleet: FleetDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    """The authenticated principal of this request (401 without a valid bearer token)."""
    return authenticate(fleet, claims_of(request, credentials))


def claims_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Claims:
    """The verified claims of the bearer token (401 without one or for a refused one; 503
    without a verifier), the request id as correlation id unless the token names one."""
    if credentials is None:
        raise MissingTokenError("This route needs a token: send Authorization: Bearer <token>.")
    verifier: ClaimsVerifier | None = request.app.state.verifier
    if verifier is None:
        raise ProblemError("storage-unavailable", "This server cannot verify tokens yet.")
    claims = verifier.claims(credentials.credentials)
    if not claims.correlation_id:
        claims = dataclasses.replace(claims, correlation_id=request_id(request))
    return claims


ActorDep = Annotated[Actor, Depends(get_actor)]


async def get_views(
    request: Request,
    wait_for: Annotated[
        int | None,
        Header(
            alias=WAIT_HEADER,
            ge=0,
            description="A Partnerfleet-Position to wait for (read-your-writes), up to ~1 s.",
        ),
    ] = None,
) -> ViewDB:
    """The read models, after they reached `Partnerfleet-Wait-For` (503 if not in time)."""
    views: ViewRunner | None = request.app.state.views
    if views is None:
        raise ProblemError("storage-unavailable", "This process serves no read models.")
    if wait_for:  # reading the head and waiting block: in a worker thread, not the loop
        await run_in_threadpool(_wait_for, views, wait_for)
    return views.db


def _wait_for(views: ViewRunner, wait_for: int) -> None:
    """Wait until the views applied `wait_for`: 400 beyond the head, 503 after WAIT_SECONDS."""
    if wait_for > views.head():  # waiting could never reach it
        raise ProblemError(
            "malformed-request",
            f"Partnerfleet-Wait-For names position {wait_for}, beyond the last one stored: "
            "send a Partnerfleet-Position this service answered.",
        )
    if not views.wait_until(wait_for, timeout=WAIT_SECONDS):
        raise ProblemError(
            "views-behind",
            f"The read models have not reached position {wait_for} within {WAIT_SECONDS:g} s.",
            {"Retry-After": str(VIEWS_RETRY_SECONDS)},
        )


ViewsDep = Annotated[ViewDB, Depends(get_views)]


@dataclasses.dataclass(frozen=True)
class Reads:
    """The read models of a list route, with the page cache (infra/http/page_cache.py)."""

    db: ViewDB
    views: tuple[str, ...]  # every view the runner keeps: any of them moving is a new key
    cache: PageCache
    events_table: str | None = None  # the store's events in `db` (PostgreSQL), quoted

    def page(
        self,
        key: tuple[object, ...],
        make: Callable[[Tx], bytes],
        positions: tuple[int, ...] | None = None,
    ) -> bytes:
        """The body of the page `key` names (who asks and what), remembered under the
        views' positions read first in this same read; else `make(tx)` in that read.
        `key` must hold everything the body depends on besides the views' rows.
        `positions`: the views' positions as `positions_and_version` read them a moment
        ago (a body built after them shows at least that state); a hit then reads nothing."""
        if positions is not None:
            return self.cache.body((key, positions), lambda: self._made(make))
        with self.db.read() as tx:
            positions = read_positions(tx, self.views)
            return self.cache.body((key, positions), lambda: make(tx))

    def cached(self, key: tuple[object, ...], positions: tuple[int, ...]) -> bytes | None:
        """The body `page(key, make, positions)` would give from the cache, else None."""
        return self.cache.get((key, positions))

    def _made(self, make: Callable[[Tx], bytes]) -> bytes:
        with self.db.read() as tx:
            return make(tx)

    def positions_and_version(
        self, aggregate_id: UUID
    ) -> tuple[tuple[int, ...] | None, dict[UUID, int | None] | None]:
        """The views' positions and `aggregate_id`'s last stored version (for
        `authenticate`'s `stored_versions`) in one query; (None, None) where the store's
        events are not in the views' database (SQLite: two files)."""
        if self.events_table is None:
            return None, None
        with self.db.read() as tx:
            positions, version = read_positions_and_version(
                tx, self.views, self.events_table, aggregate_id
            )
        return positions, {aggregate_id: version}


async def get_reads(request: Request, views: ViewsDep) -> Reads:
    """The read models (after `Partnerfleet-Wait-For`, as `ViewsDep`) and the page cache."""
    return reads_of(request, views)


def reads_of(request: Request, views: ViewDB) -> Reads:
    """`views` with the names of the runner's views and the page cache of `views`."""
    runner: ViewRunner = request.app.state.views
    names = tuple(view.name for view in runner.views)
    caches: PageCaches = request.app.state.page_caches
    events = getattr(request.app.state, "events_table", None)
    return Reads(views, names, caches.of(views), events if views is runner.db else None)


def events_table(fleet: PartnerFleet, db: ViewDB) -> str | None:
    """The store's events table as `db`'s queries name it (schema-qualified, quoted), when
    the store is PostgreSQL in the same schema as `db`; else None (SQLite: two files)."""
    recorder = fleet.recorder
    table = getattr(recorder, "events_table_name", None)
    schema = getattr(getattr(recorder, "datastore", None), "schema", None)
    if db.kind != "postgres" or not table or not schema or schema != getattr(db, "schema", None):
        return None
    return ".".join('"' + name.replace('"', '""') + '"' for name in (schema, table))


ReadsDep = Annotated[Reads, Depends(get_reads)]


@dataclasses.dataclass(frozen=True)
class CurrentViews:
    """The read models of a read that must show what the store holds now: configuration
    data, whose access a withdrawal ends at once (R-CON-3), and a body sent with the ETag of
    its aggregate, which must show the version the tag names (or a later one)."""

    runner: ViewRunner

    def now(self) -> ViewDB:
        """The read models once they applied every event stored before this call: up to
        `WAIT_SECONDS`, else 503 `views-behind` with `Retry-After` (never a stale answer).
        Call it after loading the aggregate an ETag is taken from."""
        head = self.runner.head()
        if head and not self.runner.wait_until(head, timeout=WAIT_SECONDS):
            raise ProblemError(
                "views-behind",
                f"The read models have not reached position {head}, the store's last, within "
                f"{WAIT_SECONDS:g} s.",
                {"Retry-After": str(VIEWS_RETRY_SECONDS)},
            )
        return self.runner.db


async def get_current_views(request: Request, _views: ViewsDep) -> CurrentViews:
    """The read models, to be brought up to the store's last position (`CurrentViews.now`);
    `Partnerfleet-Wait-For` is checked as `ViewsDep` checks it."""
    runner: ViewRunner = request.app.state.views
    return CurrentViews(runner)


CurrentViewsDep = Annotated[CurrentViews, Depends(get_current_views)]


async def get_page(
    request: Request,
    actor: ActorDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=MAX_CURSOR_LENGTH, description="next_cursor of a page")
    ] = None,
) -> Page:
    """The page asked for, its cursor checked against this principal, route and filter."""
    return page_of(request, actor, limit, cursor)


def page_of(request: Request, actor: Actor, limit: int, cursor: str | None) -> Page:
    """The page of `limit` items after `cursor` (None: the first), the cursor checked
    against this principal, route and filter (ProblemError 400 `invalid-cursor`)."""
    cursors: Cursors = request.app.state.cursors
    principal, listing = str(actor), _listing(request)
    after = None if cursor is None else cursors.read(cursor, principal, listing)
    return Page(limit, after, principal, listing, cursors)


def _listing(request: Request) -> str:
    """Method, route template, path parameters and filters (query less cursor and limit)."""
    route = getattr(request.scope.get("route"), "path", None)
    if route is None:  # not `getattr`'s default: request.url builds a URL every request
        route = request.url.path
    filters = sorted((k, v) for k, v in request.query_params.multi_items() if k not in PAGING)
    return repr((request.method, route, sorted(request.path_params.items()), filters))


PAGING = frozenset({"cursor", "limit"})
PageDep = Annotated[Page, Depends(get_page)]


PLAIN_THREADS = 4  # as many as the read models' pool has connections (ViewDB)
_plain_threads = ThreadPoolExecutor(PLAIN_THREADS, thread_name_prefix="plain-read")


async def in_plain_thread(work: Callable[[], T]) -> T:
    """`work()`'s result (or its exception) from one of PLAIN_THREADS threads kept for
    plain paths, run in this request's context (its log binding), first come first
    served. Cheaper than Starlette's `run_in_threadpool` (AnyIO's limiter, cancel scope
    and task bookkeeping: 11 % of the server's samples); no more threads than the read
    models' pool has connections, so none waits for one (docs/decisions.md, "HTTP load
    generator and server CPU per request (session 17)")."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_plain_threads, context.run, work)


@dataclasses.dataclass(frozen=True)
class PlainList:
    """A list request in its plainest form: a bearer token, `limit` and `cursor` at most,
    each valid as the route's parameters take them, and nothing else to wait for."""

    credentials: HTTPAuthorizationCredentials
    limit: int
    cursor: str | None


async def plain_list(request: Request) -> PlainList | None:
    """The request as a `PlainList`, or None when it is anything else: a request without a
    bearer token, with `Partnerfleet-Wait-For`, with a query parameter besides one `limit`
    (1 to MAX_LIMIT, digits only) and one non-empty `cursor` (at most MAX_CURSOR_LENGTH),
    or to an app without a verifier or read models. Nothing here refuses or logs: what it
    does not take, the route's dependencies answer (infra/http/routing.py, `plain_path`)."""
    state = request.app.state
    if state.verifier is None or state.views is None or WAIT_HEADER in request.headers:
        return None
    credentials = await _bearer(request)
    params = request.query_params.multi_items()
    names = {name for name, _ in params}
    if credentials is None or len(names) != len(params) or not names <= PAGING:
        return None
    limit, cursor = DEFAULT_LIMIT, None
    for name, value in params:
        if name == "limit":
            if not (value.isascii() and value.isdigit() and value[0] != "0" and len(value) < 6):
                return None
            limit = int(value)
            if limit > MAX_LIMIT:
                return None
        elif not value or len(value) > MAX_CURSOR_LENGTH:
            return None
        else:
            cursor = value
    return PlainList(credentials, limit, cursor)


async def get_partner_scope(actor: ActorDep, location_id: str) -> PartnerScope:
    """The scope of the partner in the path, for one of its users."""
    return partner_scope(actor, location_id)


PartnerScopeDep = Annotated[PartnerScope, Depends(get_partner_scope)]


async def get_partner_actor(actor: ActorDep, location_id: str) -> Actor:
    """The actor of a partner user's command under `/partners/{location_id}`: one of that
    partner's users (403 for other roles, 404 for another partner's Location ID), so the
    path names the partner the command acts for (the commands act for `actor.tenant`)."""
    partner_scope(actor, location_id, "act for a partner")
    return actor


PartnerActorDep = Annotated[Actor, Depends(get_partner_actor)]


async def get_operator_scope(actor: ActorDep) -> OperatorScope:
    """HP/HPE operations' scope (every partner, the intake's rejections, the queues)."""
    return operator_scope(actor)


OperatorScopeDep = Annotated[OperatorScope, Depends(get_operator_scope)]


async def get_customer_scope(actor: ActorDep, customer_id: str) -> CustomerScope:
    """The scope of the customer in the path, for its customer admin (R-PAR-2)."""
    return customer_scope(actor, customer_id)


CustomerScopeDep = Annotated[CustomerScope, Depends(get_customer_scope)]


async def get_audit_scope(actor: ActorDep) -> AuditScope:
    """Consent history and exports, for an auditor or operator (R-CON-3, R-CON-4)."""
    return audit_scope(actor)


AuditScopeDep = Annotated[AuditScope, Depends(get_audit_scope)]
