"""What the inbound feeds accept: the bounds, in one place, and the checks applying them.

A feed message is input the service did not write. Each one is read defensively: one
that breaks a bound becomes an `Unreadable` with its reason, is kept as rejected (and
dead-lettered when it came from Kafka) and never stops the messages behind it. The text
fields themselves are bounded by the message models (`E2OpenReport`, `AlertMessage`).
docs/operations.md ("Feed bounds") lists these numbers for senders.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from domain.idempotency import canonical_json, nfc_json, text_fingerprint
from domain.text import FREE_TEXT, describe, printable

MAX_MESSAGE_BYTES = 65_536  # one report is about 250 bytes, one alert under 2.5 KB
MAX_DEPTH = 16  # levels of arrays and objects; reports and alerts are flat objects (1)
POLL_RECORDS = 5_000  # the feed consumers' max_poll_records: one transaction per poll
# An intake command (a feed's poll, or a whole e2Open delivery handed over directly) takes
# at most this many messages in its one transaction; its event stays a few MB at most.
MAX_BATCH_MESSAGES = 100_000
MAX_REASON_CHARS = 500  # a rejection's reason as stored and sent in the dead letter's header
MAX_KEPT_SERIAL_CHARS = 64  # the serial kept with a rejection

# Text no database column or UTF-8 encoder takes (NUL, lone surrogates), and C0 controls.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
# Escapes in JSON text that may decode to unsafe text. Searched only in text holding a
# backslash; a hit only means "look closer" (an emoji's surrogate pair also hits): the
# exact walk decides.
_RISKY_ESCAPE = re.compile(r"\\u00[01][0-9a-fA-F]|\\[bf]|\\u[dD][89a-fA-F]")
MAX_INT = 2**63 - 1  # numbers beyond a signed 64-bit integer are refused


@dataclass(frozen=True)
class Unreadable:
    """A feed message that could not even be read; it is rejected with this reason.

    `serial` is the message's serial when it was a readable text, kept for the rejection.
    """

    reason: str
    serial: str | None = None


def read_message(value: bytes | None) -> object:
    """A raw feed message as its JSON value, or an Unreadable naming what it broke.

    Refused: empty, over MAX_MESSAGE_BYTES, not UTF-8, not JSON (NaN, Infinity and numbers
    beyond 64 bits included), nested deeper than MAX_DEPTH, text with a NUL, a control
    character or a lone surrogate. Never raises.
    """
    if not value:
        return Unreadable("empty message")
    if len(value) > MAX_MESSAGE_BYTES:
        return Unreadable(
            f"message of {len(value):,} bytes exceeds the limit of {MAX_MESSAGE_BYTES:,} bytes"
        )
    decoded = _decoded(value)
    if isinstance(decoded, Unreadable):
        return decoded
    text, parsed = decoded
    if text.count("[") + text.count("{") > MAX_DEPTH or _risky(text):
        return checked(parsed)
    return parsed


def _risky(text: str) -> bool:
    """Whether JSON text may hold an escape of unsafe text (C-speed scans only)."""
    return "\\" in text and _RISKY_ESCAPE.search(text) is not None


def _decoded(value: bytes) -> tuple[str, object] | Unreadable:
    """The message's text and its JSON value, or why it has none."""
    try:
        text = value.decode("utf-8")  # strict: refuses encoded surrogates too
        return text, _DECODER.decode(text)
    except RecursionError:
        return Unreadable(f"nested deeper than {MAX_DEPTH} levels")
    except UnicodeDecodeError as error:
        return Unreadable(f"not UTF-8: {error.reason} at byte {error.start}")
    except (OutOfRangeError, DuplicateKeyError) as error:
        return Unreadable(printable(str(error), MAX_REASON_CHARS))
    except ValueError as error:  # JSONDecodeError, NaN, numbers of too many digits
        return Unreadable(printable(f"not JSON: {error}", MAX_REASON_CHARS))


class OutOfRangeError(ValueError):
    """A JSON number beyond the feed's bounds."""


class DuplicateKeyError(ValueError):
    """One object names a key twice: JSON readers disagree on which value it has."""


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object; a key twice is refused (Python would keep the last silently)."""
    found = dict(pairs)
    if len(found) != len(pairs):
        raise DuplicateKeyError(f"key {_first_repeated(pairs)[:64]!r} twice in one object")
    return found


def _first_repeated(pairs: list[tuple[str, object]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return ""


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _int(digits: str) -> int:
    """A JSON integer within 64 bits (called only for integers, so free for text fields)."""
    number = int(digits) if len(digits) <= 20 else MAX_INT + 1
    if not -MAX_INT <= number <= MAX_INT:
        raise OutOfRangeError("a number is out of range (beyond 64 bits)")
    return number


def _float(digits: str) -> float:
    number = float(digits)
    if not math.isfinite(number):
        raise OutOfRangeError("a number is out of range (infinite)")
    return number


# One decoder: json.loads with an argument would build a new one per message.
_DECODER = json.JSONDecoder(
    parse_constant=_no_constant, parse_int=_int, parse_float=_float, object_pairs_hook=_object
)


def strict_json(text: str | bytes) -> object:
    """The JSON value of `text` as the feeds read it: a key twice in one object
    (DuplicateKeyError), NaN/Infinity or a number beyond 64 bits (ValueError) refused."""
    return _DECODER.decode(text.decode("utf-8") if isinstance(text, bytes) else text)


def checked(value: object) -> object:
    """`value` when it is a JSON value within the bounds, else an Unreadable saying why."""
    fault = _fault(value)
    if fault is None:
        return value
    serial = value.get("serial") if isinstance(value, dict) else None
    kept = printable(serial, MAX_KEPT_SERIAL_CHARS) if isinstance(serial, str) else None
    return Unreadable(fault, kept)


def _fault(value: object) -> str | None:
    """What makes `value` unfit and where (a dotted path), walking it without recursion."""
    stack: list[tuple[object, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth >= MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
            if isinstance(item, dict):
                if not all(isinstance(key, str) for key in item):
                    return _at(path, "an object key is not text")
                stack.extend((key, depth, _at(path, "(key)")) for key in item)
                pairs = [(_at(path, printable(str(k), 40)), v) for k, v in item.items()]
            else:
                pairs = [(_at(path, str(n)), v) for n, v in enumerate(item)]
            stack.extend((inner, depth + 1, where) for where, inner in pairs)
        elif (fault := _scalar_fault(item)) is not None:
            return _at(path, fault, ": ")
    return None


def _at(path: str, rest: str, sep: str = ".") -> str:
    return f"{path}{sep}{rest}" if path else rest


def _scalar_fault(item: object) -> str | None:
    if isinstance(item, str):
        bad = _UNSAFE.search(item)
        return None if bad is None else describe(bad.group(), bad.start(), FREE_TEXT)
    if isinstance(item, float) and not math.isfinite(item):
        return "a number is out of range (NaN or infinite)"
    if isinstance(item, int) and not -MAX_INT <= item <= MAX_INT:
        return "a number is out of range (beyond 64 bits)"
    if item is None or isinstance(item, bool | int | float):
        return None
    return f"a {type(item).__name__} is not a JSON value"


def screened(messages: Sequence[object]) -> tuple[list[object], str]:
    """Messages given as values (not bytes): each unfit one an Unreadable, and the fingerprint.

    One canonical encoding serves both the check and the fingerprint; only when it fails
    or looks risky is each message walked. Unreadable messages stay as they are.
    """
    # Counted per type (one C loop over 100,000 reports; the types are few).
    kinds = Counter(map(type, messages))
    containers = sum(n for t, n in kinds.items() if issubclass(t, dict | list | tuple | Unreadable))
    try:
        text = canonical_json(messages, _unreadable_json)
    except (TypeError, ValueError, RecursionError):
        text = None
    if text is not None and _fits(text, containers):
        return list(messages), text_fingerprint(nfc_json(messages, _unreadable_json, text))
    kept = [m if isinstance(m, Unreadable) else checked(m) for m in messages]
    return kept, text_fingerprint(nfc_json(kept, _unreadable_json))


def values_fingerprint(kept: Sequence[object]) -> str:
    """The version-1 fingerprint `screened` gives messages it kept (Unreadables included):
    what a batch received from values before session 19 was recorded with."""
    return text_fingerprint(nfc_json(kept, _unreadable_json))


def _fits(text: str, containers: int) -> bool:
    """Canonical JSON of a batch that no message can break a bound in.

    Each container message has at least one bracket; the surplus over one each (the outer
    list's included) bounds the deepest message. Brackets in text only make it cautious.
    """
    shallow = text.count("[") + text.count("{") - containers <= MAX_DEPTH
    return shallow and not _risky(text) and _encodable(text)


def _encodable(text: str) -> bool:
    """No lone surrogate (canonical JSON keeps them raw; strict UTF-8 refuses them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unreadable_json(value: object) -> object:
    if isinstance(value, Unreadable):
        return {"unreadable": value.reason}
    raise TypeError(f"a {type(value).__name__} is not a JSON value")
