"""Jinja2 for the portal: one environment per locale, each with its gettext installed.

Templates live in infra/web/templates (autoescaped HTML; `_()`, `ngettext()` and
`{% trans %}` for every text a person reads). A page template extends `base.html`; a
fragment htmx swaps in place starts with `_` and is also included by its page, so the page
and its partial update render the same markup.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from infra.web.i18n import LANGUAGE_NAMES, LOCALES, translations

TEMPLATES: Final = Path(__file__).parent / "templates"
PREFIX: Final = "/portal"
STATIC: Final = Path(__file__).parent / "static"


def href(path: str, **query: Any) -> str:
    """A portal URL: `path` under /portal (percent-encoded: an id with `?`, `#`, `%` or a
    space stays one path segment), with the query parameters that are not None."""
    given = {k: v for k, v in query.items() if v is not None and v != ""}
    encoded = quote(path, safe="/")
    return f"{PREFIX}{encoded}" + (f"?{urlencode(given, doseq=True)}" if given else "")


@functools.cache
def static_version() -> str:
    """A digest of every static file: a changed file gets a new URL, so a browser never
    keeps an old copy (they may cache them)."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def static(name: str) -> str:
    """The URL of a static file (infra/web/static)."""
    return f"{PREFIX}/static/{name}?v={static_version()}"


@functools.cache
def environment(locale: str) -> Environment:
    """The template environment of `locale` (one of LOCALES), made once."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        href=href, static=static, locale=locale, languages=LANGUAGE_NAMES, locales=LOCALES
    )
    return env


def render(locale: str, template: str, context: dict[str, Any]) -> str:
    """`template` rendered in `locale` with `context`."""
    return environment(locale).get_template(template).render(context)
