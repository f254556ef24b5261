"""Issue 8, kinds 4 and 5: an identifier holds no character a person cannot see.

"LOC-1" followed by a zero-width space, a right-to-left override or a no-break space
looks like "LOC-1" but is another key: a lookalike partner a customer could be led to
link to, a batch id that only seems reused. Keys (Location IDs, Passport IDs, customer
ids, batch ids...) are refused with such characters, naming the character; names and free
text keep them (an emoji sequence in a name is fine).
"""

from __future__ import annotations

import pytest

from domain.text import TextError
from handlers import PartnerFleet
from tests.unit.conftest import OPS, e2open_report, event_count

INVISIBLE = {
    "zero-width space": "\u200b",
    "right-to-left override": "\u202e",
    "byte order mark": "\ufeff",
    "no-break space": "\u00a0",
    "line separator": "\u2028",
}


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=list(INVISIBLE))
def test_kind4_a_location_id_with_an_invisible_character_is_refused(
    app: PartnerFleet, char: str
) -> None:
    """Kind 4/5: a lookalike Location ID is never registered; nothing is recorded."""
    with pytest.raises(TextError, match=f"location_id: .*U\\+{ord(char):04X}"):
        app.register_partner(OPS, f"LOC-1{char}", "Lookalike")
    assert event_count(app) == 0


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=list(INVISIBLE))
def test_kind4_a_batch_id_or_passport_id_with_an_invisible_character_is_refused(
    app: PartnerFleet, char: str
) -> None:
    """Kind 3/4: neither a batch id nor a Passport ID may hide a character."""
    app.register_partner(OPS, "LOC-1", "Reseller")
    before = event_count(app)
    with pytest.raises(TextError, match="batch_id"):
        app.receive_e2open_batch(OPS, f"b{char}1", [e2open_report("PC1")])
    with pytest.raises(TextError, match="passport_id"):
        app.register_partner_user(OPS, "LOC-1", f"anna{char}@loc-1.example")
    assert event_count(app) == before


def test_kind4_names_keep_what_people_write(app: PartnerFleet) -> None:
    """Kind 4: a name may hold an emoji sequence (zero-width joiner) and a no-break space."""
    app.register_partner(OPS, "LOC-1", "Family\u00a0IT \U0001f468\u200d\U0001f469\u200d\U0001f467")
    assert app.partner("LOC-1").name.endswith("\U0001f467")


def test_kind5_a_feed_report_naming_a_lookalike_reseller_is_rejected_alone(
    app: PartnerFleet,
) -> None:
    """Kind 5 (R-HLD-1): the report is rejected with its reason; the others land."""
    app.register_partner(OPS, "LOC-1", "Reseller")
    app.certify_partner(OPS, "LOC-1", "resell_view_monitor")
    lookalike = e2open_report("PC2", "LOC-1\u200b")
    outcome = app.receive_e2open_batch(OPS, "b1", [e2open_report("PC1"), lookalike])
    assert outcome.accepted == ["PC1"]
    assert [r.serial for r in outcome.rejected] == ["PC2"]
    assert "U+200B" in outcome.rejected[0].reason
