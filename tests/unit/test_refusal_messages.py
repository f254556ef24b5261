"""Every refusal the domain, the handlers and the queries give can be translated (issue 10).

A refusal's message is a `domain.base.Msg` whose template is a string literal, so Babel
extracts it (babel.cfg: keyword `Msg`) and the portal shows it in German
(`infra.web.i18n.refusal_text`). The test reads the source: every call of a refusal class
(a `DomainError` subclass, `AuthenticationError`, and the other refusals the portal shows)
in domain/, handlers/ and projections/ must pass `Msg("<literal>", ...)` first, and so must
a refusal class's own `super().__init__`. A function annotated `-> Msg` (a message built in
a helper) must return only such calls. The few places that pass a message through a
variable are listed in PASSED_THROUGH; mypy checks there that the variable is a `Msg`.
"""

from __future__ import annotations

import ast
import importlib
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from domain.base import DomainError, Msg
from handlers.access import AuthenticationError
from handlers.base import ConflictError
from handlers.conditions import KeyInFlightError, PreconditionFailedError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "handlers", "projections")
REFUSALS: tuple[type[Exception], ...] = (
    DomainError,
    AuthenticationError,
    ConflictError,
    KeyInFlightError,
    PreconditionFailedError,
)
# (module, enclosing function): a refusal given a variable that holds a Msg, and why.
PASSED_THROUGH: dict[tuple[str, str], str] = {
    ("handlers.base", "load"): "`missing: Msg`, the caller's words for what is not there",
    ("handlers.access", "require_own"): "`missing: Msg`, the words for one that does not exist",
    ("projections.base", "query_key"): "a TextError's Msg refused again as a QueryError",
    ("domain.base", "__init__"): "DomainError itself hands its arguments to Exception",
}
# Msg itself: its constructor and the function that unpickles one.
# and `joined`, which joins Msgs (each checked where it is made) by a Msg of its own.
MSG_ITSELF = {
    ("domain.base", "__new__"),
    ("domain.base", "_msg"),
    ("domain.group_support", "joined"),
}


@dataclass(frozen=True)
class Finding:
    """A refusal whose message cannot be translated."""

    module: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.module.replace('.', '/')}.py:{self.line}: {self.what}"


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            yield name.removesuffix(".__init__"), path


def is_refusal(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, REFUSALS)


def resolve(module: ModuleType, node: ast.expr) -> object:
    """The object a name or dotted name refers to in `module`, or None."""
    if isinstance(node, ast.Name):
        return getattr(module, node.id, None)
    if isinstance(node, ast.Attribute):
        owner = resolve(module, node.value)
        return getattr(owner, node.attr, None) if owner is not None else None
    return None


def is_msg_literal(node: ast.expr | None) -> bool:
    """`Msg("literal", ...)`, or either of two such in a conditional expression."""
    if isinstance(node, ast.IfExp):
        return is_msg_literal(node.body) and is_msg_literal(node.orelse)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Msg"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def findings(name: str, path: Path) -> Iterator[Finding]:
    module = importlib.import_module(name)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for function, node in walk(tree):
        if isinstance(node, ast.FunctionDef) and _returns_msg(node, name):
            for returned in ast.walk(node):
                if isinstance(returned, ast.Return) and not is_msg_literal(returned.value):
                    yield Finding(name, returned.lineno, f"{node.name} -> Msg returns no Msg")
        if not isinstance(node, ast.Call):
            continue
        if _builds_no_message(resolve(module, node.func)) or _refusal_init(module, tree, node):
            first = node.args[0] if node.args else None
            if is_msg_literal(first) or _msg_helper(module, first):
                continue
            if (name, function) in PASSED_THROUGH:
                continue
            shown = ast.unparse(first) if first is not None else "no message"
            yield Finding(name, node.lineno, f"{ast.unparse(node.func)}({shown[:60]})")


def walk(tree: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """Every node with the name of the innermost function around it ("" at module level)."""
    stack: list[tuple[str, ast.AST]] = [("", tree)]
    while stack:
        function, node = stack.pop()
        yield function, node
        inner = node.name if isinstance(node, ast.FunctionDef) else function
        stack.extend((inner, child) for child in ast.iter_child_nodes(node))


def _returns_msg(function: ast.FunctionDef, module: str) -> bool:
    if (module, function.name) in MSG_ITSELF:
        return False
    return function.returns is not None and ast.unparse(function.returns) == "Msg"


def _msg_helper(module: ModuleType, node: ast.expr | None) -> bool:
    """A call of a function annotated `-> Msg` (whose returns `findings` checks)."""
    if not isinstance(node, ast.Call):
        return False
    called = resolve(module, node.func)
    return getattr(called, "__annotations__", {}).get("return") in ("Msg", Msg)


def _builds_no_message(called: object) -> bool:
    """A refusal class given its message; one whose own `__init__` makes the message from
    data (DeletionRefusedError) is checked at its `super().__init__` instead."""
    if not is_refusal(called):
        return False
    assert isinstance(called, type)
    own = [c for c in called.__mro__ if "__init__" in vars(c) and c.__module__ != "builtins"]
    return not own or own[0] is DomainError or own[0].__module__.split(".")[0] not in PACKAGES


def _refusal_init(module: ModuleType, tree: ast.Module, call: ast.Call) -> bool:
    """A `super().__init__(...)` inside the `__init__` of a refusal class."""
    if not (
        isinstance(call.func, ast.Attribute)
        and call.func.attr == "__init__"
        and isinstance(call.func.value, ast.Call)
        and ast.unparse(call.func.value) == "super()"
    ):
        return False
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        if is_refusal(getattr(module, cls.name, None)) and any(
            node is call for node in ast.walk(cls)
        ):
            return True
    return False


def test_every_refusal_of_domain_handlers_and_queries_is_a_msg_with_a_literal_template() -> None:
    """Issue 10: a refusal whose message is not Msg("literal") cannot be translated."""
    found = [str(f) for name, path in modules() for f in findings(name, path)]

    assert found == [], (
        "Give these refusals a Msg with a literal template, e.g. "
        'NotFoundError(Msg("No device {serial}.", serial=serial)); '
        "then run `make translations` and translate the new msgids:\n" + "\n".join(found)
    )


def test_the_check_finds_a_refusal_built_from_an_f_string(tmp_path: Path) -> None:
    """The test above would fail on the old form of a refusal (an f-string message)."""
    tree = ast.parse('raise NotFoundError(f"No device {serial}.")\nraise NotFoundError(Msg("x"))')
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) != "Msg"]

    assert [is_msg_literal(c.args[0]) for c in calls] == [False, True]


@pytest.mark.parametrize("passed", sorted(PASSED_THROUGH), ids=str)
def test_each_listed_pass_through_still_exists(passed: tuple[str, str]) -> None:
    """An exception to the rule that no longer matches a function is taken off the list."""
    module, function = passed
    source = (ROOT / Path(*module.split("."))).with_suffix(".py").read_text(encoding="utf-8")

    assert f"def {function}(" in source


def msg_calls() -> Iterator[tuple[str, ast.Call]]:
    """Every `Msg("literal", ...)` of the code, the portal's (infra/) included."""
    for path in sorted(p for d in (*PACKAGES, "infra") for p in (ROOT / d).rglob("*.py")):
        name = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and is_msg_literal(node):
                yield name, node


def test_every_msg_is_given_exactly_the_fields_of_its_template() -> None:
    """A Msg fills its template when it is made: a field without its parameter (or a
    parameter no field names) is a mistake that would only show when the refusal happens."""
    wrong = []
    for name, call in msg_calls():
        template = call.args[0]
        assert isinstance(template, ast.Constant)
        parsed = string.Formatter().parse(str(template.value))
        fields = {field for _, field, _, _ in parsed if field is not None}
        if any(k.arg is None for k in call.keywords):  # **params: checked when it is made
            continue
        given = {str(k.arg) for k in call.keywords}
        if fields != given:
            wrong.append(f"{name}:{call.lineno}: fields {sorted(fields)}, given {sorted(given)}")

    assert wrong == []
