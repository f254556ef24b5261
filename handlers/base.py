"""The application base: loading, saving, bounded retries on conflicts, one log line per command."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, ClassVar, TypeVar
from uuid import UUID

import structlog
from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    Repository,
)
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    ProcessRecorder,
    RecordConflictError,
    Recording,
    Tracking,
    Transcoder,
)

from domain.base import Cause, DomainError, FleetAggregate, NotFoundError
from domain.consent import ConsentState
from domain.customer_group import ChildGroup, CustomerGroup
from domain.device import Device
from domain.device_support import Alert
from domain.partner import MissingDeviceRequest, PartnerTenant
from domain.passport import Passport
from domain.service_level import ServiceLevel
from domain.text import check_storable
from handlers.arguments import checked_command, is_command
from handlers.snapshots import reason_of, repository_for
from handlers.transcoding import DataclassAsDict, DateAsISO, FleetMapper, FleetTranscoder

log = structlog.get_logger("partnerfleet.commands")

A = TypeVar("A", bound=FleetAggregate)
T = TypeVar("T")

# Per thread / task, so a web request waits only for its own writes.
_last_position: ContextVar[int] = ContextVar("last_position", default=0)
MAX_ATTEMPTS = 8
BACK_OFF_SECONDS = 0.003


class ConflictError(Exception):
    """A command lost to concurrent writers on every attempt; nothing was recorded."""


class AlreadyProcessedError(Exception):
    """A policy's command was not recorded: another runner already processed that notification."""


# Value objects held in aggregate state; snapshots must transcode them.
STATE_DATACLASSES = (Alert, ChildGroup, ConsentState, MissingDeviceRequest, ServiceLevel)
# Snapshot every N events, so an aggregate with a long history loads in bounded time.
SNAPSHOT_INTERVAL = 50


class Working(dict[UUID, FleetAggregate]):
    """The aggregates one command has loaded or created; saved together in one transaction."""

    def __init__(self, app: FleetApplication, attempt: int = 1) -> None:
        super().__init__()
        self._app = app
        self.attempt = attempt

    @property
    def optimistic(self) -> bool:
        """First attempt: a command may assume new aggregates are new (a save conflict says not)."""
        return self.attempt == 1

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate if it exists, loading it at most once per command."""
        found = self.get(aggregate_id)
        if found is None:
            try:
                found = self._app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                return None
            self[aggregate_id] = found
        if not isinstance(found, cls):
            raise NotFoundError(f"{aggregate_id} is not a {cls.__name__}.")
        return found

    def load(self, cls: type[A], aggregate_id: UUID, missing: str) -> A:
        """The aggregate, or a NotFoundError with the message `missing`."""
        found = self.find(cls, aggregate_id)
        if found is None:
            raise NotFoundError(missing)
        return found

    def add(self, aggregate: A) -> A:
        """Track a newly created aggregate."""
        self[aggregate.id] = aggregate
        return aggregate


class FleetApplication(Application[UUID]):
    """All commands share one event store, so a command spanning aggregates is one transaction."""

    name = "partnerfleet"
    recorder: ProcessRecorder
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = dict.fromkeys(
        (PartnerTenant, Passport, CustomerGroup, Device), SNAPSHOT_INTERVAL
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every command of a subclass checks its text arguments first (issue 8, kind 5)."""
        super().__init_subclass__(**kwargs)
        for name, attribute in list(vars(cls).items()):
            if is_command(name, attribute):
                setattr(cls, name, checked_command(attribute))

    def construct_transcoder(self) -> Transcoder:
        # Caller data never collides with the transcoder's markers (handlers/transcoding.py).
        transcoder = FleetTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def construct_repository(self) -> Repository[UUID]:
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
        return self.factory.process_recorder()

    def last_position(self) -> int:
        """Read-your-writes: the store position of this context's last accepted command."""
        return _last_position.get()

    def _execute(
        self,
        command: str,
        cause: Cause,
        work: Callable[[Working], T],
        tracking: Tracking | None = None,
    ) -> T:
        """Run `work` and save what it touched, retrying when a concurrent writer wins.

        With `tracking` (a policy's position in the notification log), the position is saved
        in the same transaction as the events, even when `work` changed nothing.
        """
        with structlog.contextvars.bound_contextvars(
            principal=cause.principal, correlation_id=cause.correlation_id
        ):
            return self._attempt(command, cause, work, tracking)

    def _attempt(
        self, command: str, cause: Cause, work: Callable[[Working], T], tracking: Tracking | None
    ) -> T:
        # Bound explicitly too, so the line is complete whatever the processors are.
        bound = log.bind(
            command=command, principal=cause.principal, correlation_id=cause.correlation_id
        )
        for attempt in range(1, MAX_ATTEMPTS + 1):
            working = Working(self, attempt)
            try:
                result = work(working)
                recordings = self._save(working, tracking)
            except DomainError as error:
                _log_outcome(bound, working, "refused", reason=str(error))
                raise
            except RecordConflictError:
                if tracking is not None and self._tracked(tracking):
                    _log_outcome(bound, working, "already_processed", attempts=attempt)
                    raise AlreadyProcessedError(
                        f"{tracking.application_name} already processed notification "
                        f"{tracking.notification_id}; nothing was recorded."
                    ) from None
                bound.debug("command_conflict", attempt=attempt)
                _back_off(attempt)
                continue
            _log_outcome(bound, working, "accepted", attempts=attempt)
            if recordings:
                _last_position.set(max(r.notification.id for r in recordings))
            return result
        _log_outcome(bound, working, "conflict", attempts=MAX_ATTEMPTS)
        raise ConflictError(
            f"{command} conflicted with concurrent changes {MAX_ATTEMPTS} times; "
            "nothing was recorded. Try again."
        )

    def _save(self, working: Working, tracking: Tracking | None) -> list[Recording[UUID]]:
        """`Application.save`, with the tracking record in the events' transaction."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent(tracking=tracking)
        # As ProcessingEvent.collect_events, without its two runtime Protocol checks per
        # aggregate (a tenth of a 5,000-device intake batch): Working holds aggregates only.
        for aggregate in working.values():
            processing_event.events.extend(aggregate.collect_events())
            processing_event.aggregates[aggregate.id] = aggregate
        for event in processing_event.events:
            if not getattr(event, "texts_checked", False):  # a backstop: no view can be
                check_storable(vars(event))  # stopped by an event, whatever path made it
        recordings = self._record(processing_event)
        self._snapshot_quietly(processing_event)
        self._notify(recordings)
        return recordings

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


def _back_off(attempt: int) -> None:
    # Jittered, growing pauses let racing writers interleave instead of colliding again.
    time.sleep(random.uniform(0, BACK_OFF_SECONDS * 2**attempt))


def _log_outcome(bound: Any, working: Working, outcome: str, **extra: Any) -> None:
    ids = [str(i) for i in list(working)[:5]]
    bound.info("command", outcome=outcome, aggregate_ids=ids, aggregates=len(working), **extra)
