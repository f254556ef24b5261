"""Dates and instants from outside input: ISO 8601 text, never a number (session 18).

pydantic's lax mode reads a number, or text of digits alone, as a Unix time: a ship date of
1700000000 or "1700000000" would be 2023-11-14T22:13:20Z, a midnight one (1699920000) a
plain day, and "20230101" 1970-08-23. No sender or auditor means that. Every date or
datetime field of a model that reads outside input (HTTP bodies and query parameters, feed
messages, CLI options, web forms) is one of the types below, so the rule is declared once:

- `IsoDate`: text `YYYY-MM-DD` of a real day (RFC 3339 full-date, OpenAPI `format: date`);
- `IsoDatetime` / `IsoAwareDatetime`: text beginning `YYYY-MM-DD`, the rest as pydantic
  reads an ISO 8601 time (`T08:00:00+02:00`, `Z`); the aware one requires an offset.
  One with an offset must be an instant of years 1-9999 in UTC (`datetime_out_of_range`:
  0001-01-01T00:00+01:00 is none, and every query compares moments in UTC).

Values made by code (a `date` or `datetime`) pass as they are. Anything else is refused
with the error types `date_not_iso` / `datetime_not_iso`, whose message names what was
given (a number, digits alone, other text) and the form to write.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator
from pydantic_core import PydanticCustomError

__all__ = ["IsoAwareDatetime", "IsoDate", "IsoDatetime"]

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DIGITS = re.compile(r"[+-]?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?")
_DATE_FORM = "an ISO 8601 date written YYYY-MM-DD (2026-06-01)"
_INSTANT_FORM = (
    "an ISO 8601 date and time written YYYY-MM-DDTHH:MM[:SS][+HH:MM] (2026-06-01T08:00:00+02:00)"
)


def _refusal(kind: str, form: str, value: object) -> PydanticCustomError:
    """The error for a value that is not ISO 8601 text, saying what it is instead."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        given = "a number (it would be read as a Unix time)"
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        given = "digits alone (they would be read as a Unix time)"
    elif isinstance(value, str):
        given = "text in another form"
    elif value is None:
        given = "null"
    else:
        given = f"a {type(value).__name__}"
    return PydanticCustomError(
        kind, "Input should be {form} as text, not {given}", {"form": form, "given": given}
    )


def _iso_day(value: object) -> object:
    if isinstance(value, date) or (isinstance(value, str) and _DAY.fullmatch(value)):
        return value  # a date's impossible day (2026-02-30) is pydantic's own error
    raise _refusal("date_not_iso", _DATE_FORM, value)


def _iso_instant(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _DAY.match(value)):
        return value
    raise _refusal("datetime_not_iso", _INSTANT_FORM, value)


def _in_utc(value: datetime) -> datetime:
    if value.utcoffset() is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise PydanticCustomError(
                "datetime_out_of_range",
                "Input should be an instant within years 1-9999 in UTC, not {given}",
                {"given": value.isoformat()},
            ) from None
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_day)]
IsoDatetime = Annotated[datetime, BeforeValidator(_iso_instant), AfterValidator(_in_utc)]
IsoAwareDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_instant), AfterValidator(_in_utc)]
