"""An e2Open batch given as values: bounded and fingerprinted by its reports' plain forms.

Issue 11, session 19. `feed_bounds.screened` bounds a batch and fingerprints it by one
canonical `json.dumps` of all its messages, with sorted keys: a sixth of the batch's
Python CPU, and every report is checked again for its plain form (`plain_form`) as it
lands. `screened_reports` takes the plain form of each report once, here, and keeps it
for the landing (`forms`); the fingerprint is made from the plain forms' pieces.

**Fingerprint, version 2** (`V2_PREFIX`, "sha256v2:" and 64 hex digits): SHA-256 of the
messages' pieces in order, joined by "\\x1e", UTF-8 (lone surrogates passed). A message's
piece is its plain form's piece (`plain_form`: seven fields joined by NUL) when its JSON
value is a plain report, else its canonical JSON in NFC (`nfc_json`, an Unreadable as
`{"unreadable": reason}`), which never holds a raw control character: so a piece holds
NUL exactly when it is plain, no piece holds "\\x1e", and the pieces of two batches are
equal only when their messages are. The JSON value decides, not the Python type: a
message that is not plain as given (a dict subclass, a `str` subclass, a text NFC turns
into ASCII) is encoded, read back and given the plain piece when that is plain. So two
batches have one version-2 fingerprint exactly when they have one version-1 fingerprint
(`values_fingerprint`): equal JSON values up to key order and NFC
(tests/unit/test_issue_11_e2open_fingerprint.py), except where version 1 was wrong
(session 19's attack, tests/unit/test_attack_s19_fingerprint.py): a message a bound made
an Unreadable counts by its own content (UNFIT), not by the reason (two messages with a
NUL in the model and other serials had one fingerprint), a given Unreadable by its reason
and serial (GIVEN), not as the object {"unreadable": reason}, and an object whose keys NFC
would merge by its exact JSON (EXACT). Version 2 is equal only for equal content.

**Old batches.** Batches recorded before keep their version-1 fingerprint ("sha256:");
`handlers.intake.Delivery.fingerprint_for` computes the version-1 fingerprint of a
delivery only when the batch id it comes under was recorded with one.

**Bounds.** Exactly as `screened` decides them for the whole batch: a plain report breaks
no bound (a flat object of printable ASCII texts), so only the other messages are
encoded, and what the plain ones add to the batch's text (their brackets, their
backslashes) is read from their pieces: each is the same in the raw texts as in their
JSON escapes. The messages kept are the same objects `screened` keeps.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import cast

from domain.feed_bounds import (
    MAX_DEPTH,
    Unreadable,
    _encodable,
    _risky,
    _unreadable_json,
    checked,
)
from domain.idempotency import V2_PREFIX, canonical_json, nfc_json
from domain.intake import PlainReport, plain_form
from domain.text import canonical

SEPARATOR = "\x1e"  # between two messages' pieces (no piece holds it)
# Session 19's attack (docs/decisions.md, "attack on session 19's ingest..."): pieces that
# start with a control character no plain piece (a letter or digit) or JSON text starts
# with, so a piece of one kind never equals a piece of another.
UNFIT = "\x03"  # a message a bound made an Unreadable: by its own content, not the reason
GIVEN = "\x05"  # an Unreadable given as it is (read from bytes elsewhere): reason and serial
EXACT = "\x06"  # a message NFC would merge two object keys of: its exact canonical JSON
OPAQUE = "\x04"  # an unfit message no JSON encoder takes (Python callers only): its reason


def screened_reports(
    messages: Sequence[object],
) -> tuple[list[object], str, list[PlainReport | None]]:
    """The messages kept (each unfit one an Unreadable, as `screened` makes them), the
    version-2 fingerprint, and each message's plain report (None when not plain)."""
    found = list(map(plain_form, messages))
    if None not in found:  # the usual batch: every report plain, so none breaks a bound
        plain = cast(list[tuple[PlainReport, str]], found)  # (walked, each would be kept)
        text = SEPARATOR.join([piece for _, piece in plain])
        return list(messages), _fingerprint(text), [form for form, _ in plain]
    rest = [m for m, f in zip(messages, found, strict=True) if f is None]
    plain_text = SEPARATOR.join(f[1] for f in found if f is not None)
    if _rest_fit(rest, plain_text):
        return list(messages), _mixed_fingerprint(messages, messages, found), _forms(found)
    return _walked(messages, found)


def _plain_fit(plain_text: str, surplus: int) -> bool:
    """Whether the plain pieces, with `surplus` brackets of the other messages, keep the
    batch within MAX_DEPTH and hold no risky escape."""
    brackets = plain_text.count("[") + plain_text.count("{")
    return brackets + surplus <= MAX_DEPTH and not _risky(plain_text)


def _rest_fit(rest: list[object], plain_text: str) -> bool:
    """`screened`'s `_fits` of the whole batch, the plain reports' share from their pieces:
    the whole text's brackets less its containers are the rest's (its own list included)
    plus the plain texts' brackets; its risky escapes are the rest's or the plain texts'."""
    try:
        text = canonical_json(rest, _unreadable_json)
    except (TypeError, ValueError, RecursionError):
        return False
    kinds = Counter(map(type, rest))
    containers = sum(n for t, n in kinds.items() if issubclass(t, dict | list | tuple | Unreadable))
    surplus = text.count("[") + text.count("{") - containers
    return _plain_fit(plain_text, surplus) and not _risky(text) and _encodable(text)


def _walked(
    messages: Sequence[object], found: list[tuple[PlainReport, str] | None]
) -> tuple[list[object], str, list[PlainReport | None]]:
    """As `screened` when the batch does not fit: each message walked (a plain one is
    kept as it is: `checked` finds nothing in it), each unfit one an Unreadable."""
    kept = [
        m if f is not None or isinstance(m, Unreadable) else checked(m)
        for m, f in zip(messages, found, strict=True)
    ]
    return kept, _mixed_fingerprint(messages, kept, found), _forms(found)


def _forms(found: list[tuple[PlainReport, str] | None]) -> list[PlainReport | None]:
    return [None if f is None else f[0] for f in found]


def _mixed_fingerprint(
    messages: Sequence[object],
    kept: Sequence[object],
    found: list[tuple[PlainReport, str] | None],
) -> str:
    """The version-2 fingerprint of a batch some messages of which are not plain as given
    (`messages` as given, `kept` as screened: an unfit message an Unreadable).

    An unfit message counts by its own content (UNFIT), not by the Unreadable's reason:
    two messages broken at the same place (a NUL in the model) with other serials are
    other content. A given Unreadable counts by its reason and serial (GIVEN), never as
    the object {"unreadable": reason}, which a sender may send."""
    pieces = []
    for given, message, form in zip(messages, kept, found, strict=True):
        if form is not None:
            pieces.append(form[1])
        elif isinstance(given, Unreadable):
            pieces.append(GIVEN + json.dumps([given.reason, given.serial], ensure_ascii=False))
        elif isinstance(message, Unreadable):
            pieces.append(_unfit_piece(given, message))
        else:
            pieces.append(_piece(message))
    return _fingerprint(SEPARATOR.join(pieces))


def _piece(message: object) -> str:
    """A message's piece by its JSON value: the plain piece when that value is a plain
    report, else its canonical JSON in NFC (EXACT and the JSON as given when NFC would
    merge two of its keys: {"K": 1, "\u212a": 2} is not {"K": 2})."""
    text = canonical_json(message, _unreadable_json)
    if not (text.isascii() or unicodedata.is_normalized("NFC", text)):
        if _merges_keys(message):
            return EXACT + text
        text = nfc_json(message, _unreadable_json, text)
    again = plain_form(json.loads(text))
    return text if again is None else again[1]


def _unfit_piece(message: object, unreadable: Unreadable) -> str:
    """The piece of a message a bound made `unreadable`: UNFIT and its canonical JSON as
    far as JSON has one (NaN and infinities by name, lone surrogates as they are), texts in
    NFC unless that merges keys; OPAQUE and the reason only for what no encoder takes
    (a non-JSON type, mixed key types, an int of over 4,300 digits, nesting past the
    interpreter's recursion limit: none of them reaches the intake from bytes or HTTP)."""
    try:
        text = _loose_json(message)
        if not (text.isascii() or unicodedata.is_normalized("NFC", text)):
            text = (EXACT + text) if _merges_keys(message) else _loose_json(canonical(message))
    except (TypeError, ValueError, RecursionError):
        return OPAQUE + json.dumps([unreadable.reason, unreadable.serial], ensure_ascii=False)
    return UNFIT + text


def _loose_json(value: object) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True
    )


def _merges_keys(value: object) -> bool:
    """Whether NFC makes two keys of one object in `value` equal (walked without recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            keys = list(item)
            if len({canonical(k) for k in keys}) < len(keys):
                return True
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _fingerprint(text: str) -> str:
    return V2_PREFIX + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
