"""Issue 8, kinds 4 and 5 on real databases: one search form, and no text that stops a view."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.text import TextError
from handlers.devices import PartnerChoice
from infra.bootstrap import build_fleet, build_view_runner
from infra.follow.view_runner import ViewRunner
from infra.settings import Settings
from projections.customer_queries import list_customers
from tests.actors import customer as customer_admin
from tests.scenarios import event_count, partner, servers
from tests.scopes import partner_of
from tests.views import assert_rebuild_equals_live

ANNA = "anna@LOC-1"
NAMES = {
    "C1": "Mu\u0308ller GmbH",  # decomposed, as pasted text sends it
    "C2": "M\u00fcller AG",  # composed
    "C3": "\uff21\uff23\uff2d\uff25 Corp",  # full-width ACME
    "C4": "Stra\u00dfenbau KG",
    "C5": "Mueller Corp",
}
SEARCHES = [
    ("m\u00fcller", ["C2", "C1"]),  # the given input: composed term, decomposed name found
    ("MU\u0308LLER", ["C2", "C1"]),  # decomposed term, composed name found
    ("acme", ["C3"]),
    ("STRASSE", ["C4"]),
    ("mueller", ["C5"]),
]


@pytest.fixture
def view_settings(stored_settings: Settings, tmp_path: Path) -> Settings:
    """The stored settings, with SQLite read models in this test's own file."""
    return stored_settings.model_copy(update={"views_sqlite_path": tmp_path / "views.sqlite3"})


def customers_found(runner: ViewRunner, search: str) -> list[str]:
    """The customer ids LOC-1's admin finds, in page order, once the views caught up."""
    runner.catch_up()
    with runner.db.transaction() as tx:
        return [
            r.customer_id
            for r in list_customers(tx, partner_of(runner.fleet, ANNA), search=search).rows
        ]


def test_r_fav_5_search_is_the_same_on_postgresql_and_sqlite(view_settings: Settings) -> None:
    """R-FAV-5: names and terms in any normal form and case match alike on both backends."""
    fleet = build_fleet(view_settings)
    runner = build_view_runner(view_settings, fleet)
    try:
        partner(fleet, "LOC-1")
        for customer, name in NAMES.items():
            fleet.register_devices(
                customer_admin(customer, f"it@{customer}", "c"),
                customer,
                servers(f"S{customer}"),
                PartnerChoice(location_id="LOC-1"),
                customer_name=name,
            )

        found = {search: customers_found(runner, search) for search, _ in SEARCHES}

        assert found == dict(SEARCHES)
        assert_rebuild_equals_live(runner)
    finally:
        runner.db.close()
        fleet.close()


def test_kind5_a_refused_nul_name_leaves_every_view_running(postgres_settings: Settings) -> None:
    """Issue 8, kind 5: "ACME\\x00 Corp" is refused at the command; on PostgreSQL every view
    catches up to lag 0 after the refusal and after the next valid command."""
    fleet = build_fleet(postgres_settings)
    runner = build_view_runner(postgres_settings, fleet)
    customer = customer_admin("ACME", "it@acme.example", "c")
    caught_up = dict.fromkeys([v.name for v in runner.views], 0)
    try:
        partner(fleet, "LOC-1")
        before = event_count(fleet)

        with pytest.raises(TextError, match="customer_name: a NUL character"):
            fleet.register_devices(
                customer,
                "ACME",
                servers("S1"),
                PartnerChoice(location_id="LOC-1"),
                customer_name="ACME\x00 Corp",
            )

        assert event_count(fleet) == before
        runner.catch_up()
        assert runner.lag() == caught_up
        fleet.register_devices(
            customer,
            "ACME",
            servers("S1"),
            PartnerChoice(location_id="LOC-1"),
            customer_name="ACME Corp",
        )
        assert customers_found(runner, "acme") == ["ACME"]
        assert runner.lag() == caught_up
    finally:
        runner.db.close()
        fleet.close()
