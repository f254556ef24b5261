"""e2Open intake: resold-PC reports and the batches that carry them (R-HLD-1).

E2OpenBatch is an aggregate of its own because R-HLD-1 keeps rejected reports, which
belong to no partner or device (unknown partner, malformed serial), and because a
redelivered batch must be recognised as already received, and a batch id used again with
other content refused and kept as rejected (never a silent success).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import Any, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.base import Cause, DomainError, FleetAggregate, Msg, natural_id
from domain.device import normalise_serial
from domain.feed_bounds import (
    MAX_BATCH_MESSAGES,
    MAX_KEPT_SERIAL_CHARS,
    MAX_REASON_CHARS,
    Unreadable,
)
from domain.idempotency import ContentMismatchError, same_content
from domain.iso import IsoDate
from domain.text import feed_texts, printable

__all__ = [
    "AlertBatch",
    "E2OpenBatch",
    "E2OpenReport",
    "InboundBatch",
    "IntakeError",
    "PlainReport",
    "Rejection",
    "Unreadable",  # defined in feed_bounds, where messages are read
]


class E2OpenReport(BaseModel):
    """One resold PC as reported through e2Open by a distributor or reseller."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    serial: str = Field(min_length=1, max_length=32)
    model: str = Field(min_length=1, max_length=200)
    reseller_location_id: str = Field(min_length=1, max_length=64)
    distributor: str = Field(min_length=1, max_length=200)
    ship_date: IsoDate
    end_customer: str | None = Field(default=None, max_length=200)
    care_plan: Literal["premium", "premium_plus"] = "premium"

    @field_validator("serial")
    @classmethod
    def _serial(cls, value: str) -> str:
        try:
            return normalise_serial(value)
        except DomainError as error:
            raise ValueError(str(error)) from None

    @model_validator(mode="before")
    @classmethod
    def _texts(cls, report: object) -> object:
        return feed_texts(report, ("model", "reseller_location_id", "distributor", "end_customer"))


# serial, model, reseller_location_id, distributor, ship_date (ISO text), end_customer, care_plan
PlainReport = tuple[str, str, str, str, str, str | None, str]


def _most(name: str) -> int:
    """The model's max_length of a text field (so the plain form shares its bounds)."""
    bounds = E2OpenReport.model_fields[name].metadata
    return next(int(b.max_length) for b in bounds if getattr(b, "max_length", None) is not None)


_REQUIRED = frozenset(n for n, f in E2OpenReport.model_fields.items() if f.is_required())
_REQUIRED_COUNT = len(_REQUIRED)
_OPTIONAL = ("end_customer", "care_plan")
# plain_form reads the required fields by name and counts the optional ones: the model's.
if {"serial", "model", "reseller_location_id", "distributor", "ship_date"} != _REQUIRED or (
    set(E2OpenReport.model_fields) != _REQUIRED.union(_OPTIONAL)
):
    raise RuntimeError("E2OpenReport's fields changed: update domain.intake.plain_form")
_MOST = {name: _most(name) for name in ("serial", "model", "reseller_location_id", "distributor")}
_MOST_CUSTOMER = _most("end_customer")
_CARE_PLANS = frozenset(("premium", "premium_plus"))
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _kept_pattern(most: int) -> str:
    """Text the model keeps as it is: printable ASCII (" " to "~"), 1 to `most`
    characters, no blank at either end (feed_texts passes it, str_strip_whitespace
    leaves it). The end by a look-behind, not a last character (session 19: a quarter
    less time, nothing to backtrack)."""
    return f"[!-~][ -~]{{0,{most - 1}}}(?<! )"


# Serial, model, Location ID and distributor of a plain report, joined by NUL (which no
# kept text holds, so the four parts are the four fields): one match checks them all.
_PLAIN_TEXTS = re.compile(
    "\x00".join(
        (
            f"[A-Za-z0-9]{{1,{_MOST['serial']}}}",  # ASCII letters and digits
            _kept_pattern(_MOST["model"]),
            _kept_pattern(_MOST["reseller_location_id"]),
            _kept_pattern(_MOST["distributor"]),
        )
    )
).fullmatch
_PLAIN_CUSTOMER = re.compile(_kept_pattern(_MOST_CUSTOMER)).fullmatch


def plain_report(raw: object) -> PlainReport | None:
    """The fields E2OpenReport would validate `raw` to, when `raw` is in the plain form the
    model keeps as it is; None otherwise (then validate it with the model, which accepts
    or names what is wrong exactly as before).

    Plain (issue 11, the intake's hot path, about a fifth of E2OpenReport's CPU): a dict of
    the model's fields only, the required ones present; every text (exactly `str`)
    printable ASCII of 1 to max_length characters without a blank at either end; a serial
    of ASCII letters and digits (returned upper-case, as normalise_serial makes it);
    ship_date "YYYY-MM-DD" of a real day; end_customer absent, None or such a text;
    care_plan absent or one of the plans. Everything this accepts the model accepts with
    the same values (tests/unit/test_issue_11_plain_report.py); the converse need not
    hold. The four required texts are checked by one regular expression (session 18:
    a third of the former per-field checks' time; tests/unit/test_issue_11_fewer_steps.py
    shows it accepts exactly what they accepted).
    """
    found = plain_form(raw)
    return None if found is None else found[0]


_MISSING: Any = object()  # a field the report does not give (never a JSON value)


def plain_form(raw: object) -> tuple[PlainReport, str] | None:
    """`plain_report(raw)` and the report's fingerprint piece, in one pass (session 19: an
    e2Open batch given as values is screened and fingerprinted by its plain forms,
    domain/e2open_screen.py); None when `raw` is not plain.

    The piece is the report's raw fields in a fixed order (serial as given, not upper-cased),
    joined by NUL: serial, model, Location ID, distributor, ship date, end customer ("\x01"
    absent, "\x02" null) and care plan ("\x01" absent). Plain texts are printable ASCII,
    so no field holds NUL, "\x01" or "\x02": one piece is one report, and two reports
    have one piece exactly when their JSON values are equal.
    """
    if type(raw) is not dict:
        return None
    try:  # the required fields (a dict: no __missing__)
        serial, model = raw["serial"], raw["model"]
        location, distributor = raw["reseller_location_id"], raw["distributor"]
        shipped = raw["ship_date"]
    except KeyError:
        return None
    if not (
        type(serial) is type(model) is type(location) is type(distributor) is str
        and _PLAIN_TEXTS(texts := "\x00".join((serial, model, location, distributor))) is not None
        and type(shipped) is str
        and _is_day(shipped)
    ):
        return None
    if len(raw) == _REQUIRED_COUNT:  # the required fields only (the usual report)
        report = (serial.upper(), model, location, distributor, shipped, None, "premium")
        return report, f"{texts}\x00{shipped}\x00\x01\x00\x01"
    return _with_optional(
        raw, report_start=(serial.upper(), model, location, distributor, shipped), texts=texts
    )


def _with_optional(
    raw: dict[str, object], report_start: tuple[str, str, str, str, str], texts: str
) -> tuple[PlainReport, str] | None:
    """plain_form of a report that gives more than the required fields (`texts`: its four
    required texts joined): end customer and care plan checked, no other key."""
    # No other keys than the model's (session 19: counted, a fifth of the two set
    # comparisons' time): the five required, and each optional one given.
    if len(raw) - ("end_customer" in raw) - ("care_plan" in raw) != _REQUIRED_COUNT:
        return None
    customer, care_plan = raw.get("end_customer", _MISSING), raw.get("care_plan", _MISSING)
    if customer is _MISSING:
        customer, given = None, "\x01"
    elif customer is None:
        given = "\x02"
    elif type(customer) is str and _PLAIN_CUSTOMER(customer):
        given = customer
    else:
        return None
    if care_plan is _MISSING:
        care_plan, plan = "premium", "\x01"
    elif type(care_plan) is str and care_plan in _CARE_PLANS:
        plan = care_plan
    else:
        return None
    shipped = report_start[4]
    return (*report_start, customer, care_plan), f"{texts}\x00{shipped}\x00{given}\x00{plan}"


@lru_cache(maxsize=4096)  # a batch's PCs share a few ship dates
def _is_day(text: str) -> bool:
    if _ISO_DATE.fullmatch(text) is None:
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


class Rejection(BaseModel):
    """A message kept as rejected, with its position in the batch and the reason.

    Serial and reason are made printable and bounded (feed_bounds), so what a sender put in
    a message can neither break a view's text column nor a dead letter's header.
    """

    model_config = ConfigDict(frozen=True)

    index: int
    serial: str | None
    reason: str

    @field_validator("serial")
    @classmethod
    def _serial(cls, value: str | None) -> str | None:
        return None if value is None else printable(value, MAX_KEPT_SERIAL_CHARS)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        return printable(value, MAX_REASON_CHARS)


class IntakeError(DomainError):
    """An e2Open batch was refused as a whole."""


class InboundBatch(FleetAggregate):
    """A received batch of feed messages: what was accepted, what rejected and why.

    An aggregate of its own because rejected messages belong to no partner or device
    (R-HLD-1 keeps them), and because a redelivered batch must be recognised: the batch id
    is an idempotency key, stored with the fingerprint of its content (domain/idempotency).
    """

    KIND = "inbound-batch"  # the natural-key kind of the batch ids
    WHAT = "batch id"  # how refusals name the key

    def __init__(self) -> None:
        """State comes from the Received event."""
        self.batch_id: str = ""
        self.fingerprint: str | None = None
        self.accepted: list[str] = []
        self.rejected: list[dict[str, object]] = []
        self.refused: dict[str, list[dict[str, object]]] = {}  # fingerprint -> rejections

    @classmethod
    def id_for(cls, batch_id: str) -> UUID:
        """The aggregate id derived from the sender's batch id."""
        return natural_id(cls.KIND, batch_id)

    @classmethod
    def key_of(cls, message: object) -> str | None:
        """The message's own key (a serial, an alert id), for batches without fingerprint."""
        return None

    @classmethod
    def check_size(cls, messages: int) -> None:
        """Refuse a batch of more than MAX_BATCH_MESSAGES messages as a whole."""
        if messages > MAX_BATCH_MESSAGES:
            raise IntakeError(
                Msg(
                    "A batch holds at most {most:,} messages, this one "
                    "{messages:,}; split it into batches of their own ids.",
                    most=MAX_BATCH_MESSAGES,
                    messages=messages,
                )
            )

    class Received(FleetAggregate.Created):
        """Version 2 added `fingerprint`; version 1 batches have none (None)."""

        class_version = 2
        batch_id: str
        accepted: list[str]
        rejected: list[dict[str, object]]
        fingerprint: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["fingerprint"] = None

        def apply(self, aggregate: InboundBatch) -> None:
            aggregate.batch_id = self.batch_id
            aggregate.fingerprint = self.fingerprint
            aggregate.accepted = list(self.accepted)
            aggregate.rejected = list(self.rejected)

    @classmethod
    def receive(
        cls,
        cause: Cause,
        batch_id: str,
        accepted: list[str],
        rejected: list[Rejection],
        fingerprint: str,
    ) -> Self:
        """Record the batch, its fingerprint, everything accepted and every rejection."""
        if not batch_id.strip():
            raise IntakeError(Msg("A batch ({kind}) needs a batch id.", kind=cls.KIND))
        return cls._start(
            cls.Received,
            cause,
            cls.id_for(batch_id),
            batch_id=batch_id,
            accepted=accepted,
            rejected=[r.model_dump() for r in rejected],
            fingerprint=fingerprint,
        )

    def is_redelivery(self, fingerprint: str, messages: Sequence[object]) -> bool:
        """True for the content first received; raises ContentMismatchError for other content.

        A batch recorded before fingerprints were kept counts as redelivered only when each
        message was accepted (by its key) or rejected at its index the first time.
        """
        if same_content(self.WHAT, self.batch_id, self.fingerprint, fingerprint):
            return True
        accepted = set(self.accepted)
        rejected = {r["index"] for r in self.rejected}
        for index, message in enumerate(messages):
            if index not in rejected and self.key_of(message) not in accepted:
                raise ContentMismatchError(
                    Msg(
                        "{what} {batch_id} was already received with different content",
                        what=self.WHAT,
                        batch_id=self.batch_id,
                    )
                )
        return True

    class DeliveryRefused(FleetAggregate.Event):
        """R-HLD-1: a later delivery under this batch id with other content, kept as rejected."""

        batch_id: str
        fingerprint: str
        rejected: list[dict[str, object]]

        def apply(self, aggregate: InboundBatch) -> None:
            aggregate.refused[self.fingerprint] = list(self.rejected)

    def refuse_delivery(self, cause: Cause, fingerprint: str, rejected: list[Rejection]) -> None:
        """Keep a delivery of other content as rejected, once per content."""
        if fingerprint not in self.refused:
            dumped = [r.model_dump() for r in rejected]
            self._record(
                self.DeliveryRefused,
                cause,
                batch_id=self.batch_id,
                fingerprint=fingerprint,
                rejected=dumped,
            )


class E2OpenBatch(InboundBatch):
    """R-HLD-1: a batch of e2Open reports; accepted are the serials that landed."""

    KIND = "e2open-batch"

    @classmethod
    def key_of(cls, message: object) -> str | None:
        """The report's serial, normalised as landed serials are."""
        serial = message.get("serial") if isinstance(message, dict) else None
        try:
            return normalise_serial(serial) if isinstance(serial, str) else None
        except DomainError:
            return None

    class Received(InboundBatch.Received):
        pass

    class DeliveryRefused(InboundBatch.DeliveryRefused):
        pass


class AlertBatch(InboundBatch):
    """A batch of the device-alerts feed; accepted are the alert ids raised."""

    KIND = "alert-batch"

    @classmethod
    def key_of(cls, message: object) -> str | None:
        """The alert's id."""
        alert_id = message.get("alert_id") if isinstance(message, dict) else None
        return alert_id.strip() if isinstance(alert_id, str) else None

    class Received(InboundBatch.Received):
        pass

    class DeliveryRefused(InboundBatch.DeliveryRefused):
        pass
