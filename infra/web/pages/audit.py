"""Consent audit for auditors and operators (R-CON-3, R-CON-4).

- `/audit`: "Was consent in effect for device D and partner P at time T?" A GET form
  (serial, Location ID, a date and time read in a time zone; by default now, in UTC); the
  answer is `consent_queries.consent_in_effect`, as `GET /audit/consent-in-effect` serves
  it, with the records it rests on and any later corrections.
- `/audit/history`: the consent and link records of a device, a customer or a partner
  (`consent_queries.history`, keyset paged), with JSON Lines / CSV download links to
  `/audit/history/export`, the API's streamed export (`consent_export` through
  infra/http/streaming.py) under the session cookie.
- `POST /audit/devices/{serial}/consent-corrections`: correct a consent record with a
  reason (R-CON-4), as the API's route of the same path; then back to the device's history.

Every read makes `audit_scope` first: any other role is 403, before anything is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError

from domain.base import DomainError, Msg
from domain.iso import IsoDatetime
from handlers.access import AuditScope, audit_scope
from infra.http.streaming import Format, in_transaction, streamed
from infra.web.deps import CsrfDep, Portal, PortalDep, Refusal
from projections.base import MomentError
from projections.consent import HISTORY_COLUMNS
from projections.consent_export import consent_export
from projections.consent_queries import (
    ConsentAnswer,
    Row,
    Selection,
    consent_in_effect,
    history,
)
from projections.paging import Page

router = APIRouter()
PAGE_SIZE = 50
Text = Annotated[str | None, Query(max_length=256)]
MOMENT_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends and shows
INSTANT = TypeAdapter(IsoDatetime)  # digits are no Unix time (domain/iso.py)


def _instant(text: str) -> datetime:
    """The form's date and time as every other input reads one."""
    return INSTANT.validate_python(text.strip())


class MomentInputError(MomentError):
    """A date and time or a time zone the question form cannot read (422)."""


@dataclass(frozen=True)
class Question:
    """What the auditor asks: a device, a partner, a moment (its text and its zone)."""

    serial: str
    partner: str
    at: str
    zone: str

    def moment(self) -> datetime:
        """The instant asked about; MomentInputError for a time or zone not understood."""
        try:
            given = _instant(self.at)
        except ValidationError as error:
            if error.errors()[0]["type"] == "datetime_out_of_range":
                raise MomentInputError(
                    Msg("The moment {moment} is outside years 1-9999 in UTC.", moment=self.at)
                ) from None
            raise MomentInputError(
                Msg("{at!r} is not a date and time; write it as 2025-06-01T08:00.", at=self.at)
            ) from None
        if given.tzinfo is not None:
            return given  # an offset written in the time wins over the zone field
        return given.replace(tzinfo=zone_of(self.zone))

    @property
    def shown(self) -> str:
        """The time as the `datetime-local` field can show it: a time given with an offset
        is shown as the wall-clock time of the zone field (the same instant)."""
        try:
            moment = self.moment()
        except MomentError:
            return self.at
        if _instant(self.at).tzinfo is None:
            return self.at
        try:
            return moment.astimezone(zone_of(self.zone)).replace(tzinfo=None).isoformat()
        except OverflowError:  # the zone's wall clock is beyond year 9999 (or before 1)
            return self.at


@dataclass(frozen=True)
class Subject:
    """Whose history is read: a device, a customer, a partner (any given narrow it)."""

    serial: str | None
    customer_id: str | None
    partner: str | None

    @property
    def named(self) -> bool:
        """Whether the form named anything to read."""
        return any((self.serial, self.customer_id, self.partner))

    def selection(self) -> Selection:
        """The subject as the history queries take it."""
        return Selection(serial=self.serial, customer_id=self.customer_id, partner=self.partner)

    def params(self) -> dict[str, str | None]:
        """The subject as the page's links carry it (query parameters)."""
        return {"serial": self.serial, "customer_id": self.customer_id, "partner": self.partner}

    def listing(self) -> str:
        """What a cursor of this history is bound to."""
        return repr(("audit-history", self.serial, self.customer_id, self.partner))


@router.get("/audit")
def consent_question(
    portal: PortalDep, serial: Text = None, partner: Text = None, at: Text = None, zone: Text = None
) -> Response:
    """R-CON-3: was consent in effect for a device and a partner at a moment, and why."""
    scope = audit_scope(portal.actor)
    question = Question(
        (serial or "").strip(), (partner or "").strip(), at or _now(), (zone or "UTC").strip()
    )
    answer, refusal = None, None
    if question.serial and question.partner:
        answer, refusal = _answer(portal, scope, question)
    status = refusal.status if refusal else 200
    return portal.render(
        "audit/question.html", status, question=question, answer=answer, refusal=refusal
    )


@router.get("/audit/history")
def consent_history(
    portal: PortalDep,
    serial: Text = None,
    customer_id: Text = None,
    partner: Text = None,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    """R-CON-3, R-CON-4: the records of a device, a customer or a partner, in store order."""
    scope = audit_scope(portal.actor)
    subject = Subject(_given(serial), _given(customer_id), _given(partner))
    page: Page[Row] | None = None
    if subject.named:
        with portal.views.transaction() as tx:
            after = portal.after(subject.listing(), cursor)
            page = history(tx, scope, subject.selection(), after=after, limit=PAGE_SIZE)
    next_cursor = None if page is None else portal.cursor(subject.listing(), page.next_after)
    return portal.render(
        "audit/history.html",
        subject=subject,
        page=page,
        next_cursor=next_cursor,
        corrected=portal.request.query_params.get("corrected"),
    )


@router.get("/audit/history/export")
def export_consent_history(
    portal: PortalDep,
    serial: Text = None,
    customer_id: Text = None,
    partner: Text = None,
    format: Format = "jsonl",
) -> Response:
    """R-CON-4: that history as a JSON Lines or CSV download, streamed (the API's export)."""
    scope = audit_scope(portal.actor, "export consent history")
    subject = Subject(_given(serial), _given(customer_id), _given(partner))
    records = in_transaction(
        portal.views, lambda tx: consent_export(tx, scope, subject.selection())
    )
    download = streamed(records, format, "consent-history", HISTORY_COLUMNS)
    download.headers["Cache-Control"] = "no-store"
    return download


@router.post("/audit/devices/{serial}/consent-corrections")
def correct_consent_record(
    portal: PortalDep,
    _csrf: CsrfDep,
    serial: str,
    corrects_version: Annotated[int, Form(ge=1)],
    reason: Annotated[str, Form(min_length=1, max_length=4_000)],
    text_version: Annotated[str | None, Form(max_length=64)] = None,
) -> Response:
    """R-CON-4: correct a wrong consent record with a new one saying why; back to the
    device's history, which shows the correction."""
    audit_scope(portal.actor, "correct consent records")
    portal.fleet.correct_consent_record(
        portal.actor, serial, corrects_version, reason, (text_version or "").strip() or None
    )
    portal.caught_up()
    return portal.redirect("/audit/history", serial=serial, corrected=corrects_version)


def zone_of(name: str) -> tzinfo:
    """A time zone by IANA name (Europe/Berlin), `UTC`, or an offset (+02:00, -0530)."""
    text = name.strip() or "UTC"
    if text.upper() in ("UTC", "Z", "GMT"):
        return UTC
    if text[0] in "+-":
        return _offset(text)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise MomentInputError(
            Msg(
                "The time zone {zone!r} is not known; use a name like Europe/Berlin, UTC, or"
                " an offset like +02:00.",
                zone=text,
            )
        ) from None


def _offset(text: str) -> tzinfo:
    digits = text[1:].replace(":", "")
    # ASCII digits only: str.isdigit() holds for "²" (which int() refuses) and "٢" (read as 2)
    ascii_digits = digits.isascii() and digits.isdigit()
    hours, minutes = (int(digits[:2]), int(digits[2:] or 0)) if ascii_digits else (99, 0)
    if len(digits) not in (2, 4) or hours > 23 or minutes > 59:
        raise MomentInputError(
            Msg("The offset {offset!r} is not one like +02:00 or -05:30.", offset=text)
        )
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


def _answer(
    portal: Portal, scope: AuditScope, question: Question
) -> tuple[ConsentAnswer | None, Refusal | None]:
    """The answer, or the refusal shown next to the form (an unknown device, a bad time)."""
    try:
        moment = question.moment()
        with portal.views.transaction() as tx:
            return consent_in_effect(tx, scope, question.serial, question.partner, moment), None
    except DomainError as refused:
        return None, portal.refusal(refused)


def _now() -> str:
    return datetime.now(UTC).strftime(MOMENT_FORMAT)


def _given(value: str | None) -> str | None:
    return (value or "").strip() or None
