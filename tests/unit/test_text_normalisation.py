"""Issue 8, kind 4: what people type and feeds send is compared in one form (R-FAV-5).

Search and comparison use `domain.text.fold` (NFKC + case folding) on both sides; keys
(Location IDs, customer ids, Passport IDs, serials...) are NFC-normalised, so composed and
decomposed spellings reach one aggregate, and ids of ASCII keys are what they always were.
"""

from __future__ import annotations

import base64
import itertools
import json
import unicodedata
from collections.abc import Callable
from typing import Literal
from uuid import UUID, uuid5

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import CustomerGroup, Device, DomainError, PartnerTenant
from domain.base import NAMESPACE, natural_id
from domain.intake import Rejection
from domain.text import TextError, fold, printable
from handlers import PartnerFleet
from handlers.devices import PartnerChoice
from infra.follow.view_runner import ViewRunner
from infra.storage.viewdb import SQLiteViewDB
from projections.customer_queries import QueryError, customer_dashboard, list_customers
from projections.customers import CustomersView
from tests.actors import customer as customer_admin
from tests.actors import operator
from tests.scenarios import CUSTOMER, OPS, in_memory_fleet, partner, servers
from tests.scopes import partner_of
from tests.unit.views_support import (
    LOC,
    Reader,
    admin,
    db,
    fleet,
    link_new_servers,
    new_partner,
    read,
    runner,
)
from tests.views import assert_rebuild_equals_live

__all__ = ["db", "fleet", "read", "runner"]

ANNA = admin(LOC)
DECOMPOSED = "Mu\u0308ller GmbH"  # u + U+0308 COMBINING DIAERESIS, as pasted text sends it
COMPOSED = "M\u00fcller GmbH"
Form = Literal["NFC", "NFD", "NFKC", "NFKD"]
FORMS: tuple[Form, ...] = ("NFC", "NFD", "NFKC", "NFKD")


def found(fleet: PartnerFleet, read: Reader, search: str) -> list[str]:
    """The customer ids LOC-1's admin finds in All Customers with this search term."""
    with read() as tx:
        page = list_customers(tx, partner_of(fleet, ANNA.principal), search=search, limit=200)
    return [row.customer_id for row in page.rows]


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        (DECOMPOSED, "müller"),  # the given input
        (DECOMPOSED, "M\u00dcLLER"),
        (COMPOSED, "mu\u0308ller"),
        (COMPOSED, "MU\u0308LLER gmbh"),
        (DECOMPOSED, "\uff4d\u00fcller"),  # full-width m, as an IME types it
        ("Stra\u00dfe AG", "STRASSE"),
        ("\ufb01nance Ltd", "fin"),  # the fi ligature
    ],
)
def test_r_fav_5_search_finds_a_name_in_any_normal_form_and_case(
    fleet: PartnerFleet, read: Reader, stored: str, typed: str
) -> None:
    """R-FAV-5: "Müller GmbH" stored decomposed is found by "müller" typed composed, and back."""
    new_partner(fleet, LOC)
    link_new_servers(fleet, "C1", "S1", to=LOC, name=stored)
    link_new_servers(fleet, "C2", "S2", to=LOC, name="Mueller Corp")

    assert found(fleet, read, typed) == ["C1"]


def test_r_fav_5_the_name_is_shown_as_given_and_sorted_in_its_folded_form(
    fleet: PartnerFleet, read: Reader
) -> None:
    """R-FAV-5: display keeps what was typed; order does not depend on the normal form."""
    new_partner(fleet, LOC)
    link_new_servers(fleet, "C1", "S1", to=LOC, name="mz")
    link_new_servers(fleet, "C2", "S2", to=LOC, name=DECOMPOSED)
    link_new_servers(fleet, "C3", "S3", to=LOC, name="Ma")
    link_new_servers(fleet, "C4", "S4", to=LOC, name="M\u00fcller AG")

    with read() as tx:
        rows = list_customers(tx, partner_of(fleet, ANNA.principal)).rows

    assert [r.name for r in rows] == ["Ma", "mz", "M\u00fcller AG", DECOMPOSED]


def test_r_fav_5_rebuilt_search_columns_equal_the_live_ones(
    fleet: PartnerFleet, runner: ViewRunner
) -> None:
    """R-FAV-5: the folded column is computed from the event alone, so a rebuild equals live."""
    new_partner(fleet, LOC)
    for n, name in enumerate([DECOMPOSED, COMPOSED, "\uff21CME", "\u0130stanbul"]):
        link_new_servers(fleet, f"C{n}", f"S{n}", to=LOC, name=name)

    assert_rebuild_equals_live(runner)


def test_r_fav_5_r_lnk_5_a_reopened_group_is_found_in_any_normal_form(
    fleet: PartnerFleet, read: Reader, runner: ViewRunner
) -> None:
    """R-FAV-5, R-LNK-5: a deleted group re-opened under a decomposed name is searched in the
    same folded form as a new one, live and rebuilt."""
    new_partner(fleet, LOC)
    link_new_servers(fleet, "C1", "S1", to=LOC, name="Old Name")
    fleet.unlink_devices(CUSTOMER, "C1", ["S1"])
    fleet.delete_customer_group(ANNA, CustomerGroup.id_for(LOC, "C1"))

    link_new_servers(fleet, "C1", "S9", to=LOC, name=DECOMPOSED)

    assert found(fleet, read, "m\u00fcller") == ["C1"]
    assert found(fleet, read, "old") == []
    assert_rebuild_equals_live(runner)


@pytest.mark.parametrize(
    ("search", "says"),
    [("m\x00ller", "NUL character"), ("m\ud800", "lone surrogate"), ("m" * 201, "more than")],
)
def test_r_fav_5_a_search_term_no_database_can_compare_is_refused(
    fleet: PartnerFleet, read: Reader, search: str, says: str
) -> None:
    """R-FAV-5, issue 8 kind 5: a bad term is a QueryError naming it, not a database error."""
    new_partner(fleet, LOC)

    with pytest.raises(QueryError, match=f"search: .*{says}"):
        found(fleet, read, search)


def test_r_fav_5_a_forged_cursor_with_a_nul_is_refused(fleet: PartnerFleet, read: Reader) -> None:
    """R-FAV-1: a cursor is decoded into text PostgreSQL must compare; a NUL in it is refused."""
    new_partner(fleet, LOC)
    forged = base64.urlsafe_b64encode(json.dumps(["a\x00", "g"]).encode()).decode()

    with read() as tx, pytest.raises(QueryError, match="cursor is not one this service issued"):
        list_customers(tx, partner_of(fleet, ANNA.principal), cursor=forged)


# --- the property --------------------------------------------------------------------------


def _case_stable(char: str) -> bool:
    # Default case folding keeps Turkish dotless i (U+0131) apart from I, and a
    # few letters alike; a name holding one is still found in its own case.
    return all(fold(c) == fold(char) for c in (char.upper(), char.lower(), char.title()))


LETTERS = st.characters(
    categories=("Lu", "Ll", "Lt", "Nd", "Mn", "Zs", "Pd", "Po"), max_codepoint=0x052F
)
COMPATIBLE = st.sampled_from("\uff21\uff42\uff43\uff11\ufb01\ufb02\u00df\u1e9e\u017f\u2160\u00b5")
NAMES = st.text(LETTERS | COMPATIBLE, min_size=1, max_size=30).filter(
    lambda name: bool(name.strip()) and all(_case_stable(c) for c in name)
)
CASES: tuple[Callable[[str], str], ...] = (str, str.upper, str.lower, str.title, str.swapcase)


def _cuts(text: str) -> list[int]:
    """Where a person can stop typing: folding the two halves equals folding the whole."""
    return [i for i in range(len(text) + 1) if fold(text[:i]) + fold(text[i:]) == fold(text)]


def test_r_fav_5_any_piece_of_a_name_in_any_normal_form_and_case_finds_it() -> None:
    """R-FAV-5 property: name stored in any normal form; any piece of it, in any normal form
    and any case, typed as search term, finds the group on the view (in-memory SQLite)."""
    fleet = in_memory_fleet()
    runner = ViewRunner(fleet, SQLiteViewDB(":memory:"), [CustomersView()])
    partner(fleet, LOC)
    customers = itertools.count()

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(name=NAMES, stored_as=st.sampled_from(FORMS), data=st.data())
    def search_finds(name: str, stored_as: Form, data: st.DataObject) -> None:
        customer = f"P{next(customers)}"
        stored = unicodedata.normalize(stored_as, name)
        # a person holds at most 1,500 devices (R-PAR-3)
        it = customer_admin(customer, f"it@{customer}", "c")
        choice = PartnerChoice(location_id=LOC)
        fleet.register_devices(it, customer, servers(customer), choice, customer_name=stored)
        typed = _piece(data, unicodedata.normalize("NFC", stored.strip()))
        runner.catch_up()
        assert customer in _found_by(runner.fleet, runner, typed), (stored, typed)

    search_finds()


def _piece(data: st.DataObject, text: str) -> str:
    """A piece of `text` cut where a person can stop typing, in any normal form and case."""
    cuts = _cuts(text)
    start = data.draw(st.sampled_from(cuts))
    end = data.draw(st.sampled_from([c for c in cuts if c >= start]))
    form = data.draw(st.sampled_from(FORMS))
    return data.draw(st.sampled_from(CASES))(unicodedata.normalize(form, text[start:end]))


def _found_by(fleet: PartnerFleet, runner: ViewRunner, typed: str) -> list[str]:
    """Every customer id LOC-1's admin finds with this term, walking all pages."""
    found: list[str] = []
    cursor = None
    with runner.db.transaction() as tx:
        while True:
            page = list_customers(
                tx, partner_of(fleet, ANNA.principal), search=typed, limit=200, cursor=cursor
            )
            found += [row.customer_id for row in page.rows]
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor


@given(st.text())
def test_r_fav_5_folding_twice_is_folding_once(text: str) -> None:
    """R-FAV-5: the stored search form is a fixed point, so stored and typed forms agree."""
    assert fold(fold(text)) == fold(text)


# --- keys ------------------------------------------------------------------------------------


def test_kind4_ids_of_ascii_keys_are_what_they_always_were() -> None:
    """Issue 8, kind 4: NFC is the identity on ASCII; no stored history loses its aggregate."""
    assert natural_id("partner", "LOC-1") == uuid5(NAMESPACE, "partner:LOC-1")
    assert CustomerGroup.id_for("LOC-1", "C1") == uuid5(NAMESPACE, "customer-group:LOC-1:C1")
    assert CustomerGroup.id_for("LOC-1", "C1") == UUID("f13c38f6-64b9-5c59-bdec-e4a1ac6cfd39")
    assert Device.id_for("czj001") == uuid5(NAMESPACE, "device:CZJ001")


def test_kind4_keys_are_compared_nfc_but_never_case_folded() -> None:
    """Issue 8, kind 4: composed and decomposed keys are one; "LOC-1" and "loc-1" stay two."""
    assert PartnerTenant.id_for("LOC-M\u00dc") == PartnerTenant.id_for("LOC-MU\u0308")
    assert PartnerTenant.id_for("LOC-1") != PartnerTenant.id_for("loc-1")
    assert Device.id_for("E\u0301B1") == Device.id_for("\u00e9b1")


def test_kind4_a_partner_registered_decomposed_is_found_composed() -> None:
    """Issue 8, kind 4: commands pass keys in NFC, so every comparison of them agrees."""
    app = in_memory_fleet()
    app.register_partner(OPS, "LOC-MU\u0308NCHEN", "München Reseller")
    app.register_partner_user(OPS, "LOC-M\u00dcNCHEN", "anna@m\u00fcnchen.example")
    app.register_devices(
        CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-M\u00dcNCHEN")
    )

    app.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id="LOC-MU\u0308NCHEN"))

    assert app.partner("LOC-M\u00dcNCHEN").users == {"anna@m\u00fcnchen.example": "admin"}
    assert app.device("S1").links == {"reseller": "LOC-M\u00dcNCHEN"}
    group = app.customer_group(CustomerGroup.id_for("LOC-MU\u0308NCHEN", "C1"))
    assert group.admins == ["anna@m\u00fcnchen.example"]
    assert len(app.device("S1").pending_events) == 0
    with pytest.raises(DomainError, match="already a user"):
        app.register_partner_user(OPS, "LOC-M\u00dcNCHEN", "anna@mu\u0308nchen.example")


def test_kind4_a_decomposed_customer_id_reaches_the_same_group(fleet: PartnerFleet) -> None:
    """Issue 8, kind 4: the customer's group is one, whichever form its id was typed in."""
    new_partner(fleet, LOC)
    link_new_servers(fleet, "K\u00e4se", "S1", to=LOC)

    link_new_servers(fleet, "Ka\u0308se", "S2", to=LOC)

    group = fleet.customer_group(CustomerGroup.id_for(LOC, "K\u00e4se"))
    assert sorted(group.devices) == ["S1", "S2"]
    assert group.customer_id == "K\u00e4se"


# --- feeds -----------------------------------------------------------------------------------


def test_kind5_a_feed_report_with_a_nul_is_rejected_alone_and_the_rest_lands() -> None:
    """Issue 8, kind 5, R-HLD-1: the bad report is kept as rejected, with a storable reason."""
    app = in_memory_fleet()
    partner(app, LOC)
    good = _report("PC1")
    bad_model = _report("PC2") | {"model": "Elite\x00Book"}
    bad_serial = _report("PC\x003") | {"distributor": "In\ud800gram"}

    outcome = app.receive_e2open_batch(OPS, "b1", [good, bad_model, bad_serial])

    assert outcome.accepted == ["PC1"]
    assert [r.index for r in outcome.rejected] == [1, 2]
    assert outcome.rejected[0].reason.startswith("model: a NUL character (U+0000)")
    assert outcome.rejected[1].serial == "PC\\x003"


def test_kind5_an_alert_with_a_control_character_is_rejected_alone() -> None:
    """Issue 8, kind 5, R-ALR-1: one bad alert is rejected with its reason; the next is raised."""
    app = in_memory_fleet()
    partner(app, LOC)
    app.register_devices(CUSTOMER, "C1", servers("S1"))
    alerts = [
        {"serial": "S1", "alert_id": "A1", "severity": "warning", "message": "Fan\x1b[0m"},
        {"serial": "S1", "alert_id": "A2", "severity": "warning", "message": "Fan 2\nfailed"},
    ]

    outcome = app.receive_alert_batch(OPS, "a1", alerts)

    assert outcome.accepted == ["A2"]
    assert "message: a control character (U+001B)" in outcome.rejected[0].reason


@pytest.mark.parametrize(
    ("given", "kept"),
    [("PC\x00", "PC\\x00"), ("\ud800", "\\ud800"), ("x" * 100, "x" * 63 + "…"), ("ok\n", "ok\n")],
)
def test_kind5_what_a_rejection_keeps_is_always_storable(given: str, kept: str) -> None:
    """Issue 8, kind 5: a rejection quotes what was sent, escaped, so no view stops on it."""
    assert Rejection(index=0, serial=given, reason="r").serial == kept
    assert printable("a\x00b", 10) == "a\\x00b"


def _report(serial: str) -> dict[str, str]:
    return {
        "serial": serial,
        "model": "EliteBook 840",
        "reseller_location_id": LOC,
        "distributor": "Ingram",
        "ship_date": "2026-10-01",
    }


def test_kind5_the_cause_is_checked_too() -> None:
    """Issue 8, kind 5: the principal is recorded on every event; a NUL in it is refused."""
    app = in_memory_fleet()

    with pytest.raises(TextError, match="principal: a NUL character"):
        app.register_partner(operator("ops\x00", "c"), "LOC-1", "Reseller")


def test_kind4_a_partner_user_typed_decomposed_is_recognised(
    fleet: PartnerFleet, read: Reader
) -> None:
    """Issue 8, kind 4, R-PAR-2: queries take keys in the form commands store them (NFC)."""
    fleet.register_partner(OPS, LOC, "Reseller")
    fleet.register_partner_user(OPS, LOC, "j\u00fcrgen@reseller.example")
    link_new_servers(fleet, "C1", "S1", to=LOC, name="Customer One")

    with read() as tx:
        scope = partner_of(fleet, "ju\u0308rgen@reseller.example", LOC)
        page = list_customers(tx, scope)
        dashboard = customer_dashboard(tx, scope, page.rows[0].group_id)

    assert dashboard.admins == ["j\u00fcrgen@reseller.example"]
