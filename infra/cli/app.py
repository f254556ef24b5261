"""The `partnerfleet` command line: the typer app and the verbs registered on it.

Each group of verbs lives in a module of its own (serve, demo, intake, claim-keys, feeds,
relay, projections, policies, info); every adapter they use comes from `infra.bootstrap`.
"""

from __future__ import annotations

import inspect
import sqlite3

import psycopg
import typer
from eventsourcing.persistence import InterfaceError, OperationalError

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
from infra.settings import Settings
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


def _one_line_summaries(app: typer.Typer) -> None:
    """Each verb's line in its group's list: the first paragraph of its docstring on one
    line (typer's rich help keeps the docstring's line breaks, which at 80 columns broke
    the list's lines mid-sentence)."""
    for info in app.registered_commands:
        doc = info.callback.__doc__ if info.callback is not None else None
        if info.short_help is None and doc:
            info.short_help = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())
    for group in app.registered_groups:
        if group.typer_instance is not None:
            _one_line_summaries(group.typer_instance)


_one_line_summaries(cli)


def main() -> None:
    """Entry point of the `partnerfleet` script. A start that finds its tables missing
    with CREATE_TABLE off says what is missing, and one that cannot open its store (a
    PostgreSQL server down or unknown, a database or role that does not exist, a SQLite
    file that cannot be opened) says why: one line, exit code 2, no traceback."""
    try:
        cli()
    except MissingTablesError as error:
        typer.echo(f"partnerfleet: {error}", err=True)
        raise SystemExit(2) from None
    except psycopg.errors.InsufficientPrivilege as error:
        typer.echo(f"partnerfleet: {refused_by_database(error)}", err=True)
        raise SystemExit(2) from None
    except (psycopg.OperationalError, OperationalError, InterfaceError, sqlite3.Error) as error:
        typer.echo(f"partnerfleet: cannot open the {store()}: {one_line(error)}", err=True)
        raise SystemExit(2) from None
    except OSError as error:  # a store's or key's folder that cannot be made, say
        typer.echo(f"partnerfleet: {one_line(error)}", err=True)
        raise SystemExit(2) from None


def refused_by_database(error: BaseException) -> str:
    """A privilege the database role lacks: with CREATE_TABLE on, most likely the rights
    to create the schema, its tables and indexes at start."""
    refusal = f"the {store()} refused: {one_line(error)}"
    try:
        creating = Settings().create_table
    except ValueError:  # pragma: no cover - the command read these settings already
        creating = True
    if creating:
        return (
            f"{refusal} (CREATE_TABLE is yes, so every start creates what is missing: a role "
            "that may only read and write needs CREATE_TABLE=no, once the tables are made)"
        )
    return f"{refusal} (grant the role SELECT, INSERT, UPDATE, DELETE on the schema's tables)"


def store() -> str:
    """The store the environment selects, as `partnerfleet config` names it (no password)."""
    try:
        storage = Settings().storage
    except ValueError:  # pragma: no cover - the command read these settings already
        return "store"
    schema = f" schema {storage.schema}" if storage.kind == "postgres" else ""
    return f"{storage.kind} store {storage.location}{schema}"


def one_line(error: BaseException) -> str:
    """The error's message on one line (psycopg adds a hint on a line of its own)."""
    return " ".join(str(error).split()) or type(error).__name__
