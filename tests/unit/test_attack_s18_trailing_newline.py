"""Session 18's attack: Python's `re.match` with a pattern ending in "$" accepts a value
with one trailing newline ("$" matches before it). Every check of a value from outside
by such a pattern must refuse it: the PostgreSQL schema of DATABASE_URL
(tests/unit/test_settings.py) and a client's X-Request-Id (here)."""

from __future__ import annotations

import asyncio
from typing import Any

from infra.http.requests import RequestIds

GIVEN = "0b7c2f1e-5a3d-4c8e-9f10-2b3c4d5e6f70"


def _request_id(header: bytes) -> str:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["rid"] = scope["state"]["request_id"]

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"x-request-id", header)]}
    asyncio.run(RequestIds(app)(scope, receive, send))
    return str(seen["rid"])


def test_attack_s18_a_request_id_with_a_trailing_newline_is_replaced() -> None:
    assert _request_id(GIVEN.encode()) == GIVEN  # the form accepted
    replaced = _request_id(GIVEN.encode() + b"\n")
    assert "\n" not in replaced
    assert replaced != GIVEN
