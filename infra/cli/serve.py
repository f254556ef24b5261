"""`partnerfleet serve`: the HTTP API with its followers, optionally over the demo data.

One process serves on one core (Python's GIL). `--workers N` runs N serving processes on
the one port, each with a listening socket of its own (SO_REUSEPORT: the kernel spreads
the connections over them), supervised as the relay's shards are (infra/cli/processes.py):
the first follows the views and runs the policies and the relay as chosen, the others
only serve. The parts share the cursor key (`shared_keys`). A process that serves without
following still honours `Partnerfleet-Wait-For`: its view runner catches up on the request
(ViewRunner.wait_until), exactly once through the views' tracking.
"""

from __future__ import annotations

import secrets
import socket
from typing import Annotated, Any

import structlog
import typer
import uvicorn

from infra.bootstrap import build_fleet, local_jwks, start_service
from infra.cli.processes import cli_command, cpu_for, one_cpu, run_children, tune_gc
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
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Serving processes on the port: the first follows views, policies and "
            "relay as chosen, the others only serve.",
        ),
    ] = 1,
    reuse_port: Annotated[
        bool, typer.Option(hidden=True, help="Share the port (SO_REUSEPORT): a --workers part.")
    ] = False,
) -> None:
    """Serve HTTP on the configured storage."""
    settings = load_settings(host=host, port=port)
    # The port first: one taken is said before a demo key is made, the demo seeded or the
    # store opened.
    try:  # a CPU it may not use: said before anything starts (in a supervisor, for its parts)
        cpu_for(settings.process_cpu)
    except ValueError as error:
        fail(str(error))
    sock = listening_or_exit(settings, shared=reuse_port or workers > 1)
    verifier = verifier_or_exit(settings, demo)  # no trusted keys outside demo mode: exit 2 here
    if workers > 1:
        sock.close()  # only checked: each part listens on a socket of its own
        if demo:  # seeded once, here, before any part opens the store
            try:
                seeded_fleet, _ = open_demo_store(settings)
            except DemoIncompleteError as error:
                fail(str(error))
            seeded_fleet.close()
        parts = serve_parts(settings, workers, demo, follow_views, run_policies, run_relay)
        raise typer.Exit(run_children(parts, "serve", shared_keys(settings)))
    # Before any thread starts: each inherits the CPU (not in a supervisor: its parts would).
    # The choice was checked above (`cpu_for`), so this raises nothing.
    one_cpu(settings.process_cpu)
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
    run(service.api(), settings, sock=sock)


def serve_parts(
    settings: Settings,
    workers: int,
    demo: bool,
    follow_views: bool,
    run_policies: bool,
    run_relay: bool,
) -> list[list[str]]:
    """The command lines of `workers` serving parts on the settings' host and port: the
    first with the followers chosen, the others with none."""
    common = ["serve", "--reuse-port", "--host", settings.host, "--port", str(settings.port)]
    if demo:
        common.append("--demo")  # the same keys trusted; the store is seeded already
    first = [
        "--views" if follow_views else "--no-views",
        "--policies" if run_policies else "--no-policies",
        "--relay" if run_relay else "--no-relay",
    ]
    others = ["--no-views", "--no-policies", "--no-relay"]
    return [cli_command(*common, *(first if i == 0 else others)) for i in range(workers)]


def shared_keys(settings: Settings) -> dict[str, str]:
    """What the serving parts must share beyond the settings: without CURSOR_KEY each
    process would draw a cursor key of its own, and a cursor one part made would be
    refused by the next ("was not issued by this service"), so the supervisor draws one
    for all of them (passed in their environment only, never logged)."""
    if settings.cursor_key is not None and settings.cursor_key.get_secret_value().strip():
        return {}
    return {"CURSOR_KEY": secrets.token_urlsafe(48)}


def listening_or_exit(settings: Settings, *, shared: bool) -> socket.socket:
    """`listening_socket` on the settings' host and port; a port taken (or a host that is
    not this machine's) is one clear line and exit 2, before anything else starts
    (session 20: uvicorn's own bind came after the demo was seeded, and exited 3)."""
    try:
        return listening_socket(settings.host, settings.port, shared=shared)
    except OSError as error:
        fail(f"cannot listen on {settings.host}:{settings.port}: {error.strerror or error}.")


def listening_socket(host: str, port: int, *, shared: bool = True) -> socket.socket:
    """A TCP socket listening on `host`:`port` (SO_REUSEADDR, as uvicorn binds), that other
    processes may listen on too when `shared` (SO_REUSEPORT; Linux spreads new
    connections over them). OSError when the port is taken by a process that does not
    share it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)  # uvicorn's default backlog
    except OSError:
        sock.close()
        raise
    return sock


def run(api: Any, settings: Settings, *, sock: socket.socket | None = None) -> None:
    """Serve `api` with uvicorn on `sock` (bound by `serve` before anything else started)
    or, without one, on the configured host and port (until stopped).

    Everything built so far (modules, FastAPI's routes and pydantic's validators) lives as
    long as the process, so it is frozen out of the cyclic collector's reach first: their
    traversal made every full collection take ~100 ms, a pause of every request in flight
    (docs/decisions.md, "HTTP load generator and server CPU per request (session 17)").
    The collector's thresholds are raised as for the other throughput processes
    (`tune_gc`): with Python's (700, 10, 10) the 50 requests in flight alone passed the
    first threshold, about 220 young collections a second, and, the frozen heap no longer
    counted as long-lived, a full collection every half second (7-14 ms, every request
    waiting; docs/decisions.md, "Issue 11, the page on the event loop (session 19)").
    uvicorn's access log writes at info: above that level it is not asked for at all.
    A part of `serve --workers N` gets a socket that the other parts share
    (`listening_socket`)."""
    tune_gc()
    access_log = settings.log_level in ("debug", "info")
    if sock is None:
        uvicorn.run(
            api,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=access_log,
        )
        return
    config = uvicorn.Config(
        api,
        host=settings.host,  # for its "running on" line: it listens on `sock`
        port=settings.port,
        log_level=settings.log_level,
        access_log=access_log,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
