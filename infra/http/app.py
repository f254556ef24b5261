"""The HTTP application: one factory over what infra/bootstrap.py built.

Routers come from infra/http/routes (one module per resource); errors become problem
details (errors.py); bodies are bounded (limits.py); every request has an id (requests.py).
Conventions (headers, bounds, problem types): docs/decisions.md, "HTTP conventions (issue 9)".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI

from handlers import PartnerFleet
from handlers.access import ClaimsVerifier
from infra.follow.policy_follower import PolicyFollower
from infra.follow.view_runner import ViewRunner
from infra.http import errors
from infra.http.deps import events_table
from infra.http.front import PlainFront, PlainRoutes
from infra.http.limits import BodyLimit
from infra.http.loop_reads import LoopReads
from infra.http.page_cache import PageCaches
from infra.http.paging import Cursors
from infra.http.requests import RequestIds
from infra.http.routes import routers
from infra.kafka.relay import Relay
from infra.loops import Follower
from infra.settings import Settings
from infra.storage.viewdb import PostgresViewDB


def create_api(
    fleet: PartnerFleet,
    settings: Settings,
    views: ViewRunner | None = None,
    policies: PolicyFollower | None = None,
    loops: Mapping[str, Follower] | None = None,
    relay: Relay | None = None,
    *,
    verifier: ClaimsVerifier | None = None,
    jwks: Mapping[str, Any] | None = None,
) -> FastAPI:
    """The HTTP API over `fleet`, its read models (`views`), policies and loops, accepting
    the bearer tokens `verifier` accepts (none without one: 503 on authenticated routes).
    `jwks`: the local signing key's public JWK Set, served at /.well-known/jwks.json (demo
    mode, when the verifier trusts that key; else None and that route answers 404)."""
    api = FastAPI(
        title="partnerfleet",
        version="0.1.0",
        description="Which channel partner may see and service which customer devices, "
        "with whose consent. Errors are application/problem+json (RFC 9457).",
    )
    api.state.fleet, api.state.settings, api.state.verifier = fleet, settings, verifier
    api.state.views, api.state.policies, api.state.relay = views, policies, relay
    api.state.loops = dict(loops or {})
    api.state.jwks = jwks
    api.state.cursors = Cursors(settings.cursor_secret())
    api.state.page_caches = PageCaches(settings.page_cache_size)
    api.state.events_table = None if views is None else events_table(fleet, views.db)
    api.state.loop_reads = loop_reads(views, api.state.events_table)
    errors.install(api)
    for router in routers():
        api.include_router(router)
    api.state.plain_routes = PlainRoutes()
    api.add_middleware(BodyLimit)
    api.add_middleware(PlainFront, routes=api.state.plain_routes)  # inside RequestIds
    api.add_middleware(RequestIds)  # added last: the outermost
    return api


def loop_reads(views: ViewRunner | None, events: str | None) -> LoopReads | None:
    """The page's positions and versions read on the event loop (infra/http/loop_reads.py)
    where the store's events are in the views' PostgreSQL schema; else None."""
    db = None if views is None else views.db
    if views is None or events is None or not isinstance(db, PostgresViewDB):
        return None
    return LoopReads(db.conninfo, db.schema, [view.name for view in views.views], events)
