"""`partnerfleet consume FEED`: an inbound Kafka feed into its intake command."""

from __future__ import annotations

from typing import Annotated

import structlog
import typer

from infra.bootstrap import build_feed_consumer, build_fleet
from infra.cli.processes import cli_command, run_children, tune_gc
from infra.cli.support import fail, load_settings, require_broker
from infra.kafka.feeds import FEEDS
from infra.loops import Follower, no_wait

log = structlog.get_logger("partnerfleet.cli")


def consume(
    feed: Annotated[str, typer.Argument(help="The feed: e2open or alerts.")],
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Consumer processes in the group (one per core).")
    ] = 1,
) -> None:
    """Consume an inbound feed into intake commands (until interrupted)."""
    settings = load_settings()
    require_broker(settings)
    if feed not in FEEDS:
        fail(f"unknown feed {feed!r}; use one of {', '.join(FEEDS)}.")
    if workers > 1:
        raise typer.Exit(run_children([cli_command("consume", feed)] * workers, f"consume {feed}"))
    consumer = build_feed_consumer(settings, build_fleet(settings), feed)
    tune_gc()
    log.info("consumer_started", feed=feed, topic=consumer.feed.topic)
    # A batch that cannot be stored or committed (database or broker away) is fetched again
    # after a back-off; the process never ends on a lost connection.
    loop = Follower(f"consume-{feed}", consumer.poll_once, no_wait)
    try:
        loop.run_here()
    except KeyboardInterrupt:
        consumer.close()
