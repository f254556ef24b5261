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

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
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


class SignedOut:
    """The session tokens signed out of, by SHA-256, until they could have expired: a
    copied session cookie is refused after sign-out although its token is still valid.

    Kept in this process (`serve` is one process; several would each need the set in
    shared storage) and lost at a restart; at most `limit` are kept, the oldest dropped.
    `keep_seconds` covers the longest token `token issue` mints (7 days); a session the
    demo sign-in starts lasts SESSION_SECONDS."""

    def __init__(self, keep_seconds: float = 7 * 24 * 3600, limit: int = 100_000) -> None:
        self._until: OrderedDict[bytes, float] = OrderedDict()
        self._keep, self._limit = keep_seconds, limit
        self._lock = threading.Lock()

    def add(self, token: str) -> None:
        """Refuse `token` as a session from now on."""
        with self._lock:
            self._until[_digest(token)] = time.monotonic() + self._keep
            while len(self._until) > self._limit:
                self._until.popitem(last=False)

    def __contains__(self, token: object) -> bool:
        if not isinstance(token, str):
            return False
        with self._lock:
            until = self._until.get(_digest(token))
            if until is not None and until <= time.monotonic():
                del self._until[_digest(token)]
                return False
            return until is not None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


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
    """Forget the session (sign out) and the CSRF token of the forms shown in it."""
    response.delete_cookie(SESSION_COOKIE, path=PATH, httponly=True, samesite="lax")
    forget_csrf(response)


def forget_csrf(response: Response) -> None:
    """Drop the CSRF token, so the next page issues a new one: forms shown before a sign-in
    or a sign-out are not accepted after it."""
    response.delete_cookie(CSRF_COOKIE, path=PATH, httponly=True, samesite="strict")


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
