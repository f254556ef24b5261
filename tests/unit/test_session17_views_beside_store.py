"""Session 17 (found following the README): the read models of a SQLite store live beside
that store.

`DATABASE_URL=sqlite:///path/to/file` picks another event store, but its views stayed in
`var/partnerfleet-views.sqlite3`, shared with every other SQLite store: the second store's
views showed the first store's partners (its own events skipped, the view's position being
the other store's), and a test on a temporary store read the views of `make run`'s demo.
Now the views of a SQLite store are `<store>-views<suffix>` beside it unless
VIEWS_SQLITE_PATH says otherwise.
"""

from __future__ import annotations

from pathlib import Path

from infra.bootstrap import build_fleet, build_view_db, build_view_runner
from infra.settings import DEFAULT_VIEWS_PATH, Settings
from infra.storage.viewdb import SQLiteViewDB
from tests.scenarios import partner


def test_the_default_store_keeps_its_views_where_they_were() -> None:
    """The default SQLite store's views: var/partnerfleet-views.sqlite3, as before."""
    assert Settings().views_location() == DEFAULT_VIEWS_PATH


def test_another_sqlite_store_has_views_of_its_own(tmp_path: Path) -> None:
    """Two SQLite stores chosen by DATABASE_URL: each store's views beside it, each view
    showing that store's partners only."""
    shown = {}
    for name in ("a", "b"):
        settings = Settings(database_url=f"sqlite:///{tmp_path / name}.sqlite3")
        assert settings.views_location() == tmp_path / f"{name}-views.sqlite3"
        fleet = build_fleet(settings)
        partner(fleet, f"LOC-{name.upper()}")
        runner = build_view_runner(settings, fleet)
        runner.catch_up()
        with runner.db.transaction() as tx:
            shown[name] = [row[0] for row in tx.query("SELECT location_id FROM pf_p_partners")]
        fleet.close()
    assert shown == {"a": ["LOC-A"], "b": ["LOC-B"]}


def test_views_sqlite_path_still_chooses(tmp_path: Path) -> None:
    """VIEWS_SQLITE_PATH given: the views are there."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'a.sqlite3'}", views_sqlite_path=tmp_path / "v.db"
    )
    assert settings.views_location() == tmp_path / "v.db"
    db = build_view_db(settings)
    assert isinstance(db, SQLiteViewDB)
