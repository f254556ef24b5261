"""What every aggregate shares: the cause of a change, natural-key ids, domain errors."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Self
from uuid import UUID, SafeUUID

from eventsourcing.domain import Aggregate, BaseAggregate, CanMutateAggregate, DomainEvent

# Fixed namespace: ids derived from natural keys must never change between releases.
NAMESPACE = UUID("6f1f3c1e-4b7a-5d2e-9a51-0c8e2f4b7d10")


@lru_cache(maxsize=65_536)  # an e2Open batch computes a partner's id per report
def natural_id(kind: str, *key: str) -> UUID:
    """The stable id of the aggregate of `kind` whose natural key is `key`: `uuid5` of
    NAMESPACE and "kind:key..." (`_uuid5`, the same value built with less work).

    Keys are NFC-normalised (the identity on ASCII, so ids of stored histories stay), and
    never case-folded: "LOC-1" and "loc-1" were always two partners (docs/decisions.md).
    """
    return _uuid5(":".join((kind, *(unicodedata.normalize("NFC", k) for k in key))))


def fresh_natural_id(kind: str, key: str) -> UUID:
    """`natural_id(kind, key)` without its cache, for keys met once (an e2Open batch's new
    serials: 100,000 of them would only churn the cache)."""
    return _uuid5(f"{kind}:{key if key.isascii() else unicodedata.normalize('NFC', key)}")


_NAMESPACE_BYTES = NAMESPACE.bytes
_VERSION_MASK = ~(0xF000 << 64) & ~(0xC000 << 48)  # clears the version and variant bits
_VERSION_5 = (5 << 76) | (0x8000 << 48)  # version 5, RFC 4122 variant
# UUID's slots, set directly (UUID.__setattr__ refuses; object.__setattr__ looks them up
# by name each time).
_set_int = vars(UUID)["int"].__set__
_set_is_safe = vars(UUID)["is_safe"].__set__
_SAFE_UNKNOWN = SafeUUID.unknown


def _uuid5(
    name: str,
    _sha1: Any = hashlib.sha1,
    _from_bytes: Any = int.from_bytes,
    _new: Any = object.__new__,
) -> UUID:
    """`uuid.uuid5(NAMESPACE, name)` without `UUID.__init__`'s argument checks, in a
    fifth of its time (issue 11: an e2Open batch derives 100,000 device ids; the defaults
    are bound once, as locals); tests/unit/test_issue_11_landing.py and
    tests/unit/test_issue_11_fewer_steps.py compare the two.

    Never raises for a str: text that is not valid Unicode (a lone surrogate, as a JSON
    escape "\\ud800" in a feed message can give) is encoded with "surrogatepass", so a
    batch's prefetch over its raw reports names an id no valid text has and each such
    report is rejected later with its own reason (session 18). Valid text encodes as
    before (the same bytes, so every stored id stays); the fallback costs nothing until
    it is needed.
    """
    try:  # the common path as before, in one expression (a local costs 1.5 %, measured)
        digest = _sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()
    except UnicodeEncodeError:  # no valid text: lone surrogates (ED A0..BF never UTF-8)
        passed = name.encode("utf-8", "surrogatepass")
        digest = _sha1(_NAMESPACE_BYTES + passed, usedforsecurity=False).digest()
    made: UUID = _new(UUID)
    _set_int(made, _from_bytes(digest[:16]) & _VERSION_MASK | _VERSION_5)
    _set_is_safe(made, _SAFE_UNKNOWN)
    return made


@dataclass(frozen=True)
class Cause:
    """Who asked for a change and under which correlation id; recorded on every event."""

    principal: str
    correlation_id: str


class Msg(str):
    """A refusal's message that can be translated: the English text is `template` filled
    with `params` (str.format fields); a UI looks the template up in its catalog and fills
    it the same way (infra/web/i18n.py). `Msg` is the gettext keyword Babel extracts.

        raise PartnerError(Msg("Partner {location_id} is not certified.", location_id=loc))

    A parameter may itself be a `Msg` (a part of a sentence, such as `domain.text.describe`'s
    reason); the UI translates it the same way before filling it in. Keep the template a
    string literal (tests/unit/test_refusal_messages.py) so that Babel can extract it.
    """

    template: str
    params: dict[str, object]

    def __new__(cls, template: str, **params: object) -> Msg:
        made = super().__new__(cls, template.format(**params) if params else template)
        made.template = template
        made.params = params
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        return (_msg, (self.template, self.params))


def _msg(template: str, params: dict[str, object]) -> Msg:
    return Msg(template, **params)


class DomainError(Exception):
    """A command was refused; the message says why and what a person can do about it.

    `rule`: the ID of the DOMAIN.md rule that refused ("R-FAV-2"; domain/rules.py lists
    them), or None for a refusal no rule makes (a text check, something not found, a
    malformed or repeated request). `extensions`: what the refusal says as data besides its
    message (JSON values by name, e.g. `reasons` and `admins` of a refused deletion); the
    HTTP layer adds them to the problem details.
    """

    rule: str | None
    extensions: dict[str, object]

    def __init__(
        self, *args: object, rule: str | None = None, extensions: dict[str, object] | None = None
    ) -> None:
        super().__init__(*args)
        self.rule = rule
        self.extensions = dict(extensions or {})


class NotFoundError(DomainError):
    """The command names something that does not exist."""


class NotAllowedError(DomainError):
    """The principal may not do this."""


class FleetAggregate(Aggregate):
    """Base of partnerfleet's aggregates: every event carries principal and correlation id."""

    class Event(Aggregate.Event):
        # Fields kept in the store but never published (secrets' verifiers): the Kafka relay
        # and the event schemas leave them out. A tuple of field names, set per event class.
        internal_fields: ClassVar[tuple[str, ...]] = ()
        # The library's default, said here: the mapper asks every event class for its
        # class version when it stores or reads an event, and a class without one raises
        # and catches an AttributeError for each (issue 11, session 22). An event class
        # that upcasts sets its own, as before.
        class_version: ClassVar[int] = 1

        principal: str
        correlation_id: str

    class Created(Event, Aggregate.Created):
        pass

    @classmethod
    def _start(
        cls, event_class: type[FleetAggregate.Created], cause: Cause, id: UUID, **fields: Any
    ) -> Self:
        return cls._create(
            event_class,
            id=id,
            principal=cause.principal,
            correlation_id=cause.correlation_id,
            **fields,
        )

    def _record(self, event_class: type[FleetAggregate.Event], cause: Cause, **fields: Any) -> None:
        """`trigger_event(event_class, principal=..., correlation_id=..., **fields)`, the
        event built directly where that gives the very same event (`_plain_fields`):
        its state set in the dataclass's field order at once, then applied as `mutate`
        applies it (a third of the library's steps per event: its keyword copies, its
        TOPIC look-up, the frozen `__init__`'s one `object.__setattr__` per field, the
        id and version checks of an event made for this aggregate; issue 11, session 20).
        Any other case goes the library's way, with its errors."""
        plain = _PLAIN_EVENTS.get(event_class)
        if plain is None:
            plain = _PLAIN_EVENTS[event_class] = _plain_fields(event_class, type(self))
        own, made_for = plain
        originator_id = self._id
        if made_for is not type(self) or type(originator_id) is not UUID:
            self.trigger_event(  # (an id that is no UUID: DomainEvent refuses it there)
                event_class,
                principal=cause.principal,
                correlation_id=cause.correlation_id,
                **fields,
            )
            return
        version = self._version + 1
        timestamp = event_class.create_timestamp()
        state = {
            "originator_id": originator_id,
            "originator_version": version,
            "timestamp": timestamp,
            "principal": cause.principal,
            "correlation_id": cause.correlation_id,
        }
        if tuple(fields) == own:  # given in the fields' order, as the callers write them
            state.update(fields)
        elif len(fields) == len(own) and fields.keys() == set(own):
            for name in own:
                state[name] = fields[name]
        else:  # a field missing or unknown (or one of the five above): the library says so
            self.trigger_event(
                event_class,
                principal=cause.principal,
                correlation_id=cause.correlation_id,
                **fields,
            )
            return
        event: Any = _new_object(event_class)
        _set_attribute(event, "__dict__", state)
        event.apply(self)  # as CanMutateAggregate.mutate: apply, then version and time
        self._version = version
        self._modified_on = timestamp
        self._pending_events.append(event)


_new_object = object.__new__
_set_attribute = object.__setattr__
# The common fields of FleetAggregate.Event, first in every event's field order.
_COMMON_FIELDS = ("originator_id", "originator_version", "timestamp", "principal", "correlation_id")
# By event class: its own field names in order, and the aggregate class for which it is
# built directly (`_record`); None there: the library builds it.
_PLAIN_EVENTS: dict[type[Any], tuple[tuple[str, ...], type[Any] | None]] = {}


def _plain_fields(
    event_class: type[Any], aggregate_class: type[Any]
) -> tuple[tuple[str, ...], type[Any] | None]:
    """`(own fields, aggregate_class)` when `_record` may build `event_class` directly for
    aggregates of exactly `aggregate_class`; `(own fields, None)` otherwise. Directly means
    the same event: the aggregate class uses the library's `trigger_event`, `id`,
    `version`, `modified_on` and `pending_events` (no TOPIC), the event the library's
    `mutate` and `DomainEvent.__post_init__`, and its `__init__` does nothing but set each
    field: checked once by making a probe both ways and comparing the two states, key
    order included (a converting `__init__` or an `InitVar` would differ)."""
    if not dataclasses.is_dataclass(event_class):
        return (), None
    names = tuple(f.name for f in dataclasses.fields(event_class))
    own = names[len(_COMMON_FIELDS) :]
    if names[: len(_COMMON_FIELDS)] != _COMMON_FIELDS:
        return own, None
    aggregate_attributes = ("trigger_event", "id", "version", "modified_on", "pending_events")
    if getattr(aggregate_class, "TOPIC", None) or any(
        inspect.getattr_static(aggregate_class, name) is not vars(BaseAggregate)[name]
        for name in aggregate_attributes
    ):
        return own, None
    made_as: Any = event_class  # (mypy narrowed it to a dataclass above)
    if (
        made_as.mutate is not CanMutateAggregate.mutate
        or made_as.__post_init__ is not DomainEvent.__post_init__
    ):
        return own, None
    probe: dict[str, Any] = {name: object() for name in names}
    probe["originator_id"] = NAMESPACE
    try:
        made = event_class(**probe)
    except Exception:
        return own, None
    direct = _new_object(event_class)
    _set_attribute(direct, "__dict__", dict(probe))
    same = list(vars(made).items()) == list(vars(direct).items())
    return own, (aggregate_class if same else None)
