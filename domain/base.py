"""What every aggregate shares: the cause of a change, natural-key ids, domain errors."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Self
from uuid import UUID, SafeUUID

from eventsourcing.domain import Aggregate

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
        self.trigger_event(
            event_class,
            principal=cause.principal,
            correlation_id=cause.correlation_id,
            **fields,
        )
