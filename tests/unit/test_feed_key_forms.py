"""Issue 8, kinds 3 and 4: a key's content is compared as text, not as code points.

Canonically equivalent text (Unicode NFC: "Müller" with the ü composed, or u + U+0308 as
pasted text and some feeds send it) is the same text. A redelivery that differs only so
is a redelivery, not "other content"; a difference a person can see (case, other letters)
is still other content, refused with its reason (R-HLD-1).
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.idempotency import content_fingerprint
from handlers import PartnerFleet
from tests.unit.conftest import CUSTOMER, OPS, event_count, servers
from tests.unit.conftest import e2open_report as report

MULLER = "Mu\u0308ller GmbH"  # decomposed, as pasted
MULLER_NFC = unicodedata.normalize("NFC", MULLER)
CAFE_FAN = "Le\u0301ger fan e\u0301chec"  # an alert message, decomposed


@pytest.fixture
def reseller(app: PartnerFleet) -> str:
    """LOC-1, registered and certified for HP Premium."""
    app.register_partner(OPS, "LOC-1", "Reseller")
    app.certify_partner(OPS, "LOC-1", "resell_view_monitor")
    return "LOC-1"


def test_kind3_r_hld_1_a_batch_redelivered_in_another_normal_form_is_a_redelivery(
    app: PartnerFleet, reseller: str
) -> None:
    """Kind 3/4, R-HLD-1: batch b1 again with the end customer composed: nothing refused."""
    app.receive_e2open_batch(OPS, "b1", [report("PC1", end_customer=MULLER)])
    before = event_count(app)
    again = app.receive_e2open_batch(OPS, "b1", [report("PC1", end_customer=MULLER_NFC)])
    assert again.redelivered
    assert not again.refused
    assert again.accepted == ["PC1"]
    assert event_count(app) == before


def test_kind3_r_hld_1_a_pc_reported_again_in_another_normal_form_is_a_duplicate(
    app: PartnerFleet, reseller: str
) -> None:
    """Kind 3/4, R-HLD-1: PC1 in a new batch, same report with the name composed: duplicate."""
    app.receive_e2open_batch(OPS, "b1", [report("PC1", end_customer=MULLER)])
    outcome = app.receive_e2open_batch(OPS, "b2", [report("PC1", end_customer=MULLER_NFC)])
    assert outcome.duplicates == ["PC1"]
    assert outcome.rejected == []


def test_kind3_r_hld_1_a_pc_reported_again_in_another_case_is_still_other_content(
    app: PartnerFleet, reseller: str
) -> None:
    """Kind 3, R-HLD-1: a difference a person sees (case) stays other content, rejected."""
    app.receive_e2open_batch(OPS, "b1", [report("PC1", end_customer=MULLER)])
    outcome = app.receive_e2open_batch(OPS, "b2", [report("PC1", end_customer=MULLER.upper())])
    assert [r.serial for r in outcome.rejected] == ["PC1"]
    assert "already reported with different content" in outcome.rejected[0].reason


def test_kind3_r_alr_1_an_alert_redelivered_in_another_normal_form_is_a_duplicate(
    app: PartnerFleet,
) -> None:
    """Kind 3/4, R-ALR-1: alert A1 again in a new batch with its message composed."""
    app.register_devices(CUSTOMER, "C1", servers("S1"))
    first = {"serial": "S1", "alert_id": "A1", "severity": "warning", "message": CAFE_FAN}
    app.receive_alert_batch(OPS, "a1", [first])
    composed = first | {"message": unicodedata.normalize("NFC", CAFE_FAN)}
    outcome = app.receive_alert_batch(OPS, "a2", [composed])
    assert outcome.duplicates == ["A1"]
    assert outcome.rejected == []
    assert app.receive_alert_batch(OPS, "a1", [composed]).redelivered


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _to(form: str, value: object) -> object:
    if isinstance(value, str):
        return unicodedata.normalize(form, value)  # type: ignore[arg-type]
    if isinstance(value, list):
        return [_to(form, v) for v in value]
    if isinstance(value, dict):
        return {_to(form, k): _to(form, v) for k, v in value.items()}
    return value


@given(json_values)
def test_kind3_a_fingerprint_is_the_same_for_every_canonically_equivalent_value(
    value: object,
) -> None:
    """Kind 3/4: NFC and NFD of any JSON value have one fingerprint (keys that meet in NFC
    merge alike in both)."""
    assert content_fingerprint(_to("NFD", value)) == content_fingerprint(_to("NFC", value))
