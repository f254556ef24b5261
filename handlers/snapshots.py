"""Snapshots are a cache: one that does not fit the code is skipped, never fatal (kind 7).

A snapshot written by another release (met after a roll-back), by a class since renamed, or
damaged, cannot always be decoded or applied: an extra or missing field, an unknown
transcoding name, a topic that no longer resolves, bad JSON, a newer class version, or
state the following events cannot be applied to. The repository then replays the
aggregate from its events alone, logs `snapshot_skipped`, and writes a fresh snapshot at
the current version when that version is free (docs/decisions.md).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, Repository, project_aggregate
from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import resolve_topic, strtobool

from handlers.stored_loads import Latest, select_latest

log = structlog.get_logger("partnerfleet.snapshots")

# Set by eventsourcing's Aggregate itself; _id, _version and _pending_events are not stored.
BASE_STATE = frozenset({"_created_on", "_modified_on"})
REASON_CHARS = 300


def reason_of(error: BaseException) -> str:
    """An error as one bounded log field: its type and message."""
    return f"{type(error).__name__}: {error}"[:REASON_CHARS]


class SnapshotMisfitError(Exception):
    """A snapshot's state is not the state this code's aggregate class has."""


def replay(aggregate: Any, domain_events: Iterable[Any]) -> Any:
    """`project_aggregate` without its runtime Protocol check per event (about 30 µs each
    here, most of a load's CPU): every stored event of ours is a FleetAggregate event."""
    for domain_event in domain_events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


class FleetRepository(Repository[UUID]):
    """The stock repository, except that a snapshot that does not fit is skipped, events
    are replayed without a runtime Protocol check each, and the current version of an
    aggregate (or of several, `latest`) is read in one round trip (handlers/stored_loads.py)."""

    def get(self, aggregate_id: UUID, *, projector_func: Any = replay, **options: Any) -> Any:
        """As `Repository.get`, replaying with `replay` unless told otherwise."""
        if projector_func is project_aggregate:
            projector_func = replay
        return super().get(aggregate_id, projector_func=projector_func, **options)

    def latest(self, ids: Sequence[UUID], projector_func: Any = replay) -> dict[UUID, Any]:
        """The current aggregate of each id, read in one round trip on PostgreSQL (issue 11);
        an id that names no aggregate is absent from the answer. A snapshot that does not
        fit is skipped as by `get` (more round trips, for that aggregate only)."""
        snapshots = None if self.snapshot_store is None else self.snapshot_store.recorder
        found = select_latest(self.event_store.recorder, snapshots, ids)
        aggregates = {}
        for aggregate_id, latest in found.items():
            aggregate = self._from_latest(aggregate_id, latest, projector_func)
            if aggregate is not None:
                aggregates[aggregate_id] = aggregate
        return aggregates

    def _from_latest(self, aggregate_id: UUID, latest: Latest, projector_func: Any) -> Any:
        to_domain_event = self.event_store.mapper.to_domain_event
        if latest.snapshot is None:
            return projector_func(None, map(to_domain_event, latest.events))
        assert self.snapshot_store is not None
        try:
            start = restore(self.snapshot_store.mapper, latest.snapshot)
        except Exception as error:  # a cache entry we cannot use, whatever why
            return self._instead_of(latest.snapshot, error, aggregate_id, None, projector_func)
        try:
            return projector_func(start, map(to_domain_event, latest.events))
        except Exception as error:  # the events do not apply to its state
            return self._instead_of(latest.snapshot, error, aggregate_id, None, projector_func)

    def _reconstruct_aggregate(
        self, aggregate_id: UUID, version: int | None, projector_func: Any
    ) -> Any:
        if version is None:  # the current version: snapshot and events in one round trip
            found = self.latest([aggregate_id], projector_func).get(aggregate_id)
            if found is None:
                raise AggregateNotFoundError(f"Aggregate {aggregate_id!r} not found.")
            return found
        store = self.snapshot_store
        if store is None:
            return self._replay(aggregate_id, version, projector_func)
        found = store.recorder.select_events(aggregate_id, desc=True, limit=1, lte=version)
        if not found:
            return self._replay(aggregate_id, version, projector_func)
        try:
            start = restore(store.mapper, found[0])
        except Exception as error:  # a cache entry we cannot use, whatever why
            return self._instead_of(found[0], error, aggregate_id, version, projector_func)
        # Outside the try: a store that cannot be read is no fault of the snapshot.
        events = self.event_store.get(aggregate_id, gt=start.version, lte=version)
        try:
            return projector_func(start, events)
        except Exception as error:  # the events do not apply to its state
            return self._instead_of(found[0], error, aggregate_id, version, projector_func)

    def _instead_of(
        self,
        stored: StoredEvent,
        problem: Exception,
        aggregate_id: UUID,
        version: int | None,
        projector_func: Any,
    ) -> Any:
        """The aggregate replayed from its events alone, the skipped snapshot logged."""
        aggregate = self._replay(aggregate_id, version, projector_func)
        self._skipped(stored, problem, aggregate, current=version is None)
        return aggregate

    def _replay(self, aggregate_id: UUID, version: int | None, projector_func: Any) -> Any:
        events = self.event_store.get(aggregate_id, lte=version)
        aggregate = projector_func(None, events)
        if aggregate is None:
            raise AggregateNotFoundError(
                f"Aggregate {aggregate_id!r} version {version!r} not found."
            )
        return aggregate

    def _skipped(
        self, stored: StoredEvent, problem: Exception, aggregate: Any, *, current: bool
    ) -> None:
        replaced = current and aggregate.version > stored.originator_version
        if replaced:
            replaced = self._replace(aggregate)
        log.warning(
            "snapshot_skipped",
            aggregate_id=str(stored.originator_id),
            version=stored.originator_version,
            reason=reason_of(problem),
            replayed_to=aggregate.version,
            replaced=replaced,
        )

    def _replace(self, aggregate: Aggregate) -> bool:
        """Store a fresh snapshot of the replayed aggregate; False if another was first."""
        assert self.snapshot_store is not None
        try:
            self.snapshot_store.put([type(aggregate).Snapshot.take(aggregate)])
        except Exception as error:  # the load succeeded; the cache stays stale
            log.info("snapshot_not_replaced", aggregate_id=str(aggregate.id), reason=str(error))
            return False
        return True


def restore(mapper: Mapper[UUID], stored: StoredEvent) -> Any:
    """The aggregate a stored snapshot holds, or an error saying why it does not fit."""
    snapshot = mapper.to_domain_event(stored)
    if not isinstance(snapshot, Snapshot):
        raise SnapshotMisfitError(f"{stored.topic} is not a snapshot")
    cls = resolve_topic(snapshot.topic)
    state = dict(snapshot.state)
    written, known = state.pop("class_version", 1), getattr(cls, "class_version", 1)
    if written > known:
        raise SnapshotMisfitError(f"written by class version {written}; this code has {known}")
    floor = getattr(cls, "snapshot_floor", 1)
    if written < floor:
        # Its state was computed by rules since corrected; the events decide again.
        raise SnapshotMisfitError(f"written by class version {written}, older than {floor}")
    for version in range(written, known):  # on a copy: mutate() upcasts the stored state
        getattr(cls, f"upcast_v{version}_v{version + 1}")(state)
    misfit = state_misfit(cls, set(state)) or shape_misfit(cls, state)
    if misfit:
        raise SnapshotMisfitError(misfit)
    return snapshot.mutate(None)


def state_misfit(cls: type[object], keys: set[str]) -> str:
    """What is wrong with a snapshot state's fields for `cls`; "" when they fit."""
    fits = _FIELDS.get(cls)
    if fits is None:
        fits = _FIELDS[cls] = state_fields(cls)
    required, allowed = fits
    missing, extra = sorted(required - keys), sorted(keys - allowed)
    return "; ".join(
        f"{what}: {', '.join(names)}"
        for what, names in (("missing fields", missing), ("unknown fields", extra))
        if names
    )


def shape_misfit(cls: type[object], state: dict[str, Any]) -> str:
    """Fields of a snapshot state whose values are not of their annotated kind; "" if none.

    Shallow (a dict is a dict, text is text): a later release that keeps a field's name
    and changes its shape is caught here, at one isinstance check per field.
    """
    shapes = _SHAPES.get(cls)
    if shapes is None:
        shapes = _SHAPES[cls] = _shapes_of(cls)
    wrong = sorted(
        f"{name} holds a {type(state[name]).__name__}"
        for name, kinds in shapes.items()
        if name in state and not isinstance(state[name], kinds)
    )
    return f"fields of another shape: {', '.join(wrong)}" if wrong else ""


def _shapes_of(cls: type[object]) -> dict[str, tuple[type, ...]]:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation this code cannot resolve: no shape check for it
        return {}
    names = state_fields(cls)[1] - BASE_STATE
    kinds = {name: _runtime_kinds(hints[name]) for name in names if name in hints}
    return {name: found for name, found in kinds.items() if found}


def _runtime_kinds(hint: Any) -> tuple[type, ...]:
    """The classes a decoded value of this annotation may have; () when any may."""
    origin = typing.get_origin(hint) or hint
    if origin in (typing.Union, types.UnionType):
        members = [_runtime_kinds(arg) for arg in typing.get_args(hint)]
        return () if not all(members) else tuple(k for m in members for k in m)
    if hint is None or hint is type(None):
        return (type(None),)
    if origin in (list, tuple, set, frozenset):  # JSON has one kind of array
        return (list, tuple, set, frozenset)
    if origin is float:
        return (float, int)
    if isinstance(origin, type) and origin is not object:
        return (origin,)
    return ()  # Any, Literal, ClassVar, type variables


_SHAPES: dict[type[object], dict[str, tuple[type, ...]]] = {}


def state_fields(cls: type[object]) -> tuple[frozenset[str], frozenset[str]]:
    """The fields an aggregate's state must have (annotated, no class default) and may have.

    Every instance attribute of an aggregate is annotated on its class (or a mixin); one
    that is not makes every snapshot of it skipped (tests/unit/test_snapshots.py says so).
    """
    annotated = {
        name
        for klass in cls.__mro__
        if not klass.__module__.startswith("eventsourcing")
        for name in vars(klass).get("__annotations__", {})
    }
    required = frozenset(name for name in annotated if not hasattr(cls, name))
    return required, frozenset(annotated) | BASE_STATE


_FIELDS: dict[type[object], tuple[frozenset[str], frozenset[str]]] = {}


def repository_for(app: Any) -> FleetRepository:
    """A FleetRepository configured from the application's environment, as the stock one."""
    env = app.env
    maxsize = env.get(app.AGGREGATE_CACHE_MAXSIZE)
    return FleetRepository(
        event_store=app.events,
        snapshot_store=app.snapshots,
        cache_maxsize=int(maxsize) if maxsize else None,
        fastforward=strtobool(env.get(app.AGGREGATE_CACHE_FASTFORWARD, "y")),
        fastforward_skipping=strtobool(env.get(app.AGGREGATE_CACHE_FASTFORWARD_SKIPPING, "n")),
        deepcopy_from_cache=strtobool(env.get(app.DEEPCOPY_FROM_AGGREGATE_CACHE, "y")),
    )
