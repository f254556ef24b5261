"""Every text argument of every command, checked before the command runs (issue 8, kind 5).

`FleetApplication` wraps each public method whose first parameter is `cause` (a command),
so a command added later is checked too. What is checked, and the bounds, are
`domain.text`'s; this module only finds the texts in the arguments: plain strings, lists
of them, the fields of pydantic models and dataclasses, configuration data dicts.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel

from domain.text import TextError, check_data, checked

log = structlog.get_logger("partnerfleet.commands")

F = TypeVar("F", bound=Callable[..., Any])
# Raw feed messages: each is validated as it is taken, so one bad message is rejected
# with its reason and the rest of the batch lands (R-HLD-1).
FEED_MESSAGES = frozenset({"reports", "messages"})


def is_command(name: str, attribute: object) -> bool:
    """A public method whose first parameter after `self` is the cause of the change."""
    if name.startswith("_") or not inspect.isfunction(attribute):
        return False
    parameters = list(inspect.signature(attribute).parameters)
    return parameters[1:2] == ["cause"]


def checked_command(method: F) -> F:
    """`method`, refusing bad text arguments with TextError and passing keys NFC-normalised."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def command(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        try:
            for name, value in list(bound.arguments.items())[1:]:
                bound.arguments[name] = checked_argument(name, value)
        except TextError as error:
            log.info("command", command=method.__name__, outcome="refused", reason=str(error))
            raise
        return method(*bound.args, **bound.kwargs)

    return command  # type: ignore[return-value]


def checked_argument(name: str, value: Any) -> Any:
    """The argument with every text in it checked (keys NFC-normalised), else TextError.

    The cause is a dataclass too: its principal and correlation id are identifiers. What
    normalising leaves unchanged is passed on as it came (no copies on the common path).
    """
    if name in FEED_MESSAGES or value is None:
        return value
    if isinstance(value, str):
        return checked(name, value)
    if isinstance(value, list | tuple):
        items = [checked_argument(name, item) for item in value]
        same = all(new is old for new, old in zip(items, value, strict=True))
        return value if same else type(value)(items)
    if isinstance(value, Mapping):
        check_data(name, value)
        return value
    return _checked_fields(value)


def _checked_fields(value: Any) -> Any:
    """A model or dataclass with its text fields checked; anything else unchanged."""
    if isinstance(value, BaseModel):
        changed = _changed({f: getattr(value, f) for f in type(value).model_fields})
        return value.model_copy(update=changed) if changed else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changed = _changed({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
        return dataclasses.replace(value, **changed) if changed else value
    return value


def _changed(fields: dict[str, Any]) -> dict[str, Any]:
    """The text fields whose checked form differs from the given one (NFC keys)."""
    checked_texts = {f: checked_argument(f, v) for f, v in fields.items() if isinstance(v, str)}
    return {f: v for f, v in checked_texts.items() if v is not fields[f]}
