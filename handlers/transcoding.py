"""How events and snapshots become stored JSON and back, with caller data read back exactly.

eventsourcing's JSONTranscoder writes a value of a registered type as the marker
`{"_type_": name, "_data_": encoded}` and reads every two-key dict of that form back as
one, so a caller's own dict of that form (configuration data, a feed's payload) could not
be read again. Here such a dict is escaped when written (`escaped_dict`), and the
free-form fields of an event (annotated with `Any` or `object`) are read without
interpreting markers at all, so histories written before the escape read back exactly too.
"""

from __future__ import annotations

import functools
import json
import typing
from collections.abc import Callable
from dataclasses import fields
from datetime import date
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    Notification,
    Recording,
    StoredEvent,
    Transcoder,
    Transcoding,
    TranscodingNotRegisteredError,
)
from eventsourcing.utils import get_topic, resolve_topic
from pydantic import BaseModel

from domain.base import FleetAggregate

ESCAPED = "escaped_dict"
_MARKER_KEY = b'"_type_":'
_ESCAPED_NAME = f'"{ESCAPED}"'


def collides(value: dict[Any, Any]) -> bool:
    """Whether a dict has the transcoder's marker form (exactly the keys _type_ and _data_)."""
    return len(value) == 2 and "_type_" in value and "_data_" in value


class DateAsISO(Transcoding):
    """Stores `datetime.date` values (service levels, ship dates) as ISO strings."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class DataclassAsDict(Transcoding):
    """Stores a dataclass of aggregate state (for snapshots) as a dict of its fields."""

    def __init__(self, cls: type[Any]) -> None:
        self.type = cls
        self.name = cls.__qualname__

    def encode(self, obj: Any) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in fields(obj)}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**data)


class ModelAsDict(Transcoding):
    """Stores a pydantic model (a command's result kept with an Idempotency-Key) as a dict."""

    def __init__(self, cls: type[BaseModel]) -> None:
        self.type = self.model = cls
        self.name = cls.__qualname__

    def encode(self, obj: Any) -> dict[str, Any]:
        return dict(obj)

    def decode(self, data: dict[str, Any]) -> Any:
        return self.model.model_validate(data)


class _Escaped:
    """Never instantiated: escaped dicts are written by `FleetTranscoder._native`."""


class EscapedDict(Transcoding):
    """A caller's dict of the marker form, stored as its [key, value] pairs."""

    type = _Escaped
    name = ESCAPED

    def encode(self, obj: Any) -> Any:
        raise TypeError("escaped dicts are written by FleetTranscoder only")

    def decode(self, data: list[list[Any]]) -> dict[str, Any]:
        return dict(data)


class FleetTranscoder(JSONTranscoder):
    """JSONTranscoder whose output never holds a caller's dict in marker form.

    The hot path is the stock encoder plus a count: each marker the transcoder writes
    calls `default` once, so more `"_type_":` keys in the output than calls means the data
    holds a key of its own by that name; only then is the value walked and escaped (about
    2% on an encode; the walk only for data holding a `_type_` key).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register(EscapedDict())

    def encode(self, obj: Any) -> bytes:
        written = 0
        encode_obj, types = self._encode_obj, self.types

        def default(o: Any) -> dict[str, Any]:
            nonlocal written
            written += 1
            # `_encode_obj`'s marker, without its frame (a timestamp per event; session 22)
            transcoding = types.get(type(o))
            if transcoding is None:
                return encode_obj(o)  # (raises TranscodingNotRegisteredError)
            return {"_type_": transcoding.name, "_data_": transcoding.encode(o)}

        out = _stock_json(obj, default).encode("utf8")
        if out.count(_MARKER_KEY) == written:
            return out
        return self.encoder.encode(self._native(obj)).encode("utf8")

    def _native(self, o: Any) -> Any:
        """`o` as plain JSON values: markers for registered types, colliding dicts escaped."""
        if o is None or isinstance(o, str | int | float):
            return o
        if isinstance(o, list | tuple):
            return [self._native(v) for v in o]
        if isinstance(o, dict):
            items = {k: self._native(v) for k, v in o.items()}
            if collides(o):
                return {"_type_": ESCAPED, "_data_": [[k, v] for k, v in items.items()]}
            return items
        transcoding = self.types.get(type(o))
        if transcoding is None:
            raise TranscodingNotRegisteredError(f"Object of type {type(o)} is not serializable.")
        return {"_type_": transcoding.name, "_data_": self._native(transcoding.encode(o))}

    def lenient(self, value: dict[str, Any]) -> Any:
        """The stock decoding hook, keeping a dict it cannot decode as it is."""
        try:
            return self._decode_obj(value)
        except Exception:  # a caller's dict in a free-form field: FreeFormReader replaces it
            return value


def _stock_json(obj: Any, default: Callable[[Any], Any]) -> str:
    """What JSONTranscoder's encoder writes, with a `default` of this call's own (a counter
    per call: no shared state between threads, no thread-local lookups per value)."""
    if c_make_encoder is None:  # an interpreter without json's C speedups
        return json.JSONEncoder(default=default, separators=(",", ":"), ensure_ascii=False).encode(
            obj
        )
    encoder = c_make_encoder({}, default, encode_basestring, None, ":", ",", False, False, True)
    return "".join(encoder(obj, 0))


def unescape(value: dict[str, Any]) -> dict[str, Any]:
    """A decoding hook that restores escaped dicts and leaves every other dict alone."""
    if len(value) == 2 and value.get("_type_") == ESCAPED and "_data_" in value:
        return dict(value["_data_"])
    return value


class FreeFormReader(Transcoder):
    """Decodes the stored state of one event class: free-form fields are never revived."""

    def __init__(self, transcoder: FleetTranscoder, free_form: frozenset[str]) -> None:
        self.transcoder = transcoder
        self.free_form = free_form

    def encode(self, obj: Any) -> bytes:
        return self.transcoder.encode(obj)

    def decode(self, data: bytes) -> Any:
        # Two parses, both in C (no Python recursion, however deep the data is nested).
        text = data.decode("utf8")
        typed: dict[str, Any] = json.loads(text, object_hook=self.transcoder.lenient)
        hook = unescape if _ESCAPED_NAME in text else None
        plain: dict[str, Any] = json.loads(text, object_hook=hook)
        for name in self.free_form & plain.keys():
            typed[name] = plain[name]
        return typed


@functools.cache
def free_form_fields(topic: str) -> frozenset[str]:
    """The fields of a stored event's class annotated with `Any` or `object` (caller data)."""
    cls = resolve_topic(topic)
    if not (isinstance(cls, type) and issubclass(cls, FleetAggregate.Event)):
        return frozenset()  # snapshots: their state is the aggregate's, revived as usual
    hints = typing.get_type_hints(cls)
    return frozenset(name for name, hint in hints.items() if _is_free_form(hint))


def _is_free_form(hint: Any) -> bool:
    return hint is Any or hint is object or any(map(_is_free_form, typing.get_args(hint)))


class FleetMapper(Mapper[UUID]):
    """The stock mapper, reading events with free-form fields through a `FreeFormReader`."""

    transcoder: FleetTranscoder

    def __init__(self, transcoder: Transcoder, **options: Any) -> None:
        if not isinstance(transcoder, FleetTranscoder):
            raise TypeError("FleetMapper needs the FleetTranscoder")
        super().__init__(transcoder, **options)
        self._readers: dict[frozenset[str], Mapper[UUID]] = {}
        # By event class: its topic and class version (a class version looked up on an
        # event class that has none raises and catches an AttributeError; session 22).
        self._topics: dict[type, tuple[str, int]] = {}

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        """The stock mapper's StoredEvent for `domain_event`: the same topic, fields and
        state bytes (tests/unit/test_session20_save_path.py), with the topic looked up
        once per event class and the frozen dataclass made without its keyword
        `__init__` (`stored_event`; issue 11, session 20)."""
        cls = type(domain_event)
        known = self._topics.get(cls)
        if known is None:
            known = self._topics[cls] = (get_topic(cls), getattr(cls, "class_version", 1))
        topic, class_version = known
        event_state = dict(vars(domain_event))
        originator_id = event_state.pop("originator_id")
        originator_version = event_state.pop("originator_version")
        if class_version > 1:
            event_state["class_version"] = class_version
        state = self.transcoder.encode(event_state)
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return stored_event(originator_id, originator_version, topic, state)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        free = free_form_fields(stored_event.topic)
        if not free:
            return super().to_domain_event(stored_event)
        return self._reader(free).to_domain_event(stored_event)

    def _reader(self, free: frozenset[str]) -> Mapper[UUID]:
        reader = self._readers.get(free)
        if reader is None:
            reader = self._readers[free] = Mapper(
                FreeFormReader(self.transcoder, free),
                compressor=self.compressor,
                cipher=self.cipher,
            )
        return reader


# A frozen dataclass's `__init__` sets each field through `object.__setattr__` (a global
# look-up and a call per field) after binding keywords: filling the new instance's
# `__dict__` at once makes the same object (the same fields, in the same order) in about a
# third of the time, for the two made per saved event (issue 11, session 20).
_new = object.__new__


def stored_event(
    originator_id: UUID | str, originator_version: int, topic: str, state: bytes
) -> StoredEvent:
    """`StoredEvent(originator_id=..., originator_version=..., topic=..., state=...)`."""
    made = _new(StoredEvent)
    vars(made).update(
        {
            "originator_id": originator_id,
            "originator_version": originator_version,
            "topic": topic,
            "state": state,
        }
    )
    return made


def recording(event: Any, notification: Notification) -> Recording[Any]:
    """`Recording(event, notification)`, made as `stored_event` makes a StoredEvent (the
    frozen dataclass's fields at once; session 22)."""
    made = _new(Recording)
    vars(made).update({"domain_event": event, "notification": notification})
    return made


def notification_of(row: StoredEvent, notification_id: int) -> Notification:
    """`Notification(id=notification_id, ...)` with the fields of `row`."""
    if type(row) is not StoredEvent:  # a subclass may hold more than the four fields
        return Notification(
            originator_id=row.originator_id,
            originator_version=row.originator_version,
            topic=row.topic,
            state=row.state,
            id=notification_id,
        )
    made = _new(Notification)
    fields_of = vars(made)
    fields_of.update(vars(row))
    fields_of["id"] = notification_id
    return made
