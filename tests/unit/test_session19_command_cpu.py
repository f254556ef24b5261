"""Issue 11, session 19: the command path's CPU sweep keeps what it skips observable.

A command's own log lines are neither made nor bound when the configured structlog
level drops info; any other configuration logs them as before, read afresh per command.
Arguments of types that hold no text pass the checks unchanged, texts are still checked.
An object's state copied by `private_copy` from a C-level copy of its `__dict__` keeps the
sharing of `_items`' copy and shares nothing mutable with the original.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import MutableMapping
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from domain.text import TextError
from handlers import base
from handlers.arguments import checked_argument
from handlers.private_copy import private_copy
from tests.actors import operator
from tests.conftest import structlog_config_restored
from tests.scenarios import in_memory_fleet


def _command_lines(level: int, location: str) -> list[MutableMapping[str, Any]]:
    fleet = in_memory_fleet()
    with structlog_config_restored():
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
        with capture_logs() as logs:
            fleet.register_partner(operator("hp-ops", "corr-q"), location, "Acme")
    return [entry for entry in logs if entry["event"] == "command"]


def test_a_level_above_info_makes_no_command_line_and_the_command_is_accepted() -> None:
    with structlog_config_restored():
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        assert base._commands_quiet()
    assert _command_lines(logging.WARNING, "LOC-Q1") == []


def test_info_configured_after_warning_logs_the_command_line_again() -> None:
    """The level is read per command: a later configuration is honoured at once."""
    assert _command_lines(logging.WARNING, "LOC-Q2") == []
    [line] = _command_lines(logging.INFO, "LOC-Q3")
    assert (line["command"], line["outcome"], line["correlation_id"]) == (
        "register_partner",
        "accepted",
        "corr-q",
    )


def test_a_wrapper_that_is_not_a_filtering_one_is_never_taken_as_quiet() -> None:
    with structlog_config_restored():
        structlog.configure(wrapper_class=structlog.stdlib.BoundLogger)
        assert not base._commands_quiet()


def test_values_holding_no_text_pass_as_they_are_and_texts_are_still_checked() -> None:
    for value in (uuid.uuid4(), 7, True, 1.5, None):
        assert checked_argument("group_id", value) is value
    with pytest.raises(TextError):
        checked_argument("name", "bad\x00name")
    with pytest.raises(TextError):
        checked_argument("serials", [uuid.uuid4(), "bad\x00serial"])


class _Plain:
    """A plain object: its state in `__dict__`, copied by `private_copy`'s `_state`."""


def _held_by_two_attributes() -> _Plain:
    plain = _Plain()
    shared: list[int] = [1]  # no reference left outside `plain` once this returns
    plain.first = shared  # type: ignore[attr-defined]
    plain.second = shared  # type: ignore[attr-defined]
    plain.name = "kept"  # type: ignore[attr-defined]
    plain.nested = {"a": [2]}  # type: ignore[attr-defined]
    return plain


def test_a_list_held_by_two_attributes_alone_stays_one_list_in_the_copy() -> None:
    made: Any = private_copy(_held_by_two_attributes())
    assert made.first is made.second
    made.first.append(3)
    assert made.second == [1, 3]
    assert made.name == "kept"
    assert made.nested == {"a": [2]}


def test_an_attribute_dict_with_a_key_that_is_not_text_is_copied_as_before() -> None:
    plain = _Plain()
    state: dict[Any, Any] = plain.__dict__
    state[7] = [1]
    state["items"] = [2]
    made: Any = private_copy(plain)
    assert made.__dict__[7] == [1]
    assert made.__dict__[7] is not state[7]
    assert made.items == [2]
    assert made.items is not state["items"]
    assert list(made.__dict__) == [7, "items"]


def test_a_copied_aggregate_state_shares_no_list_or_dict_with_its_original() -> None:
    original = _held_by_two_attributes()
    made: Any = private_copy(original)
    assert made.first is not original.first  # type: ignore[attr-defined]
    assert made.nested is not original.nested  # type: ignore[attr-defined]
    assert made.nested["a"] is not original.nested["a"]  # type: ignore[attr-defined]
