"""`partnerfleet config` and `partnerfleet event-schemas`: what is configured, what is published."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infra.cli.support import load_settings
from infra.kafka.envelope import write_schemas


def config() -> None:
    """Show the storage the current environment selects (without passwords)."""
    storage = load_settings().storage
    typer.echo(f"storage: {storage.kind} {storage.location} schema={storage.schema}")


def event_schemas(
    folder: Annotated[Path, typer.Option(help="Where to write them.")] = Path("docs/events"),
) -> None:
    """Write the JSON Schemas of the Kafka envelope and of every event's payload."""
    written = write_schemas(folder)
    typer.echo(f"{len(written)} schemas written to {folder}")
