"""`partnerfleet config` and `partnerfleet event-schemas`: what is configured, what is published."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infra.cli.support import load_settings
from infra.kafka.envelope import write_schemas


def config() -> None:
    """Show the storage the current environment selects (without passwords)."""
    settings = load_settings()
    storage = settings.storage
    if storage.kind == "sqlite":  # no schema there: the views' file instead
        typer.echo(f"storage: sqlite {storage.location} views={settings.views_location()}")
    else:
        typer.echo(f"storage: {storage.kind} {storage.location} schema={storage.schema}")
    typer.echo(f"create tables at start: {'yes' if settings.create_table else 'no'}")


def event_schemas(
    folder: Annotated[Path, typer.Option(help="Where to write them.")] = Path("docs/events"),
) -> None:
    """Write the JSON Schemas of the Kafka envelope and of every event's payload."""
    written = write_schemas(folder)
    typer.echo(f"{len(written)} schemas written to {folder}")
