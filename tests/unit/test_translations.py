"""The German catalog is complete and the refusals read in German (issue 10).

The catalog test extracts the messages as `make translations` does (babel.cfg, the same
keywords) and fails when a msgid has no German, a fuzzy one, or one whose placeholders
differ from the English: a new English string without German fails here, and the message
says to run `make translations`.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from uuid import UUID

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from domain import CustomerGroup, NotFoundError
from domain.base import DomainError, Msg
from domain.group_support import DeletionRefusedError
from domain.passport import FavouriteError
from domain.text import TextError, checked
from handlers import PartnerFleet
from handlers.access import ForbiddenError
from infra.web.i18n import LOCALE_DIR, LOCALES, refusal_text
from tests.actors import customer
from tests.unit.conftest import ANNA, CUSTOMER, OTTO, refused, servers, to

ROOT = Path(__file__).resolve().parents[2]
# The keywords of `make translations` (Makefile); a drift test below keeps them equal.
KEYWORDS = ("Msg", "_N", "gettext", "ngettext:1,2", "_")
RUN = "Run `make translations` and translate the new or changed msgids in"


def extracted(tmp_path: Path) -> Catalog:
    """The messages of the code as it is now, extracted as `make translations` does."""
    pot = tmp_path / "messages.pot"
    keywords = [arg for keyword in KEYWORDS for arg in ("--keywords", keyword)]
    mapping = ["--mapping-file", str(ROOT / "babel.cfg"), "--output-file", str(pot)]
    cli = CommandLineInterface()
    cli.run(["pybabel", "-q", "extract", *mapping, *keywords, str(ROOT)])  # type: ignore[no-untyped-call]
    with pot.open("rb") as source:
        return read_po(source)


def catalog(locale: str) -> Catalog:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as source:
        return read_po(source, locale=locale)


def placeholders(text: str) -> list[str]:
    """The fields of a text: str.format fields with their conversion, and %(name)s ones.

    A format spec may differ (German leaves out the "," thousands separator of English)."""
    fields = [f"{{{name}!{conv}}}" for _, name, _, conv in _parsed(text) if name is not None]
    return sorted(fields + re.findall(r"%\(\w+\)[sd]", text))


def _parsed(text: str) -> list[tuple[str, str | None, str | None, str | None]]:
    return list(string.Formatter().parse(text))


def forms(message: Message) -> list[str]:
    """The English forms of a message (two for a plural)."""
    return _texts(message.id)


def translated(message: Message) -> list[str]:
    """The translated forms of a message ("" where missing)."""
    return _texts(message.string)


def _texts(found: object) -> list[str]:
    if isinstance(found, tuple | list):
        return [str(text or "") for text in found]
    return [str(found or "")]


@pytest.mark.parametrize("locale", [x for x in LOCALES if x != "en"])
def test_every_message_of_the_code_has_a_checked_translation(tmp_path: Path, locale: str) -> None:
    """Issue 10: no msgid of the code is missing, untranslated or fuzzy in the catalog."""
    known = catalog(locale)

    problems = []
    for message in extracted(tmp_path):
        if not message.id:
            continue
        found = known.get(message.id)
        if found is None:
            problems.append(f"missing: {message.id!r}")
        elif found.fuzzy or not all(translated(found)):
            problems.append(f"{'fuzzy' if found.fuzzy else 'untranslated'}: {message.id!r}")

    assert problems == [], f"{RUN} {locale}/LC_MESSAGES/messages.po:\n" + "\n".join(problems)


@pytest.mark.parametrize("locale", [x for x in LOCALES if x != "en"])
def test_every_translation_has_the_placeholders_of_its_msgid(locale: str) -> None:
    """Issue 10: a translation fills the same fields as the English ({serial}, %(num)d)."""
    differing = [
        f"{message.id!r} -> {text!r}"
        for message in catalog(locale)
        if message.id
        for text in translated(message)
        if placeholders(text) != placeholders(forms(message)[0])
    ]

    assert differing == [], "Keep every placeholder of the English text:\n" + "\n".join(differing)


def test_the_catalog_has_no_fuzzy_and_no_obsolete_entries() -> None:
    """`make translations` ran without fuzzy matching; no leftover entries are kept."""
    german = catalog("de")

    assert [m.id for m in german if m.fuzzy and m.id] == []
    assert german.obsolete == {}


def test_the_keywords_are_those_of_make_translations() -> None:
    """The extraction above is the Makefile's: the same keywords, the same mapping."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")

    assert all(f"--keywords {keyword}" in makefile for keyword in KEYWORDS)
    assert "--mapping-file babel.cfg" in makefile


def test_the_placeholder_check_sees_a_lost_or_renamed_field() -> None:
    """The placeholder test would fail on a translation that drops or renames a field."""
    english = "Device {serial} has no alert {alert_id}."

    assert placeholders("Gerät {serial} hat keine Warnung {alert_id}.") == placeholders(english)
    assert placeholders("Gerät {serial} hat keine Warnung.") != placeholders(english)
    assert placeholders("Gerät {serial!r} hat keine Warnung {alert}.") != placeholders(english)


@pytest.fixture
def groups(app: PartnerFleet, partner: str) -> list[UUID]:
    """26 customers, each with one server linked to LOC-1: 26 customer groups of LOC-1."""
    for n in range(26):
        admin = customer(f"C{n}", f"admin@c{n}.example", f"corr-c{n}")
        app.register_devices(admin, f"C{n}", servers(f"S{n}"), to(partner))
    return [CustomerGroup.id_for(partner, f"C{n}") for n in range(26)]


def test_r_fav_2_the_26th_favourite_is_refused_in_german(
    app: PartnerFleet, groups: list[UUID]
) -> None:
    """R-FAV-2: the refusal of a favourite beyond 25 reads in German, with the number."""
    for group_id in groups[:25]:
        app.add_favourite(ANNA, group_id)

    with refused(app, FavouriteError, "You already have 25 favourites") as refusal:
        app.add_favourite(ANNA, groups[25])

    assert refusal_text(refusal.value, "de") == (
        "Sie haben bereits 25 Favoriten, die zulässige Höchstzahl; entfernen Sie einen, "
        "bevor Sie einen weiteren hinzufügen."
    )
    assert refusal_text(refusal.value, "en") == str(refusal.value)


def test_r_grp_2_a_refused_group_deletion_reads_in_german_with_its_reasons(
    app: PartnerFleet, linked_group: UUID
) -> None:
    """R-GRP-2: the deletion's refusal and each of its reasons are translated."""
    app.create_child_group(ANNA, linked_group, "racks", "Racks")

    with refused(app, DeletionRefusedError, "cannot be deleted") as refusal:
        app.delete_customer_group(ANNA, linked_group)

    assert refusal_text(refusal.value, "de") == (
        "Die Kundengruppe kann nicht gelöscht werden: 2 Gerät(e) sind noch mit ihr verknüpft; "
        "1 vom Partner erstellte untergeordnete Gruppe(n) sind noch vorhanden, 0 davon nicht "
        f"für Sie freigegeben. Wenden Sie sich an die Administratoren der Gruppe, um das zu "
        f"klären: {ANNA.principal}."
    )
    assert str(refusal.value) == (
        "The customer group cannot be deleted: 2 device(s) are still linked to it; 1 "
        "partner-created child group(s) remain, 0 of them not shared with you. Contact the "
        f"group's admins to resolve this: {ANNA.principal}."
    )


def test_another_partners_customer_group_is_not_found_in_german(
    app: PartnerFleet, linked_group: UUID, other_partner: str
) -> None:
    """Another tenant's resource is "not found" (RULES: 404), in German too."""
    with refused(app, NotFoundError, "No customer group") as refusal:
        app.add_favourite(OTTO, linked_group)

    assert refusal_text(refusal.value, "de") == f"Keine Kundengruppe {linked_group}."


def test_a_role_that_may_not_is_refused_in_german(app: PartnerFleet, linked_group: UUID) -> None:
    """A role that may never do an action is refused (403) in German, naming it."""
    with refused(app, ForbiddenError, "may not add favourite") as refusal:
        app.add_favourite(CUSTOMER, linked_group)

    assert refusal_text(refusal.value, "de") == (
        f"Die Rolle {CUSTOMER.role.value} darf diese Aktion nicht ausführen: add favourite."
    )


def test_a_part_of_a_sentence_is_translated_inside_its_refusal() -> None:
    """A Msg inside a Msg (a text check's reason, the kind of text) is translated too."""
    with pytest.raises(TextError) as refused:
        checked("name", "Con\x00toso")

    assert str(refused.value) == (
        "name: a NUL character (U+0000) at position 3; remove it (none is allowed in a name)."
    )
    assert refusal_text(refused.value, "de") == (
        "name: ein NUL-Zeichen (U+0000) an Position 3; entfernen Sie es (in einem Namen ist "
        "keines erlaubt)."
    )


def test_a_message_that_is_not_a_msg_is_looked_up_as_it_is() -> None:
    """A plain text refusal is shown as the catalog has it, else in English."""
    assert refusal_text(DomainError("My Customers"), "de") == "Meine Kunden"
    assert refusal_text(DomainError("Not in any catalog."), "de") == "Not in any catalog."
    assert refusal_text(DomainError(Msg("No device {device_id}.", device_id=7)), "en") == (
        "No device 7."
    )
