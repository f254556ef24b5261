"""`partnerfleet intake FEED FILE`: an operator (or a feed's service account) hands a batch
over by hand, as the Kafka feed would: one message per line, one transaction (R-HLD-1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from domain.feed_bounds import MAX_BATCH_MESSAGES, read_message
from domain.idempotency import PREFIX, bytes_fingerprint
from handlers.intake import IntakeOutcome
from infra.bootstrap import build_fleet, build_verifier
from infra.cli.support import (
    AsOption,
    TokenOption,
    fail,
    load_settings,
    principal,
    refusals,
    require_principal,
)
from infra.kafka.feeds import FEEDS

BATCH_ID_DIGITS = 16


def intake(
    feed: Annotated[str, typer.Argument(help="The feed: e2open or alerts.")],
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="JSON Lines: one message a line."
        ),
    ],
    batch_id: Annotated[
        str | None,
        typer.Option(help="The batch id (an idempotency key); by default one of the content."),
    ] = None,
    as_: AsOption = None,
    token: TokenOption = None,
) -> None:
    """Take a file of e2Open reports or device alerts through the intake, as the Kafka feed
    does: each line is read within the feed bounds; a bad line is kept as rejected with its
    reason, the rest lands; the same file again changes nothing."""
    require_principal(as_, token)
    if feed not in FEEDS:
        fail(f"unknown feed {feed!r}; use one of {', '.join(FEEDS)}.")
    lines = [line for line in file.read_bytes().splitlines() if line.strip()]
    if not 0 < len(lines) <= MAX_BATCH_MESSAGES:
        fail(f"{file} holds {len(lines):,} messages; a batch holds 1 to {MAX_BATCH_MESSAGES:,}.")
    settings = load_settings()
    fleet = build_fleet(settings)
    actor = principal(fleet, lambda: build_verifier(settings), as_, token)
    fingerprint = bytes_fingerprint(lines)
    chosen = batch_id or f"hand-{fingerprint.removeprefix(PREFIX)[:BATCH_ID_DIGITS]}"
    with refusals():
        outcome = FEEDS[feed].intake(fleet)(
            actor, chosen, [read_message(line) for line in lines], fingerprint=fingerprint
        )
    assert isinstance(outcome, IntakeOutcome)
    _report(outcome)
    raise typer.Exit(1 if outcome.refused else 0)


def _report(outcome: IntakeOutcome) -> None:
    counts = (
        f"{len(outcome.accepted)} accepted, {len(outcome.duplicates)} already taken, "
        f"{len(outcome.rejected)} rejected"
    )
    if outcome.redelivered:  # the first outcome again, said to be the first one's
        typer.echo(
            f"batch {outcome.batch_id} was taken before: nothing new recorded "
            f"(when it was taken: {counts})"
        )
        return
    for rejection in outcome.rejected:
        serial = f" ({rejection.serial})" if rejection.serial else ""
        typer.echo(f"rejected line {rejection.index + 1}{serial}: {rejection.reason}", err=True)
    typer.echo(f"batch {outcome.batch_id}: {counts}")
