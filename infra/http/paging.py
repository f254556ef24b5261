"""Keyset pages with opaque cursors, bound to the principal, the route and the filter.

A list route takes `page: PageDep` (deps.py): `limit` (1-200, default 50; beyond -> 422)
and `cursor` (absent on the first page). It asks its query for `limit + 1` rows after
`page.after` (the key of the last row shown, as the query returned it) and answers
`Paged.of(rows, page, key)`: at most `limit` items and, when more follow, `next_cursor`.
A query of projections/ that returns its own `Page` (rows, next_after) is asked for
`limit=page.limit, after=page.after` and answered with `Paged.of_query(found, page)`.

A `projections` list query pages itself (`projections.paging.Page`): ask it for
`limit=page.limit` after `page.after` and answer `Paged.of_query(found, page)`.

A cursor is the last key, signed (itsdangerous, with Settings.cursor_secret()) together
with digests of the principal and of the route and filter (method, route template, path
parameters, query parameters besides `cursor` and `limit`). A cursor that was altered, not
made here, made for another principal or another route/filter is refused with 400
(`invalid-cursor`): it can never show another principal's rows nor skip a filter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from itsdangerous import BadData, URLSafeSerializer
from pydantic import BaseModel, Field

from domain.base import Msg
from infra.http.errors import ProblemError
from projections.paging import Page as QueryPage

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_LENGTH = 2_000
SALT = "partnerfleet.page-cursor.v1"

R = TypeVar("R")
Item = TypeVar("Item")
Key = tuple[Any, ...]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class Cursors:
    """Makes and reads the cursors of one service (one key)."""

    def __init__(self, secret: bytes) -> None:
        self._serializer = URLSafeSerializer(secret, salt=SALT)

    def make(self, principal: str, listing: str, key: Key) -> str:
        """The cursor after `key` of `listing` for `principal`."""
        payload = {"p": _digest(principal), "l": _digest(listing), "k": list(key)}
        return str(self._serializer.dumps(payload))

    def read(self, cursor: str, principal: str, listing: str) -> Key:
        """The key a cursor holds; ProblemError (400) when it is not valid here."""
        try:
            payload = self._serializer.loads(cursor)
        except BadData:
            raise _invalid(Msg("was not issued by this service, or was altered")) from None
        if not isinstance(payload, dict) or not isinstance(payload.get("k"), list):
            raise _invalid(Msg("was not issued by this service, or was altered"))
        if payload.get("p") != _digest(principal):
            raise _invalid(Msg("was issued to another principal"))
        if payload.get("l") != _digest(listing):
            raise _invalid(Msg("was made for another list or filter"))
        return tuple(payload["k"])


def _invalid(why: Msg) -> ProblemError:
    """A refused cursor; the detail is a Msg, so the portal shows it translated."""
    return ProblemError(
        "invalid-cursor",
        Msg("The cursor {why}; ask for the first page again (without cursor).", why=why),
    )


@dataclass(frozen=True)
class Page:
    """One page request: its `limit`, the key to continue `after` (None: from the start),
    and what a next cursor is bound to."""

    limit: int
    after: Key | None
    principal: str
    listing: str
    cursors: Cursors

    def next_cursor(self, key: Key) -> str:
        """The cursor of the page after the row whose key is `key`."""
        return self.cursors.make(self.principal, self.listing, key)

    def cut(self, rows: Sequence[R], key: Callable[[R], Key]) -> tuple[list[R], str | None]:
        """At most `limit` of `rows` (queried with `limit + 1`) and the next cursor, if any."""
        shown = list(rows[: self.limit])
        more = len(rows) > self.limit and bool(shown)
        return shown, self.next_cursor(key(shown[-1])) if more else None


class Paged(BaseModel, Generic[Item]):
    """A page of a list: its items, and the cursor of the next page (null on the last)."""

    items: list[Item]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null when this is the last."
    )

    @classmethod
    def of(cls, rows: Sequence[Any], page: Page, key: Callable[[Any], Key]) -> Paged[Item]:
        """The page of `rows` (queried with `limit + 1`), items validated from the rows."""
        shown, cursor = page.cut(rows, key)
        return cls.model_validate({"items": shown, "next_cursor": cursor}, from_attributes=True)

    @classmethod
    def of_query(cls, found: QueryPage[Any], page: Page) -> Paged[Item]:
        """The page a projections query answered (queried with `limit=page.limit`): its
        rows, and its `next_after` key signed into the next cursor when more follow."""
        after = found.next_after
        cursor = None if after is None else page.next_cursor(tuple(after))
        return cls.model_validate(
            {"items": found.rows, "next_cursor": cursor}, from_attributes=True
        )
