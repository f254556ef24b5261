"""`partnerfleet policies`: run the policies, or show how far behind they are."""

from __future__ import annotations

import structlog
import typer

from infra.bootstrap import build_fleet, build_policy_follower, build_policy_runner
from infra.cli.support import load_settings, log_lag_until_interrupted

policies_cli = typer.Typer(help="Policies: alerts and repair-case routing.", no_args_is_help=True)
log = structlog.get_logger("partnerfleet.cli")


@policies_cli.command("run")
def run_policies() -> None:
    """Run the policies, following the event store (until interrupted)."""
    follower = build_policy_follower(build_fleet(load_settings()))
    follower.start()
    log.info("policies_following", policies=list(follower.lag()))
    log_lag_until_interrupted(follower, "policies_lag")


@policies_cli.command("lag")
def policies_lag() -> None:
    """Per policy: events stored but not yet decided."""
    for name, behind in build_policy_runner(build_fleet(load_settings())).lag().items():
        typer.echo(f"{name}: {behind}")
