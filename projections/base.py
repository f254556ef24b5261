"""What every read model shares: its tables, the events it handles, batch processing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, TypeVar

from eventsourcing.utils import get_topic

from domain.base import DomainError, FleetAggregate, Msg, NotFoundError
from domain.device import normalise_serial
from domain.text import TextError, checked

Params = Sequence[Any]


class Tx(Protocol):
    """One transaction on a view database (SQLite or PostgreSQL, see infra/storage/viewdb.py)."""

    def execute(self, statement: str, params: Params = ()) -> None:
        """Run one statement."""

    def executemany(self, statement: str, rows: Iterable[Params]) -> None:
        """Run one statement for each row of parameters."""

    def query(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Rows of one query."""

    def stream(self, statement: str, params: Params = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of one query, fetched as they are read (a server-side cursor on PostgreSQL),
        so a caller's memory stays flat however many rows there are. Read them before the
        transaction ends; run no other statement on this Tx until the stream is done."""


E = TypeVar("E", bound=FleetAggregate.Event)
Handler = Callable[[Any, Tx, Any], None]


def handles(*event_classes: type[FleetAggregate.Event]) -> Callable[[Handler], Handler]:
    """Mark a View method as the handler of these event classes."""

    def mark(method: Handler) -> Handler:
        method.__handles__ = event_classes  # type: ignore[attr-defined]
        return method

    return mark


class View:
    """A read model: portable DDL, and one handler method per event class it follows.

    `position` is the store position (notification id) of the event a handler is applying,
    when the runner passed positions to `process` (0 otherwise). `rebuilding` is True while
    the batch belongs to a rebuild that has not reached its end: a view may then leave
    work that only derives from its own rows (counts) to `finish_rebuild`, which the runner
    calls once, in the transaction of the rebuild's last batch.
    """

    name: ClassVar[str]
    ddl: ClassVar[tuple[str, ...]]
    tables: ClassVar[tuple[str, ...]]
    _handlers: ClassVar[dict[type[Any], Handler]]
    position: int = 0
    rebuilding: bool = False
    # PostgreSQL only, for rebuilds: per event class whose handler does nothing but insert
    # one row of the event's plain fields, that row as `INSERT INTO t SELECT …` over
    # `{id}` (the originator id as text) and `{state}` (the stored state as jsonb); see
    # infra/follow/stored_inserts.py for when the runner uses it instead of the handler.
    rebuild_inserts: ClassVar[dict[type[Any], str]] = {}
    # PostgreSQL only: per table, storage parameters the runner sets after `create`
    # (`ALTER TABLE t SET (…)`; SQLite has none), e.g. a fillfactor leaving room on each
    # page for HOT updates of a table whose unindexed columns are updated in bulk.
    postgres_storage: ClassVar[dict[str, str]] = {}
    # Whether a rebuild's batches query the view's own tables (recounts, lookups): then
    # the runner refreshes their statistics as the tables grow (after batches 1, 4, 16 and
    # every 20th). A view whose rebuild batches only write by key, leaving what reads its
    # rows to `finish_rebuild`, sets False: its tables are analyzed once, after the rebuild.
    rebuild_reads: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = {}
        for attribute in vars(cls).values():
            for event_class in getattr(attribute, "__handles__", ()):
                cls._handlers[event_class] = attribute

    @classmethod
    def topics(cls) -> list[str]:
        """The stored-event topics this view reads (so a rebuild skips the rest)."""
        return sorted(get_topic(event_class) for event_class in cls._handlers)

    def process(
        self,
        tx: Tx,
        events: Iterable[FleetAggregate.Event],
        positions: Iterable[int] | None = None,
        *,
        rebuilding: bool = False,
    ) -> None:
        """Apply a batch of events in order, inside the caller's transaction.

        `positions`: the store position of each event, in the same order (views that keep
        positions, such as the consent history, need them; see `position`). `rebuilding`:
        the batch is part of a rebuild whose last batch will call `finish_rebuild`.
        """
        self.rebuilding = rebuilding
        numbers = _zeros() if positions is None else positions
        for event, position in zip(events, numbers, strict=positions is not None):
            handler = self._handlers.get(type(event))
            if handler is not None:
                self.position = position
                handler(self, tx, event)
        self.finish_batch(tx)

    def finish_batch(self, tx: Tx) -> None:
        """Hook: work deferred to the end of a batch (recounting touched rows)."""

    def finish_rebuild(self, tx: Tx) -> None:
        """Hook: work a rebuild's batches left to its end (see `rebuilding`), done in the
        last batch's transaction; it must leave the rows following batch by batch leaves."""

    def create(self, tx: Tx) -> None:
        """Create the view's tables if they are missing."""
        for statement in self.ddl:
            tx.execute(statement)

    def drop(self, tx: Tx) -> None:
        """Drop the view's tables (before a rebuild)."""
        for table in self.tables:
            tx.execute(f"DROP TABLE IF EXISTS {table}")


def _zeros() -> Iterator[int]:
    while True:
        yield 0


class QueryError(DomainError):
    """A query's parameters cannot be answered; the message says which and why."""


def query_key(field: str, value: str) -> str:
    """A key a query was given, in the form commands store keys (NFC), or a QueryError.

    A key no database can compare (a NUL: PostgreSQL refuses it) is refused naming the
    field, as a command would refuse it (issue 8, kind 4; `domain.text.checked`).
    """
    try:
        return checked(field, value)
    except TextError as error:
        raise QueryError(*error.args) from None  # its Msg, so it is translated too


def missing_device(serial: str) -> NotFoundError:
    """The refusal for a device the reader may not see, in the words for one that does not
    exist (as `Device.require_owner` says it), so another tenant's devices do not leak."""
    return NotFoundError(Msg("No device with serial number {serial!r}.", serial=serial))


def query_serial(value: str) -> str:
    """A serial number a query was given, as commands store serials (`serial_form`).

    Raises `TextError` for text no field may hold and `SerialError` ("serial: …") for a
    value that is no serial number (not 1-32 letters or digits): an invalid value, not a
    device that is missing."""
    return normalise_serial(query_key("serial", value))


class MomentError(DomainError):
    """A moment passed in for an "as of" question has no single meaning on every host."""


def iso(moment: datetime) -> str:
    """An instant as fixed-width UTC text (`2025-06-01T08:00:00.000000Z`), microseconds kept.

    Text order is time order in SQLite and PostgreSQL alike, whatever offset the instant
    came with. A naive datetime is refused with `MomentError`: it would mean another
    instant on each host's time zone (docs/decisions.md, "Moments passed in").
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise MomentError(
            Msg(
                "The moment {moment} has no time zone, so it means a different "
                "instant on each host: pass an aware datetime (tzinfo=UTC, or an offset "
                "like +02:00).",
                moment=moment.isoformat(),
            )
        )
    try:
        utc = moment.astimezone(UTC)
    except OverflowError as error:
        raise MomentError(
            Msg(
                "The moment {moment} is outside years 1-9999 in UTC.",
                moment=moment.isoformat(),
            )
        ) from error
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def placeholders(values: Sequence[object]) -> str:
    """`?, ?, ?` for an IN list of these values."""
    return ", ".join("?" for _ in values)
