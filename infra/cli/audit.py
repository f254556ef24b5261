"""`partnerfleet audit`: the auditor's verbs (R-CON-3, R-CON-4), acting as a principal.

`audit consent` exports the consent history of a device, a customer or a partner as JSON
Lines or CSV, streamed in store order, each line with its store `position`; `--after` a
position resumes a broken export (appending to `--output`). With `--at TIME` it answers
"was consent in effect for --device and --partner at TIME?" when both are named, and
otherwise exports the history as it stood at TIME (the records recorded up to TIME).

The principal is `--as ROLE:SUBJECT` (a local auditor or operator, recorded as such) or
`--token` (or PARTNERFLEET_TOKEN; verified with the configured JWKS and issuer, as HTTP
does), through `support.principal`; the access layer decides (handlers/access.py). Exit
code 2, with a message and nothing written: a bad argument, a token not accepted, or a
refusal (role, unknown device) before the first row.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from domain.base import DomainError
from domain.iso import IsoDatetime
from handlers.access import Actor, AuditScope, audit_scope
from infra.bootstrap import build_fleet, build_verifier, build_view_runner
from infra.cli.support import (
    AsOption,
    TokenOption,
    fail,
    load_settings,
    principal,
    require_principal,
)
from projections.base import Tx
from projections.consent_export import (
    ANSWER_COLUMNS,
    Chunk,
    answer_row,
    count_export,
    encoded,
    export_batches,
    lines,
)
from projections.consent_queries import Selection, consent_in_effect

audit_cli = typer.Typer(
    help="Auditors: consent history, 'was consent in effect at T', exports (R-CON-3, R-CON-4).",
    no_args_is_help=True,
)
INSTANT = TypeAdapter(IsoDatetime)  # the offset is checked apart, with its own message
PROGRESS_FROM = 1_000  # rows: shorter exports finish before a bar would help


class Format(StrEnum):
    """Export formats (R-CON-4)."""

    JSONL = "jsonl"
    CSV = "csv"


@audit_cli.command("consent")
def consent(
    device: Annotated[str | None, typer.Option(help="A device's serial number.")] = None,
    customer: Annotated[str | None, typer.Option(help="A customer id.")] = None,
    partner: Annotated[str | None, typer.Option(help="A partner's Location ID.")] = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="ISO 8601 instant with offset (2026-06-01T08:00:00+02:00): with --device and "
            "--partner, whether consent was in effect then; otherwise the history as of then."
        ),
    ] = None,
    form: Annotated[Format, typer.Option("--format", help="jsonl or csv.")] = Format.JSONL,
    output: Annotated[
        Path | None, typer.Option(help="Write to this file (appended to with --after).")
    ] = None,
    after: Annotated[
        int, typer.Option(min=0, help="Resume after this store position (a line's position).")
    ] = 0,
    as_: AsOption = None,
    token: TokenOption = None,
) -> None:
    """R-CON-4: export a device's, a customer's or a partner's consent history, in store
    order; R-CON-3: with --at and --device and --partner, whether consent was in effect.
    Acts as an auditor or operator: --as auditor:SUBJECT, or --token."""
    require_principal(as_, token)
    if device is None and customer is None and partner is None:
        fail("name what to audit: --device SERIAL, --customer ID or --partner LOCATION-ID.")
    moment = None if at is None else _moment(at)
    settings = load_settings()
    fleet = build_fleet(settings)
    scope = _scope(principal(fleet, lambda: build_verifier(settings), as_, token))
    runner = build_view_runner(settings, fleet)
    try:
        runner.catch_up()  # an audit answers for everything recorded so far
        with runner.db.transaction() as tx:
            if moment is not None and device is not None and partner is not None:
                _answer(tx, scope, device, partner, moment, form, output)
            else:
                until = None if moment is None else _just_after(moment)
                selection = Selection(
                    serial=device, customer_id=customer, partner=partner, until=until
                )
                _export(tx, scope, selection, form, output, after)
    finally:
        runner.db.close()


def _scope(actor: Actor) -> AuditScope:
    try:
        return audit_scope(actor, "read consent history")
    except DomainError as error:
        fail(str(error))


def _moment(text: str) -> datetime:
    """--at read as HTTP reads a moment (domain/iso.py): digits are no Unix time."""
    try:
        moment = INSTANT.validate_python(text)
    except ValidationError as error:
        fail(f"--at {text!r} is not an ISO 8601 instant: {error.errors()[0]['msg']}.")
    if moment.tzinfo is None:
        fail(f"--at {text!r} has no offset, so it means another instant on each host: add one.")
    return moment


def _just_after(moment: datetime) -> datetime | None:
    """The bound of the records "as of" `moment` (before it plus a microsecond); None, all
    records, at the last microsecond of year 9999, after which nothing is recorded."""
    try:
        return moment + timedelta(microseconds=1)
    except OverflowError:
        return None


def _answer(
    tx: Tx,
    scope: AuditScope,
    device: str,
    partner: str,
    moment: datetime,
    form: Format,
    output: Path | None,
) -> None:
    try:
        answer = consent_in_effect(tx, scope, device, partner, moment)
    except DomainError as error:
        fail(str(error))
    with _sink(output, append=False) as sink:
        sink.writelines(lines([answer_row(answer)], form.value, ANSWER_COLUMNS))


def _export(
    tx: Tx, scope: AuditScope, chosen: Selection, form: Format, output: Path | None, after: int
) -> None:
    try:
        batches = export_batches(tx, scope, chosen, after=after)
        # The count reads every row once more: only for a bar someone will see (issue 11).
        shown = output is not None and Console(stderr=True).is_terminal
        total = count_export(tx, scope, chosen, after=after) if shown else 0
    except DomainError as error:
        fail(str(error))  # checked before the first row: nothing is written
    append = after > 0 and output is not None and output.exists() and output.stat().st_size > 0
    chunks = encoded(batches, form.value, header=not append)  # text a batch at a time
    with _sink(output, append=append) as sink:
        if total < PROGRESS_FROM:
            sink.writelines(chunk.text for chunk in chunks)
            return
        with _progress(output, total) as advance:
            sink.writelines(_counted(chunks, advance))


def _counted(chunks: Iterator[Chunk], advance: Callable[[int], None]) -> Iterator[str]:
    for chunk in chunks:
        yield chunk.text
        advance(chunk.records)


@contextmanager
def _sink(output: Path | None, *, append: bool) -> Iterator[TextIO]:
    if output is None:
        yield sys.stdout
        return
    with output.open("a" if append else "w", encoding="utf-8", newline="") as file:
        yield file


@contextmanager
def _progress(output: Path | None, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr for a long export to a file (a terminal only)."""
    console = Console(stderr=True)
    shown = output is not None and total >= PROGRESS_FROM and console.is_terminal
    columns = (TextColumn("export"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True, disable=not shown) as bar:
        task = bar.add_task("export", total=total)
        yield lambda records: bar.advance(task, records)
