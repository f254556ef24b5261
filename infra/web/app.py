"""The partner portal: server-rendered pages (Jinja2 + htmx) under /portal, served by the
API's process over the same fleet, read models, access model and token checks.

`create_portal(api)` builds the pages' application and mounts it on the API at /portal;
its routes are not in the API's OpenAPI document. Pages are the modules of
infra/web/pages (each defines `router`). Static files (htmx, vendored at a pinned version,
and the style sheet) are served from infra/web/static; nothing is fetched from a CDN.

Errors become pages, never a stack trace: a refusal is shown in place (an htmx request gets
the `_refusal.html` fragment in `#messages`, with the problem's status), no session sends
the browser to the sign-in page, a forged form is 403, an unexpected error is logged with
the request id and answered with a page naming that id.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from infra.http.errors import ProblemError, refusal_classes, request_id
from infra.tokens import SigningKey
from infra.web import pages
from infra.web.deps import SIGN_IN, Refusal, SignInRequiredError, get_visitor
from infra.web.i18n import refusal_text
from infra.web.rendering import PREFIX, STATIC, href
from infra.web.session import CsrfError, SignedOut

log = structlog.get_logger("partnerfleet.portal")


def create_portal(api: FastAPI, signing_key: SigningKey | None = None) -> FastAPI:
    """The portal over what `api` serves, mounted on it at /portal (and `/` sends a browser
    there). `signing_key`: the demo key the sign-in page mints session tokens with (demo
    mode only; otherwise the identity provider's token is given to the sign-in form)."""
    portal = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    for name in ("fleet", "settings", "verifier", "views", "cursors"):
        setattr(portal.state, name, getattr(api.state, name))
    portal.state.signing_key = signing_key
    portal.state.signed_out = SignedOut()
    portal.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in page_routers():
        portal.include_router(router)
    portal.add_exception_handler(SignInRequiredError, _sign_in)
    portal.add_exception_handler(CsrfError, _forged)
    portal.add_exception_handler(RequestValidationError, _invalid)
    portal.add_exception_handler(StarletteHTTPException, _http_error)
    refused: tuple[type[Exception], ...] = (ProblemError, *refusal_classes())
    for cls in refused:
        portal.add_exception_handler(cls, _refused)
    portal.add_exception_handler(Exception, _refused)  # the last resort: a 500 page
    api.mount(PREFIX, portal)

    @api.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    return portal


def page_routers() -> list[APIRouter]:
    """The `router` of every module of infra/web/pages, by module name."""
    found = []
    for module in sorted(m.name for m in pkgutil.iter_modules(pages.__path__)):
        loaded = importlib.import_module(f"{pages.__name__}.{module}")
        router = getattr(loaded, "router", None)
        if not isinstance(router, APIRouter):
            raise TypeError(f"infra/web/pages/{module}.py defines no `router`.")
        found.append(router)
    return found


async def _sign_in(request: Request, error: Exception) -> Response:
    target = href("/sign-in", next=_here(request))
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target if request.method == "GET" else SIGN_IN, status_code=303)


def _here(request: Request) -> str | None:
    """This page's path under /portal, to come back to after sign-in (GET pages only)."""
    if request.method != "GET":
        return None
    path = request.url.path.removeprefix(PREFIX)
    return path + (f"?{request.url.query}" if request.url.query else "")


async def _forged(request: Request, error: Exception) -> Response:
    log.warning("portal_form_refused", reason=str(error), path=request.url.path)
    text = refusal_text(error, get_visitor(request).locale)
    return _problem_page(request, 403, text, kind="forbidden")


async def _invalid(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    fields = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) for e in error.errors()})
    text = get_visitor(request).gettext("These fields are not valid: {fields}.")
    return _problem_page(request, 422, text.format(fields=", ".join(fields)), kind="invalid-fields")


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    gettext = get_visitor(request).gettext
    text = gettext("There is no such page.") if error.status_code == 404 else str(error.detail)
    return _problem_page(request, error.status_code, text, kind="not-found")


async def _refused(request: Request, error: Exception) -> Response:
    visitor = get_visitor(request)
    refusal = visitor.refusal(error)
    if refusal.kind == "internal-error":
        log.error("portal_error", path=request.url.path, exc_info=error)
    elif refusal.kind == "storage-unavailable":
        log.warning("storage_unavailable", error=type(error).__name__)
    return _answer(request, refusal.status, {"refusal": refusal})


def _problem_page(request: Request, status: int, message: str, kind: str) -> Response:
    return _answer(request, status, {"refusal": Refusal(kind, status, message, None, {})})


def _answer(request: Request, status: int, context: dict[str, Any]) -> HTMLResponse:
    """The refusal page, or (htmx) the refusal fragment swapped into #messages."""
    visitor = get_visitor(request)
    context["request_id"] = request_id(request)
    if visitor.htmx:
        response = visitor.render("_refusal.html", status, **context)
        response.headers["HX-Retarget"] = "#messages"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return visitor.render("refusal.html", status, **context)
