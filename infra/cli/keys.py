"""`partnerfleet claim-keys`: the one-off claiming of stored Passport IDs and Location IDs."""

from __future__ import annotations

import typer

from infra.bootstrap import build_fleet, build_verifier
from infra.cli.support import AsOption, TokenOption, load_settings, principal, refusals


def claim_keys(as_: AsOption = None, token: TokenOption = None) -> None:
    """Give stored Passport IDs and Location IDs their one spelling (once, after upgrading)."""
    settings = load_settings()
    fleet = build_fleet(settings)
    actor = principal(fleet, lambda: build_verifier(settings), as_, token)
    with refusals():
        collisions = fleet.claim_stored_keys(actor)
    for collision in collisions:
        typer.echo(f"collision: {collision}", err=True)
    typer.echo(f"claimed; {len(collisions)} collision(s) to resolve by hand")
    raise typer.Exit(1 if collisions else 0)
