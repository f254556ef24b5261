"""Ids as view text without `UUID.__str__` (issue 11, session 21).

Views store ids as text, `str(uuid)`: uuid.py formats it in Python, a fifth of a rebuild's
main thread (session 20's profile). An aggregate's id comes back in many of its events (a
customer group's in each member it adds), so `id_text` remembers each id's text, keyed by
the id's integer (a dict lookup, not a Python method), and formats what it does not hold
as uuid.py does, without the `__str__` dispatch. The memory is bounded (`LIMIT` ids,
emptied whole when full, at most a few MB): at worst an id is formatted again. Threads
share it; each step is one dict operation, so a race only formats an id once more.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

LIMIT = 65_536  # ids remembered: far more groups than a rebuild's batch (10,000 events) names

_texts: dict[int, str] = {}


def id_text(value: Any) -> str:
    """`str(value)` for a UUID (8-4-4-4-12 lower-case hex), remembered or formatted;
    anything else, a UUID subclass included, through `str` itself."""
    if type(value) is not UUID:
        return str(value)
    number = value.int
    text = _texts.get(number)
    if text is None:
        text = formatted(number)
        remember(number, text)
    return text


def formatted(number: int) -> str:
    """`str(UUID(int=number))` for 0 <= number < 2**128, formatted as uuid.py does (not
    remembered: for ids met once)."""
    digits = f"{number:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def remember(number: int, text: str) -> None:
    """Keep `text` as the id `number`'s text: it must be what `str(UUID(int=number))`
    gives (the caller's promise: `id_text` passes `formatted(number)`)."""
    if len(_texts) >= LIMIT:
        _texts.clear()
    _texts[number] = text


def remembered() -> int:
    """How many ids are remembered now (at most `LIMIT`)."""
    return len(_texts)
