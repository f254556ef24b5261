"""The portal's cookies: the session (a short-lived bearer token), the CSRF token, the
language.

- `partnerfleet_session`: the JWT the API would take as `Authorization: Bearer`, checked the
  same way on every request (infra/http/auth.py, then handlers.access.authenticate). It is
  HttpOnly (no script reads it), SameSite=Lax (not sent on another site's POST), scoped to
  `/portal`, Secure when the request came over HTTPS, and lives as long as the token. In
  demo mode the sign-in page mints it (SESSION_SECONDS); otherwise the identity provider's
  token is pasted or posted to the sign-in form.
- `partnerfleet_csrf`: a random value (32 bytes, hex) the server sets on the first page
  and repeats in every state-changing form (`csrf_token`) and, for htmx, in the
  `X-CSRF-Token` header (`hx-headers` on <body>). A POST whose field or header does not equal
  the cookie is refused (403) before anything runs: another site can make the browser send
  the cookie but can neither read it nor set it (double-submit cookie, OWASP). An `Origin`
  header naming another site is refused too.
- `partnerfleet_lang`: the language chosen with the page's switch (en, de).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final
from urllib.parse import urlsplit

from fastapi import Request, Response

from domain.base import Msg

SESSION_COOKIE: Final = "partnerfleet_session"
CSRF_COOKIE: Final = "partnerfleet_csrf"
LANG_COOKIE: Final = "partnerfleet_lang"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
SESSION_SECONDS: Final = 30 * 60  # a demo session's token
MAX_TOKEN_LENGTH: Final = 8192
PATH: Final = "/portal"
YEAR: Final = 365 * 24 * 3600


class CsrfError(Exception):
    """A state-changing request without the session's CSRF token, or from another site."""


def session_token(request: Request) -> str | None:
    """The bearer token of the session cookie, if any (of bounded length)."""
    token = request.cookies.get(SESSION_COOKIE)
    return token if token and len(token) <= MAX_TOKEN_LENGTH else None


def set_session(request: Request, response: Response, token: str, seconds: int) -> None:
    """Start a session carrying `token` for `seconds`."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=seconds,
        path=PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def end_session(response: Response) -> None:
    """Forget the session (sign out)."""
    response.delete_cookie(SESSION_COOKIE, path=PATH, httponly=True, samesite="lax")


def csrf_token(request: Request) -> str:
    """This browser's CSRF token: the cookie's, or a new one `remember_csrf` will set."""
    known = request.cookies.get(CSRF_COOKIE, "")
    if len(known) == 64 and all(c in "0123456789abcdef" for c in known):
        return known
    made: str | None = getattr(request.state, "new_csrf", None)
    if made is None:
        made = secrets.token_hex(32)  # hex: no text a page shows can hide in it
        request.state.new_csrf = made
    return made


def remember_csrf(request: Request, response: Response) -> None:
    """Set the CSRF cookie when this request made a new token."""
    made: str | None = getattr(request.state, "new_csrf", None)
    if made is not None:
        response.set_cookie(
            CSRF_COOKIE,
            made,
            max_age=YEAR,
            path=PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse (CsrfError) a state-changing request whose token (form field or header) is not
    the cookie's, or whose Origin is another site."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.url.netloc:
        raise CsrfError(Msg("This form was sent from another site."))
    if origin == "null":
        raise CsrfError(Msg("This form was sent from an opaque origin."))
    cookie = request.cookies.get(CSRF_COOKIE, "")
    given = submitted or request.headers.get(CSRF_HEADER, "")
    if not cookie or not given or not hmac.compare_digest(cookie.encode(), given.encode()):
        raise CsrfError(Msg("This form has expired or was not sent from this portal."))


def set_language(request: Request, response: Response, locale: str) -> None:
    """Remember the language chosen with the page's switch."""
    response.set_cookie(
        LANG_COOKIE,
        locale,
        max_age=YEAR,
        path=PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
