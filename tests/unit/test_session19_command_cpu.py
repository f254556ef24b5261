"""Issue 11, session 19: the command path's CPU sweep keeps what it skips observable.

Arguments of types that hold no text pass the checks unchanged, texts are still checked.
"""

from __future__ import annotations

import uuid

import pytest

from domain.text import TextError
from handlers.arguments import checked_argument


def test_values_holding_no_text_pass_as_they_are_and_texts_are_still_checked() -> None:
    for value in (uuid.uuid4(), 7, True, 1.5, None):
        assert checked_argument("group_id", value) is value
    with pytest.raises(TextError):
        checked_argument("name", "bad\x00name")
    with pytest.raises(TextError):
        checked_argument("serials", [uuid.uuid4(), "bad\x00serial"])
