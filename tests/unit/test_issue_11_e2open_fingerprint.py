"""Issue 11, session 19: an e2Open batch given as values, screened by its plain forms.

`domain.e2open_screen.screened_reports` replaces `feed_bounds.screened` for e2Open
batches: the same messages kept (the same Unreadables for the same reasons), each
report's plain form kept for the landing, and a version-2 fingerprint ("sha256v2:") that
is equal for two batches exactly when their version-1 fingerprints are. A batch id
recorded with a version-1 fingerprint is still recognised: its redelivery is a
redelivery, other content is refused once (R-HLD-1).
"""

from __future__ import annotations

import string
import unicodedata
from collections import OrderedDict
from typing import Any
from unittest import mock
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import Device, E2OpenBatch
from domain.e2open_screen import screened_reports
from domain.feed_bounds import MAX_DEPTH, Unreadable, screened, values_fingerprint
from domain.intake import plain_report
from handlers import PartnerFleet
from handlers.base import Working
from handlers.landing import Landing
from tests.unit.conftest import OPS, e2open_report, event_count, events_since
from tests.unit.test_issue_11_plain_report import raw_reports
from tests.unit.test_session16_attack import hostile_reports

REUSED = "batch id {} was already received with different content"


class Text(str):
    """A `str` subclass: the same JSON value as its text, not plain as given."""


def plain_variant(report: dict[str, Any], draw: st.DrawFn) -> Any:
    """The same JSON value in another Python form: keys reordered, a dict subclass, a str
    subclass, a Kelvin sign that NFC makes "K", or unchanged."""
    kind = draw(st.sampled_from(["same", "reordered", "ordered", "str subclass", "nfd"]))
    if kind == "reordered":
        return dict(reversed(list(report.items())))
    if kind == "ordered":
        return OrderedDict(report)
    if kind == "str subclass":
        return {k: Text(v) if isinstance(v, str) else v for k, v in report.items()}
    model = report.get("model")
    if kind == "nfd" and isinstance(model, str) and "K" in model:
        return report | {"model": model.replace("K", "\u212a")}
    return report


@st.composite
def odd_messages(draw: st.DrawFn) -> Any:
    """Messages that are not reports, or break a feed bound."""
    return draw(
        st.sampled_from(
            [
                Unreadable("not JSON: x", "PC1"),
                {"unreadable": "not JSON: x"},
                {"serial": 2**70},
                {1: "a"},
                {"serial": "PC1", "model": float("nan")},
                {"serial": "PC\x00"},
                {"serial": "\ud800"},
                {"model": "[" * (MAX_DEPTH + 2)},
                {"model": "a\\u0000b"},
                {"deep": [[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]},
                [],
                "report",
                None,
                3.5,
                ("PC1",),
            ]
        )
    )


@st.composite
def batches(draw: st.DrawFn) -> list[Any]:
    """Batches mostly of plain reports (some with brackets and backslashes, which count
    against the bounds), with model-path reports and odd messages among them."""
    bracketed = st.sampled_from(["HP [G11]", "{x}", "a\\b", "a\\u00e9", "Z\\fb", "K"])
    report = st.builds(
        lambda serial, model, customer: (
            e2open_report(serial, model=model)
            | ({} if customer is None else {"end_customer": customer})
        ),
        st.text(string.ascii_letters + string.digits, min_size=1, max_size=6),
        st.one_of(st.just("ZBook"), bracketed),
        st.one_of(st.none(), st.just("Acme")),
    )
    message = st.one_of(report, report, report, raw_reports(), hostile_reports(), odd_messages())
    return draw(st.lists(message, max_size=24))


def kept_alike(new: list[Any], old: list[Any]) -> bool:
    """The same messages kept: the same objects, or Unreadables with the same reason."""
    return len(new) == len(old) and all(
        a is b or (isinstance(a, Unreadable) and a == b) for a, b in zip(new, old, strict=True)
    )


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=batches())
def test_issue_11_screened_reports_keeps_what_screened_keeps(messages: list[Any]) -> None:
    """The same messages kept and Unreadables as `screened` (the bounds of the whole batch:
    brackets and risky escapes of plain reports count as before); each message's form is
    its plain report; the version-1 fingerprint of what is kept is `screened`'s."""
    kept_old, fingerprint_old = screened(messages)

    kept, fingerprint, forms = screened_reports(messages)

    assert kept_alike(kept, kept_old)
    assert values_fingerprint(kept) == fingerprint_old
    assert fingerprint.startswith("sha256v2:")
    assert len(fingerprint) == 9 + 64
    assert list(forms) == [plain_report(m) for m in messages]


def test_issue_11_plain_brackets_and_escapes_still_count_against_the_bounds() -> None:
    """Plain reports whose texts hold brackets beyond MAX_DEPTH, or a risky escape, make the
    batch walked, as before: a report beyond 64 bits then gets the walk's reason."""
    big = {"serial": 2**70}
    for model in ["HP [G11]", "a\\u0001"]:
        plain = [e2open_report(f"PC{n}", model=model) for n in range(MAX_DEPTH + 1)]
        kept_old, _ = screened([*plain, big])
        kept, _, _ = screened_reports([*plain, big])
        assert (
            kept[-1]
            == kept_old[-1]
            == Unreadable("serial: a number is out of range (beyond 64 bits)")
        )
        assert kept[:-1] == plain
    kept, _, _ = screened_reports([e2open_report("PC1"), big])
    assert kept[-1] is big  # fits: kept as it is, the model names its fault (as before)


@st.composite
def pairs(draw: Any) -> tuple[list[Any], list[Any]]:
    """Two batches: often one the other's equal JSON value in other Python forms, or with
    one message changed."""
    first = draw(batches())
    second = [plain_variant(m, draw) if isinstance(m, dict) else m for m in first]
    if first and draw(st.booleans()):
        index = draw(st.integers(0, len(first) - 1))
        second[index] = draw(st.one_of(batches().map(lambda b: b[0] if b else None), st.none()))
    return first, second


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=pairs())
def test_issue_11_version_2_fingerprints_are_equal_exactly_when_version_1_are(
    pair: tuple[list[Any], list[Any]],
) -> None:
    """Equal JSON values (key order, dict and str subclasses, NFC) have one fingerprint in
    version 2 as in version 1; other content another. Session 19's attack: version 2 is
    finer where version 1 counted content it should not have as equal (an unfit message
    by its reason only, an Unreadable as the object naming it, keys NFC merges) and where
    it told equal content apart (a message with two faults, whose reason named the first
    one met, which depends on key order), so: equal in version 2 only for equal content,
    and equal in version 2 whenever version 1 is and the content is."""
    first, second = pair
    old = screened(first)[1] == screened(second)[1]
    new = screened_reports(first)[1] == screened_reports(second)[1]
    same = content(first) == content(second)
    assert not new or same
    assert new or not (old and same)


def content(value: Any) -> Any:
    """What a batch's content is, for the test: JSON values with texts in NFC, keys
    compared as JSON writes them (an int key as its digits), an Unreadable as itself."""
    if isinstance(value, Unreadable):
        return ("unreadable", value.reason, value.serial)
    if isinstance(value, str):
        return ("str", unicodedata.normalize("NFC", value))
    if isinstance(value, bool | int | float) or value is None:  # True is not 1, 1 not 1.0
        return (type(value).__name__, repr(value))
    if isinstance(value, list | tuple):
        return ("list", tuple(content(v) for v in value))
    if isinstance(value, dict):
        keys = [unicodedata.normalize("NFC", k) if isinstance(k, str) else str(k) for k in value]
        return ("dict", tuple(sorted(zip(keys, map(content, value.values()), strict=True))))
    return ("other", repr(value))


def test_issue_11_version_2_tells_absent_null_and_other_fields_apart() -> None:
    """Absent and null end customer, absent and explicit care plan, a serial's case: other
    content, another fingerprint (as in version 1)."""
    base = e2open_report("PC1")
    forms = [
        base,
        base | {"end_customer": None},
        base | {"end_customer": "Acme"},
        base | {"care_plan": "premium"},
        base | {"serial": "pc1"},
        dict(base.items()),  # the same
    ]
    prints = [screened_reports([f])[1] for f in forms]
    assert len(set(prints[:5])) == 5
    assert prints[5] == prints[0]
    assert screened_reports([base, base])[1] != screened_reports([base])[1]
    kelvin = base | {"model": "\u212a"}
    assert unicodedata.normalize("NFC", "\u212a") == "K"
    assert screened_reports([kelvin])[1] == screened_reports([base | {"model": "K"}])[1]


# --- batches recorded before: version-1 fingerprints ---------------------------------------


def received_the_old_way(app: PartnerFleet, batch_id: str, reports: list[Any]) -> None:
    """The batch as a fleet before session 19 received it: screened by feed_bounds.screened,
    recorded with its version-1 fingerprint."""
    with mock.patch("handlers.holding.screened_reports", None):
        app.receive_e2open_batch(OPS, batch_id, reports)
    [batch] = [e for e in events_since(app, 0) if isinstance(e, E2OpenBatch.Received)]
    assert batch.fingerprint is not None
    assert batch.fingerprint.startswith("sha256:")


def test_r_hld_1_a_batch_recorded_with_a_version_1_fingerprint_is_redelivered(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """R-HLD-1: the same reports again (keys in other order) under a batch id recorded
    before session 19 are a redelivery: the first outcome, nothing recorded."""
    reports: list[dict[str, Any]] = [
        e2open_report("PC1"),
        e2open_report("PC2", end_customer="Acme"),
        {"x": 1},
    ]
    received_the_old_way(app, "b1", reports)
    position = event_count(app)

    again = app.receive_e2open_batch(OPS, "b1", [dict(reversed(r.items())) for r in reports])

    assert again.redelivered
    assert not again.refused
    assert again.accepted == ["PC1", "PC2"]
    assert [r.index for r in again.rejected] == [2]
    assert event_count(app) == position


def test_r_hld_1_other_content_under_a_version_1_batch_id_is_refused_once(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """R-HLD-1: other reports under a batch id recorded before session 19 are refused and
    kept once, with the version-1 fingerprint of their content; the same refused content
    again records nothing more; a refusal recorded before is known as well."""
    received_the_old_way(app, "b1", [e2open_report("PC1")])
    received_the_old_way(app, "b1", [e2open_report("PC3")])  # a refusal of before
    position = event_count(app)

    refused = app.receive_e2open_batch(OPS, "b1", [e2open_report("PC2")])
    again = app.receive_e2open_batch(OPS, "b1", [e2open_report("PC2")])
    before = app.receive_e2open_batch(OPS, "b1", [e2open_report("PC3")])

    assert [refused.refused, again.refused, before.refused] == [True, True, True]
    assert [r.reason for r in refused.rejected] == [REUSED.format("b1")]
    [refusal] = events_since(app, position)
    assert isinstance(refusal, E2OpenBatch.DeliveryRefused)
    assert refusal.fingerprint == values_fingerprint([e2open_report("PC2")])
    assert refusal.fingerprint.startswith("sha256:")


def test_r_hld_1_a_batch_recorded_now_has_a_version_2_fingerprint(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """R-HLD-1: a batch received now keeps a version-2 fingerprint; its redelivery is one,
    other content under its id is refused."""
    reports = [e2open_report("PC1")]
    app.receive_e2open_batch(OPS, "b2", reports)
    [batch] = [e for e in events_since(app, 0) if isinstance(e, E2OpenBatch.Received)]
    assert batch.fingerprint == screened_reports(reports)[1]

    assert app.receive_e2open_batch(OPS, "b2", [dict(r) for r in reports]).redelivered
    assert app.receive_e2open_batch(OPS, "b2", [e2open_report("PC9")]).refused


@pytest.mark.parametrize("given", ["sha256:" + "0" * 64, None])
def test_r_hld_1_a_fingerprint_given_by_a_feed_is_kept_as_given(
    app: PartnerFleet, holding_tenant: UUID, given: str | None
) -> None:
    """R-HLD-1: a feed's bytes fingerprint is stored as given (no screen); without one the
    batch is screened into version 2."""
    app.receive_e2open_batch(OPS, "b3", [e2open_report("PC1")], fingerprint=given)
    [batch] = [e for e in events_since(app, 0) if isinstance(e, E2OpenBatch.Received)]
    assert batch.fingerprint == (given or screened_reports([e2open_report("PC1")])[1])


# --- Working: an id prefetched absent, then created encoded ---------------------------------


def test_r_hld_1_a_pc_prefetched_absent_then_landed_is_found_landed(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """R-HLD-1 (a retry looks each PC up first): a device id prefetched and not found, then
    created by `add_encoded`, is found as the landed PC (session 19: `find` reads the
    encoded rows before the ids found absent, `add_encoded` no longer discards them)."""
    w = Working(app, attempt=2)
    device_id = Device.id_for("PC1")
    w.prefetch(device_id)
    assert w.find(Device, device_id) is None
    plain = plain_report(e2open_report("PC1"))
    assert plain is not None
    row = Landing(app.mapper, OPS).plain_row(device_id, plain, holding_tenant)

    w.add_encoded(device_id, row)

    found = w.find(Device, device_id)
    assert found is not None
    assert (found.serial, found.placement_owner) == ("PC1", "LOC-1")
    assert w.has(device_id)
