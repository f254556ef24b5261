"""Issue 8, kind 5: a feed message with a key twice in one object is refused, not guessed.

`{"serial": "PC1", "serial": "PC2"}` means PC1 to one JSON reader and PC2 to another
(Python keeps the last, others the first or refuse it); the consumer of the dead-letter
topic and the intake must not disagree on which PC a report was. Such a message is
Unreadable with a reason naming the key, and is dead-lettered like every unreadable one.
"""

from __future__ import annotations

import pytest

from domain.feed_bounds import read_message
from domain.intake import Unreadable


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"serial":"PC1","model":"X","serial":"PC2"}', "serial"),
        (b'{"serial":"PC1","extra":{"a":1,"a":2}}', "a"),
        (b'[{"k":1},{"k":2,"k":3}]', "k"),
    ],
)
def test_kind5_a_key_twice_in_one_object_is_unreadable_naming_it(raw: bytes, key: str) -> None:
    """Kind 5 (R-HLD-1): refused with its reason, never read one way of two."""
    read = read_message(raw)
    assert isinstance(read, Unreadable)
    assert f"key {key!r} twice" in read.reason


def test_kind5_the_same_key_in_two_objects_is_fine() -> None:
    """Kind 5: keys repeat across objects as they should."""
    assert read_message(b'[{"k":1},{"k":2}]') == [{"k": 1}, {"k": 2}]
