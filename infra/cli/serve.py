"""`partnerfleet serve`: the HTTP API with its followers, optionally over the demo data."""

from __future__ import annotations

import gc
from typing import Annotated, Any

import structlog
import typer
import uvicorn

from infra.bootstrap import build_fleet, local_jwks, start_service
from infra.cli.support import fail, load_settings
from infra.cli.token import verifier_or_exit
from infra.demo import DemoIncompleteError, open_demo_store
from infra.settings import Settings

log = structlog.get_logger("partnerfleet.cli")


def serve(
    demo: Annotated[bool, typer.Option(help="Seed the demo data first (once).")] = False,
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port; PORT overrides the default 8000.")
    ] = None,
    follow_views: Annotated[
        bool, typer.Option("--views/--no-views", help="Follow the read models in-process.")
    ] = True,
    run_policies: Annotated[
        bool, typer.Option("--policies/--no-policies", help="Run the policies in-process.")
    ] = True,
    run_relay: Annotated[
        bool,
        typer.Option("--relay/--no-relay", help="Relay to Kafka in-process, if a broker is set."),
    ] = True,
) -> None:
    """Serve HTTP on the configured storage."""
    settings = load_settings(host=host, port=port)
    verifier = verifier_or_exit(settings, demo)  # no trusted keys outside demo mode: exit 2 here
    if demo:
        try:
            fleet, seeded = open_demo_store(settings)
        except DemoIncompleteError as error:
            fail(str(error))
        log.info("demo_data", seeded=seeded.seeded, events=seeded.events, seconds=seeded.seconds)
    else:
        fleet = build_fleet(settings)
    service = start_service(
        settings,
        fleet,
        follow_views=follow_views,
        run_policies=run_policies,
        run_relay=run_relay,
        verifier=verifier,
        jwks=local_jwks(settings, demo),  # published only when the verifier trusts it
    )
    log.info(
        "serving",
        storage=settings.storage.kind,
        location=settings.storage.location,
        host=settings.host,
        port=settings.port,
    )
    run(service.api(), settings)


def run(api: Any, settings: Settings) -> None:
    """Serve `api` with uvicorn on the configured host and port (until stopped).

    Everything built so far (modules, FastAPI's routes and pydantic's validators) lives as
    long as the process, so it is frozen out of the cyclic collector's reach first: their
    traversal made every full collection take ~100 ms, a pause of every request in flight
    (docs/decisions.md, "HTTP load generator and server CPU per request (session 17)").
    uvicorn's access log writes at info: above that level it is not asked for at all."""
    gc.freeze()
    uvicorn.run(
        api,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level in ("debug", "info"),
    )
