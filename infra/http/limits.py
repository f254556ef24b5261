"""Bounds on what a request may send: body size and JSON nesting (docs/decisions.md).

- Body: at most `MAX_BODY_BYTES` (1 MiB), or `MAX_INTAKE_BODY_BYTES` (8 MiB) under the
  intake routes' prefix (`/intake/`, e2Open and alert batches over HTTP). A larger body is
  refused with 413 before the application reads it: at once when Content-Length says so,
  else as soon as the bytes received pass the bound.
- JSON: objects and arrays nested at most `MAX_JSON_DEPTH` (32) deep, the body itself
  counting 1; deeper is refused with 400 (`nesting-too-deep`) before validation.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.http.errors import ProblemError, problem

MAX_BODY_BYTES = 1024 * 1024
MAX_INTAKE_BODY_BYTES = 8 * 1024 * 1024
INTAKE_PREFIX = "/intake/"
MAX_JSON_DEPTH = 32


def body_limit(path: str) -> int:
    """The most bytes a request body to `path` may have."""
    return MAX_INTAKE_BODY_BYTES if path.startswith(INTAKE_PREFIX) else MAX_BODY_BYTES


def _too_large(limit: int) -> ProblemError:
    return ProblemError(
        "body-too-large", f"The request body is larger than the {limit:,} bytes accepted here."
    )


class BodyLimit:
    """ASGI middleware refusing bodies larger than `body_limit(path)` with 413."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        declared = Request(scope).headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            error = _too_large(limit)
            await problem(Request(scope), error.kind, error.detail)(scope, receive, send)
            return
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(limit)  # answered by the ProblemError handler (errors.py)
            return message

        await self.app(scope, bounded, send)


def check_depth(value: Any, body: bytes) -> None:
    """Raise ProblemError (400) when `value` (parsed from `body`) nests deeper than allowed."""
    if not isinstance(value, dict | list) or body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return  # the common case: too few brackets to be too deep, whatever their order
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise too_deep()
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


def too_deep() -> ProblemError:
    """The refusal of a body nested deeper than MAX_JSON_DEPTH."""
    return ProblemError(
        "nesting-too-deep",
        f"The JSON body nests objects and arrays more than {MAX_JSON_DEPTH} deep.",
    )
