"""`FleetRoute`: what every resource route shares, so a route itself stays one call.

Every router of infra/http/routes is `APIRouter(route_class=FleetRoute)`. For each request:

- a command's body must be sent as JSON (`Content-Type: application/json` or `…+json`),
  else 400 `malformed-request` naming the Content-Type to send.
- a JSON body is parsed once here: not JSON -> 400 `malformed-request`; nested deeper than
  `limits.MAX_JSON_DEPTH` -> 400 `nesting-too-deep` (FastAPI validates the parsed value).
- a command (POST, PUT, PATCH, DELETE) runs under the request's `Conditions`
  (handlers/conditions.py): its `Idempotency-Key` (scoped to principal, role, tenant,
  method and path, with the body's fingerprint) and its `If-Match`. Its response carries
  `Partnerfleet-Position` (the store position of what it recorded, for read-your-writes,
  see deps.ViewsDep) and, after a matched If-Match, the new `ETag`.

A read route may have a plain path (`plain_path`): a function that answers the request
in its most common form itself and gives None for every other, which the route's FastAPI
dependencies then answer. Its answer must be the one the dependencies would give: the
same checks in the same order (docs/decisions.md, "HTTP load generator and server CPU per
request (session 17)"); what it spares is FastAPI's dependency solving and a worker-thread
hop per sync dependency. A GET that reaches such a route and that its plain path answers
is remembered (path -> route) for `infra.http.front.PlainFront`, which offers the next GET
to that path to the plain path before the middleware stack and the router; an exception
the front's run of the plain path raised comes down in the scope (`FRONT_ERROR`) and is
raised here again instead of the plain path running twice.

ETags name an aggregate and its version (`"<uuid>.<version>"`, `etag()`); a route about one
aggregate sets one on its response.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from fastapi.utils import deep_dict_update

from domain.base import FleetAggregate
from domain.feed_bounds import DuplicateKeyError, strict_json
from domain.idempotency import bytes_fingerprint, content_fingerprint
from handlers.conditions import Conditions, EntityTag, IdempotencyKey, applied
from infra.http.errors import ProblemError
from infra.http.front import FRONT_ERROR
from infra.http.limits import check_depth, too_deep

POSITION = "Partnerfleet-Position"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# An Idempotency-Key: a structured-field string (RFC 8941 3.3.3: printable ASCII, `\"` and
# `\\` escaped; 1-255 characters once unescaped), or a bare token (earlier clients).
KEY = re.compile(
    r'^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\]){1,255})"$|^([\x21\x23-\x2b\x2d-\x7e]{1,255})$'
)
_ESCAPED = re.compile(r'\\(["\\])')
TAG = re.compile(r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"')

COMMAND_HEADERS: list[dict[str, Any]] = [
    {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": 'Makes a retry harmless: "<1-255 printable ASCII>" (a structured-field '
        'string: \\" and \\\\ escaped), scoped to you, the method and the path; the same body '
        "gets the first answer again, another body 422.",
        "schema": {"type": "string", "maxLength": 512},
    },
    {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": "Only if the resource is still at this ETag; else 412.",
        "schema": {"type": "string"},
    },
]
ETAG_HEADER: dict[str, Any] = {
    "description": "The aggregate's version: send it as If-Match to change it only if unchanged.",
    "schema": {"type": "string"},
}
POSITION_HEADER: dict[str, Any] = {
    "description": "Store position of what was recorded: send it as Partnerfleet-Wait-For "
    "to read your write.",
    "schema": {"type": "integer"},
}

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
PlainPath = Callable[[Request], Coroutine[Any, Any, Response | None]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
PLAIN_PATH = "plain_path"  # the endpoint's attribute naming its plain path


def plain_path(answer: PlainPath) -> Callable[[Endpoint], Endpoint]:
    """Decorator (below the route's): GET requests `answer` takes (a response, not None)
    are answered by it without the route's dependencies; the others as before. `answer`
    must give exactly the response, or raise exactly the error, the route would."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, PLAIN_PATH, answer)
        return endpoint

    return mark


def etag(aggregate: FleetAggregate) -> str:
    """The ETag of an aggregate as loaded: its id and version (strong)."""
    return str(EntityTag(aggregate.id, aggregate.version))


class FleetRoute(APIRoute):
    """A route that parses JSON within bounds and runs commands under the request's
    Idempotency-Key and If-Match (see the module's docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        """The route, its command headers documented in OpenAPI when it is a command."""
        self.plain: PlainPath | None = getattr(endpoint, PLAIN_PATH, None)  # before: APIRoute
        super().__init__(path, endpoint, **kwargs)  # calls get_route_handler
        if self.methods and not self.methods <= SAFE_METHODS:
            success = str(self.status_code or 200)
            extra = {
                "parameters": list(COMMAND_HEADERS),
                "responses": {success: {"headers": {POSITION: POSITION_HEADER}}},
            }
            deep_dict_update(extra, self.openapi_extra or {})
            self.openapi_extra = extra

    def get_route_handler(self) -> Handler:
        """FastAPI's handler, wrapped."""
        handler = super().get_route_handler()
        plain = self.plain

        async def handle(request: Request) -> Response:
            raw, body = await _parsed(request)
            if request.method in SAFE_METHODS:
                if plain is not None and request.method == "GET" and not raw:
                    failed = request.scope.pop(FRONT_ERROR, None)
                    if failed is not None and failed[0] is request.scope.get("route"):
                        raise failed[1]  # PlainFront's run of `plain` raised it: once only
                    answer = await plain(request)
                    if answer is not None:
                        front = getattr(request.app.state, "plain_routes", None)
                        if front is not None:  # answered: PlainFront may take the path too
                            front.learn(request.scope, plain)
                        return answer
                return await handler(request)
            conditions = Conditions(_idempotency(request, raw, body), _if_match(request))
            with applied(conditions):
                response = await handler(request)
            response.headers[POSITION] = str(conditions.position)
            if conditions.etag is not None:
                response.headers["ETag"] = str(conditions.etag)
            return response

        return handle


async def _parsed(request: Request) -> tuple[bytes, Any]:
    """The body, and its JSON value (None when it is not JSON) checked for depth."""
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if body and request.method not in SAFE_METHODS and not _is_json(content_type):
        raise ProblemError(  # else validation would say only that the body is no object
            "malformed-request",
            "Send the request body as JSON with Content-Type: application/json (this request "
            f"says {content_type.split(';', 1)[0].strip()[:100] or 'no Content-Type'}).",
        )
    if not body or not _is_json(content_type):
        return body, None
    try:
        value = strict_json(body)
    except DuplicateKeyError as error:  # readers disagree on its value: refused, as feeds do
        raise ProblemError("malformed-request", f"The request body names a {error}.") from None
    except (ValueError, UnicodeDecodeError):
        raise ProblemError("malformed-request", "The request body is not valid JSON.") from None
    except RecursionError:
        raise too_deep() from None
    check_depth(value, body)
    request._json = value  # Starlette's cache of request.json(): FastAPI does not parse again
    return body, value


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _idempotency(request: Request, raw: bytes, body: Any) -> IdempotencyKey | None:
    """The request's Idempotency-Key (a structured-field string, or a bare token)."""
    given = request.headers.getlist("idempotency-key")
    if not given:
        return None
    match = KEY.match(given[0].strip()) if len(given) == 1 else None
    if match is None:
        raise ProblemError(
            "malformed-request",
            "Idempotency-Key must be one quoted string of 1 to 255 printable ASCII characters, "
            "a quote or backslash in it escaped with a backslash "
            '(e.g. Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324").',
        )
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    fingerprint = bytes_fingerprint([raw or None]) if body is None else content_fingerprint(body)
    quoted = match.group(1)
    key = _ESCAPED.sub(r"\1", quoted) if quoted is not None else match.group(2)
    return IdempotencyKey(key, request.method, path, fingerprint)


def _if_match(request: Request) -> frozenset[EntityTag] | None:
    """The tags of If-Match (None without one or with `*`); a weak or foreign tag never
    matches (strong comparison, RFC 9110 13.1.1), so only ours are kept."""
    header = ",".join(request.headers.getlist("if-match")).strip()
    if not header or header == "*":
        return None
    tags = TAG.findall(header)
    if not tags:
        raise ProblemError("malformed-request", 'If-Match must list entity tags ("...") or be *.')
    return frozenset(t for t in map(EntityTag.parse, tags) if t is not None)
