"""Jinja2 for the portal: one environment per locale, each with its gettext installed.

Templates live in infra/web/templates (autoescaped HTML; `_()`, `ngettext()` and
`{% trans %}` for every text a person reads). A page template extends `base.html`; a
fragment htmx swaps in place starts with `_` and is also included by its page, so the page
and its partial update render the same markup.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from infra.web.i18n import LANGUAGE_NAMES, LOCALES, translations

TEMPLATES: Final = Path(__file__).parent / "templates"
PREFIX: Final = "/portal"
STATIC_VERSION: Final = "1"  # bump when a static file changes: browsers cache them a day


def href(path: str, **query: Any) -> str:
    """A portal URL: `path` under /portal, with the query parameters that are not None."""
    given = {k: v for k, v in query.items() if v is not None and v != ""}
    return f"{PREFIX}{path}" + (f"?{urlencode(given, doseq=True)}" if given else "")


def static(name: str) -> str:
    """The URL of a static file (infra/web/static)."""
    return f"{PREFIX}/static/{name}?v={STATIC_VERSION}"


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
