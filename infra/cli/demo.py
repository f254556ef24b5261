"""`partnerfleet demo`: seed the demo data into the configured storage and show it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from infra.bootstrap import build_fleet
from infra.cli.support import fail, load_settings
from infra.demo import DEMO_PRINCIPALS, FULL_SIZE, DemoIncompleteError, seed_demo, store_summary


def demo(
    customers: Annotated[
        int,
        typer.Option(min=2, max=2_000, help="Customers to seed, 15 devices each."),
    ] = FULL_SIZE,
    verbose: Annotated[
        bool, typer.Option("--verbose/--quiet", help="Log every command it issues.")
    ] = False,
) -> None:
    """Seed the demo data (once; a second run adds nothing), then print what the store
    holds and the demo principals (`token issue --demo` mints a token for each)."""
    fleet = build_fleet(load_settings(log_level=None if verbose else "warning"))
    try:
        seeded = seed_demo(fleet, customers)
    except DemoIncompleteError as error:
        fail(str(error))
    console = Console()
    done = f"seeded in {seeded.seconds:.1f} s" if seeded.seeded else "already present"
    console.print(f"demo data {done} ({seeded.events:,} new events)")
    console.print(_summary_table(store_summary(fleet)))
    console.print(_principals_table())
    fleet.close()


def _summary_table(rows: list[tuple[str, int]]) -> Table:
    table = Table(title="What the store holds")
    table.add_column("what")
    table.add_column("count", justify="right")
    for what, count in rows:
        table.add_row(what, f"{count:,}")
    return table


def _principals_table() -> Table:
    # every cell whole, even at 80 columns: a subject cut short with "…" or a role broken
    # over two lines cannot be copied to sign in or to mint a token
    table = Table(title="Demo principals", pad_edge=False)
    widths = {
        "role": max(len(claims.role) for claims in DEMO_PRINCIPALS),
        "subject": max(len(claims.subject) for claims in DEMO_PRINCIPALS),
        "tenant": max(len(claims.tenant) for claims in DEMO_PRINCIPALS),
    }
    for column, width in widths.items():
        table.add_column(column, no_wrap=True, min_width=width)
    table.add_column("PCs", overflow="fold")
    for claims in DEMO_PRINCIPALS:
        table.add_row(claims.role, claims.subject, claims.tenant, ", ".join(claims.pcs))
    return table
