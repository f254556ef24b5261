"""What an outside request asks of the command it causes: an idempotency key, an If-Match.

The HTTP layer describes the request in a `Conditions` and runs the route within
`applied(conditions)`; every declared command run there (`handlers.base.command`) honours
them in its own transaction, and writes back what the response needs (`position`, `etag`).
Outside HTTP nothing is applied and commands run as they always did.

- Idempotency (draft-ietf-httpapi-idempotency-key-header): the key is scoped to the actor's
  principal (in its role and tenant), the method and the path. Its first accepted use
  saves an `IdempotencyRecord` (fingerprint of the body, the command's result) with the
  command's events. A later use
  with the same fingerprint returns the stored result and records nothing (`replayed`);
  another fingerprint is refused (`IdempotencyKeyReusedError`, HTTP 422); a use while the
  first is still running in this process is refused (`KeyInFlightError`, HTTP 409). A
  refused command stores no record, so the key may be used again.
- If-Match (RFC 9110 13.1.1): entity tags name an aggregate and the version it was read at.
  The command passes only if it loaded one of the named aggregates at one of the named
  versions (`PreconditionFailedError`, HTTP 412, otherwise, before any domain refusal).
  A concurrent change between load and save retries the command, which then finds the
  newer version and answers 412: no lost update.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import structlog
from eventsourcing.utils import get_topic

from domain.base import Cause, DomainError, Msg, NotFoundError
from domain.idempotency import ContentMismatchError, IdempotencyRecord
from handlers.access import Actor

if TYPE_CHECKING:
    from handlers.base import FleetApplication, Working

T = TypeVar("T")
log = structlog.get_logger("partnerfleet.commands")


class PreconditionFailedError(Exception):
    """If-Match names no version of what the command loaded (HTTP 412); nothing was recorded."""


class KeyInFlightError(Exception):
    """The idempotency key's first request is still being processed (HTTP 409)."""


class IdempotencyKeyReusedError(ContentMismatchError):
    """The idempotency key was first used with another request body (HTTP 422)."""


@dataclass(frozen=True)
class IdempotencyKey:
    """A request's `Idempotency-Key`, where it was sent, and its body's fingerprint."""

    key: str
    method: str
    path: str
    fingerprint: str

    def scope(self, cause: Cause) -> str:
        """Principal, method, path and key (what the draft scopes a key to), and, for an
        `Actor`, its role and tenant: one person acting in two tenants (admin of two
        customers, a user of two partners) sending one key, path and body in both is two
        requests, never a replay of the other tenant's answer (session 16 attack).
        """
        if isinstance(cause, Actor):
            acting = f"{cause.role.value}@{cause.tenant}"
            return "\n".join((cause.principal, acting, self.method, self.path, self.key))
        return "\n".join((cause.principal, self.method, self.path, self.key))


@dataclass(frozen=True)
class EntityTag:
    """An aggregate at one version: what an ETag names (`"<uuid>.<version>"`)."""

    aggregate_id: UUID
    version: int

    def __str__(self) -> str:
        return f'"{self.aggregate_id}.{self.version}"'

    @classmethod
    def parse(cls, text: str) -> EntityTag | None:
        """The tag a strong entity-tag names, or None (a weak or foreign one never matches)."""
        if len(text) < 2 or text[0] != '"' or text[-1] != '"':
            return None
        aggregate, _, version = text[1:-1].rpartition(".")
        try:
            return cls(UUID(aggregate), int(version))
        except ValueError:
            return None


@dataclass
class Conditions:
    """One request's conditions (in) and what the response needs to say (out).

    In: `idempotency` (None: no key), `if_match` (None: no If-Match, or `*`). Out:
    `position`, the store position of the command's events (or of the first outcome, when
    replayed); `etag`, the If-Match aggregate's new tag; `replayed`.
    """

    idempotency: IdempotencyKey | None = None
    if_match: frozenset[EntityTag] | None = None
    position: int = 0
    etag: EntityTag | None = None
    replayed: bool = False
    used: bool = field(default=False, repr=False)


_current: ContextVar[Conditions | None] = ContextVar("conditions", default=None)
# The conditions `applied` now, if any (None outside a request that has some): for the
# command path, which runs `conditioned` only when they are there and not yet `used`.
requested = _current.get
_in_flight: set[str] = set()
_in_flight_lock = threading.Lock()


@contextmanager
def applied(conditions: Conditions) -> Iterator[Conditions]:
    """Within: the (first) command called honours `conditions` and fills in its outputs."""
    token = _current.set(conditions)
    try:
        yield conditions
    finally:
        _current.reset(token)


class _Replay(Exception):  # noqa: N818 - control flow inside one attempt, never escapes
    def __init__(self, record: IdempotencyRecord) -> None:
        self.record = record


def conditioned(
    app: FleetApplication,
    cause: Cause,
    command: str,
    work: Callable[[Working], T],
    execute: Callable[[Callable[[Working], T]], T],
) -> T:
    """Run `work` through `execute` (the save-and-retry machinery) under the request's
    conditions, if any; see the module's docstring."""
    conditions = _current.get()
    if conditions is None or conditions.used:
        return execute(work)
    conditions.used = True  # one command per request: a second runs unconditioned
    key = conditions.idempotency
    if key is None:
        return _executed(app, conditions, execute, _guarded(app, cause, conditions, work))
    scope = key.scope(cause)
    with _claimed(scope):
        try:
            return _executed(app, conditions, execute, _guarded(app, cause, conditions, work))
        except _Replay as replay:
            replayed: T = _replayed(app, conditions, command, replay.record)
            return replayed


def _executed(
    app: FleetApplication,
    conditions: Conditions,
    execute: Callable[[Callable[[Working], T]], T],
    work: Callable[[Working], T],
) -> T:
    result = execute(work)
    conditions.position = app.last_position()
    return result


@contextmanager
def _claimed(scope: str) -> Iterator[None]:
    with _in_flight_lock:
        if scope in _in_flight:
            raise KeyInFlightError(
                Msg(
                    "A request with this Idempotency-Key is still being processed; "
                    "retry once it has been answered."
                )
            )
        _in_flight.add(scope)
    try:
        yield
    finally:
        with _in_flight_lock:
            _in_flight.discard(scope)


def _guarded(
    app: FleetApplication, cause: Cause, conditions: Conditions, work: Callable[[Working], T]
) -> Callable[[Working], T]:
    key = conditions.idempotency

    def attempt(w: Working) -> T:
        record_id = None if key is None else IdempotencyRecord.id_for(key.scope(cause))
        if record_id is not None:  # looked up in the command's own prefetch (issue 11)
            w.hint(record_id, found=_replay_record)
        after = 0 if key is None else app.recorder.max_notification_id() or 0
        try:
            result = work(w)
        except NotFoundError:
            _replay_if_recorded(w, record_id)
            raise  # before the tag check: a 412 would tell another tenant's versions
        except DomainError:
            _replay_if_recorded(w, record_id)
            _check_if_match(w, conditions)  # a stale precondition answers first (412)
            raise
        except Exception:
            _replay_if_recorded(w, record_id)
            raise
        _replay_if_recorded(w, record_id)
        _check_if_match(w, conditions)
        if key is not None:  # added last: its event ends the transaction (`_position_of`)
            stored = app.mapper.transcoder.encode(result).decode()
            w.add(IdempotencyRecord.record(cause, key.scope(cause), key.fingerprint, stored, after))
        return result

    return attempt


def _replay_record(found: Any) -> None:
    """The key's record, found by the command's prefetch: its first outcome answers, and the
    command stops there (a replayed intake batch is not validated again)."""
    if isinstance(found, IdempotencyRecord):
        raise _Replay(found)


def _replay_if_recorded(w: Working, record_id: UUID | None) -> None:
    """Raise `_Replay` when the key's record is stored: its first outcome answers, whatever
    this run of the command decided (nothing of this run is saved). The record was fetched
    in the command's prefetch when it made one; else this is its own round trip."""
    if record_id is None:
        return
    found = w.find(IdempotencyRecord, record_id)
    if found is not None:
        raise _Replay(found)


def _check_if_match(w: Working, conditions: Conditions) -> None:
    tags = conditions.if_match
    if tags is None:
        return
    for tag in tags:
        aggregate = w.get(tag.aggregate_id)
        if aggregate is not None and aggregate.version - len(aggregate.pending_events) == (
            tag.version
        ):
            conditions.etag = EntityTag(tag.aggregate_id, aggregate.version)
            return
    raise PreconditionFailedError(
        Msg(
            "If-Match names no current version of this resource: it changed since you read it "
            "(or the tag is another resource's). Read it again and retry with the new ETag."
        )
    )


def _replayed(
    app: FleetApplication, conditions: Conditions, command: str, record: IdempotencyRecord
) -> Any:
    key = conditions.idempotency
    assert key is not None
    if record.fingerprint != key.fingerprint:
        raise IdempotencyKeyReusedError(
            Msg(
                "Idempotency-Key {key!r} was already used with a different request body "
                "on {method} {path}; use a new key for a new request.",
                key=key.key,
                method=key.method,
                path=key.path,
            )
        )
    conditions.position = _position_of(app, record)
    conditions.replayed = True
    log.info("command", command=command, outcome="replayed", aggregate_ids=[str(record.id)])
    return app.mapper.transcoder.decode(record.result.encode())


def _position_of(app: FleetApplication, record: IdempotencyRecord) -> int:
    """The store position of the record's event: the last of its command's transaction."""
    start = record.after + 1  # the record's notification follows `after`
    while True:
        found = app.recorder.select_notifications(start=start, limit=100, topics=[_RECORDED])
        for notification in found:
            if notification.originator_id == record.id:
                return notification.id
        if len(found) < 100:
            return app.recorder.max_notification_id() or 0  # not found: a safe upper bound
        start = found[-1].id + 1


_RECORDED = get_topic(IdempotencyRecord.Recorded)
