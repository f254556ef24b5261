"""What every portal page is given: the signed-in actor, the language, the read models, the
fleet, and how to answer (render, redirect, show a refusal).

A page is a plain `def` taking `PortalDep` (signed in) or `VisitorDep` (sign-in, language):
it makes its scope with handlers.access (partner_scope, customer_scope, ...) and calls the
same queries and commands as the HTTP API; it holds no SQL and no role check. A form that
changes state takes `CsrfDep` as well (infra/web/session.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from handlers import PartnerFleet
from handlers.access import Actor, AuthenticationError, ClaimsVerifier, Role, authenticate
from infra.follow.view_runner import ViewRunner
from infra.http.deps import WAIT_SECONDS
from infra.http.errors import KINDS, ProblemError, kind_of, request_id
from infra.http.paging import Cursors
from infra.storage.viewdb import ViewDB
from infra.web.i18n import negotiate, refusal_text, translations
from infra.web.rendering import PREFIX, href, render
from infra.web.session import (
    CSRF_FIELD,
    LANG_COOKIE,
    check_csrf,
    csrf_token,
    remember_csrf,
    session_token,
)
from projections.paging import Key


class SignInRequiredError(Exception):
    """No session, or one whose token is no longer accepted: go to the sign-in page."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Refusal:
    """A refusal as a page shows it: the message in the page's language, the rule that
    refused, and what the refusal says as data (a refused deletion's reasons and admins)."""

    kind: str
    status: int
    message: str
    rule: str | None
    extensions: dict[str, Any]


@dataclass
class Visitor:
    """A request to the portal before sign-in: its language and CSRF token."""

    request: Request
    locale: str

    @property
    def htmx(self) -> bool:
        """Whether htmx sent this request (a partial update)."""
        return self.request.headers.get("HX-Request") == "true"

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """`template` in this request's language, with the portal's common context."""
        context.setdefault("actor", None)
        page = render(
            self.locale,
            template,
            {
                "request_path": self.request.url.path,
                "request_query": self.request.url.query,
                "csrf_field": CSRF_FIELD,
                "csrf": csrf_token(self.request),
                "request_id": request_id(self.request),
                **context,
            },
        )
        response = HTMLResponse(page, status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Language"] = self.locale
        response.headers["Vary"] = "Accept-Language, Cookie, HX-Request"
        remember_csrf(self.request, response)
        return response

    def redirect(self, path: str, **query: Any) -> Response:
        """See `path` (under /portal) next: 303 for a form, HX-Location for htmx."""
        target = href(path, **query)
        if self.htmx:
            return Response(status_code=204, headers={"HX-Location": target})
        return RedirectResponse(target, status_code=303)

    def go_back(self, page: str) -> Response:
        """See `page` next: a path under /portal with its query string, if any (a form's
        `next`, already checked to be one of this portal's pages)."""
        path, _, query = page.partition("?")
        response = self.redirect(path)
        if query:
            header = "HX-Location" if self.htmx else "location"
            response.headers[header] += "?" + urlencode(parse_qsl(query, keep_blank_values=True))
        return response

    def gettext(self, message: str) -> str:
        """`message` in this request's language."""
        return translations(self.locale).gettext(message)

    def refusal(self, error: Exception) -> Refusal:
        """How a page shows `error` (a refusal of the access model, a rule, a query)."""
        kind = error.kind if isinstance(error, ProblemError) else kind_of(error)
        status = KINDS[kind].status
        extensions = dict(getattr(error, "extensions", None) or {})
        rule = getattr(error, "rule", None)
        if kind == "internal-error":
            message = self.gettext("Something went wrong on our side. It was logged.")
        elif kind == "storage-unavailable":
            message = self.gettext("The service cannot reach its storage. Try again shortly.")
        elif isinstance(error, ProblemError):
            message = refusal_text(Exception(error.detail), self.locale)
        else:
            message = refusal_text(error, self.locale)
        return Refusal(kind, status, message, rule, extensions)


@dataclass
class Portal(Visitor):
    """A signed-in request: the actor (from the session's token, checked as the API checks
    a bearer token), the fleet and the read models."""

    actor: Actor
    fleet: PartnerFleet
    runner: ViewRunner

    @property
    def views(self) -> ViewDB:
        """The read models."""
        return self.runner.db

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """`template` with the actor, the role's navigation and its label in its context."""
        context.setdefault("actor", self.actor)
        context.setdefault("nav", navigation(self.actor, self.request.url.path, self.gettext))
        context.setdefault("role_label", self.gettext(ROLE_LABELS.get(self.actor.role, "")))
        return super().render(template, status, **context)

    def caught_up(self) -> None:
        """Wait (up to about a second) until the read models show what this request's
        commands recorded, so the page rendered next shows them (read-your-writes)."""
        self.runner.wait_until(self.runner.head(), timeout=WAIT_SECONDS)

    def cursor(self, listing: str, after: Key | None) -> str | None:
        """The signed cursor of the next page of `listing`, bound to this principal."""
        cursors: Cursors = self.request.app.state.cursors
        return None if after is None else cursors.make(str(self.actor), listing, after)

    def after(self, listing: str, cursor: str | None) -> Key | None:
        """Where a page continues: the key of a cursor `cursor` made (400 if forged)."""
        cursors: Cursors = self.request.app.state.cursors
        return None if not cursor else cursors.read(cursor, str(self.actor), listing)


def _N(message: str) -> str:  # noqa: N802 (the gettext marker Babel extracts)
    """Marks `message` for the catalog; it is translated where it is shown."""
    return message


# The roles' names as pages show them (translated through the catalog).
ROLE_LABELS: dict[Role, str] = {
    Role.PARTNER_USER: _N("partner user"),
    Role.PARTNER_ADMIN: _N("partner admin"),
    Role.CUSTOMER_ADMIN: _N("customer admin"),
    Role.END_USER: _N("end user"),
    Role.AUDITOR: _N("auditor"),
    Role.OPERATOR: _N("operator"),
    Role.FEED: _N("feed"),
}


@dataclass(frozen=True)
class NavItem:
    """A link of the main navigation."""

    label: str
    href: str
    current: bool


def navigation(actor: Actor, path: str, gettext: Callable[[str], str]) -> list[NavItem]:
    """The main navigation of `actor`'s role; `current` marks the section of `path`."""
    tenant = actor.tenant
    items: list[tuple[str, str]] = []
    if actor.role in (Role.PARTNER_USER, Role.PARTNER_ADMIN):
        items = [(_N("My Customers"), f"/partners/{tenant}/customers")]
        items.append((_N("Holding tenant"), f"/partners/{tenant}/holding"))
        items.append((_N("Alerts"), f"/partners/{tenant}/alerts"))
        if actor.partner_type == "service_partner":
            items.append((_N("Service events"), f"/partners/{tenant}/service-events"))
            items.append((_N("CSDP repair cases"), f"/partners/{tenant}/csdp-queue"))
    elif actor.role is Role.CUSTOMER_ADMIN:
        items = [
            (_N("My IT Environment"), f"/customers/{tenant}/environment"),
            (_N("Consent history"), f"/customers/{tenant}/consent-history"),
        ]
    elif actor.role is Role.END_USER:
        items = [(_N("My PCs"), f"/customers/{tenant}/my-pcs")]
    elif actor.role is Role.AUDITOR:
        items = [(_N("Consent audit"), "/audit")]
    elif actor.role is Role.OPERATOR:
        items = [
            (_N("Partners"), "/operations"),
            (_N("Rejected reports"), "/operations/rejected-reports"),
            (_N("Consent audit"), "/audit"),
        ]
    here = path.removeprefix(PREFIX)
    return [
        NavItem(gettext(label), href(link), here == link or here.startswith(link + "/"))
        for label, link in items
    ]


def get_visitor(request: Request) -> Visitor:
    """The request's language: the switch's cookie, else Accept-Language."""
    locale = negotiate(request.headers.get("accept-language"), request.cookies.get(LANG_COOKIE))
    return Visitor(request, locale)


VisitorDep = Annotated[Visitor, Depends(get_visitor)]


def get_portal(request: Request, visitor: VisitorDep) -> Portal:
    """The signed-in actor; SignInRequiredError without a session or with a refused token."""
    token = session_token(request)
    if token is None or token in request.app.state.signed_out:
        raise SignInRequiredError()
    state = request.app.state
    verifier: ClaimsVerifier | None = state.verifier
    runner: ViewRunner | None = state.views
    if verifier is None or runner is None:
        raise ProblemError("storage-unavailable", "This server cannot serve the portal yet.")
    try:
        claims = verifier.claims(token)
        if not claims.correlation_id:
            claims = dataclasses.replace(claims, correlation_id=request_id(request))
        actor = authenticate(state.fleet, claims)
    except AuthenticationError as refused:
        raise SignInRequiredError(str(refused)) from None
    return Portal(request, visitor.locale, actor, state.fleet, runner)


PortalDep = Annotated[Portal, Depends(get_portal)]


def get_checked_form(
    request: Request, csrf_token: Annotated[str | None, Form(max_length=128)] = None
) -> None:
    """A state-changing form: its CSRF token (field or X-CSRF-Token) must be the cookie's."""
    check_csrf(request, csrf_token)


CsrfDep = Annotated[None, Depends(get_checked_form)]
SIGN_IN = f"{PREFIX}/sign-in"
