"""The `partnerfleet` command line: serve, seed demo data, show configuration."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
import typer
import uvicorn
from pydantic import ValidationError

from infra.bootstrap import build_fleet
from infra.demo import seed_demo
from infra.http import create_api
from infra.logging import configure_logging
from infra.settings import Settings

cli = typer.Typer(
    help="partnerfleet: channel partners, customer devices and consent.", no_args_is_help=True
)
log = structlog.get_logger("partnerfleet.cli")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, or a clear message and exit code 2."""
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors()
        )
        typer.echo(f"partnerfleet: bad configuration: {problems}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings)
    return settings


@cli.command()
def serve(
    demo: Annotated[bool, typer.Option(help="Seed demo data first (once).")] = False,
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port; PORT overrides the default 8000.")] = None,
) -> None:
    """Serve HTTP on the configured storage."""
    settings = load_settings(host=host, port=port)
    fleet = build_fleet(settings)
    if demo:
        log.info("demo_data", seeded=seed_demo(fleet))
    log.info(
        "serving",
        storage=settings.storage.kind,
        location=settings.storage.location,
        host=settings.host,
        port=settings.port,
    )
    uvicorn.run(
        create_api(fleet, settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
    )


@cli.command("seed-demo")
def seed_demo_command() -> None:
    """Seed the demo data into the configured storage (once)."""
    fleet = build_fleet(load_settings())
    typer.echo("seeded" if seed_demo(fleet) else "demo data already present")


@cli.command()
def config() -> None:
    """Show the storage the current environment selects (without passwords)."""
    storage = load_settings().storage
    typer.echo(f"storage: {storage.kind} {storage.location} schema={storage.schema}")


def main() -> None:
    """Entry point of the `partnerfleet` script."""
    cli()
