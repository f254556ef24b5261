"""Session 17: a command's arguments are bound without inspect on the common calls
(handlers/base.py, `_binder`), to exactly what `Signature.bind` + `apply_defaults` gives;
any other call is left to inspect (None), which binds it or raises its TypeError. An actor
whose texts passed is not checked again; one whose texts fail is refused every time."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from handlers import PartnerFleet
from handlers.base import _binder
from tests.scenarios import OPS, in_memory_fleet

SIGNATURES = {
    name: inspect.signature(getattr(PartnerFleet, name), follow_wrapped=False)
    for name in dir(PartnerFleet)
    if hasattr(getattr(PartnerFleet, name), "__command__")
}


def by_inspect(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any] | None:
    try:
        bound = signature.bind("self", "actor", *args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(list(bound.arguments.items())[2:])


def calls(signature: inspect.Signature) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Call shapes: all positional, all by keyword, mixed, one missing, one too many,
    one twice, an unknown keyword, the defaults left out."""
    rest = list(signature.parameters.values())[2:]
    values = {p.name: f"v-{p.name}" for p in rest}
    positional = [p.name for p in rest if p.kind is p.POSITIONAL_OR_KEYWORD]
    keyword_only = {p.name: values[p.name] for p in rest if p.kind is p.KEYWORD_ONLY}
    required = [p.name for p in rest if p.default is p.empty]
    shapes: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        (tuple(values[n] for n in positional), keyword_only),
        ((), dict(values)),
        ((), {n: values[n] for n in required}),
        ((*(values[n] for n in positional), "extra"), keyword_only),
        ((), {**values, "unknown": 1}),
        ((), {**values, "actor": 1}),
    ]
    if positional:
        first, later = positional[0], positional[1:]
        shapes.append(((values[first],), {n: values[n] for n in later} | keyword_only))
        shapes.append(((values[first],), dict(values)))  # the first twice
        shapes.append(((), {n: v for n, v in values.items() if n != first}))  # it missing
    return shapes


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_session_17_the_binder_binds_as_inspect_or_leaves_the_call_to_it(name: str) -> None:
    signature = SIGNATURES[name]
    bind = _binder(signature)
    plain = all(
        p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        for p in list(signature.parameters.values())[2:]
    )
    for args, kwargs in calls(signature):
        expected = by_inspect(signature, args, kwargs)
        got = bind(args, dict(kwargs))
        if plain:  # every call inspect binds is bound alike; the others left to it
            assert got == expected, (args, kwargs)
            assert list(got or {}) == list(expected or {}), "in the signature's order"
        else:
            assert got is None


def test_session_17_a_call_the_binder_leaves_is_refused_by_inspect_as_before() -> None:
    fleet = in_memory_fleet()
    with pytest.raises(TypeError, match="location_id"):
        fleet.register_partner(OPS, name="Partner")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword"):
        fleet.register_partner(OPS, "LOC-1", "Partner", colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values"):
        fleet.register_partner(OPS, "LOC-1", "Partner", location_id="LOC-1")  # type: ignore[misc]


def test_session_17_an_actor_is_text_checked_once_and_a_bad_one_every_time() -> None:
    from domain.text import TextError
    from handlers.base import _ACTORS_CHECKED, _checked_actor
    from tests.actors import operator

    good = operator("ops-17", "corr-17")
    assert _checked_actor(good) is good
    assert _ACTORS_CHECKED[id(good)][0]() is good  # (its weak reference, its texts)
    assert _checked_actor(good) is good
    bad = operator("ops-17", "corr\x00-17")
    for _ in range(2):
        with pytest.raises(TextError, match="NUL"):
            _checked_actor(bad)
    assert _ACTORS_CHECKED.get(id(bad)) is None
    fleet = in_memory_fleet()
    for _ in range(2):  # refused by the command too, every time
        with pytest.raises(TextError):
            fleet.register_partner(bad, "LOC-1", "Partner")
