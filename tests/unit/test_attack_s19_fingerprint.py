"""Attack on session 19's e2Open fingerprint v2 (issue 11): different content, one fingerprint.

A batch whose fingerprint equals a batch id's stored one is answered as a redelivery and
nothing of it is recorded, so two different contents with one fingerprint drop the second
silently (R-HLD-1: other content under a batch id is refused and kept as rejected).
Found: an unfit message (a NUL, a lone surrogate, too deep) counted by its Unreadable's
reason only, so messages broken at the same place but otherwise different (another serial,
another end customer) had one fingerprint; an Unreadable given as it is had the piece of
the object {"unreadable": reason}, which a sender may send; NFC merging two keys of one
object ({"K": 1, "\\u212a": 2} as {"K": 2}). The same held for alert batches (R-ALR-1).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from domain.e2open_screen import screened_reports
from domain.feed_bounds import MAX_DEPTH, Unreadable
from handlers import PartnerFleet
from tests.scenarios import report
from tests.unit.conftest import OPS, e2open_report
from tests.unit.http_holding_world import world
from tests.unit.test_http_intake import deliver

NUL_MODEL = {"model": "x\x00"}


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


# Pairs of batches of different content (each is rejected where it is not a report).
DIFFERENT = [
    pytest.param(
        [e2open_report("PC1"), e2open_report("PC2") | NUL_MODEL],
        [e2open_report("PC1"), e2open_report("PC3") | NUL_MODEL],
        id="nul-other-serial",
    ),
    pytest.param(
        [e2open_report("PC2") | NUL_MODEL],
        [e2open_report("PC2", end_customer="Acme") | NUL_MODEL],
        id="nul-extra-field",
    ),
    pytest.param(
        [e2open_report("PC2") | {"model": "\ud800"}],
        [e2open_report("PC2") | {"model": "\udbff"}],
        id="lone-surrogates-same-place",
    ),
    pytest.param(
        [{"serial": "PC1", "x": deep(MAX_DEPTH + 2)}],
        [{"serial": "PC1", "x": deep(MAX_DEPTH + 3)}],
        id="too-deep-by-other-depths",
    ),
    pytest.param(
        [Unreadable("not JSON: x", "PC1")],
        [{"unreadable": "not JSON: x"}],
        id="unreadable-vs-object-naming-it",
    ),
    pytest.param(
        [Unreadable("not JSON: x", "PC1")],
        [Unreadable("not JSON: x", "PC2")],
        id="given-unreadables-other-serials",
    ),
    pytest.param(
        [e2open_report("PC1") | {"K": 1, "\u212a": 2}],
        [e2open_report("PC1") | {"K": 2}],
        id="nfc-merges-keys",
    ),
    pytest.param(
        [{"serial": "PC1", "v": float("nan"), "w": "\x00"}],
        [{"serial": "PC1", "v": "NaN", "w": "\x00"}],
        id="nan-vs-text",
    ),
]


@pytest.mark.parametrize(("first", "second"), DIFFERENT)
def test_attack_s19_different_content_has_another_version_2_fingerprint(
    first: list[Any], second: list[Any]
) -> None:
    assert screened_reports(first)[1] != screened_reports(second)[1]


@pytest.mark.parametrize(("first", "second"), DIFFERENT)
def test_attack_s19_the_same_content_again_keeps_its_version_2_fingerprint(
    first: list[Any], second: list[Any]
) -> None:
    """What makes the pairs differ is content, not chance: each batch again (keys in
    another order) has its own fingerprint once more."""
    for batch in (first, second):
        again = [dict(reversed(m.items())) if isinstance(m, dict) else m for m in batch]
        assert screened_reports(batch)[1] == screened_reports(again)[1]


def test_attack_s19_r_hld_1_other_content_broken_at_the_same_place_is_refused(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """R-HLD-1: a batch id delivered again with another malformed report (another serial,
    the same fault) is other content: refused and kept, not answered as a redelivery with
    the first delivery's rejection."""
    first = app.receive_e2open_batch(
        OPS, "b1", [e2open_report("PC1"), e2open_report("PC2") | NUL_MODEL]
    )
    assert [r.serial for r in first.rejected] == ["PC2"]

    second = app.receive_e2open_batch(
        OPS, "b1", [e2open_report("PC1"), e2open_report("PC3") | NUL_MODEL]
    )

    assert second.refused
    assert not second.redelivered
    assert [r.serial for r in second.rejected] == ["PC1", "PC3"]


def test_attack_s19_r_alr_1_other_alerts_broken_at_the_same_place_are_refused(
    app: PartnerFleet,
) -> None:
    """R-ALR-1 / R-HLD-1's batch rule for the alerts feed given as values (HTTP): the same."""
    alert = {"serial": "PC1", "alert_id": "A1", "severity": "critical", "message": "x\x00"}
    app.receive_alert_batch(OPS, "a1", [alert])

    second = app.receive_alert_batch(OPS, "a1", [alert | {"alert_id": "A2"}])

    assert second.refused


def test_attack_s19_r_hld_1_over_http_other_content_broken_at_the_same_place_is_refused() -> None:
    """R-HLD-1 over HTTP: a JSON body's "\\u0000" makes a report unfit; the same batch id
    with another unfit report (another serial) is refused, not answered as the first."""
    w = world(pcs=())
    first = deliver(w, "B1", [report("PC6"), report("PC7") | {"model": "x\x00"}])
    second = deliver(w, "B1", [report("PC6"), report("PC8") | {"model": "x\x00"}])

    assert first.status_code == second.status_code == 200
    assert first.json()["outcome"] == "received"
    assert [r["serial"] for r in first.json()["rejected"]] == ["PC7"]
    assert second.json()["outcome"] == "refused"
    assert [r["serial"] for r in second.json()["rejected"]] == ["PC6", "PC8"]
