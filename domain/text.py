"""Text that people type and feeds send: checked at the boundary, folded for comparison.

Two jobs, one place (issue 8, kinds 4 and 5; bounds and choices in docs/decisions.md):

- `checked` / `check_data` refuse what must never be recorded: C0/C1 control characters
  (NUL stops every PostgreSQL view), lone surrogates (not valid Unicode; PostgreSQL and
  UTF-8 refuse them), text longer than its kind allows, configuration data nested too
  deep or too large. Identifiers come back NFC-normalised; names and free text as given.
- `fold` is the one form in which texts are compared and searched (R-FAV-5): NFKC and
  Unicode case folding, so "Mu\u0308ller", "Müller", "MÜLLER" and full-width
  "\uff2d\u00fcller" are one name.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.base import DomainError, Msg


class TextError(DomainError):
    """A text argument was refused; the message names the field, the problem and the fix."""


@dataclass(frozen=True)
class TextKind:
    """What a field holds: its bound, whether line breaks belong in it, whether it is a key."""

    label: str
    max_length: int
    multiline: bool = False  # tab, line feed and carriage return allowed
    key: bool = False  # compared exactly after NFC; natural keys derive ids from it


KEY = TextKind("identifier", 256, key=True)  # 256 holds any e-mail address (Passport IDs)
NAME = TextKind("name", 200)  # the e2Open feed's own bound for model and distributor
FREE_TEXT = TextKind("free text", 4_000, multiline=True)
# Fields whose values are not identifiers; every other text field is a KEY.
FIELD_KINDS: dict[str, TextKind] = {
    **dict.fromkeys(
        ("customer_name", "name", "model", "distributor", "end_customer", "search"), NAME
    ),
    **dict.fromkeys(("reason", "resolution", "message", "summary"), FREE_TEXT),
}

MAX_DATA_DEPTH = 16  # objects and lists inside one another, the data itself counting 1
MAX_DATA_ITEMS = 5_000  # keys, values and list items at every level together
MAX_DATA_CHARS = 256_000  # characters of every key and string together (well under 1 MB)
# Text inside configuration data: free text; the total is bounded by MAX_DATA_CHARS.
DATA_TEXT = TextKind("text inside data", MAX_DATA_CHARS, multiline=True)

_BAD = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_BAD_IN_FREE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def kind_of(field: str) -> TextKind:
    """The kind of text a field of this name holds (identifiers unless listed)."""
    return FIELD_KINDS.get(field, KEY)


def checked(field: str, value: str, kind: TextKind | None = None) -> str:
    """The value, NFC-normalised if the field is a key; TextError if it may not be recorded."""
    kind = kind or FIELD_KINDS.get(field, KEY)  # kind_of's answer, without its call
    if len(value) > kind.max_length:
        raise TextError(
            Msg(
                "{field}: {length:,} characters, more than the {max_length:,} allowed "
                "for {kind}; shorten it.",
                field=field,
                length=len(value),
                max_length=kind.max_length,
                kind=WITH_ARTICLE[kind.label],
            )
        )
    if not value.isprintable():  # true for most text, and then nothing here is refused
        bad = (_BAD_IN_FREE_TEXT if kind.multiline else _BAD).search(value)
        if bad is not None:
            raise TextError(
                Msg(
                    "{field}: {problem}",
                    field=field,
                    problem=describe(bad.group(), bad.start(), kind),
                )
            )
        if kind.key:  # a lookalike key: zero-width, bidi, no-break space, separators
            raise TextError(Msg("{field}: {problem}", field=field, problem=_invisible(value)))
    return unicodedata.normalize("NFC", value) if kind.key else value


def describe(char: str, at: int, kind: TextKind) -> Msg:
    """Why `char` at position `at` may not be recorded in a text of `kind`, and what to do."""
    code = f"U+{ord(char):04X}"
    if 0xD800 <= ord(char) <= 0xDFFF:
        return Msg(
            "a lone surrogate ({code}) at position {at} is not valid Unicode; "
            "send the text as UTF-8.",
            code=code,
            at=at,
        )
    where = {"code": code, "at": at, "kind": WITH_ARTICLE[kind.label]}
    if kind.multiline:
        return (
            Msg(
                "a NUL character ({code}) at position {at}; remove it (only tab and line "
                "breaks are allowed in {kind}).",
                **where,
            )
            if char == "\x00"
            else Msg(
                "a control character ({code}) at position {at}; remove it (only tab and line "
                "breaks are allowed in {kind}).",
                **where,
            )
        )
    return (
        Msg(
            "a NUL character ({code}) at position {at}; remove it (none is allowed in {kind}).",
            **where,
        )
        if char == "\x00"
        else Msg(
            "a control character ({code}) at position {at}; remove it (none is allowed in {kind}).",
            **where,
        )
    )


def _invisible(key: str) -> Msg:
    """Why a key with a character no one sees (Unicode format, separator...) is refused."""
    at, char = next((i, c) for i, c in enumerate(key) if not c.isprintable())
    return Msg(
        "an invisible character ({code}) at position {at}; an identifier holds only "
        "characters a person can see: remove it.",
        code=f"U+{ord(char):04X}",
        at=at,
    )


# Each TextKind's label with its article (Msg: the portal translates the whole phrase).
WITH_ARTICLE = {
    "identifier": Msg("an identifier"),
    "name": Msg("a name"),
    "free text": Msg("a free text"),
    "text inside data": Msg("a text inside data"),
}


def _feed_text(field: str, value: str | None) -> str | None:
    """`checked` for a pydantic validator of a feed message: a refusal is a ValueError."""
    try:
        return None if value is None else checked(field, value)
    except TextError as error:
        raise ValueError(str(error)) from None


def feed_texts(message: object, fields: tuple[str, ...]) -> object:
    """A feed message's text fields checked, keys NFC; for a pydantic "before" validator.

    One call per message, and one C-level test per field for clean ASCII text, because
    feeds bring thousands of messages per batch. A refusal is a ValueError naming the field.
    """
    if not isinstance(message, dict):
        return message  # not an object: the model itself says what is wrong
    for field in fields:
        value = message.get(field)
        if isinstance(value, str) and not (value.isascii() and value.isprintable()):
            message = {**message, field: _feed_text(field, value)}
    return message


def fold(text: str) -> str:
    """The form texts are compared and searched in (R-FAV-5): NFKC, case-folded, NFKC again.

    Folding can leave a string that is no longer NFKC, so the result is normalised once
    more; fold(fold(x)) == fold(x). The dot above that folding leaves on an i ("İ" folds to
    i + U+0307) is dropped: "İSTANBUL" is found by "istanbul" (dotless U+0131 stays its own).
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    if "\u0307" in folded:  # rare: only then decompose, to find the dots that sit on an i
        folded = _undot_i(unicodedata.normalize("NFD", folded))
    return unicodedata.normalize("NFKC", folded)


def _undot_i(decomposed: str) -> str:
    """Drop each U+0307 whose base letter is i, whatever marks stand between (in canonical
    order a mark below, such as U+0316, comes before the dot above)."""
    kept, base = [], ""
    for char in decomposed:
        if char == "\u0307" and base == "i":
            continue
        if not unicodedata.combining(char):
            base = char
        kept.append(char)
    return "".join(kept)


def canonical(value: object) -> object:
    """`value` with every text in it (lists, tuples, dict keys and values) in NFC.

    Canonically equivalent text is the same text, so content guarded by a key (a report,
    an alert, a batch) is compared in this form (issue 8, kinds 3 and 4); case and width
    still differ. Other values come back as they are.
    """
    if isinstance(value, str):
        return value if value.isascii() else unicodedata.normalize("NFC", value)
    if isinstance(value, list | tuple):
        return type(value)(canonical(v) for v in value)
    if isinstance(value, dict):
        return {canonical(k): canonical(v) for k, v in value.items()}
    return value


def serial_form(serial: str) -> str:
    """A serial number as serials are compared: upper-case NFKC without surrounding blanks.

    Full-width letters and digits become their ASCII selves; NFKC runs again after
    upper-casing, which can leave text that is not NFKC."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", serial.strip()).upper())


def printable(text: str, limit: int) -> str:
    """Text from a rejected message made safe to record: controls escaped, cut to `limit`."""
    escaped = _BAD_IN_FREE_TEXT.sub(lambda m: m.group().encode("unicode_escape").decode(), text)
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


def check_data(field: str, data: Mapping[str, Any]) -> None:
    """Refuse configuration data that is not plain JSON or exceeds the bounds above."""
    items, chars = 0, 0
    stack: list[tuple[str, object, int]] = [(field, data, 1)]
    while stack:
        path, value, depth = stack.pop()
        items += 1
        chars += _check_value(path, value, depth, stack)
        if items > MAX_DATA_ITEMS:
            raise TextError(
                Msg(
                    "{field}: more than {most:,} values; send less data.",
                    field=field,
                    most=MAX_DATA_ITEMS,
                )
            )
        if chars > MAX_DATA_CHARS:
            raise TextError(
                Msg(
                    "{field}: more than {most:,} characters of text; send less data.",
                    field=field,
                    most=MAX_DATA_CHARS,
                )
            )


def _check_value(path: str, value: object, depth: int, stack: list[tuple[str, object, int]]) -> int:
    """Check one value; push what it contains; return its characters of text."""
    if isinstance(value, str):
        return len(checked(path, value, DATA_TEXT))
    if isinstance(value, Mapping | list):
        if depth > MAX_DATA_DEPTH:
            raise TextError(
                Msg(
                    "{path}: nested more than {most} levels deep; flatten the data.",
                    path=path,
                    most=MAX_DATA_DEPTH,
                )
            )
        return _push_children(path, value, depth, stack)
    if isinstance(value, float) and not math.isfinite(value):
        raise TextError(
            Msg(
                "{path}: {value} is not a JSON number; send a finite number.",
                path=path,
                value=value,
            )
        )
    if value is None or isinstance(value, bool | int | float):
        return 0
    raise TextError(
        Msg(
            "{path}: a {type_name} is not JSON data; send text, numbers, true/false, "
            "null, lists or objects.",
            path=path,
            type_name=type(value).__name__,
        )
    )


def _push_children(
    path: str,
    value: Mapping[Any, Any] | list[Any],
    depth: int,
    stack: list[tuple[str, object, int]],
) -> int:
    if isinstance(value, list):
        stack.extend((f"{path}[{i}]", item, depth + 1) for i, item in enumerate(value))
        return 0
    chars = 0
    for key, item in value.items():
        if not isinstance(key, str):
            raise TextError(
                Msg(
                    "{path}: key {key!r} is not text; object keys are text in JSON.",
                    path=path,
                    key=key,
                )
            )
        chars += len(checked(f"{path} key", key, DATA_TEXT))
        stack.append((f"{path}.{key[:40]}", item, depth + 1))
    return chars


def check_storable(fields: Mapping[str, object]) -> None:
    """A backstop before recording: no event holds text the stores cannot keep or read back.

    Only characters are checked here (NUL and other controls, lone surrogates), in every
    string at any depth; bounds per field are the command boundary's job (`checked`).
    Runs for every event saved, so clean flat text passes on one C-level test per field.
    """
    for value in fields.values():
        if isinstance(value, str):
            if value.isprintable():
                continue
        elif type(value) not in _CONTAINERS:
            continue
        _find_unstorable([(str(k), v) for k, v in fields.items()])
        return


_CONTAINERS = (list, tuple, dict)


def _clean_texts(values: list[object] | tuple[object, ...]) -> bool:
    """Whether `values` are all text with no bad character: one C-level search of them
    joined by a blank (never bad itself; the class matches single characters), for the
    100,000 serials of an e2Open batch's event. False means: walk them one by one."""
    try:
        joined = " ".join(values)  # type: ignore[arg-type]  # TypeError unless all text
    except TypeError:
        return False
    return _BAD_IN_FREE_TEXT.search(joined) is None


def _find_unstorable(stack: list[tuple[str, object]]) -> None:
    """Walk every string at any depth (without recursion) and refuse the first bad one."""
    while stack:
        name, value = stack.pop()
        if isinstance(value, str):
            bad = _BAD_IN_FREE_TEXT.search(value)
            if bad is not None:
                raise TextError(
                    Msg(
                        "{name}: {problem}",
                        name=name,
                        problem=describe(bad.group(), bad.start(), FREE_TEXT),
                    )
                )
        elif isinstance(value, Mapping):
            stack.extend((name, key) for key in value)
            stack.extend((f"{name}.{key}"[:80], item) for key, item in value.items())
        elif isinstance(value, list | tuple) and not _clean_texts(value):
            stack.extend((name, item) for item in value)
