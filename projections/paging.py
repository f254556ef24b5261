"""Keyset paging shared by every list query: a bounded `limit`, `after` the last row's key.

A list query orders its rows by a unique key (a tuple of columns), fetches `limit + 1`
rows after the key it was given, and returns a `Page`: the rows, and the key of the last
one when more follow. The key is plain values; the HTTP layer signs it into an opaque
cursor bound to the principal and the filter (issue 9), and gives it back as `after`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from domain.base import Msg
from domain.text import FREE_TEXT, TextError, checked
from projections.base import QueryError

MAX_LIMIT = 200  # rows per page, at most
DEFAULT_LIMIT = 50
Key = tuple[str | int, ...]
R = TypeVar("R")


@dataclass(frozen=True)
class Page(Generic[R]):
    """One page of a list: `rows` in key order, and `next_after`, the key of the last row
    when another page follows (None on the last page). Pass `next_after` back as `after`."""

    rows: list[R]
    next_after: Key | None


def checked_limit(limit: int) -> int:
    """`limit` when it is 1…MAX_LIMIT, else a QueryError saying the bounds."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise QueryError(
            Msg(
                "A page holds 1 to {most} rows, not {limit!r}.",
                most=MAX_LIMIT,
                limit=limit,
            )
        )
    return limit


def after_clause(columns: Sequence[str], after: Key | None, kinds: Sequence[type]) -> str:
    """The WHERE condition `(columns) > (?, …)` for `after` ("" without one).

    `kinds` are the key's types (str or int), checked so a key that was not one of this
    list's keys is a QueryError, never a driver error (its texts as commands store keys).
    """
    if after is None:
        return ""
    _check_key(after, kinds)
    return f"({', '.join(columns)}) > ({', '.join('?' for _ in columns)})"


def before_clause(columns: Sequence[str], after: Key | None, kinds: Sequence[type]) -> str:
    """As `after_clause`, for a list in descending key order (newest first)."""
    clause = after_clause(columns, after, kinds)
    return clause.replace(") > (", ") < (")


def _check_key(after: Key, kinds: Sequence[type]) -> None:
    if not isinstance(after, tuple) or len(after) != len(kinds):
        raise QueryError(Msg("The page cursor is not one this list issued."))
    for value, kind in zip(after, kinds, strict=True):
        if isinstance(value, bool) or not isinstance(value, kind):
            raise QueryError(Msg("The page cursor is not one this list issued."))
        if isinstance(value, str):
            try:
                checked("cursor", value, FREE_TEXT)
            except TextError as error:
                raise QueryError(Msg("The page cursor is not one this list issued.")) from error


def key_params(after: Key | None) -> list[Any]:
    """The parameters of `after_clause`'s condition ([] without a key)."""
    return [] if after is None else list(after)


def page_of(rows: Sequence[R], limit: int, key: Callable[[R], Key]) -> Page[R]:
    """The page of `rows` fetched with LIMIT `limit + 1`: at most `limit` rows, and the key
    of the last one when the extra row shows that more follow."""
    shown = list(rows[:limit])
    more = len(rows) > limit
    return Page(shown, key(shown[-1]) if more else None)


def where(*conditions: str) -> str:
    """`WHERE a AND b` of the non-empty conditions ("" when there are none)."""
    kept = [c for c in conditions if c]
    return f" WHERE {' AND '.join(kept)}" if kept else ""
