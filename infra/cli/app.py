"""The `partnerfleet` command line: the typer app and the verbs registered on it.

Each group of verbs lives in a module of its own (serve, demo, intake, claim-keys, feeds,
relay, projections, policies, info); every adapter they use comes from `infra.bootstrap`.
"""

from __future__ import annotations

import typer

from infra.cli.audit import audit_cli
from infra.cli.demo import demo
from infra.cli.feeds import consume
from infra.cli.info import config, event_schemas
from infra.cli.intake import intake
from infra.cli.keys import claim_keys
from infra.cli.policies import policies_cli
from infra.cli.projections import projections_cli
from infra.cli.relay import relay, relay_lag, relay_parked
from infra.cli.serve import serve
from infra.cli.token import token_cli
from infra.storage.start_ddl import MissingTablesError

cli = typer.Typer(
    help="partnerfleet: channel partners, customer devices and consent.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # a frame's locals can hold a password or a cPIN
)

cli.command()(serve)
cli.command()(demo)
cli.command()(intake)
cli.command("claim-keys")(claim_keys)
cli.command()(config)
cli.command()(consume)
cli.command()(relay)
cli.command("relay-lag")(relay_lag)
cli.command("relay-parked")(relay_parked)
cli.command("event-schemas")(event_schemas)
cli.add_typer(projections_cli, name="projections")
cli.add_typer(policies_cli, name="policies")
cli.add_typer(token_cli, name="token")
cli.add_typer(audit_cli, name="audit")


def main() -> None:
    """Entry point of the `partnerfleet` script. A start that finds its tables missing
    with CREATE_TABLE off says what is missing, exit code 2 (no traceback)."""
    try:
        cli()
    except MissingTablesError as error:
        typer.echo(f"partnerfleet: {error}", err=True)
        raise SystemExit(2) from None
