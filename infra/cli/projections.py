"""`partnerfleet projections`: rebuild, lag (with where a view is stuck), skip, run."""

from __future__ import annotations

import time
from typing import Annotated

import structlog
import typer
from rich.progress import Progress, TextColumn

from domain.text import TextError
from infra.bootstrap import build_fleet, build_view_runner
from infra.cli.support import fail, load_settings, log_lag_until_interrupted
from infra.follow.view_faults import ViewStuckError
from infra.follow.view_runner import ViewRunner
from projections.base import View

projections_cli = typer.Typer(
    help="Read models: rebuild, lag, skip a poison event, follow.", no_args_is_help=True
)
log = structlog.get_logger("partnerfleet.cli")


def _runner() -> ViewRunner:
    settings = load_settings()
    return build_view_runner(settings, build_fleet(settings))


@projections_cli.command("rebuild")
def rebuild(
    view: Annotated[str | None, typer.Argument(help="One view; all views if omitted.")] = None,
) -> None:
    """Drop a view and rebuild it from the whole history, with progress and events/s."""
    runner = _runner()
    try:
        chosen = [runner.view(view)] if view else runner.views
    except KeyError as error:
        fail(error.args[0])
    for each in chosen:
        try:
            rebuild_with_progress(runner, each)
        except ViewStuckError as stuck:
            typer.echo(f"partnerfleet: {stuck}", err=True)
            raise typer.Exit(1) from None


def rebuild_with_progress(runner: ViewRunner, view: View) -> None:
    """One view's rebuild under a rich progress bar; prints events/s at the end."""
    head = max(runner.head(), 1)
    with Progress(*Progress.get_default_columns(), TextColumn("{task.fields[rate]}")) as bar:
        task = bar.add_task(f"rebuild {view.name}", total=head, rate="")
        started = time.perf_counter()
        applied = runner.rebuild(view, lambda done, _head: bar.update(task, completed=done))
        seconds = time.perf_counter() - started
        bar.update(task, completed=head, rate=f"{applied / seconds:,.0f} events/s")
    typer.echo(
        f"{view.name}: {applied:,} events in {seconds:.2f} s ({applied / seconds:,.0f} events/s)"
    )


@projections_cli.command("lag")
def lag() -> None:
    """Per view: events stored but not yet applied; where and why a view is stuck; what an
    operator parked."""
    runner = _runner()
    faults = runner.faults()
    for name, behind in runner.lag().items():
        typer.echo(f"{name}: {behind}")
        if (fault := faults.get(name)) is not None:
            typer.echo(
                f"  stuck at notification {fault.notification_id} ({fault.topic}) since"
                f" {fault.since}, {fault.failures} failures: {fault.error}"
            )
    for parked in runner.parked():
        typer.echo(
            f"parked: {parked.view} notification {parked.notification_id} ({parked.topic})"
            f" at {parked.parked_at}: {parked.reason} [error: {parked.error}]"
        )


@projections_cli.command("skip")
def skip(
    view: Annotated[str, typer.Argument(help="The view that is stuck.")],
    notification_id: Annotated[int, typer.Argument(help="The notification it is stuck on.")],
    reason: Annotated[str, typer.Option(help="Why it is skipped (kept with the event).")],
) -> None:
    """Park the event a view is stuck on: the view passes over it, the event and the reason
    are kept and shown by `lag`; a rebuild tries it again first."""
    runner = _runner()
    try:
        parked = runner.park(view, notification_id, reason)
    except (KeyError, ValueError, TextError) as error:
        fail(str(error.args[0]))
    typer.echo(f"{parked.view}: notification {parked.notification_id} ({parked.topic}) parked")


@projections_cli.command("run")
def run_views() -> None:
    """Follow the event store and keep every view up to date (until interrupted)."""
    runner = _runner()
    runner.start()
    log.info("views_following", views=[v.name for v in runner.views])
    log_lag_until_interrupted(runner, "views_lag")
