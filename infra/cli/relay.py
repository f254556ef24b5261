"""The relay's commands: `relay [--shard I/N | --shards N]`, `relay-lag`, `relay-parked`."""

from __future__ import annotations

from typing import Annotated

import structlog
import typer

from infra.bootstrap import build_fleet, build_relay, relay_records
from infra.cli.processes import cli_command, run_children, tune_gc
from infra.cli.support import fail, load_settings, require_broker
from infra.kafka.shards import MAX_SHARDS, SINGLE, Shard

log = structlog.get_logger("partnerfleet.cli")


def relay(
    shard: Annotated[
        str | None, typer.Option(help="Run one shard of a sharded relay: I/N, e.g. 2/3.")
    ] = None,
    shards: Annotated[
        int, typer.Option(min=1, max=MAX_SHARDS, help="Run N shards, one process each.")
    ] = 1,
) -> None:
    """Publish every domain event to Kafka, at least once (until interrupted)."""
    settings = load_settings()
    bootstrap = require_broker(settings)
    if shard is not None and shards != 1:
        fail("use --shard I/N for one shard or --shards N for all of them, not both.")
    if shards > 1:
        parts = [cli_command("relay", "--shard", f"{i}/{shards}") for i in range(1, shards + 1)]
        raise typer.Exit(run_children(parts, "relay"))
    try:
        part = SINGLE if shard is None else Shard.parse(shard)
    except ValueError as error:
        fail(str(error))
    publisher = build_relay(settings, build_fleet(settings), part)
    tune_gc()
    log.info(
        "relay_started", bootstrap=bootstrap, prefix=publisher.prefix, shard=part.label or "all"
    )
    try:
        publisher.run()
    except KeyboardInterrupt:
        publisher.stop()


def relay_lag() -> None:
    """Per destination (cluster/prefix) and shard: events stored but not yet acknowledged,
    then per destination the events parked there (no broker connection needed)."""
    settings = load_settings()
    fleet = build_fleet(settings)
    head = fleet.recorder.max_notification_id() or 0
    positions, parked = relay_records(settings)
    if not positions:
        typer.echo(f"relay (nothing published yet): {head}")
    for name, position in sorted(positions.items()):
        typer.echo(f"{name}: {head - position}")
    for destination, events in sorted(parked.items()):
        typer.echo(f"parked@{destination}: {len(events)}")


def relay_parked() -> None:
    """The events the relay could not publish, with the reason (docs/events/README.md);
    one line saying so when there are none."""
    parked = relay_records(load_settings())[1]
    if not any(parked.values()):
        typer.echo("No events are parked: the relay published every event it read.")
    for destination, events in sorted(parked.items()):
        for e in events:
            typer.echo(
                f"{destination} position={e.position} {e.type} {e.aggregate_id}"
                f" v{e.aggregate_version} {e.size:,} bytes: {e.reason}"
            )
