"""Every text argument of every command, checked before the command runs (issue 8, kind 5).

`handlers.base.command` checks every argument of a declared command, the actor too, before
its body runs; `FleetApplication` refuses a command that is not declared, so a command
added later is checked too. What is checked, and the bounds, are
`domain.text`'s; this module only finds the texts in the arguments: plain strings, lists
of them, the fields of pydantic models and dataclasses, configuration data dicts.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from domain.text import check_data, checked

# Types that hold no text, exactly (not subclasses): passed on without the isinstance
# checks below (a Mapping check is an ABC's), session 19.
NO_TEXT = frozenset({type(None), bool, int, float, UUID})

# Raw feed messages: each is validated as it is taken, so one bad message is rejected
# with its reason and the rest of the batch lands (R-HLD-1).
FEED_MESSAGES = frozenset({"reports", "messages"})


def is_command(name: str, attribute: object) -> bool:
    """A public method whose first parameter after `self` is who causes the change."""
    if name.startswith("_") or not inspect.isfunction(attribute):
        return False
    parameters = list(inspect.signature(attribute).parameters)
    return parameters[1:2] in (["actor"], ["cause"])


def checked_argument(name: str, value: Any) -> Any:
    """The argument with every text in it checked (keys NFC-normalised), else TextError.

    The actor is a dataclass too: its principal and correlation id are identifiers. What
    normalising leaves unchanged is passed on as it came (no copies on the common path).
    """
    kind = type(value)
    if kind in NO_TEXT or name in FEED_MESSAGES:
        return value
    if kind is str or isinstance(value, str):
        return checked(name, value)
    if kind is list or kind is tuple or isinstance(value, list | tuple):
        items = [  # a plain str item checked directly, as the call would
            checked(name, item) if type(item) is str else checked_argument(name, item)
            for item in value
        ]
        for new, old in zip(items, value, strict=True):
            if new is not old:
                return type(value)(items)
        return value
    if isinstance(value, Mapping):
        check_data(name, value)
        return value
    return _checked_fields(value)


def _checked_fields(value: Any) -> Any:
    """A model or dataclass with its text fields checked; anything else unchanged."""
    if isinstance(value, BaseModel):
        fields = _MODEL_FIELDS.get(type(value))
        if fields is None:
            fields = _MODEL_FIELDS[type(value)] = tuple(type(value).model_fields)
        changed = _changed({f: getattr(value, f) for f in fields})
        return value.model_copy(update=changed) if changed else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES.get(type(value))
        if names is None:
            names = _FIELD_NAMES[type(value)] = tuple(f.name for f in dataclasses.fields(value))
        changed = _changed({name: getattr(value, name) for name in names})
        return dataclasses.replace(value, **changed) if changed else value
    return value


# A dataclass's field names, by class (dataclasses.fields builds a tuple on every call);
# a pydantic model's, by class (its `model_fields` is a property that warns on instances).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_MODEL_FIELDS: dict[type, tuple[str, ...]] = {}


def _changed(fields: dict[str, Any]) -> dict[str, Any]:
    """The text fields whose checked form differs from the given one (NFC keys), each
    field checked in order (the first refused is the one named)."""
    changed = {}
    for f, v in fields.items():
        if isinstance(v, str):
            new = checked_argument(f, v)  # (feed messages passed on unchecked, as there)
            if new is not v:
                changed[f] = new
    return changed
