"""The application base: loading, saving, bounded retries on conflicts, one log line per command."""

from __future__ import annotations

import functools
import inspect
import logging
import random
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar
from uuid import UUID

import structlog
from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
)
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    ProcessRecorder,
    RecordConflictError,
    Recording,
    StoredEvent,
    Tracking,
    Transcoder,
)
from eventsourcing.popo import POPOFactory, POPOProcessRecorder
from eventsourcing.utils import resolve_topic

from domain.base import DomainError, FleetAggregate, Msg, NotFoundError
from domain.consent import ConsentState
from domain.customer_group import ChildGroup, CustomerGroup
from domain.device import Device
from domain.device_support import Alert
from domain.partner import MissingDeviceRequest, PartnerTenant
from domain.passport import Passport
from domain.service_level import ServiceLevel
from domain.text import check_storable
from handlers.access import (
    TENANT_ROLES,
    Actor,
    NotCachedError,
    Role,
    allow,
    missing_tenant,
    owns,
)
from handlers.aggregate_cache import CACHE_SIZE_ENV, DEFAULT_SIZE, AggregateCache
from handlers.arguments import NO_TEXT, checked_argument, is_command
from handlers.conditions import conditioned, requested
from handlers.snapshots import FleetRepository, reason_of, replay, repository_for
from handlers.transcoding import (
    DataclassAsDict,
    DateAsISO,
    FleetMapper,
    FleetTranscoder,
    notification_of,
    recording,
)

log = structlog.get_logger("partnerfleet.commands")

A = TypeVar("A", bound=FleetAggregate)
T = TypeVar("T")
P = ParamSpec("P")
S = TypeVar("S", bound="FleetApplication")

# Per thread / task, so a web request waits only for its own writes.
_last_position: ContextVar[int] = ContextVar("last_position", default=0)
# A policy's position in the notification log, saved with the events of the command it
# calls (see FleetApplication.tracked): policies call the same public commands.
_tracking: ContextVar[Tracking | None] = ContextVar("tracking", default=None)


def _logged_variables() -> tuple[ContextVar[Any], ContextVar[Any]]:
    """structlog's context variables of `principal` and `correlation_id`: those that
    `bind_contextvars` sets and `merge_contextvars` reads (found through the tokens of one
    binding, undone at once; a token names its variable)."""
    tokens = structlog.contextvars.bind_contextvars(principal="", correlation_id="")
    structlog.contextvars.reset_contextvars(**tokens)
    return tokens["principal"].var, tokens["correlation_id"].var


_LOGGED_PRINCIPAL, _LOGGED_CORRELATION_ID = _logged_variables()
MAX_ATTEMPTS = 8
BACK_OFF_SECONDS = 0.003


def _distinct(ids: tuple[Any, ...]) -> bool:
    """Whether `ids` are UUIDs no two of which are equal, told by their 128-bit ints (an
    int's hash is C's; a UUID's a Python call, about 1,200 instructions). False when one
    is no UUID: the caller then makes them unique by equality."""
    ints = {i.int for i in ids if type(i) is UUID}
    return len(ints) == len(ids)


def _of_kind(cls: type[A], found: object, aggregate_id: UUID) -> A:
    """`found` if it is a `cls`; NotFoundError (the id names another kind) if not."""
    if not isinstance(found, cls):
        raise NotFoundError(
            Msg("{aggregate_id} is not a {kind}.", aggregate_id=aggregate_id, kind=cls.__name__)
        )
    return found


class ConflictError(Exception):
    """A command lost to concurrent writers on every attempt; nothing was recorded."""


class AlreadyProcessedError(Exception):
    """A policy's command was not recorded: another runner already processed that notification."""


# Value objects held in aggregate state; snapshots must transcode them.
STATE_DATACLASSES = (Alert, ChildGroup, ConsentState, MissingDeviceRequest, ServiceLevel)
# Snapshot every N events, so an aggregate with a long history loads in bounded time.
SNAPSHOT_INTERVAL = 50


# A command's result of these types holds no aggregate (nor any part of one).
_HOLDING_NO_AGGREGATE = frozenset({type(None), bool, int, float, str, UUID})

# A command that touched more aggregates than this (an intake batch) does not fill the
# cache: pickling thousands of aggregates costs more than the loads it could save.
CACHE_WORKING_LIMIT = 64


class Working(dict[UUID, FleetAggregate]):
    """The aggregates one command has loaded or created; saved together in one transaction.

    With a `cache` (a command's first attempt, when the recorder checks read versions) an
    aggregate found there costs no round trip: the command borrows it (the entry itself, or
    a private copy: `AggregateCache.borrow`), and saves against its version
    (`read_versions` for what it only read). `loaded` maps every aggregate loaded (not
    created) to the version it was loaded at; `from_cache` names those that came from the
    cache.
    """

    # Immutable starting values are the class's: an instance sets only what differs
    # (a command makes one Working per attempt; session 20).
    attempt = 1
    cache: AggregateCache | None = None
    tracking: Tracking | None = None  # the policy position the command saves with, if any
    _hints: tuple[UUID, ...] = ()  # fetched with the next prefetch (`hint`)
    _hint_found: Callable[[Any], None] | None = None
    # Where `encoded` goes as it is made, when the command streams (`stream_encoded`).
    stream: Any = None
    _stream_expected = 0
    # Set by the command path once the body has returned: whether its result can hold
    # no aggregate (None, a number, a text, an id), so that after the save the cache
    # may keep these aggregates themselves instead of copies (`_remember_quietly`).
    results_hold_none = False
    # Set once the cache has been given back what this Working took from it (after a save,
    # `_remember_quietly`); until then a failed attempt releases it (`_attempt`).
    remembered = False

    def __init__(
        self,
        app: FleetApplication,
        attempt: int = 1,
        *,
        cache: AggregateCache | None = None,
        tracking: Tracking | None = None,
    ) -> None:
        # (no `dict.__init__` call: with no arguments it does nothing; session 21)
        self._app = app
        if attempt != 1:
            self.attempt = attempt
        if cache is not None:
            self.cache = cache
        if tracking is not None:
            self.tracking = tracking
        self.loaded: dict[UUID, int] = {}
        self.from_cache: set[UUID] = set()
        self._absent: set[UUID] = set()  # prefetched and not found
        # New aggregates whose one (created) event the command encoded itself (bulk
        # intake, handlers/landing.py), by aggregate id; saved before the events of the
        # aggregates above, in the same transaction.
        self.encoded: dict[UUID, StoredEvent] = {}

    @property
    def optimistic(self) -> bool:
        """First attempt: a command may assume new aggregates are new (a save conflict says not)."""
        return self.attempt == 1

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate if it exists, loading it at most once per command."""
        found = self.get(aggregate_id)
        if found is None:
            # Encoded first: an id prefetched absent and then created by `add_encoded`
            # stays in `_absent` (session 19: no discard, a UUID hash less per row).
            encoded = self.encoded.get(aggregate_id) if self.encoded else None
            if encoded is not None:  # created by this command, already encoded
                found = self[aggregate_id] = self._created(encoded)
            elif self._absent and aggregate_id in self._absent:
                return None
            else:
                found = self._cached(aggregate_id)
            if found is None:
                self._end_stream_to_read()
                try:
                    found = self._app.repository.get(aggregate_id)
                except AggregateNotFoundError:
                    return None
                self._loaded(found)
        return _of_kind(cls, found, aggregate_id)

    def _created(self, encoded: StoredEvent) -> Any:
        """An encoded aggregate as created; its event stays in `encoded` (saved once)."""
        created: Any = self._app.mapper.to_domain_event(encoded)
        return created.mutate(None)

    def load(self, cls: type[A], aggregate_id: UUID, missing: Msg | Callable[[], Msg]) -> A:
        """The aggregate, or a NotFoundError with the message `missing` (or the one it
        makes, when a callable: the words made only when refused, on the hot loads)."""
        found = self.find(cls, aggregate_id)
        if found is None:
            raise NotFoundError(missing if isinstance(missing, Msg) else missing())
        return found

    def prefetch(self, *ids: UUID) -> None:
        """Load these aggregates (those not yet loaded nor cached) in one round trip (issue 11);
        `find` and `load` then answer from what was fetched, an id not found included.
        Types are checked by `find`, as for any load; a hint never changes an outcome."""
        hinted, self._hints = self._hints, ()
        # A UUID's hash is a Python call: the sets and dicts that are empty on the common
        # path (encoded, absent) are not asked (session 19), nor is the Working while it
        # is empty (a command's first prefetch), and ids known distinct by their ints are
        # not made unique through a dict of UUIDs (session 22).
        encoded, absent = self.encoded, self._absent
        given = (*hinted, *ids) if hinted else ids
        if len(given) > 1 and not _distinct(given):
            given = tuple(dict.fromkeys(given))
        wanted = (
            [
                i
                for i in given
                if i not in self and not (encoded and i in encoded) and not (absent and i in absent)
            ]
            if self or encoded or absent
            else list(given)
        )
        missing = [i for i in wanted if self._cached(i) is None]
        if missing:
            self._end_stream_to_read()
            found = self._app.repository.latest(missing)
            for aggregate_id in missing:
                aggregate = found.get(aggregate_id)
                if aggregate is None:
                    self._absent.add(aggregate_id)
                else:
                    self._loaded(aggregate)
        for aggregate_id in hinted:
            if self._hint_found is not None and (hint := self.get(aggregate_id)) is not None:
                self._hint_found(hint)

    def hint(self, *ids: UUID, found: Callable[[Any], None] | None = None) -> None:
        """Fetch these aggregates too with the command's next `prefetch`, in its round trip
        (an Idempotency-Key's record, handlers/conditions.py); nothing is loaded now.
        `found(aggregate)` is called by that prefetch for each of them that exists (it may
        raise, to end the command there)."""
        self._hints = (*self._hints, *ids)
        self._hint_found = found

    def add(self, aggregate: A) -> A:
        """Track a newly created aggregate."""
        self._absent.discard(aggregate.id)
        self[aggregate.id] = aggregate
        return aggregate

    def has(self, aggregate_id: UUID) -> bool:
        """Loaded or created by this command, encoded ones included."""
        return aggregate_id in self or (bool(self.encoded) and aggregate_id in self.encoded)

    def add_encoded(self, aggregate_id: UUID, created: StoredEvent) -> None:
        """Track a newly created aggregate given as its created event, already encoded
        (version 1; see `encoded`). A second one of the same id conflicts at the save.
        Once the command has said it streams (`stream_encoded`), the event is also sent
        to the store now, in the transaction its save commits."""
        self.encoded[aggregate_id] = created  # (`find` reads it before `_absent`)
        if self.stream is not None:
            self.stream.write(created)
        elif self._stream_expected:  # the first: open the stream, send what is encoded
            expected, self._stream_expected = self._stream_expected, 0
            self.stream = self._app.open_stream(self.tracking, expected)
            if self.stream is not None:
                for row in self.encoded.values():
                    self.stream.write(row)

    def stream_encoded(self, expected: int) -> None:
        """Say the command will encode about `expected` created events (an intake
        batch): on a first attempt, where the store streams that many (FleetProcessRecorder's
        `copy_stream`), they are sent as they are made from the first `add_encoded` on,
        so the store inserts while the command still checks (issue 11, session 17). The
        outcome is the same either way: the save commits them all or none."""
        if self.optimistic:
            self._stream_expected = expected

    def end_stream(self) -> None:
        """Roll back what was streamed and not saved (the command refused or failed)."""
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.abort()

    def _end_stream_to_read(self) -> None:
        """Before a read of the store: an open stream holds the table lock and a pooled
        connection, and the read needs another connection, which a save waiting for that
        lock may hold (a pool of two; or as many waiting saves as the pool has connections):
        neither would go on (session 17). So the stream ends first (rolled back, the lock
        and its connection given back) and the command saves the ordinary way, with the
        same outcome. Commands that stream read what they need before their first row
        (`receive_e2open_batch` prefetches the batch's partners)."""
        if self.stream is not None:
            log.info("stream_ended_to_read", written=self.stream.written)
            self.end_stream()

    @property
    def changed(self) -> bool:
        """Whether any aggregate has events to save."""
        if self.encoded:
            return True
        for aggregate in self.values():  # noqa: SIM110 (a loop: no generator's frame; session 21)
            if aggregate.pending_events:
                return True
        return False

    def read_versions(self) -> dict[UUID, int]:
        """`{aggregate_id: version}` of every aggregate loaded and not changed (no pending
        events): what the recorder checks at commit so no decision rests on a stale read."""
        # `loaded` copied (its ids' hashes kept) less the changed ones: the same dict with
        # a UUID hashed per changed aggregate only, not two per loaded one (session 22).
        read = self.loaded.copy()
        for aggregate_id, aggregate in self.items():
            if aggregate.pending_events:
                read.pop(aggregate_id, None)
        return read

    def _cached(self, aggregate_id: UUID) -> Any | None:
        if self.cache is None:
            return None
        # Borrowed: the entry itself when a command changed it last, else a copy (session 23);
        # `_remember_quietly` or `_attempt` hands it back.
        found = self.cache.borrow(aggregate_id)
        if found is not None:
            self.from_cache.add(aggregate_id)
            self._loaded(found)
        return found

    def _loaded(self, aggregate: Any) -> None:
        aggregate_id = aggregate.id  # (a property: read once)
        self[aggregate_id] = aggregate
        self.loaded[aggregate_id] = aggregate.version


@dataclass(frozen=True)
class Declaration:
    """A command as declared: its name, who may call it, and the argument naming the
    caller's own tenant (a Location ID or customer id), if any."""

    name: str
    roles: frozenset[Role]
    tenant: str | None
    doc: str


# Every declared command, by name: the access matrix and its coverage test read it.
COMMANDS: dict[str, Declaration] = {}


def command(
    *roles: Role, tenant: str | None = None
) -> Callable[
    [Callable[Concatenate[S, Working, Actor, P], T]], Callable[Concatenate[S, Actor, P], T]
]:
    """Declare a command once: its name (the method's), who may call it, and its tenant.

    The method is written straight-line as `def name(self, w, actor, ...)`; callers call
    `fleet.name(actor, ...)`. Before the body runs: the role is checked (`ForbiddenError`,
    403), every text argument is checked (`TextError`, issue 8 kind 5), and the argument
    named `tenant` must be the actor's own tenant (`NotFoundError`, 404, for another's)
    when the actor's role is bound to a tenant (partner and customer roles; an operator's
    or feed's is not).
    Then the body runs in a `Working` and what it touched is saved in one transaction,
    retried on conflicts (`ConflictError` after MAX_ATTEMPTS).
    """
    allowed = frozenset(roles)

    def declare(
        body: Callable[Concatenate[S, Working, Actor, P], T],
    ) -> Callable[Concatenate[S, Actor, P], T]:
        name = body.__name__
        parameters = list(inspect.signature(body).parameters.values())
        if [p.name for p in parameters[1:3]] != ["w", "actor"]:
            raise TypeError(f"Command {name} must start (self, w, actor, ...).")
        signature = inspect.Signature([parameters[0], *parameters[2:]])
        if tenant is not None and tenant not in signature.parameters:
            raise TypeError(f"Command {name} declares tenant={tenant!r}, not a parameter.")
        bind = _binder(signature)

        @functools.wraps(body)
        def run(self: S, actor: Actor, /, *args: P.args, **kwargs: P.kwargs) -> T:
            arguments = bind(args, kwargs)
            if arguments is None:  # inspect binds it, or says what is wrong
                bound = signature.bind(self, actor, *args, **kwargs)
                bound.apply_defaults()
                arguments = dict(list(bound.arguments.items())[2:])
            try:
                checked_actor, checked = _admitted(name, allowed, tenant, actor, arguments)
            except Exception as error:  # refused before any aggregate is loaded
                reason = str(error)
                log.info("command", command=name, role=actor.role, outcome="refused", reason=reason)
                raise
            return self._run(name, checked_actor, lambda w: body(self, w, checked_actor, **checked))  # type: ignore[call-arg]

        run.__signature__ = signature  # type: ignore[attr-defined]
        run.__command__ = COMMANDS.setdefault(  # type: ignore[attr-defined]
            name, Declaration(name, allowed, tenant, (body.__doc__ or "").strip())
        )
        return run

    return declare


Binder = Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any] | None]


def _binder(signature: inspect.Signature) -> Binder:
    """`signature.bind` then `apply_defaults`, for the common calls only, in a tenth of
    their time (session 17): `bind(args, kwargs)` gives the arguments after `self` and the
    actor by name, in the signature's order, defaults applied; None for any other call
    (a missing, repeated or unknown argument, too many), which inspect then binds or
    refuses with its own TypeError. Commands with *args, **kwargs or positional-only
    parameters always go to inspect."""
    rest = list(signature.parameters.values())[2:]
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if any(p.kind not in kinds for p in rest):
        return lambda args, kwargs: None
    names = [p.name for p in rest]
    positional = [p.name for p in rest if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    defaults = {p.name: p.default for p in rest if p.default is not inspect.Parameter.empty}

    # Positional arguments only, the rest defaulted: by how many are given, the defaults
    # that follow them in order (None: one of those has no default). The common call.
    tails = [
        {key: defaults[key] for key in names[n:]} if all(k in defaults for k in names[n:]) else None
        for n in range(len(positional) + 1)
    ]

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        if len(args) > len(positional):
            return None
        if not kwargs:
            tail = tails[len(args)]
            if tail is not None:
                plain = dict(zip(names, args, strict=False))
                if tail:
                    plain.update(tail)
                return plain
        given = dict(zip(positional, args, strict=False))
        for key, value in kwargs.items():
            if key in given:
                return None
            given[key] = value
        if len(given) + len(defaults) < len(names):
            return None  # something is missing (at least)
        arguments: dict[str, Any] = {}
        for key in names:
            value = given.pop(key, given)  # `given` itself: not given
            if value is given:
                if key not in defaults:
                    return None
                value = defaults[key]
            arguments[key] = value
        return None if given else arguments  # left over: an unknown keyword

    return bind


# Actors whose texts passed the checks unchanged, by identity (weakly: an entry goes with
# its actor, so an id is never taken for another's), with the very texts checked: an actor
# is frozen, yet `object.__setattr__` changes it, so a hit also needs each text to be the
# object that was checked (session 17; attack 2 found a changed actor waved through).
# A client's actor runs many commands.
_ACTORS_CHECKED: dict[int, tuple[weakref.ref[Actor], tuple[object, ...]]] = {}


def _texts_of(actor: Actor) -> tuple[object, ...]:
    return (actor.principal, actor.correlation_id, actor.tenant, actor.partner_type, actor.pcs)


def _checked_actor(actor: Actor) -> Actor:
    """`checked_argument("actor", actor)`, once per actor object while its texts stay."""
    key = id(actor)
    entry = _ACTORS_CHECKED.get(key)
    if entry is not None and entry[0]() is actor:
        principal, correlation_id, tenant, partner_type, pcs = entry[1]
        if (  # each the very object checked (no tuple, no generator: the common path)
            actor.principal is principal
            and actor.correlation_id is correlation_id
            and actor.tenant is tenant
            and actor.partner_type is partner_type
            and actor.pcs is pcs
        ):
            return actor
    checked: Actor = checked_argument("actor", actor)
    if checked is actor:
        forget = functools.partial(_forget_actor, key)
        _ACTORS_CHECKED[key] = (weakref.ref(actor, forget), _texts_of(actor))
    return checked


def _forget_actor(key: int, gone: weakref.ref[Actor]) -> None:
    """An actor checked is gone: its entry goes (its id may be another's from now on)."""
    entry = _ACTORS_CHECKED.get(key)
    if entry is not None and entry[0] is gone:
        _ACTORS_CHECKED.pop(key, None)


def _admitted(
    name: str,
    allowed: frozenset[Role],
    tenant: str | None,
    actor: Actor,
    arguments: dict[str, Any],
) -> tuple[Actor, dict[str, Any]]:
    """The actor and the arguments (after `self` and the actor, by name), checked in this
    order: the role (`ForbiddenError`), every text (`TextError`), the tenant
    (`NotFoundError`). `arguments` itself comes back, its texts replaced by their
    checked forms."""
    if actor.role not in allowed:
        allow(actor, name, allowed)  # raises ForbiddenError
    # `checked_argument` of each, in order and in place: `arguments` is the command's own
    # (bound above); a value is replaced only when its check changes it (an identifier to
    # NFC).
    for n, value in arguments.items():
        if type(value) in NO_TEXT:
            continue
        new = checked_argument(n, value)
        if new is not value:
            arguments[n] = new  # (a value replaced, no key added: the loop goes on)
    checked_actor = _checked_actor(actor)
    if tenant is not None and actor.role in TENANT_ROLES:  # both in NFC, as stored
        owned = str(arguments[tenant])
        if not owns(checked_actor, owned):  # the refusal's words made only when refused
            raise NotFoundError(missing_tenant(tenant, owned))
    return checked_actor, arguments


class FleetApplication(Application[UUID]):
    """All commands share one event store, so a command spanning aggregates is one transaction."""

    name = "partnerfleet"
    recorder: ProcessRecorder
    repository: FleetRepository
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = dict.fromkeys(
        (PartnerTenant, Passport, CustomerGroup, Device), SNAPSHOT_INTERVAL
    )

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        """`env`: eventsourcing's settings, and FLEET_AGGREGATE_CACHE_SIZE (aggregates kept
        in memory, handlers/aggregate_cache.py; 0 turns the cache off)."""
        super().__init__(env=env)
        size = self.env.get(CACHE_SIZE_ENV)
        self.aggregate_cache = AggregateCache(DEFAULT_SIZE if size is None else int(size))

    @property
    def caches_aggregates(self) -> bool:
        """Commands decide on cached aggregates only when the recorder refuses a save whose
        reads went stale (`read_versions`, issue 11); otherwise every load goes to the store."""
        return self.aggregate_cache.maxsize > 0 and bool(
            getattr(self.recorder, "checks_read_versions", False)
        )

    def current(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate as stored now (None if there is none), in one round trip: a cached
        copy brought up to date with the events after its version, or loaded in full.

        For reads that must see every change at once (`handlers.access.authenticate`: a
        withdrawn membership ends access on the next request). NotFoundError if the id
        names another kind of aggregate.
        """
        cache = self.aggregate_cache
        found: Any = cache.get(aggregate_id) if cache.maxsize > 0 else None
        if found is not None:
            version = found.version
            found = replay(found, self.events.get(aggregate_id, gt=version))
            if found.version > version:
                cache.put([found])
        else:
            found = self.repository.latest([aggregate_id]).get(aggregate_id)
            if found is None:
                return None
            cache.put([found])
        return _of_kind(cls, found, aggregate_id)

    def current_at(
        self,
        cls: type[A],
        aggregate_id: UUID,
        stored_version: int | None,
        cached_only: bool = False,
    ) -> A | None:
        """The aggregate as stored now, given `stored_version`: its last stored version as
        the caller read it a moment ago in a round trip of its own (None: no event stored).
        The cached copy when it is at exactly that version (no round trip: the same events
        make the same aggregate), None when nothing is stored, else `current()`.

        For `handlers.access.authenticate` on the page's plain path, which reads the
        partner's version in the same query as the read models' positions (issue 11,
        session 18). NotFoundError if the id names another kind of aggregate.
        `cached_only`: NotCachedError instead of reading the store (a caller on the event
        loop, which must not wait for a round trip, answers that case in a thread).
        """
        if stored_version is None:
            return None
        cache = self.aggregate_cache
        if cache.maxsize > 0 and cache.version_of(aggregate_id) == stored_version:
            found: Any = cache.get(aggregate_id)
            if found is not None and found.version == stored_version:
                return _of_kind(cls, found, aggregate_id)
        if cached_only:
            raise NotCachedError(aggregate_id)
        return self.current(cls, aggregate_id)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """An undeclared command cannot exist: a public method taking an `actor` (or a
        `cause`) after `self` must be declared with `@command` (issue 9)."""
        super().__init_subclass__(**kwargs)
        for name, attribute in vars(cls).items():
            if is_command(name, attribute) and not hasattr(attribute, "__command__"):
                raise TypeError(
                    f"{cls.__name__}.{name} takes an actor but is not declared: "
                    "declare it with @command(roles..., tenant=...)."
                )

    def construct_transcoder(self) -> Transcoder:
        # Caller data never collides with the transcoder's markers (handlers/transcoding.py).
        transcoder = FleetTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def construct_repository(self) -> FleetRepository:
        # A snapshot that does not fit the code is skipped, never fatal (handlers/snapshots.py).
        return repository_for(self)

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(self.construct_transcoder(), mapper_class=FleetMapper)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        for cls in STATE_DATACLASSES:
            transcoder.register(DataclassAsDict(cls))

    def construct_recorder(self) -> ProcessRecorder:
        # A process recorder stores a policy's tracking record with the events it causes.
        # The in-memory factory ignores PROCESS_RECORDER_TOPIC (the others honour it):
        # honoured here too, for a recorder that checks read versions (issue 11).
        topic = self.env.get("PROCESS_RECORDER_TOPIC")
        if topic and isinstance(self.factory, POPOFactory):
            recorder = resolve_topic(topic)()
            if not isinstance(recorder, POPOProcessRecorder):
                raise TypeError(f"PROCESS_RECORDER_TOPIC {topic} is not an in-memory recorder.")
            return recorder
        return self.factory.process_recorder()

    @contextmanager
    def tracked(self, tracking: Tracking) -> Iterator[None]:
        """Within: the declared command called is saved with this policy position (one
        transaction), even when it changed nothing (handlers/policies.py). Only that
        command takes it; `AlreadyProcessedError` when another runner recorded it first."""
        token = _tracking.set(tracking)
        try:
            yield
        finally:
            _tracking.reset(token)

    def _run(self, command: str, actor: Actor, work: Callable[[Working], T]) -> T:
        """Run a declared command's body (`work`) and save what it touched, retrying when a
        concurrent writer wins; see `command`.

        Inside `tracked(...)` the policy's position is saved in the same transaction as the
        events, even when `work` changed nothing. The position is taken by this command
        alone: a command called while it runs does not save it too.
        """
        tracking = _tracking.get()
        # Taken from the context only inside `tracked(...)`: elsewhere it is None already,
        # and stays so without a set and a reset (session 20).
        token = None if tracking is None else _tracking.set(None)
        # Bound for the command's log lines, then reset to what they were: structlog's own
        # variables set directly, as `bind_contextvars` and `reset_contextvars` set them
        # (without their name look-ups, session 20; not `bound_contextvars`, which copies
        # every context variable per command, session 17).
        principal = _LOGGED_PRINCIPAL.set(actor.principal)
        correlation_id = _LOGGED_CORRELATION_ID.set(actor.correlation_id)
        try:
            conditions = requested()
            if conditions is None or conditions.used:  # no HTTP conditions: as `conditioned`
                return self._attempt(command, actor, work, tracking)
            return conditioned(  # under an Idempotency-Key / If-Match (conditions.py)
                self, actor, command, work, lambda w: self._attempt(command, actor, w, tracking)
            )
        finally:
            _LOGGED_CORRELATION_ID.reset(correlation_id)
            _LOGGED_PRINCIPAL.reset(principal)
            if token is not None:
                _tracking.reset(token)

    def open_stream(self, tracking: Tracking | None, expected: int) -> Any:
        """A stream for a command's `expected` encoded events, saved with `tracking`
        (Working.stream_encoded), from a recorder that offers one (`copy_stream`:
        FleetProcessRecorder on PostgreSQL); None where it does not pay or cannot."""
        opener = getattr(self.recorder, "copy_stream", None)
        return None if opener is None else opener(tracking, expected)

    def last_position(self) -> int:
        """Read-your-writes: the store position of this context's last accepted command."""
        return _last_position.get()

    def _attempt(
        self, command: str, actor: Actor, work: Callable[[Working], T], tracking: Tracking | None
    ) -> T:
        # Bound explicitly too, so the line is complete whatever the processors are; not
        # bound at all when the configured level drops info and debug (`_commands_quiet`).
        bound: Any = (
            _QUIET
            if _commands_quiet()
            else log.bind(
                command=command, principal=actor.principal, correlation_id=actor.correlation_id
            )
        )
        cache = self.aggregate_cache if self.caches_aggregates else None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            # Only a first attempt reads the cache: a conflict may be a stale entry's.
            working = Working(
                self, attempt, cache=cache if attempt == 1 else None, tracking=tracking
            )
            try:
                try:
                    result = work(working)
                except Exception:
                    working.end_stream()  # before `_stale` reads: no lock held meanwhile
                    # A refusal (a failed If-Match, ...) decided on cached copies stands
                    # only if they were current; else it is decided again on the store's.
                    if working.from_cache and self._stale(working):
                        bound.debug("command_decided_again", attempt=attempt)
                        continue
                    raise
                working.results_hold_none = type(result) in _HOLDING_NO_AGGREGATE
                nothing_to_save = tracking is None and not working.changed
                if nothing_to_save and working.from_cache and self._stale(working):
                    continue  # nothing to save, so nothing would conflict: decided again
                recordings = self._save(working, tracking)
            except DomainError as error:
                _log_outcome(bound, working, "refused", reason=str(error), rule=error.rule)
                raise
            except RecordConflictError:
                working.end_stream()
                self.aggregate_cache.evict(working)  # whatever it touched may be stale
                if tracking is not None and self._tracked(tracking):
                    _log_outcome(bound, working, "already_processed", attempts=attempt)
                    raise AlreadyProcessedError(
                        f"{tracking.application_name} already processed notification "
                        f"{tracking.notification_id}; nothing was recorded."
                    ) from None
                bound.debug("command_conflict", attempt=attempt)
                _back_off(attempt)
                continue
            finally:
                if working.stream is not None:  # none once saved; else nothing streamed stays
                    working.end_stream()
                if working.from_cache and not working.remembered:  # refused, failed: back
                    self.aggregate_cache.release(
                        [working[i] for i in working.from_cache if i in working]
                    )
            if bound is not _QUIET:
                _log_outcome(bound, working, "accepted", attempts=attempt)
            if recordings:
                _last_position.set(max([r.notification.id for r in recordings]))
            return result
        _log_outcome(bound, working, "conflict", attempts=MAX_ATTEMPTS)
        raise ConflictError(
            Msg(
                "{command} conflicted with concurrent changes {attempts} times; "
                "nothing was recorded. Try again.",
                command=command,
                attempts=MAX_ATTEMPTS,
            )
        )

    def _stale(self, working: Working) -> bool:
        """Whether an aggregate the command took from the cache has changed in the store
        since (one round trip for all of them); the stale ones are evicted."""
        ids = list(working.from_cache)
        stored = self.repository.latest(ids)
        stale = [i for i in ids if (a := stored.get(i)) is None or a.version != working.loaded[i]]
        self.aggregate_cache.evict(stale)
        return bool(stale)

    def _save(self, working: Working, tracking: Tracking | None) -> list[Recording[UUID]]:
        """`Application.save`, with the tracking record in the events' transaction."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent(tracking=tracking)
        caching = self.caches_aggregates
        read_versions = working.read_versions() if caching else {}  # before events are taken
        if read_versions:  # the recorder refuses the unit if any of them moved on
            processing_event.saved_kwargs["read_versions"] = read_versions
        # As ProcessingEvent.collect_events, without its two runtime Protocol checks per
        # aggregate (a tenth of a 5,000-device intake batch): Working holds aggregates only.
        # Working is keyed by the aggregates' ids: then `aggregates` is filled from it in C,
        # with the ids' hashes it holds (a UUID's hash is a Python call; session 21).
        events = processing_event.events
        keyed_by_id = True
        for aggregate_id, aggregate in working.items():
            events.extend(aggregate.collect_events())
            own_id = aggregate.id  # (a property: read once)
            if own_id is not aggregate_id and own_id != aggregate_id:
                keyed_by_id = False
        if keyed_by_id:
            processing_event.aggregates.update(working)
        else:
            for aggregate in working.values():
                processing_event.aggregates[aggregate.id] = aggregate
        for event in processing_event.events:
            if not getattr(event, "texts_checked", False):  # a backstop: no view can be
                check_storable(vars(event))  # stopped by an event, whatever path made it
        # Not `Application._record` (EventStore.put): the same stored events, insert and
        # recordings, with two layers fewer per save (issue 11, session 20).
        recordings = self._record_encoded(
            list(working.encoded.values()), processing_event, working.stream
        )
        if caching:
            self._remember_quietly(working, read_versions)
        self._snapshot_quietly(processing_event)
        self._notify(recordings)
        return recordings

    def _record_encoded(
        self,
        encoded: list[StoredEvent],
        processing_event: ProcessingEvent[UUID],
        stream: Any = None,
    ) -> list[Recording[UUID]]:
        """`Application._record` with `encoded` stored events (none: the command made only
        domain events) first, in one insert (one transaction, the tracking record with
        them); recordings of the domain events, as `EventStore.put` makes them.
        Read-your-writes: the last position is the insert's last id (issue 11).

        With a `stream` (Working.stream_encoded) the encoded events are in it already:
        the domain events follow them and it commits; if it failed on the way, they are
        all inserted the ordinary way, which raises what its error means."""
        events = processing_event.events
        own = list(map(self.mapper.to_stored_event, events))
        ids = None
        if stream is not None:
            ids = stream.finish(own, processing_event.saved_kwargs.get("read_versions"))
            if ids is None:
                log.info("stream_not_saved", reason=reason_of(stream.failed))
        if ids is None:
            ids = self.recorder.insert_events(
                [*encoded, *own],
                tracking=processing_event.tracking,
                **processing_event.saved_kwargs,
            )
        repository = self.repository  # (a property: read once)
        cache = repository.cache
        if not ids:
            # No ids: no recordings. Without encoded events this was `Application._record`,
            # which put the aggregates in the repository cache all the same (attack,
            # session 20).
            if cache and not repository.fastforward and not encoded:
                for aggregate_id, aggregate in processing_event.aggregates.items():
                    cache.put(aggregate_id, aggregate)
            return []
        _last_position.set(max(ids))
        if cache and not repository.fastforward:  # the cache holds what was saved
            for row in encoded:
                created: Any = self.mapper.to_domain_event(row)
                cache.put(UUID(str(row.originator_id)), created.mutate(None))
            for aggregate_id, aggregate in processing_event.aggregates.items():
                cache.put(aggregate_id, aggregate)
        return [
            recording(event, notification_of(row, notification_id))
            for event, row, notification_id in zip(events, own, ids[len(encoded) :], strict=True)
        ]

    def _remember_quietly(self, working: Working, read_versions: Mapping[UUID, int]) -> None:
        """After a save: the cache holds what the command saved and loaded, at the versions
        now stored (an intake batch's thousands are forgotten instead, so that no stale
        copy of them stays). The events are recorded: a failure here only evicts."""
        cache = self.aggregate_cache
        try:
            if len(working) > CACHE_WORKING_LIMIT:
                cache.evict(working)
                working.remembered = True
                return
            unchanged, read, loaded, changed = _by_change(working, read_versions)
            # The command is over and its result holds none of them: the cache may keep
            # these very aggregates, unless the stock repository cache holds them too, and
            # the copies it only read are given back, for later commands (session 22).
            # Only those it changed are lent to the next command (session 23): one only
            # read (a partner) is read by many at once.
            if working.results_hold_none and self.repository.cache is None:
                if read:  # (first: used before the others, as `touch` marked them)
                    cache.give_back(read)
                cache.adopt(changed)
                if loaded:
                    cache.adopt(loaded, changed=False)
            else:
                if read:  # lent entries the result may hold: copies are kept instead
                    cache.release(read, kept=True)
                if unchanged:
                    cache.touch(unchanged)
                cache.put([*changed, *loaded])
            # Last: an interrupt before here leaves `_attempt` to release what is still
            # lent (an entry adopted or given back already is no longer lent).
            working.remembered = True
        except Exception as error:
            cache.evict(working)
            log.warning("aggregates_not_cached", aggregates=len(working), reason=reason_of(error))

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """`Application._take_snapshots`, which snapshots an aggregate whose event's version
        is a multiple of its class's interval. When every class has the same interval and
        no event's version is a multiple of it, nothing is taken: that is known without
        the library's look-ups per event (an aggregate by its id, an interval by its
        class; session 21)."""
        intervals = self.snapshotting_intervals
        if not (self.snapshots and intervals):
            return
        every = _one_interval(intervals)
        if every is not None:
            for event in processing_event.events:
                if event.originator_version % every == 0:
                    break
            else:
                return
        super()._take_snapshots(processing_event)

    def _snapshot_quietly(self, processing_event: ProcessingEvent[UUID]) -> None:
        # The events are recorded: a snapshot is a cache, and failing to take one must not
        # make an accepted command look refused (a caller would retry it).
        try:
            self._take_snapshots(processing_event)
        except Exception as error:
            ids = [str(i) for i in list(processing_event.aggregates)[:5]]
            log.warning("snapshot_not_taken", aggregate_ids=ids, reason=reason_of(error))

    def _tracked(self, tracking: Tracking) -> bool:
        # A conflict is the tracking record's (not the events') when the position has moved on.
        return self.recorder.has_tracking_id(tracking.application_name, tracking.notification_id)


def _by_change(
    working: Working, read_versions: Mapping[UUID, int]
) -> tuple[set[UUID], list[Any], list[Any], list[Any]]:
    """A saved command's aggregates by what it did with them: the ids of those taken from
    the cache and not changed, then the aggregates taken from the cache and not changed,
    read from the store and not changed, changed or created (`_remember_quietly`)."""
    if not read_versions:  # (no id to look up: a UUID's hash is a Python call; session 21)
        return set(), [], [], list(working.values())
    # Sets of the ids as held (their hashes kept): no UUID hashed again (session 22).
    unchanged = working.from_cache.intersection(set(read_versions))
    read: list[Any] = []
    loaded: list[Any] = []
    changed: list[Any] = []
    unchanged_ints = {i.int for i in unchanged}  # (an int's hash is C's)
    read_ints = {i.int for i in read_versions}
    for aggregate_id, aggregate in working.items():
        key = aggregate_id.int
        if key in unchanged_ints:
            read.append(aggregate)
        elif key in read_ints:
            loaded.append(aggregate)
        else:
            changed.append(aggregate)
    return unchanged, read, loaded, changed


def _one_interval(intervals: Mapping[type[Any], int]) -> int | None:
    """The snapshotting interval shared by every class, when they share one and it is a
    positive int; else None."""
    values = set(intervals.values())
    if len(values) != 1:
        return None
    (every,) = values
    return every if type(every) is int and every > 0 else None


def _back_off(attempt: int) -> None:
    # Jittered, growing pauses let racing writers interleave instead of colliding again.
    time.sleep(random.uniform(0, BACK_OFF_SECONDS * 2**attempt))


# structlog's filtering wrapper classes (public, cached by structlog) and their levels.
_FILTERING_LEVELS = {
    structlog.make_filtering_bound_logger(level): level
    for level in (0, logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, 50)
}


def _commands_quiet() -> bool:
    """Whether structlog is configured with a filtering logger that drops info (and so
    debug): then a command's own lines (`_log_outcome`, its debug lines) are not made at
    all, nor its logger bound (2 µs a command of the 4 its outcome line cost with
    nothing logged, session 19). Any other configuration logs as before."""
    level = _FILTERING_LEVELS.get(structlog.get_config()["wrapper_class"])
    return level is not None and level > logging.INFO


class _Quiet:
    """The bound logger of a command while `_commands_quiet`: its lines are dropped."""

    def debug(self, event: str, **kw: Any) -> None:
        return None

    def info(self, event: str, **kw: Any) -> None:
        return None


_QUIET = _Quiet()


def _log_outcome(bound: Any, working: Working, outcome: str, **extra: Any) -> None:
    if bound is _QUIET:  # nothing made for a line that is not logged
        return
    ids = [str(i) for i in list(working)[:5]]
    bound.info("command", outcome=outcome, aggregate_ids=ids, aggregates=len(working), **extra)
