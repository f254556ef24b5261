"""Sign-in, sign-out, the language switch, and the home page that sends each role to its
start page.

In demo mode (the portal was given the local signing key), the sign-in page lists the demo
principals (infra/demo/people.py); choosing one starts a session with a token minted for it
(SESSION_SECONDS). Otherwise the form takes the identity provider's token, checked exactly
as the API checks a bearer token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from handlers.access import AuthenticationError, Role, authenticate
from infra.demo.people import DEMO_PRINCIPALS
from infra.tokens import LOCAL_ISSUER, mint
from infra.web.deps import CsrfDep, PortalDep, VisitorDep
from infra.web.i18n import LOCALES, refusal_text
from infra.web.session import (
    SESSION_SECONDS,
    end_session,
    forget_csrf,
    session_token,
    set_language,
    set_session,
)

router = APIRouter()


@router.get("/sign-in")
def sign_in_page(visitor: VisitorDep, next: str | None = None) -> Response:
    """The sign-in page: demo principals to choose from, or a token field."""
    demo = visitor.request.app.state.signing_key is not None
    return visitor.render(
        "sign_in.html",
        principals=DEMO_PRINCIPALS if demo else [],
        next=safe_next(next),
        error=None,
    )


@router.post("/sign-in")
def sign_in(
    visitor: VisitorDep,
    _csrf: CsrfDep,
    principal: Annotated[int | None, Form(ge=0, lt=len(DEMO_PRINCIPALS))] = None,
    token: Annotated[str | None, Form(max_length=8192)] = None,
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    """Start a session: as a demo principal (demo mode), or with a given token."""
    request = visitor.request
    state = request.app.state
    if principal is not None and state.signing_key is not None:
        claims = DEMO_PRINCIPALS[principal]
        token = mint(
            claims,
            state.signing_key,
            SESSION_SECONDS,
            audience=state.settings.jwt_audience,
            issuer=state.settings.jwt_issuer or LOCAL_ISSUER,
        )
        seconds = SESSION_SECONDS
    elif token:
        token = token.strip()
        seconds = SESSION_SECONDS
    else:
        return _refused(visitor, next, visitor.gettext("Choose a principal or give a token."))
    try:
        authenticate(state.fleet, state.verifier.claims(token))
    except AuthenticationError as refused:
        return _refused(visitor, next, refusal_text(refused, visitor.locale))
    response = visitor.go_back(safe_next(next) or "/")
    set_session(request, response, token, seconds)
    forget_csrf(response)  # a new token for the new session
    return response


def _refused(visitor: VisitorDep, next: str | None, message: str) -> Response:
    demo = visitor.request.app.state.signing_key is not None
    return visitor.render(
        "sign_in.html",
        401,
        principals=DEMO_PRINCIPALS if demo else [],
        next=safe_next(next),
        error=message,
    )


@router.post("/sign-out")
def sign_out(visitor: VisitorDep, _csrf: CsrfDep) -> Response:
    """End the session: its token is refused as a session from now on (SignedOut), and the
    forms shown in it are no longer accepted (a new CSRF token)."""
    token = session_token(visitor.request)
    if token is not None:
        visitor.request.app.state.signed_out.add(token)
    response = visitor.redirect("/sign-in")
    end_session(response)
    return response


@router.post("/language")
def choose_language(
    visitor: VisitorDep,
    _csrf: CsrfDep,
    locale: Annotated[str, Form(max_length=8)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    """The language switch: remembered in a cookie for every later page."""
    if locale not in LOCALES:
        locale = visitor.locale
    response = visitor.go_back(safe_next(next) or "/")
    set_language(visitor.request, response, locale)
    return response


@router.get("/")
def home(portal: PortalDep) -> Response:
    """Each role's start page."""
    return portal.redirect(start_page(portal.actor.role, portal.actor.tenant))


def start_page(role: Role, tenant: str) -> str:
    """Where a role starts (a path under /portal)."""
    if role in (Role.PARTNER_USER, Role.PARTNER_ADMIN):
        return f"/partners/{tenant}/customers"
    if role is Role.CUSTOMER_ADMIN:
        return f"/customers/{tenant}/environment"
    if role is Role.END_USER:
        return f"/customers/{tenant}/my-pcs"
    if role is Role.AUDITOR:
        return "/audit"
    if role is Role.OPERATOR:
        return "/operations"
    return "/no-pages"


@router.get("/no-pages")
def no_pages(portal: PortalDep) -> Response:
    """A principal with no pages (a feed's service account)."""
    return portal.render("no_pages.html")


def safe_next(given: str | None) -> str | None:
    """A path to return to after sign-in: only a path of this portal (never another site's
    URL, `//host` or a backslash trick)."""
    if not given or not given.startswith("/") or given.startswith("//") or "\\" in given:
        return None
    if any(ord(c) < 0x20 for c in given) or given.startswith("/sign-"):
        return None
    return given
