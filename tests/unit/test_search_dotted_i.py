"""Issue 8, kind 4 (R-FAV-5): a name in Turkish capitals is found by the letters typed.

Unicode's default case folding turns the capital İ (I with dot above, as Turkish names
are written in capitals: "İSTANBUL AŞ") into i + U+0307, so "istanbul" typed plainly was
no part of the folded name, and "İstanbul" typed did not find "Istanbul". The dot above
an i adds nothing a person searches by; fold drops it there (dotless U+0131 stays apart).
"""

from __future__ import annotations

import pytest

from domain.text import fold
from handlers import PartnerFleet
from projections.customer_queries import list_customers
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

__all__ = ["db", "fleet", "read", "runner"]


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        ("\u0130STANBUL A\u015e", "istanbul"),
        ("\u0130STANBUL A\u015e", "\u0130stanbul"),
        ("Istanbul Ltd", "\u0130stanbul"),
        ("\u0130zmir Tekstil", "IZMIR"),
    ],
)
def test_r_fav_5_a_dotted_capital_i_is_found_by_a_plain_i(
    fleet: PartnerFleet, read: Reader, stored: str, typed: str
) -> None:
    """R-FAV-5: "İSTANBUL AŞ" is found by "istanbul", and "Istanbul" by "İstanbul"."""
    new_partner(fleet, LOC)
    link_new_servers(fleet, "C1", "S1", to=LOC, name=stored)
    link_new_servers(fleet, "C2", "S2", to=LOC, name="Ankara")
    with read() as tx:
        page = list_customers(tx, partner_of(fleet, admin(LOC).principal), search=typed, limit=10)
    assert [row.customer_id for row in page.rows] == ["C1"]


def test_r_fav_5_dotless_i_stays_its_own_letter() -> None:
    """R-FAV-5: no locale is guessed: dotless U+0131 is not i (docs/decisions.md)."""
    assert fold("\u0131stanbul") != fold("istanbul")
    assert fold(fold("\u0130I\u0307i\u0307")) == fold("\u0130I\u0307i\u0307") == "iii"
