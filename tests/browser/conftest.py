"""Fixtures of the browser stories: one headless Chromium per session, a fresh context
(cookies, storage) per test, and a demo server per story module.

No Chromium: every browser test is skipped with a reason saying how to get one, unless
PARTNERFLEET_REQUIRE_BROWSER=1 (CI), which makes them fail instead. The demo is seeded once
per session (`partnerfleet serve --demo` until it has caught up); each story module gets a
server of its own over a copy of that store, so stories that change data never meet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.browser.support import (
    Checked,
    DemoServer,
    axe_violations,
    chromium_or_skip,
    describe,
    path_of,
    seed_template,
    server_from,
    sign_in_as,
    watch,
)


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable (skip, or fail under PARTNERFLEET_REQUIRE_BROWSER=1, if none)."""
    return chromium_or_skip()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver, for the browser tests only: its sync API keeps an event loop
    running on the main thread, so it must end before any other test (asyncio.run) runs."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(chromium: str, playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the whole session (no sandbox: tests may run as root)."""
    launched = playwright.chromium.launch(
        executable_path=chromium, headless=True, args=["--no-sandbox"]
    )
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def demo_store(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo store, seeded once per session (after a Chromium was found)."""
    return seed_template(tmp_path_factory.mktemp("demo-template"))


@pytest.fixture(scope="module")
def server(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """A demo server of this story module's own, stopped after it."""
    running = server_from(demo_store, tmp_path_factory.mktemp("demo-server"))
    yield running
    running.stop()


@pytest.fixture
def context(browser: Browser, server: DemoServer) -> Iterator[BrowserContext]:
    """A fresh browser context (no cookies) speaking English, 1280x900."""
    made = browser.new_context(
        base_url=server.url, locale="en-US", viewport={"width": 1280, "height": 900}
    )
    made.set_default_timeout(10_000)
    yield made
    made.close()


@pytest.fixture
def no_script(browser: Browser, server: DemoServer) -> Iterator[Page]:
    """A tab with JavaScript off (no htmx): plain forms and links only. axe cannot run
    there, so its pages are the same URLs the other stories scan with JavaScript on."""
    made = browser.new_context(base_url=server.url, locale="en-US", java_script_enabled=False)
    made.set_default_timeout(10_000)
    yield made.new_page()
    made.close()


@pytest.fixture
def seen() -> Checked:
    """The pages this test's tab loaded and checked."""
    return Checked()


@pytest.fixture
def page(context: BrowserContext, seen: Checked) -> Iterator[Page]:
    """A tab; at the end, every page it loaded must have had the accessibility check and
    no script may have raised."""
    opened = context.new_page()
    watch(opened, seen)
    yield opened
    _no_gaps(seen)


@pytest.fixture
def axe(page: Page, seen: Checked) -> Callable[[], None]:
    """Check the page as it is now with axe-core: no violation of impact serious or
    critical (each listed with its rule, help and where)."""

    def check() -> None:
        seen.checked.add(path_of(page.url))
        violations = axe_violations(page)
        assert not violations, f"axe on {page.url}:\n{describe(violations)}"

    return check


@pytest.fixture
def sign_in(page: Page, server: DemoServer, axe: Callable[[], None]) -> Callable[[str], None]:
    """Sign in as a demo principal (by its subject) by clicking on the sign-in page, which
    gets the accessibility check; returns on the principal's start page."""

    def as_subject(subject: str) -> None:
        sign_in_as(page, server.url, subject, axe)

    return as_subject


def _no_gaps(seen: Checked) -> None:
    assert not seen.errors, f"Scripts raised on the page: {seen.errors}"
    assert not seen.unchecked(), f"Pages without the accessibility check: {seen.unchecked()}"
