"""Which Chromium the browser tests drive, and what happens without one (issue 10: `make
test` runs them whenever a Chromium is found; CI requires them). No browser is started."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.browser.support import CHROMIUM_ENV, REQUIRE_ENV, chromium_or_skip, find_chromium


def nothing_on_path(name: str) -> str | None:
    return None


@pytest.fixture
def executable(tmp_path: Path) -> str:
    """An executable file standing in for a browser."""
    made = tmp_path / "my-chromium"
    made.write_text("#!/bin/sh\n")
    made.chmod(made.stat().st_mode | stat.S_IXUSR)
    return str(made)


def test_the_browser_named_in_partnerfleet_chromium_comes_first(executable: str) -> None:
    found = find_chromium({CHROMIUM_ENV: executable}, lambda name: "/usr/bin/" + name)

    assert found == executable


def test_a_named_browser_that_does_not_exist_is_no_browser(tmp_path: Path) -> None:
    """No silent fall-back to another browser than the one asked for."""
    found = find_chromium({CHROMIUM_ENV: str(tmp_path / "absent")}, lambda name: "/usr/bin/x")

    assert found is None


def test_chromium_then_chromium_browser_on_path() -> None:
    on_path = {"chromium-browser": "/snap/bin/chromium-browser"}

    found = find_chromium({}, on_path.get, debian_path="/absent/chromium")

    assert found == "/snap/bin/chromium-browser"


def test_the_debian_path_when_nothing_is_on_path(executable: str) -> None:
    found = find_chromium({}, nothing_on_path, debian_path=executable)

    assert found == executable


def test_without_a_browser_the_tests_are_skipped_saying_how_to_get_one() -> None:
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        chromium_or_skip({}, nothing_on_path, debian_path="/absent/chromium")


@pytest.mark.parametrize("required", ["1", "true", "yes"])
def test_without_a_browser_ci_fails_the_tests(required: str) -> None:
    with pytest.raises(pytest.fail.Exception, match=REQUIRE_ENV):
        chromium_or_skip({REQUIRE_ENV: required}, nothing_on_path, debian_path="/absent/x")


@pytest.mark.parametrize("not_required", ["", "0", "false", "no"])
def test_an_unset_or_false_requirement_skips(not_required: str) -> None:
    with pytest.raises(pytest.skip.Exception):
        chromium_or_skip({REQUIRE_ENV: not_required}, nothing_on_path, debian_path="/absent/x")
