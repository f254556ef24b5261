"""English and German for the portal: the locale of a request, and its translations.

Messages go through gettext: templates use `_()` / `{% trans %}`, Python uses
`translations(locale).gettext`. The catalog is `infra/web/locales/<locale>/LC_MESSAGES/
messages.po` (Babel's PO format), read and compiled in memory at start: there is no build
step and no binary catalog in the repository. `make translations` extracts the messages of
the domain, the handlers, the queries and the portal (babel.cfg) into `messages.pot` and
merges them into each locale's catalog.

A domain refusal (`DomainError`) whose message is a `domain.base.Msg` is translated from its
template and filled with its parameters (`refusal_text`); the English text is the
template filled, so the API's problem `detail` stays English.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES: Final = ("en", "de")
DEFAULT_LOCALE: Final = "en"
LOCALE_DIR: Final = Path(__file__).parent / "locales"
LANGUAGE_NAMES: Final = {"en": "English", "de": "Deutsch"}


@functools.cache
def translations(locale: str) -> NullTranslations:
    """The compiled catalog of `locale` (one of LOCALES); English is the source language.

    Fuzzy entries are left out, so an unchecked translation shows the English text.
    Raises ValueError for a locale the portal does not speak."""
    if locale not in LOCALES:
        raise ValueError(f"The portal speaks {', '.join(LOCALES)}, not {locale!r}.")
    if locale == DEFAULT_LOCALE:
        return NullTranslations()
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def negotiate(accept_language: str | None, chosen: str | None = None) -> str:
    """The locale of a request: `chosen` (the page's language switch, a cookie) when it is
    one of LOCALES, else the best of the `Accept-Language` header (RFC 9110 q-values),
    else English."""
    if chosen in LOCALES:
        return str(chosen)
    wanted = _preferences(accept_language or "")
    found = Locale.negotiate(wanted, list(LOCALES), sep="-") if wanted else None
    return str(found.language) if found is not None else DEFAULT_LOCALE


def _preferences(header: str) -> list[str]:
    """Language tags of an Accept-Language header, best first (q=0 left out)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0 and _known(tag.strip()):
            ranked.append((-quality, index, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


def _known(tag: str) -> bool:
    try:
        Locale.parse(tag, sep="-")
    except (ValueError, UnknownLocaleError):
        return False
    return True


def refusal_text(error: BaseException, locale: str) -> str:
    """A refusal's message in `locale`: a `Msg` is translated from its template and filled
    with its parameters; any other message is looked up as it is (and shown in English
    when the catalog lacks it)."""
    message = error.args[0] if error.args else str(error)
    return message_text(message, locale)


def message_text(message: object, locale: str) -> str:
    """`message` in `locale`: a `Msg`'s template translated and filled with its parameters,
    a parameter that is itself a `Msg` (a part of a sentence: `domain.text.describe`)
    translated the same way; any other text looked up as it is."""
    template: str | None = getattr(message, "template", None)
    params: Mapping[str, object] | None = getattr(message, "params", None)
    gettext = translations(locale).gettext
    if template is None or params is None:
        return gettext(str(message))
    if not params:  # as `Msg` does: a template without parameters is the text itself
        return gettext(template)
    filled = {
        name: message_text(value, locale) if hasattr(value, "template") else value
        for name, value in params.items()
    }
    return gettext(template).format(**filled)
