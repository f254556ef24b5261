"""Idempotency keys and the content they guard: a fingerprint and its comparison.

Every key that makes a repeated request harmless (a feed's batch id, a batch id derived
from topic/partition/offsets, an alert id, the HTTP `Idempotency-Key`) is stored with the
fingerprint of the content it was first used with. A later use of the key is compared:

- same fingerprint: a redelivery. Answer with the first outcome and record nothing.
- other fingerprint: refused explicitly (`ContentMismatchError`, "batch id b1 was already
  received with different content"); the refusal is recorded or dead-lettered by the
  caller, never a silent success.
- no fingerprint stored (recorded before fingerprints were kept): `same_content` answers
  False and the caller applies its documented rule for old records.

A fingerprint is `"sha256:"` and 64 hex digits. One key source always uses one of the
two functions below, so fingerprints of one key are comparable:

- `content_fingerprint(value)`: of a JSON value, canonically encoded (texts in NFC,
  object keys sorted, no whitespace, UTF-8, non-ASCII as is). Equal JSON values give
  equal fingerprints whatever the key order and normal form; `1` and `1.0`, `"a"` and
  `["a"]` differ. For the HTTP layer: the parsed request body (with the method and path
  when one key may serve several).
- `bytes_fingerprint(values)`: of a sequence of raw messages exactly as received (bytes,
  or None for an empty message), each length-prefixed so no two sequences collide by
  concatenation. The Kafka feeds use it: no re-encoding, one pass over bytes.

An e2Open batch given as values is fingerprinted in version 2 ("sha256v2:", domain/
e2open_screen.py, session 19): equal only when its messages are (finer than version 1,
which counted an unfit message by its reason only); a batch id recorded with a version-1
fingerprint is compared in version 1.

All are one hash per batch or request, computed once before any retry, with no round
trip: the stored fingerprint comes back with the record the key already loads.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Callable, Iterable
from uuid import UUID

from domain.base import Cause, DomainError, FleetAggregate, Msg, natural_id
from domain.text import canonical

PREFIX = "sha256:"
# Version 2 of a batch's fingerprint from values (domain/e2open_screen.py, session 19): the
# same equality of content as `content_fingerprint`, another encoding before SHA-256.
V2_PREFIX = "sha256v2:"


class ContentMismatchError(DomainError):
    """An idempotency key came again with other content than it was first used with."""


def canonical_json(value: object, default: Callable[[object], object] | None = None) -> str:
    """A JSON value as canonical text: object keys sorted, no whitespace, non-ASCII as is.

    `default` encodes values JSON has no form for, as in `json.dumps`. Raises TypeError (a
    value that cannot be encoded), ValueError (NaN or infinity, an int of more than 4,300
    digits) or RecursionError (too deep, or a cycle: the encoder keeps no record of the
    containers it is in, a tenth of its time on an e2Open batch; the text is the same).
    """
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        check_circular=False,
        default=default,
    )


def text_fingerprint(text: str) -> str:
    """The fingerprint of canonical JSON text (lone surrogates hashed as they are)."""
    return PREFIX + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def content_fingerprint(value: object, default: Callable[[object], object] | None = None) -> str:
    """The fingerprint of a JSON value (see the module's contract); raises as canonical_json.

    Texts count in NFC (`nfc_json`): canonically equivalent values have one fingerprint.
    """
    return text_fingerprint(nfc_json(value, default))


def nfc_json(
    value: object, default: Callable[[object], object] | None = None, text: str | None = None
) -> str:
    """canonical_json of `value` with its texts in NFC (`text`: its canonical_json, if known).

    ASCII or NFC text (nearly all) is kept as encoded; otherwise the value is normalised
    and encoded again, so object keys sort in their NFC form. Raises as canonical_json.
    """
    text = canonical_json(value, default) if text is None else text
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return canonical_json(canonical(value), default)


def bytes_fingerprint(values: Iterable[bytes | None]) -> str:
    """The fingerprint of raw messages in order; None (an empty message) differs from b""."""
    digest = hashlib.sha256()
    for value in values:
        if value is None:
            digest.update(b"\xff")  # no 8-byte length starts with 0xff
        else:
            digest.update(len(value).to_bytes(8, "big"))
            digest.update(value)
    return PREFIX + digest.hexdigest()


def same_content(what: str, key: str, stored: str | None, presented: str) -> bool:
    """True when `presented` is the content first used with `key` (a redelivery).

    Raises ContentMismatchError naming `what` and `key` when the content differs; answers
    False when nothing was stored with the key (an old record), for the caller's own rule.
    """
    if stored is None:
        return False
    if stored != presented:
        raise ContentMismatchError(
            Msg("{what} {key} was already received with different content", what=what, key=key)
        )
    return True


class IdempotencyRecord(FleetAggregate):
    """The first accepted use of an HTTP `Idempotency-Key` (draft-ietf-httpapi-idempotency-key).

    Saved in the same transaction as the events of the command it guards, so a key is
    recorded if and only if its command was. `scope` is principal (with role and tenant),
    method, path and key; `fingerprint` the body's (`content_fingerprint`); `result` the
    command's return value as the application's transcoder writes it (JSON text, so a
    replay gets the same types back; in the store only, never published:
    `internal_fields`); `after` the store position before the command, from which its own
    position is found again for a replay. Events are
    permanent, so a key is kept for as long as the store (at least the draft's 24 h).
    """

    scope: str
    fingerprint: str
    result: str
    after: int

    @staticmethod
    def id_for(scope: str) -> UUID:
        """The record's id: derived from its scope (see `IdempotencyKey.scope`)."""
        return natural_id("idempotency-key", scope)

    class Recorded(FleetAggregate.Created):
        internal_fields = ("result",)

        scope: str
        fingerprint: str
        result: str
        after: int

        def apply(self, aggregate: IdempotencyRecord) -> None:
            aggregate.scope, aggregate.fingerprint = self.scope, self.fingerprint
            aggregate.result, aggregate.after = self.result, self.after

    @classmethod
    def record(
        cls, cause: Cause, scope: str, fingerprint: str, result: str, after: int
    ) -> IdempotencyRecord:
        """The key's first use, with the outcome every later use with the same body gets."""
        return cls._start(
            cls.Recorded,
            cause,
            cls.id_for(scope),
            scope=scope,
            fingerprint=fingerprint,
            result=result,
            after=after,
        )
