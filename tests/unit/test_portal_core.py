"""The portal's core (issue 10): sign-in and its session cookie, CSRF, the language, links,
static files and error pages, without a browser."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from handlers.access import Role
from infra.tokens import SigningKey, demo_signing_key
from infra.web.app import create_portal
from infra.web.i18n import negotiate
from infra.web.pages.sign_in import safe_next, start_page
from infra.web.rendering import href, static
from infra.web.session import CSRF_COOKIE, SESSION_COOKIE
from tests.unit.access_world import world
from tests.unit.http_world import app_over
from tests.unit.portal_world import Browser, Portal, open_portal
from tests.views import memory_runner


@pytest.fixture
def portal() -> Iterator[Portal]:
    """The access world's portal (tokens are principals' names)."""
    opened = open_portal(world())
    yield opened
    opened.close()


def test_the_root_sends_a_browser_to_the_portal_and_the_portal_to_sign_in(portal: Portal) -> None:
    root = portal.browser.get("/")
    home = portal.browser.get("/portal/")

    assert (root.status_code, root.headers["location"]) == (307, "/portal/")
    assert home.status_code == 303
    assert home.headers["location"].startswith("/portal/sign-in")


@pytest.mark.parametrize(
    ("who", "start"),
    [
        ("anna", "/portal/partners/LOC-1/customers"),
        ("c1", "/portal/customers/C1/environment"),
        ("eu1", "/portal/customers/C1/my-pcs"),
        ("auditor", "/portal/audit"),
        ("ops", "/portal/operations"),
        ("feed", "/portal/no-pages"),
    ],
)
def test_r_par_2_each_role_starts_on_its_own_page(portal: Portal, who: str, start: str) -> None:
    portal.browser.sign_in(who)

    answer = portal.browser.get("/portal/")

    assert (answer.status_code, answer.headers["location"]) == (303, start)


def test_start_pages_are_known_for_every_role_that_signs_in() -> None:
    assert {start_page(role, "T") for role in Role if role is not Role.POLICY} >= {
        "/audit",
        "/operations",
    }


def test_a_session_without_a_valid_token_goes_to_sign_in_and_htmx_is_redirected(
    portal: Portal,
) -> None:
    portal.browser.sign_in("forged-token")

    page = portal.browser.get("/portal/partners/LOC-1/customers")
    partial = portal.browser.get("/portal/partners/LOC-1/customers", headers={"HX-Request": "true"})

    assert page.status_code == 303
    assert (partial.status_code, partial.headers["HX-Redirect"][:15]) == (204, "/portal/sign-in")


@pytest.mark.parametrize(
    "given",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "/sign-in",
        "/sign-out",
        "relative",
        "/ok\r\nSet-Cookie: x=1",
    ],
)
def test_sign_in_returns_only_to_a_path_of_this_portal(given: str) -> None:
    assert safe_next(given) is None


def test_sign_in_returns_to_the_page_asked_for() -> None:
    assert safe_next("/partners/LOC-1/customers?search=a") == "/partners/LOC-1/customers?search=a"


@pytest.fixture
def demo_portal(tmp_path: object) -> Iterator[tuple[Browser, SigningKey]]:
    """A portal whose sign-in page lists the demo principals and mints with a demo key;
    the verifier is the access world's (tokens are names), so the minted token is checked
    only by the sign-in's own verification here."""
    from pathlib import Path

    key = demo_signing_key(Path(str(tmp_path)) / "key.pem")
    fleet = world()
    views = memory_runner(fleet)
    views.catch_up()
    api = app_over(fleet, views)
    create_portal(api, key)
    browser = Browser(api)
    with browser:
        yield browser, key
    views.db.close()


def test_demo_sign_in_lists_the_demo_principals_each_a_button(
    demo_portal: tuple[Browser, SigningKey],
) -> None:
    browser, _ = demo_portal

    page = browser.get("/portal/sign-in")

    assert page.status_code == 200
    assert 'data-subject="hp-ops@example.com"' in page.text
    assert 'data-subject="anna@reseller.example"' in page.text
    assert page.text.count('name="principal"') >= 10


def test_a_token_the_verifier_refuses_is_shown_and_sets_no_session(portal: Portal) -> None:
    portal.browser.csrf()

    answer = portal.browser.post_form("/portal/sign-in", {"token": "not-a-known-token"})

    assert answer.status_code == 401
    assert 'role="alert"' in answer.text
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


def test_a_given_token_starts_an_http_only_same_site_session(portal: Portal) -> None:
    answer = portal.browser.post_form("/portal/sign-in", {"token": "anna", "next": "/audit"})

    cookie = answer.headers["set-cookie"]
    assert answer.status_code == 303
    assert answer.headers["location"] == "/portal/audit"
    assert cookie.startswith(f"{SESSION_COOKIE}=anna;")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/portal" in cookie
    assert "Max-Age=1800" in cookie


def test_sign_in_without_the_csrf_token_is_refused(portal: Portal) -> None:
    portal.browser.csrf()

    answer = portal.browser.post("/portal/sign-in", data={"token": "anna"})

    assert answer.status_code == 403
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


def test_sign_out_ends_the_session(portal: Portal) -> None:
    portal.browser.sign_in("anna")

    answer = portal.browser.post_form("/portal/sign-out")
    after = portal.browser.get("/portal/partners/LOC-1/customers")

    assert answer.status_code == 303
    assert after.status_code == 303
    assert after.headers["location"].startswith("/portal/sign-in")


def test_the_csrf_token_is_hex_and_the_same_in_cookie_form_and_htmx_header(
    portal: Portal,
) -> None:
    page = portal.browser.get("/portal/sign-in")

    token = str(portal.browser.cookies[CSRF_COOKIE])
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    assert f'name="csrf_token" value="{token}"' in page.text
    assert f'"X-CSRF-Token": "{token}"' in page.text
    assert "SameSite=strict" in page.headers["set-cookie"]


@pytest.mark.parametrize(
    ("header", "chosen", "locale"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", None, "de"),
        ("en-US,en;q=0.9,de;q=0.8", None, "en"),
        ("fr-FR,de;q=0.5", None, "de"),
        ("de;q=0, en;q=0.1", None, "en"),
        ("fr, es", None, "en"),
        ("", None, "en"),
        ("de", "en", "en"),
        ("en", "de", "de"),
        ("de", "xx", "de"),
        ("*;q=1, de;q=0.2", None, "de"),
        ("de;q=abc, en;q=0.5", None, "en"),
    ],
)
def test_the_language_is_the_switchs_else_the_best_accepted_else_english(
    header: str, chosen: str | None, locale: str
) -> None:
    assert negotiate(header, chosen) == locale


def test_links_keep_an_id_in_one_path_segment() -> None:
    assert href("/partners/LOC 1?x#y%/customers") == "/portal/partners/LOC%201%3Fx%23y%25/customers"
    assert href("/audit", serial="S 1", at=None) == "/portal/audit?serial=S+1"


def test_static_files_are_served_under_a_version_of_their_content(portal: Portal) -> None:
    url = static("vendor/htmx-2.0.11.min.js")

    answer = portal.browser.get(url)

    assert re.fullmatch(r"/portal/static/vendor/htmx-2\.0\.11\.min\.js\?v=[0-9a-f]{12}", url)
    assert answer.status_code == 200
    assert answer.content.startswith(b"var htmx=function()")


def test_an_unknown_page_is_a_404_page_in_html(portal: Portal) -> None:
    portal.browser.sign_in("anna")

    answer = portal.browser.get("/portal/no/such/page")

    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "<h1>" in answer.text


def test_an_unexpected_error_is_a_500_page_naming_the_request_not_a_trace(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    portal.browser.sign_in("anna")

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret-internal-detail")

    monkeypatch.setattr("infra.web.pages.customers.list_customers", broken)
    with capture_logs() as logs:
        answer = portal.browser.get("/portal/partners/LOC-1/customers")

    assert answer.status_code == 500
    assert "secret-internal-detail" not in answer.text
    assert "Traceback" not in answer.text
    assert answer.headers["x-request-id"] in answer.text
    assert any(entry["event"] == "portal_error" for entry in logs)


def test_a_session_cookie_copied_before_sign_out_is_refused_after_it(portal: Portal) -> None:
    """Sign-out ends the session, not only the cookie: the same token replayed (a copied
    cookie, a shared machine's history) goes to sign-in, and its old form records
    nothing (issue 10 attack, finding 4)."""
    portal.browser.sign_in("anna")
    old_csrf = portal.browser.csrf()
    before = len(portal.fleet.recorder.select_notifications(start=1, limit=1_000_000))

    signed_out = portal.browser.post_form("/portal/sign-out")
    portal.browser.cookies.set(SESSION_COOKIE, "anna", domain="portal.test", path="/portal")
    portal.browser.cookies.set(CSRF_COOKIE, old_csrf, domain="portal.test", path="/portal")
    page = portal.browser.get("/portal/partners/LOC-1/customers")
    replayed = portal.browser.post(
        "/portal/partners/LOC-1/customers/view",
        data={"view": "favorites_only", "csrf_token": old_csrf},
    )

    after = len(portal.fleet.recorder.select_notifications(start=1, limit=1_000_000))
    assert signed_out.status_code == 303
    assert CSRF_COOKIE in signed_out.headers["set-cookie"]  # dropped: a new one follows
    assert (page.status_code, replayed.status_code) == (303, 303)
    assert page.headers["location"].startswith("/portal/sign-in")
    assert replayed.headers["location"] == "/portal/sign-in"
    assert after == before


def test_signing_in_issues_a_new_csrf_token(portal: Portal) -> None:
    """Forms shown before a sign-in are not accepted in the session it starts."""
    first = portal.browser.csrf()

    answer = portal.browser.post_form("/portal/sign-in", {"token": "anna"})
    portal.browser.cookies.delete(CSRF_COOKIE)  # as the browser does on the Max-Age=0 cookie
    second = portal.browser.csrf()

    assert f'{CSRF_COOKIE}=""' in answer.headers["set-cookie"]
    assert second != first
