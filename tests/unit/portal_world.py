"""The portal (infra/web) over an in-memory fleet, for page tests without a browser.

`Browser` is a test client that keeps cookies like a browser: `sign_in(who)` starts a
session with the token `who` (tests/unit/http_world.py's Verifier takes a principal's name as
its token), `post()` sends the CSRF token of the cookie as a form field, and `htmx=True`
sends what htmx sends (HX-Request, X-CSRF-Token).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from handlers import PartnerFleet
from handlers.access import Claims
from infra.follow.view_runner import ViewRunner
from infra.web.app import create_portal
from infra.web.session import CSRF_COOKIE, SESSION_COOKIE
from tests.unit.http_world import PRINCIPALS, app_over
from tests.views import memory_runner

BASE = "http://portal.test"


class Browser(TestClient):
    """Cookies kept across requests; redirects are not followed unless asked."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(app, base_url=BASE, raise_server_exceptions=False, follow_redirects=False)

    def sign_in(self, who: str) -> None:
        """A session as the principal `who` (and the CSRF cookie of a first page)."""
        self.cookies.set(SESSION_COOKIE, who, domain="portal.test", path="/portal")
        self.csrf()

    def csrf(self) -> str:
        """This browser's CSRF token (a first page sets it)."""
        if CSRF_COOKIE not in self.cookies:
            self.get("/portal/sign-in")
        return str(self.cookies[CSRF_COOKIE])

    def post_form(
        self, path: str, data: Mapping[str, Any] | None = None, *, htmx: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """A form POST with this browser's CSRF token (as htmx sends it, when `htmx`)."""
        token = self.csrf()
        form = dict(data or {})
        headers = dict(kwargs.pop("headers", {}))
        if htmx:
            headers |= {"HX-Request": "true", "X-CSRF-Token": token}
        else:
            form.setdefault("csrf_token", token)
        answer: httpx.Response = self.post(path, data=form, headers=headers, **kwargs)
        return answer


@dataclass
class Portal:
    """A fleet, its read models and a browser on the portal over them."""

    fleet: PartnerFleet
    views: ViewRunner
    browser: Browser

    def close(self) -> None:
        """Close the browser and the views' database."""
        self.browser.__exit__(None, None, None)
        self.views.db.close()


def open_portal(fleet: PartnerFleet, tokens: Mapping[str, Claims] = PRINCIPALS) -> Portal:
    """The portal over `fleet` (its views caught up), and a browser without a session."""
    views = memory_runner(fleet)
    views.catch_up()
    api = app_over(fleet, views, tokens)
    create_portal(api)
    browser = Browser(api)
    browser.__enter__()
    return Portal(fleet, views, browser)
