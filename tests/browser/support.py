"""What the browser stories share: finding a Chromium, the demo server, signing in by
clicking, the accessibility check and screenshots.

Chromium is the distribution's package (`/usr/bin/chromium` on Debian), launched by
Playwright through `executable_path`: Playwright's own browser download is not used.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import FloatRect, Locator, Page, expect

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe-core-4.11.4.min.js"
CLI = Path(sys.executable).parent / "partnerfleet"
CANDIDATES = ("chromium", "chromium-browser")
DEBIAN_PATH = "/usr/bin/chromium"
REQUIRE_ENV = "PARTNERFLEET_REQUIRE_BROWSER"
CHROMIUM_ENV = "PARTNERFLEET_CHROMIUM"
HOW_TO_GET_ONE = (
    "No Chromium found for the browser tests. Install one (Debian: `apt-get install chromium`;"
    " Ubuntu: `snap install chromium` or a chromium .deb; macOS: `brew install --cask chromium`)"
    f" or name its executable in {CHROMIUM_ENV}."
)
BLOCKING_IMPACTS = ("serious", "critical")
MAX_SHOT_HEIGHT = 1600.0  # pixels of a screenshot: enough to show a page, not a long list


def find_chromium(
    environ: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    debian_path: str = DEBIAN_PATH,
) -> str | None:
    """The Chromium executable to drive: PARTNERFLEET_CHROMIUM if set (a path, or a name on
    PATH; it must exist, no fall-back), else `chromium` or `chromium-browser` on PATH, else
    /usr/bin/chromium; None if none."""
    environ = os.environ if environ is None else environ
    named = environ.get(CHROMIUM_ENV, "").strip()
    if named:
        path = named if os.sep in named else (which(named) or named)
        return path if os.access(path, os.X_OK) and Path(path).is_file() else None
    for name in CANDIDATES:
        found = which(name)
        if found:
            return found
    return debian_path if os.access(debian_path, os.X_OK) else None


def chromium_or_skip(
    environ: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    debian_path: str = DEBIAN_PATH,
) -> str:
    """The Chromium to drive; none found: skip (saying how to get one), or fail when
    PARTNERFLEET_REQUIRE_BROWSER is set (CI)."""
    found = find_chromium(environ, which, debian_path)
    if found is not None:
        return found
    if browser_required(environ):
        pytest.fail(f"{HOW_TO_GET_ONE} ({REQUIRE_ENV} is set.)")
    pytest.skip(HOW_TO_GET_ONE)


def browser_required(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a missing Chromium fails the browser tests (CI) instead of skipping them."""
    environ = os.environ if environ is None else environ
    return environ.get(REQUIRE_ENV, "").strip() not in ("", "0", "false", "no")


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def unconfigured() -> dict[str, str]:
    """This process's environment without storage, broker or key configuration, so the
    server is the SQLite demo under its working directory."""
    names = ("POSTGRES_", "DATABASE_URL", "SQLITE_", "VIEWS_SQLITE", "KAFKA_", "JWT_", "JWKS_")
    return {k: v for k, v in os.environ.items() if not k.startswith(names)}


@dataclass
class DemoServer:
    """`partnerfleet serve --demo` in a subprocess, in `workdir` (its var/ holds the store),
    on a free loopback port; `start` returns once /healthz shows no lag."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's root URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        """Where the server's output goes."""
        return self.workdir / "server.log"

    def start(self, timeout: float = 90.0) -> DemoServer:
        """Start it and wait until its views and policies have caught up (RuntimeError with
        the end of its log if it exits or is not ready within `timeout` seconds)."""
        env = {**unconfigured(), "PORT": str(self.port), "LOG_LEVEL": "warning"}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(CLI), "serve", "--demo"],
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"The demo server exited: {self._tail()}")
            if self._caught_up():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"The demo server was not ready in {timeout} s: {self._tail()}")

    def _caught_up(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                body: dict[str, Any] = json.loads(answer.read())
        except OSError:
            return False
        behind = [*body["views_lag"].values(), *body["policies_lag"].values()]
        return body["status"] == "ok" and not any(behind)

    def token(self, subject: str) -> str:
        """A bearer token for the demo principal `subject`, signed with this server's demo
        key (`partnerfleet token issue --demo` in its working directory)."""
        issued = subprocess.run(
            [str(CLI), "token", "issue", "--demo"],
            cwd=self.workdir,
            env=unconfigured(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        for line in issued.stdout.splitlines():
            _, who, _, token = line.split("\t")
            if who == subject:
                return token
        raise LookupError(f"{subject} is no demo principal")

    def post_json(self, path: str, body: object, subject: str) -> dict[str, Any]:
        """POST `body` as JSON to the HTTP API as `subject` (the way a feed calls it); the
        answer's JSON (HTTPError for a refusal)."""
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {self.token(subject)}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            found: dict[str, Any] = json.loads(answer.read())
            return found

    def stop(self) -> None:
        """Stop it (SIGINT, as Ctrl-C would; killed if it does not stop in 20 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def seed_template(workdir: Path) -> Path:
    """A seeded demo store (events, caught-up views, demo key) under `workdir`/var, made
    once by serving it until it has caught up; servers start from copies of it."""
    DemoServer(workdir).start().stop()
    return workdir / "var"


def server_from(template: Path, workdir: Path) -> DemoServer:
    """A demo server of its own over a copy of the seeded `template` store."""
    shutil.copytree(template, workdir / "var")
    return DemoServer(workdir).start()


@dataclass
class Checked:
    """The pages one test visited and which of them had the accessibility check."""

    visited: list[str] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def unchecked(self) -> list[str]:
        """Pages visited (by path) that never had the accessibility check."""
        return sorted({p for p in self.visited if p not in self.checked})


def path_of(url: str) -> str:
    """The path of `url` (the query left out): what a page is, for the checks."""
    return urlsplit(url).path


def watch(page: Page, seen: Checked) -> None:
    """Record in `seen` every page `page` loads and every script error it raises."""
    page.on("load", lambda loaded: seen.visited.append(path_of(loaded.url)))
    page.on("pageerror", lambda error: seen.errors.append(str(error)))


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ['violations']});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.map(n => n.target.join(' ')).slice(0, 5),
            }));
        }"""
    )
    return [v for v in found if v["impact"] in BLOCKING_IMPACTS]


def describe(violations: list[dict[str, Any]]) -> str:
    """Violations as lines a person can act on."""
    return "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']} at {', '.join(v['targets'])}" for v in violations
    )


def sign_in_as(page: Page, base_url: str, subject: str, check: Callable[[], None]) -> None:
    """Sign in as the demo principal `subject` by clicking its button on the sign-in page
    (`check`ed first); returns on the principal's start page."""
    page.goto(f"{base_url}/portal/sign-in")
    check()
    page.get_by_role("button", name=subject, exact=True).click()
    expect(page).not_to_have_url(f"{base_url}/portal/sign-in")
    expect(page.locator("p.principal")).to_contain_text(subject)


def screenshot(page: Page, name: str, start: Locator | None = None) -> Path:
    """Save the page (from `start`'s top, if given; at most MAX_SHOT_HEIGHT pixels of it) as
    var/screenshots/`name`.png; `make screenshots` copies them into docs/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    top = (
        0.0
        if start is None
        else float(start.evaluate("e => e.getBoundingClientRect().top + window.scrollY"))
    )
    size = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    clip: FloatRect = {
        "x": 0,
        "y": top,
        "width": float(size[0]),
        "height": min(MAX_SHOT_HEIGHT, float(size[1]) - top),
    }
    page.screenshot(path=str(target), full_page=True, clip=clip)
    return target
