"""The `partnerfleet` command line: serve, seed demo data, show configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import structlog
import typer
import uvicorn
from kafka import KafkaConsumer, KafkaProducer

from handlers import PolicyRunner
from handlers.access import Role, service_actor
from infra.bootstrap import build_fleet, build_positions_db, build_view_runner
from infra.cli.processes import cli_command, run_children, tune_gc
from infra.cli.projections import projections_cli
from infra.cli.relay import relay, relay_lag, relay_parked
from infra.cli.support import fail, load_settings, log_lag_until_interrupted, require_broker
from infra.demo import seed_demo
from infra.follow.policy_follower import PolicyFollower
from infra.http.app import create_api
from infra.kafka.envelope import write_schemas
from infra.kafka.feeds import FEEDS, FeedConsumer, consumer_config, consumer_group, feed_for
from infra.kafka.relay import Relay, ensure_topics, producer_config
from infra.loops import Follower, no_wait

cli = typer.Typer(
    help="partnerfleet: channel partners, customer devices and consent.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # a frame's locals can hold a password or a cPIN
)
log = structlog.get_logger("partnerfleet.cli")


@cli.command()
def serve(
    demo: Annotated[bool, typer.Option(help="Seed demo data first (once).")] = False,
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port; PORT overrides the default 8000.")] = None,
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
    fleet = build_fleet(settings)
    if demo:
        log.info("demo_data", seeded=seed_demo(fleet))
    views = build_view_runner(settings, fleet)
    if follow_views:
        views.start()
    policies = PolicyFollower(PolicyRunner(fleet))
    if run_policies:
        policies.start()
    loops: dict[str, Follower] = {}
    publisher: Relay | None = None
    if run_relay and settings.kafka_bootstrap_servers:
        publisher = Relay(
            fleet,
            build_positions_db(settings),
            settings.kafka_bootstrap_servers,
            prefix=settings.kafka_topic_prefix,
            max_message_bytes=settings.kafka_max_message_bytes,
        )
        # The relay retries the broker itself; the follower restarts it after anything else.
        loops["relay"] = Follower("relay", publisher.run, no_wait).start()
    log.info(
        "serving",
        storage=settings.storage.kind,
        location=settings.storage.location,
        host=settings.host,
        port=settings.port,
    )
    uvicorn.run(
        create_api(fleet, settings, views, policies, loops, publisher),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
    )


@cli.command("seed-demo")
def seed_demo_command() -> None:
    """Seed the demo data into the configured storage (once)."""
    fleet = build_fleet(load_settings())
    typer.echo("seeded" if seed_demo(fleet) else "demo data already present")


@cli.command("claim-keys")
def claim_keys() -> None:
    """Give stored Passport IDs and Location IDs their one spelling (once, after upgrading)."""
    fleet = build_fleet(load_settings())
    operator = service_actor("operator:claim-keys", Role.OPERATOR, correlation_id="claim-keys")
    collisions = fleet.claim_stored_keys(operator)
    for collision in collisions:
        typer.echo(f"collision: {collision}", err=True)
    typer.echo(f"claimed; {len(collisions)} collision(s) to resolve by hand")
    raise typer.Exit(1 if collisions else 0)


@cli.command()
def config() -> None:
    """Show the storage the current environment selects (without passwords)."""
    storage = load_settings().storage
    typer.echo(f"storage: {storage.kind} {storage.location} schema={storage.schema}")


cli.add_typer(projections_cli, name="projections")


policies_cli = typer.Typer(help="Policies: alerts and repair-case routing.", no_args_is_help=True)
cli.add_typer(policies_cli, name="policies")


@policies_cli.command("run")
def run_policies_command() -> None:
    """Run the policies, following the event store (until interrupted)."""
    runner = PolicyFollower(PolicyRunner(build_fleet(load_settings())))
    runner.start()
    log.info("policies_following", policies=list(runner.lag()))
    log_lag_until_interrupted(runner, "policies_lag")


@policies_cli.command("lag")
def policies_lag() -> None:
    """Per policy: events stored but not yet decided."""
    for name, behind in PolicyRunner(build_fleet(load_settings())).lag().items():
        typer.echo(f"{name}: {behind}")


@cli.command()
def consume(
    feed: Annotated[str, typer.Argument(help="The feed: e2open or alerts.")],
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Consumer processes in the group (one per core).")
    ] = 1,
) -> None:
    """Consume an inbound feed into intake commands (until interrupted)."""
    settings = load_settings()
    bootstrap = require_broker(settings)
    if feed not in FEEDS:
        fail(f"unknown feed {feed!r}; use one of {', '.join(FEEDS)}.")
    if workers > 1:
        raise typer.Exit(run_children([cli_command("consume", feed)] * workers, f"consume {feed}"))
    chosen, prefix = feed_for(feed, settings.kafka_topic_prefix), settings.kafka_topic_prefix
    ensure_topics(bootstrap, [chosen.topic, chosen.dead_letters])
    consumer = FeedConsumer(
        build_fleet(settings),
        chosen,
        KafkaConsumer(chosen.topic, **consumer_config(bootstrap, consumer_group(feed, prefix))),
        KafkaProducer(**producer_config(bootstrap, settings.kafka_max_message_bytes)),
    )
    tune_gc()
    log.info("consumer_started", feed=feed, topic=chosen.topic)
    # A batch that cannot be stored or committed (database or broker away) is fetched again
    # after a back-off; the process never ends on a lost connection.
    loop = Follower(f"consume-{feed}", consumer.poll_once, no_wait)
    try:
        loop.run_here()
    except KeyboardInterrupt:
        consumer.close()


cli.command()(relay)
cli.command("relay-lag")(relay_lag)
cli.command("relay-parked")(relay_parked)


@cli.command("event-schemas")
def event_schemas(
    folder: Annotated[Path, typer.Option(help="Where to write them.")] = Path("docs/events"),
) -> None:
    """Write the JSON Schemas of the Kafka envelope and of every event's payload."""
    written = write_schemas(folder)
    typer.echo(f"{len(written)} schemas written to {folder}")


def main() -> None:
    """Entry point of the `partnerfleet` script."""
    cli()
