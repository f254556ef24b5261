"""Every request gets an id (`X-Request-Id`), bound to its log lines; nothing escapes as a trace.

A client may send its own `X-Request-Id` (a UUID, to follow a request across services);
otherwise one is made. The id is the problem's `instance`, the correlation id of
the events the request causes (infra/http/deps.py), and is bound to every log line of the
request. An exception no handler took is logged under the id and answered with a generic
problem (500), never with its trace.
"""

from __future__ import annotations

import re
import uuid

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.http.errors import internal_error

HEADER = "X-Request-Id"
GIVEN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class RequestIds:
    """ASGI middleware: a request id per request, and the last resort for errors."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Request(scope).headers.get(HEADER, "").lower()
        rid = given if GIVEN.fullmatch(given) else str(uuid.uuid4())  # no final "\n"
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", []).append((HEADER.lower().encode(), rid.encode()))
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=rid):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as error:
                if started:  # a streamed body broke off: the status is sent already
                    structlog.get_logger("partnerfleet.http").error(
                        "response_broken_off", request_id=rid, exc_info=error
                    )
                    return
                await internal_error(Request(scope), error)(scope, receive, send_with_id)
