"""A batch of stored events decoded with one JSON parse (issue 11, session 16).

The mapper decodes one stored event at a time: a `json.loads` (two regular-expression
matches and three Python calls around the C scanner), the topic resolved, the id convertor
looked up, an upcasting check, then the object. A view's batch holds thousands of small
states, so `BatchDecoder` joins them into one text and calls the transcoder's own C scanner
once per state where it stands (the same object hook: markers such as datetimes read back
as the mapper reads them; a state must end where its text ends), and does the rest with
what it keeps per topic. The events are the mapper's: same class, same
`__dict__` (`originator_id` through the library's convertor, `class_version` popped and the
class's `upcast_vN_vN+1` methods applied in order).

It steps aside for what it cannot read the same way: every event when the mapper has a
compressor or a cipher or another transcoder, events of classes with free-form fields
(`FreeFormReader` parses those twice), and a whole batch in which a state is not exactly
one JSON object (or not UTF-8): those go
through `mapper.to_domain_event` one by one, which raises the mapper's own error for a
state it cannot read, at that event.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, cast

from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent, find_id_convertor
from eventsourcing.utils import resolve_topic

from handlers.transcoding import free_form_fields

# (notification id, originator id, originator version, topic, state) as the store holds it
Row = Sequence[Any]
Decoded = list[tuple[int, Any]]


class BatchDecoder:
    """`decode(rows)` → `[(notification id, domain event)]`, equal to
    `mapper.to_domain_event` of each row's StoredEvent, in the rows' order."""

    def __init__(self, mapper: Mapper[Any]) -> None:
        self.mapper = mapper
        transcoder = mapper.transcoder
        plain = mapper.cipher is None and mapper.compressor is None
        # the C scanner of the transcoder's decoder: same object hook, one call per state
        self._scan: Any = None
        if plain and isinstance(transcoder, JSONTranscoder):
            self._scan = getattr(transcoder.decoder, "scan_once", None)  # not in typeshed
        self._classes: dict[tuple[str, type[Any]], tuple[type[Any], int, Any] | None] = {}

    def decode(self, rows: Sequence[Row]) -> Decoded:
        """The rows' events in order; the mapper's errors for a state it cannot read."""
        if self._scan is None or not rows:
            return self.one_by_one(rows)
        kinds = [self._kind(row) for row in rows]
        try:
            stored = [row[4] for row, kind in zip(rows, kinds, strict=True) if kind]
            states = _states(self._scan, stored)
        except Exception:  # any state the mapper would refuse: it says why, at its event
            return self.one_by_one(rows)
        decoded: Decoded = []
        found = iter(states)
        for row, kind in zip(rows, kinds, strict=True):
            if kind is None:
                decoded.append(self.one_by_one([row])[0])
            else:
                decoded.append((row[0], _event(kind, next(found), row[1], row[2])))
        return decoded

    def one_by_one(self, rows: Sequence[Row]) -> Decoded:
        """The mapper's own decoding, row by row."""
        to_event = self.mapper.to_domain_event
        return [(row[0], to_event(StoredEvent(row[1], row[2], row[3], row[4]))) for row in rows]

    def _kind(self, row: Row) -> tuple[type[Any], int, Any] | None:
        """(class, class version, id convertor) of a row's topic; None: the mapper decodes it."""
        key = (row[3], type(row[1]))
        if key not in self._classes:
            topic = row[3]
            if free_form_fields(topic):
                self._classes[key] = None
            else:
                cls = resolve_topic(topic)
                convert = find_id_convertor(cls, cast(Hashable, key[1]))
                self._classes[key] = (cls, getattr(cls, "class_version", 1), convert)
        return self._classes[key]


def _states(scan: Any, stored: list[bytes]) -> list[dict[str, Any]]:
    """Each state parsed where it stands in one joined text: the scanner must end exactly
    at the state's end and find one object (ValueError otherwise), so no state can run
    into its neighbour."""
    texts = [state.decode("utf8") for state in stored]
    joined = "".join(texts)
    states: list[dict[str, Any]] = []
    start = 0
    for text in texts:
        state, end = scan(joined, start)
        start += len(text)
        if end != start or type(state) is not dict:
            raise ValueError("not one JSON object")
        states.append(state)
    return states


def _event(kind: tuple[type[Any], int, Any], state: dict[str, Any], oid: Any, version: int) -> Any:
    """What `Mapper.to_domain_event` makes of a decoded state (eventsourcing 9)."""
    cls, class_version, convert = kind
    state["originator_id"] = convert(oid)
    state["originator_version"] = version
    from_version = state.pop("class_version", 1)
    while from_version < class_version:
        getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
        from_version += 1
    event = object.__new__(cls)
    object.__setattr__(event, "__dict__", state)
    return event


def batch_decoder(mapper: Mapper[Any]) -> Callable[[Sequence[Row]], Decoded]:
    """`BatchDecoder(mapper).decode`."""
    return BatchDecoder(mapper).decode
