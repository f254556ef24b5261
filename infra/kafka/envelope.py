"""The JSON envelope every domain event travels in on Kafka, and its JSON Schemas.

One topic per aggregate type (`partnerfleet.device.v1`, …), keyed by aggregate id so a
consumer sees each aggregate's events in order. The envelope's fields are also headers.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import hashlib
import inspect
import json
import re
import typing
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from domain import CustomerGroup, Device, E2OpenBatch, PartnerTenant, Passport
from domain.base import FleetAggregate
from domain.idempotency import IdempotencyRecord
from domain.intake import AlertBatch
from domain.key_claim import KeyClaim
from eventsourcing.utils import resolve_topic
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic_core import from_json, to_json

AGGREGATES: tuple[type[FleetAggregate], ...] = (
    PartnerTenant,
    Passport,
    CustomerGroup,
    Device,
    E2OpenBatch,
    AlertBatch,
    KeyClaim,
    IdempotencyRecord,
)
ENVELOPE_FIELDS = (
    "originator_id",
    "originator_version",
    "timestamp",
    "principal",
    "correlation_id",
    "originator_topic",
)
EVENT_ID_NAMESPACE = UUID("0e4b8a59-6a0e-5c1e-8f5d-3b1f7f0c2d11")


class ParkedNote(BaseModel):
    """Why the event is not in this record (docs/events/README.md, "Parked events")."""

    model_config = ConfigDict(frozen=True)

    reason: str
    size: int = Field(description="Bytes of the envelope that could not be published")


class Envelope(BaseModel):
    """A domain event as published: identity, position, cause, and the event's own fields."""

    model_config = ConfigDict(frozen=True)

    event_id: UUID = Field(description="uuid5 of aggregate id and version: stable on resend")
    type: str = Field(description="Aggregate and event name, e.g. Device.PartnerLinked")
    schema_version: int = Field(description="The event class's version (class_version)")
    aggregate_type: str
    aggregate_id: UUID
    aggregate_version: int
    position: int = Field(description="Notification id in partnerfleet's event store")
    time: datetime
    principal: str
    correlation_id: str
    payload: dict[str, Any] | None = Field(
        description="The event's own fields (<type>.schema.json); null only in a parked notice"
    )
    parked: ParkedNote | None = Field(
        default=None,
        description="Only on a notice standing in for an event the relay could not publish",
    )


def aggregate_of(event_class: type[Any]) -> type[FleetAggregate]:
    """The aggregate class an event class belongs to (mixin events included)."""
    found = _AGGREGATE_OF.get(event_class)
    if found is None:
        owners = [a for a in AGGREGATES if getattr(a, event_class.__name__, None) is event_class]
        if not owners:
            raise LookupError(f"{event_class.__qualname__} belongs to no partnerfleet aggregate.")
        found = _AGGREGATE_OF[event_class] = owners[0]
    return found


_AGGREGATE_OF: dict[type[Any], type[FleetAggregate]] = {}


def kebab(name: str) -> str:
    """`CustomerGroup` → `customer-group`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def topic_for(aggregate: type[FleetAggregate], prefix: str = "partnerfleet") -> str:
    """The topic of an aggregate type's events."""
    return f"{prefix}.{kebab(aggregate.__name__)}.v1"


def event_type(event_class: type[Any]) -> str:
    """`Device.AlertRaised`, whichever mixin declared the event."""
    return f"{aggregate_of(event_class).__name__}.{event_class.__name__}"


def envelope(event: FleetAggregate.Event, position: int) -> Envelope:
    """Wrap a stored domain event for publishing."""
    return Envelope.model_validate_json(envelope_record(event, position)[1])


@dataclasses.dataclass(frozen=True)
class EventShape:
    """What every envelope of one event class shares, worked out once per class."""

    type: str
    schema_version: int
    aggregate: builtins.type[FleetAggregate]
    aggregate_type: str
    payload_fields: tuple[str, ...]
    headers: tuple[tuple[str, bytes], ...]  # type, schema_version, aggregate_type


@functools.cache
def shape_of(event_class: type[Any]) -> EventShape:
    """The envelope constants of an event class."""
    name, version = event_type(event_class), getattr(event_class, "class_version", 1)
    aggregate = aggregate_of(event_class).__name__
    return EventShape(
        type=name,
        schema_version=version,
        aggregate=aggregate_of(event_class),
        aggregate_type=aggregate,
        payload_fields=published_fields(event_class),
        headers=(
            ("type", name.encode()),
            ("schema_version", str(version).encode()),
            ("aggregate_type", aggregate.encode()),
        ),
    )


def published_fields(event_class: type[Any]) -> tuple[str, ...]:
    """The payload's fields: the event's own, but for those it keeps internal (secrets'
    verifiers, `internal_fields`). Worked out once per class, so the relay never re-parses."""
    internal = set(ENVELOPE_FIELDS) | set(getattr(event_class, "internal_fields", ()))
    return tuple(f.name for f in dataclasses.fields(event_class) if f.name not in internal)


def envelope_record(event: FleetAggregate.Event, position: int) -> Record:
    """Key, JSON value and headers of the event's Kafka record, without building a model.

    The same fields as `envelope(...)`, serialised in one pydantic call; the headers carry
    every field but the payload, in the envelope's order.
    """
    shape = shape_of(type(event))
    return _record(
        shape,
        str(event.originator_id),
        event.originator_version,
        position,
        event.timestamp.isoformat(),
        event.principal,
        event.correlation_id,
        {name: getattr(event, name) for name in shape.payload_fields},
    )


def stored_record(
    topic: str, aggregate_id: str, version: int, state: bytes, position: int
) -> Record | None:
    """The record of a stored event read straight from its JSON state (the relay's hot path).

    None when only the application's mapper can read the event: a value of a custom-encoded
    type besides the timestamp, a caller's dict with a `_type_` key (escaped or not, see
    handlers/transcoding.py), or a state of an older class version that needs upcasting.
    So a payload read here holds no marker and is the caller's data exactly. The state must
    be the plain transcoder output (no cipher, no compressor).
    """
    if state.count(b'"_type_"') != 1:  # only the timestamp is custom-encoded (nothing escaped)
        return None
    shape = shape_of_topic(topic)
    fields = from_json(state)
    stamp = fields.pop("timestamp", None)
    if not isinstance(stamp, dict) or stamp.get("_type_") != "datetime_iso":
        return None
    if fields.get("class_version", 1) != shape.schema_version:
        return None
    try:
        payload = {name: fields[name] for name in shape.payload_fields}
        principal, correlation_id = fields["principal"], fields["correlation_id"]
    except KeyError:
        return None
    time = stamp["_data_"]
    return _record(shape, aggregate_id, version, position, time, principal, correlation_id, payload)


@functools.cache
def shape_of_topic(topic: str) -> EventShape:
    """The envelope constants of the event class a stored topic names."""
    return shape_of(resolve_topic(topic))


Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def _record(
    shape: EventShape,
    aggregate_id: str,
    version: int,
    position: int,
    time: str,
    principal: str,
    correlation_id: str,
    payload: dict[str, Any],
) -> Record:
    identity = event_id(aggregate_id, version)
    key = aggregate_id.encode()
    value = to_json(
        {
            "event_id": identity,
            "type": shape.type,
            "schema_version": shape.schema_version,
            "aggregate_type": shape.aggregate_type,
            "aggregate_id": aggregate_id,
            "aggregate_version": version,
            "position": position,
            "time": time,
            "principal": principal,
            "correlation_id": correlation_id,
            "payload": payload,
        }
    )
    headers = [
        ("event_id", identity.encode()),
        *shape.headers,
        ("aggregate_id", key),
        ("aggregate_version", str(version).encode()),
        ("position", str(position).encode()),
        ("time", time.encode()),
        ("principal", principal.encode()),
        ("correlation_id", correlation_id.encode()),
    ]
    return key, value, headers


_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes
_SHA1 = hashlib.sha1
# RFC 4122 variant bits on the 17th hex digit: 10xx, so its low two bits stay
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def event_id(aggregate_id: str, version: int) -> str:
    """str(uuid5(EVENT_ID_NAMESPACE, f"{aggregate_id}:{version}")), at a third of the cost:
    the SHA-1's hex digits with the version digit (5) and the variant digit set in place."""
    x = _SHA1(_NAMESPACE_BYTES + f"{aggregate_id}:{version}".encode()).hexdigest()
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


def event_classes() -> list[type[FleetAggregate.Event]]:
    """Every event class of every aggregate (mixins' included), in a stable order."""
    found: dict[str, type[FleetAggregate.Event]] = {}
    for aggregate in AGGREGATES:
        for name in dir(aggregate):
            value = getattr(aggregate, name)
            if _is_domain_event(value):
                found[event_type(value)] = value
    return [found[name] for name in sorted(found)]


def _is_domain_event(value: object) -> bool:
    """A stored event class, not one of the generic bases eventsourcing gives each aggregate.

    Every aggregate class has an `Event` and a `Created` of eventsourcing's making, which are
    never stored; but an aggregate may declare its own `Created` (CustomerGroup does), which
    is. The name alone cannot tell them apart: a declared class has an `apply` or fields.
    """
    if not (isinstance(value, type) and issubclass(value, FleetAggregate.Event)):
        return False
    return value.__name__ not in ("Event", "Created") or any(
        _declares(cls) for cls in value.__mro__
    )


def _declares(cls: type[Any]) -> bool:
    # domain.base's FleetAggregate.Event declares the envelope's fields, not an event's.
    return (
        cls.__module__.startswith("domain.")
        and cls.__module__ != "domain.base"
        and ("apply" in vars(cls) or bool(inspect.get_annotations(cls)))
    )


def payload_model(event_class: type[Any]) -> type[BaseModel]:
    """A pydantic model of an event class's published payload (`published_fields`)."""
    hints = typing.get_type_hints(event_class)
    fields: dict[str, Any] = {name: (hints[name], ...) for name in published_fields(event_class)}
    model: type[BaseModel] = create_model(event_type(event_class).replace(".", ""), **fields)
    return model


def schemas() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema: the envelope, and the payload of every event type."""
    out = {"envelope.schema.json": Envelope.model_json_schema()}
    for event_class in event_classes():
        schema = payload_model(event_class).model_json_schema()
        schema["title"] = event_type(event_class)
        schema["x-schema-version"] = getattr(event_class, "class_version", 1)
        schema["x-topic"] = topic_for(aggregate_of(event_class))
        out[f"{event_type(event_class)}.schema.json"] = schema
    return out


def write_schemas(folder: Path) -> list[Path]:
    """Write every schema into `folder` (docs/events/), one file each."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = folder / name
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
