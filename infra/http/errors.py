"""Problem details (RFC 9457): the one place where every error becomes a response.

Every error answer is `application/problem+json` with `type` (a URI reference,
`/problems/<kind>`, served by `GET /problems/{kind}`), `title`, `status`, a specific
`detail` and `instance` (`urn:uuid:<request id>`, also in the `X-Request-Id` header and on
every log line of the request). Extensions: `rule` (the rule ID, when a domain rule
refused: an error's `rule` attribute, else the first R-XXX-n its message names), `errors`
(`[{field, in, message}]` for invalid fields), and whatever a refusal says as data in its
`extensions` attribute (a refused deletion's `reasons` and `admins`, R-GRP-2); those never
replace a member named here. No stack trace is ever sent: an unexpected error is logged
with the request id and answered with a generic 500.

Kinds (docs/decisions.md, "HTTP conventions (issue 9)") are the table `KINDS`; an
exception maps to a kind in `kind_of` (most specific class first).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.base import DomainError, NotAllowedError, NotFoundError
from domain.idempotency import ContentMismatchError
from domain.text import TextError
from handlers.access import AuthenticationError
from handlers.base import ConflictError
from handlers.conditions import KeyInFlightError, PreconditionFailedError
from infra.http.auth import KeysUnavailableError
from projections.base import MomentError, QueryError

log = structlog.get_logger("partnerfleet.http")

MEDIA_TYPE = "application/problem+json"
RULE_ID = re.compile(r"\bR-[A-Z]{3}-\d+\b")
# Members of the body (and names of `problem`'s parameters) an error's extensions never set.
RESERVED = frozenset(
    {
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "rule",
        "errors",
        "request",
        "kind",
        "headers",
    }
)
STORAGE_RETRY_SECONDS = 5
REALM = 'Bearer realm="partnerfleet"'


@dataclass(frozen=True)
class Kind:
    """One kind of problem: its status, title and what it means (served at its type URI)."""

    status: int
    title: str
    description: str

    def type_uri(self, name: str) -> str:
        """The problem's `type`: a URI reference resolved against the API's base."""
        return f"/problems/{name}"


KINDS: dict[str, Kind] = {
    "malformed-request": Kind(400, "Malformed request", "The body is not JSON, or a header "
                              "(Idempotency-Key, If-Match, Partnerfleet-Wait-For) is malformed."),
    "nesting-too-deep": Kind(400, "JSON nested too deeply", "Objects and arrays nest deeper "
                             "than the API accepts (limits.MAX_JSON_DEPTH)."),
    "invalid-cursor": Kind(400, "Invalid cursor", "The page cursor was not made by this "
                           "service, or for another principal, route or filter."),
    "unauthenticated": Kind(401, "Not authenticated", "No bearer token, or one that was "
                            "refused; see WWW-Authenticate."),
    "forbidden": Kind(403, "Forbidden", "Your role may never do this action."),
    "not-found": Kind(404, "Not found", "No such resource, or another tenant's."),
    "method-not-allowed": Kind(405, "Method not allowed", "The resource has no such method."),
    "rule-refused": Kind(409, "Refused by a rule", "A domain rule refused the command; "
                         "`rule` names it when known, and a refused deletion (R-GRP-2) adds "
                         "`reasons` and `admins`. Nothing was recorded."),
    "concurrent-change": Kind(409, "Concurrent change", "The command lost to concurrent "
                              "writers on every attempt. Nothing was recorded; try again."),
    "key-in-flight": Kind(409, "Idempotency key in flight", "The first request with this "
                          "Idempotency-Key is still being processed."),
    "precondition-failed": Kind(412, "Precondition failed", "If-Match names no current "
                                "version of the resource. Nothing was recorded."),
    "body-too-large": Kind(413, "Body too large", "The request body is larger than the "
                           "route accepts (limits.MAX_BODY_BYTES)."),
    "invalid-fields": Kind(422, "Invalid fields", "Fields failed validation; `errors` names "
                           "each with its message."),
    "idempotency-key-reused": Kind(422, "Idempotency key reused", "The Idempotency-Key was "
                                   "first used with another request body."),
    "views-behind": Kind(503, "Read models behind", "The read models did not reach the "
                         "position of Partnerfleet-Wait-For in time; retry after Retry-After."),
    "keys-unavailable": Kind(503, "Identity provider unavailable", "The identity "
                             "provider's keys cannot be fetched to check the token; retry "
                             "after Retry-After."),
    "storage-unavailable": Kind(503, "Storage unavailable", "The event store or the read "
                                "models cannot be reached; retry after Retry-After."),
    "internal-error": Kind(500, "Internal error", "An unexpected error; it was logged with "
                           "the request id given as `instance`."),
}  # fmt: skip


class ProblemError(Exception):
    """An error the HTTP layer itself raises, of one of the `KINDS`."""

    def __init__(self, kind: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        assert kind in KINDS, kind
        self.kind, self.detail, self.headers = kind, detail, headers or {}


class MissingTokenError(AuthenticationError):
    """The request carries no bearer token (no `error` in WWW-Authenticate, RFC 6750 3.1)."""


STORAGE_DOWN = (
    psycopg.OperationalError,  # psycopg_pool.PoolTimeout is one
    sqlite3.OperationalError,
    StoreOperationalError,
    StoreInterfaceError,
)


def kind_of(error: Exception) -> str:
    """The problem kind of an exception raised while answering a request."""
    if isinstance(error, QueryError) and getattr(error, "rule", None):
        return "rule-refused"  # a query refused by a rule (R-FAV-3), not a bad parameter
    for cls, kind in _BY_CLASS:
        if isinstance(error, cls):
            return kind
    return "internal-error"


_BY_CLASS: tuple[tuple[type[Exception] | tuple[type[Exception], ...], str], ...] = (
    (KeysUnavailableError, "keys-unavailable"),  # before its base: not the token's fault
    (AuthenticationError, "unauthenticated"),
    (NotFoundError, "not-found"),
    (NotAllowedError, "forbidden"),
    (ContentMismatchError, "idempotency-key-reused"),
    (TextError, "invalid-fields"),
    ((QueryError, MomentError), "invalid-fields"),  # a query's parameters, not a rule
    (DomainError, "rule-refused"),
    (KeyInFlightError, "key-in-flight"),
    (ConflictError, "concurrent-change"),
    (PreconditionFailedError, "precondition-failed"),
    (STORAGE_DOWN, "storage-unavailable"),
)


def problem(
    request: Request,
    kind: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """The problem+json response of one kind, for this request."""
    known = KINDS[kind]
    body = {
        "type": known.type_uri(kind),
        "title": known.title,
        "status": known.status,
        "detail": detail,
        "instance": f"urn:uuid:{request_id(request)}",
        **{k: v for k, v in extensions.items() if v is not None},
    }
    return JSONResponse(body, known.status, headers, media_type=MEDIA_TYPE)


def request_id(request: Request) -> str:
    """The id of this request (infra/http/requests.py gives every request one)."""
    return str(request.scope.get("state", {}).get("request_id", "")) or "unknown"


async def _refused(request: Request, error: Exception) -> JSONResponse:
    kind = kind_of(error)
    if kind == "internal-error":
        return internal_error(request, error)
    detail = str(error)
    headers = _headers(kind, error)
    if kind == "invalid-fields":  # a TextError names its argument: "name: what is wrong"
        named = _in_path(_named_field(error, detail), request.path_params)
        return problem(request, kind, detail, headers, errors=[named])
    if kind == "storage-unavailable":  # a driver's text can name hosts and users
        log.warning("storage_unavailable", error=type(error).__name__)
        detail = "The event store or the read models cannot be reached right now."
    rule = getattr(error, "rule", None) or _rule(detail)
    return problem(request, kind, detail, headers, rule=rule, **_extensions(error))


def _named_field(error: Exception, detail: str) -> dict[str, str]:
    """The field a TextError (body) or a query's refusal (query) names ("name: message")."""
    where = "query" if isinstance(error, (QueryError, MomentError)) else "body"
    field, colon, message = detail.partition(": ")
    if not colon or not field or " " in field:  # a sentence, not a name
        field, message = "", detail
    return {"field": field, "in": where, "message": message}


def _in_path(named: dict[str, str], path_params: Mapping[str, Any]) -> dict[str, str]:
    """The field as the path names it, when the refused value came from the path: the
    domain says `serial`, the route's parameter may be `host_serial`."""
    field = named["field"]
    found = [p for p in path_params if field and (p == field or p.endswith("_" + field))]
    if len(found) == 1 and str(path_params[found[0]]).strip():
        return {**named, "field": found[0], "in": "path"}
    return named


def _headers(kind: str, error: Exception) -> dict[str, str]:
    if kind == "unauthenticated":
        missing = isinstance(error, MissingTokenError)
        return {"WWW-Authenticate": REALM if missing else f'{REALM}, error="invalid_token"'}
    if kind in ("storage-unavailable", "keys-unavailable"):
        return {"Retry-After": str(STORAGE_RETRY_SECONDS)}
    return {}


def _extensions(error: Exception) -> dict[str, Any]:
    """What a domain refusal says as data (`DomainError.extensions`), minus reserved names."""
    found = getattr(error, "extensions", None) if isinstance(error, DomainError) else None
    if not isinstance(found, Mapping):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and k not in RESERVED}


def _rule(detail: str) -> str | None:
    found = RULE_ID.search(detail)
    return found.group() if found else None


async def _problem_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ProblemError)
    return problem(request, error.kind, error.detail, error.headers)


async def _invalid(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    found = list(error.errors())
    if any(e.get("type") == "json_invalid" for e in found):
        return problem(request, "malformed-request", "The request body is not valid JSON.")
    errors = [_field_error(e) for e in found]
    names = ", ".join(e["field"] for e in errors)
    return problem(request, "invalid-fields", f"Invalid: {names}.", errors=errors)


def _field_error(error: Any) -> dict[str, str]:
    """A validation error as {field, in, message}; never the input (it may be a secret)."""
    where, *path = [str(part) for part in error.get("loc", ())] or ["body"]
    return {"field": ".".join(path) or where, "in": where, "message": _message(error)}


def _message(error: Any) -> str:
    """pydantic's message, but a secret's (SecretStr: the cPIN) bounds in characters, without
    its length: pydantic says "Value should have at least 4 items after validation, not 3"."""
    ctx = error.get("ctx") or {}
    if ctx.get("field_type") == "Value" and error.get("type") == "too_short":
        return f"Should have at least {ctx.get('min_length')} characters"
    if ctx.get("field_type") == "Value" and error.get("type") == "too_long":
        return f"Should have at most {ctx.get('max_length')} characters"
    return str(error.get("msg"))


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    kind = {404: "not-found", 405: "method-not-allowed"}.get(error.status_code)
    if kind is None:
        kind = "malformed-request" if error.status_code < 500 else "internal-error"
    detail = str(error.detail)
    if kind in ("not-found", "method-not-allowed"):  # Starlette says only "Not Found"
        detail = f"{detail}: {request.method} {request.url.path}."
    return problem(request, kind, detail, dict(error.headers or {}))


def internal_error(request: Request, error: BaseException) -> JSONResponse:
    """A generic 500: the error and its trace go to the log, under the request id, only."""
    log.error("request_failed", request_id=request_id(request), exc_info=error)
    return problem(request, "internal-error", "An unexpected error; it has been logged.")


def refusal_classes() -> tuple[type[Exception], ...]:
    """Every exception class `kind_of` maps to a kind (the portal answers them as pages)."""
    return tuple(
        cls
        for classes, _ in _BY_CLASS
        for cls in (classes if isinstance(classes, tuple) else (classes,))
    )


def install(api: FastAPI) -> None:
    """Answer every error of `api` with problem details."""
    api.add_exception_handler(ProblemError, _problem_error)
    api.add_exception_handler(RequestValidationError, _invalid)
    api.add_exception_handler(StarletteHTTPException, _http_error)
    for cls in refusal_classes():
        api.add_exception_handler(cls, _refused)
