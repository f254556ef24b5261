"""Issue 11: plain e2Open reports skip pydantic and land exactly as the model's path (R-HLD-1).

`domain.intake.plain_report` accepts the common form of a report (printable ASCII, ISO
ship date, the model's fields) without E2OpenReport; whatever it accepts the model must
accept with the same values, and `Landing.plain_row` must store the same bytes as `row`.
Anything else goes to the model, so every bad report keeps its specific error.
"""

from __future__ import annotations

import string
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain import Device
from domain.base import Cause
from domain.intake import E2OpenReport, plain_report
from domain.text import TextError, check_storable
from handlers import PartnerFleet
from handlers.landing import Landing
from tests.scenarios import IN_MEMORY
from tests.unit.conftest import OPS, e2open_report, events_since, names

FIELDS = ["serial", "model", "reseller_location_id", "distributor", "ship_date"]
# Values near the edges of what the model accepts: blanks, empty, long, non-ASCII, control
# characters, quotes, wrong types, other date forms.
EDGY_TEXT = st.one_of(
    st.text(alphabet=string.printable, max_size=40),
    st.text(max_size=12),
    st.sampled_from(["", " ", "a ", " a", "É", "ǅ", "a\tb", 'q"t', "b\\s", "x" * 33, "y" * 201]),
    st.sampled_from(["5CG123", "pc1", "PC-1", "\uff30\uff23\uff11", "LOC-1", "Ingram"]),
)
EDGY_DATE = st.one_of(
    st.dates().map(date.isoformat),
    st.sampled_from(
        ["2026-02-29", "2024-02-29", "2026-13-01", "20261001", "2026-10-01T00:00:00", "2026-W40-1"]
    ),
    st.sampled_from(["0001-01-01", "9999-12-31", "0000-01-01", "2026-1-01", " 2026-10-01"]),
    # Numbers and digits, which lax pydantic read as Unix times (session 18, domain/iso.py).
    st.integers(-(10**11), 10**11),
    st.integers(0, 10**11).map(str),
    st.sampled_from([1699920000, 1699920000.0, "1699920000", "20261001", 0, "0"]),
)
EDGY_VALUE = st.one_of(EDGY_TEXT, st.none(), st.integers(), st.booleans(), st.just(["a"]))
# Mostly good values, so that both paths are taken often (`event` counts them).
GOOD_TEXT = st.text(string.ascii_letters + string.digits + " -.&'", min_size=1, max_size=30)
TEXT = st.one_of(GOOD_TEXT, GOOD_TEXT, GOOD_TEXT, GOOD_TEXT, EDGY_TEXT)
SERIAL = st.text(string.ascii_letters + string.digits, min_size=1, max_size=33)
DAY = st.one_of(st.dates().map(date.isoformat), EDGY_DATE)


@st.composite
def raw_reports(draw: st.DrawFn) -> Any:
    """Report-like JSON values: most fields drawn from edgy values, some missing or extra."""
    raw: dict[str, Any] = {
        "serial": draw(st.one_of(SERIAL, SERIAL, EDGY_TEXT)),
        "model": draw(TEXT),
        "reseller_location_id": draw(TEXT),
        "distributor": draw(TEXT),
        "ship_date": draw(DAY),
    }
    if draw(st.booleans()):
        raw["end_customer"] = draw(st.one_of(TEXT, st.none()))
    if draw(st.booleans()):
        raw["care_plan"] = draw(st.sampled_from(["premium", "premium_plus", "Premium", " premium"]))
    if draw(st.integers(0, 9)) == 0:
        raw[draw(st.sampled_from([*FIELDS, "extra"]))] = draw(EDGY_VALUE)
    if draw(st.integers(0, 9)) == 0:
        del raw[draw(st.sampled_from(FIELDS))]
    return raw if draw(st.integers(0, 19)) else draw(st.sampled_from([[raw], "report", None]))


def model_fields(report: E2OpenReport) -> tuple[Any, ...]:
    """The model's values in the plain form's order and types."""
    return (
        report.serial,
        report.model,
        report.reseller_location_id,
        report.distributor,
        report.ship_date.isoformat(),
        report.end_customer,
        report.care_plan,
    )


@settings(max_examples=1500, deadline=None)
@given(raw=raw_reports())
def test_issue_11_plain_report_accepts_only_what_the_model_accepts_alike(raw: Any) -> None:
    """R-HLD-1: a report the plain form takes is one the model takes, with the same values."""
    plain = plain_report(raw)
    try:
        report = E2OpenReport.model_validate(raw)
    except ValidationError:
        assert plain is None
        return
    event("plain" if plain is not None else "model only")
    if plain is not None:
        assert plain == model_fields(report)


@settings(max_examples=400, deadline=None)
@given(day=DAY)
def test_issue_11_plain_report_and_the_model_agree_on_every_ship_date(day: Any) -> None:
    """R-HLD-1: for a report otherwise plain, the plain path takes a ship date exactly when
    the model does (an ISO day), and numbers or digits neither (session 18)."""
    raw = e2open_report("PC1") | {"ship_date": day}

    plain = plain_report(raw)

    try:
        E2OpenReport.model_validate(raw)
    except ValidationError:
        assert plain is None
        return
    assert plain is not None
    assert isinstance(day, str)


def test_issue_11_plain_report_takes_the_common_form() -> None:
    """The usual report (and one with customer and plan) takes the plain path."""
    usual = e2open_report("5cg1234abc")
    assert plain_report(usual) == (
        "5CG1234ABC",
        "EliteBook 840",
        "LOC-1",
        "Ingram",
        "2026-10-01",
        None,
        "premium",
    )
    full = usual | {"end_customer": "Acme Corp", "care_plan": "premium_plus"}
    assert plain_report(full) == model_fields(E2OpenReport.model_validate(full))


@settings(max_examples=200, deadline=None)
@given(
    serial=st.text(string.ascii_letters + string.digits, min_size=1, max_size=32),
    text=st.text(string.printable.strip(), min_size=1, max_size=40),
    customer=st.one_of(st.none(), st.text(string.printable.strip(), min_size=1, max_size=40)),
    day=st.dates(date(2000, 1, 1), date(2100, 1, 1)),
)
def test_issue_11_plain_row_is_the_models_row(
    serial: str, text: str, customer: str | None, day: date
) -> None:
    """The plain path stores the same bytes as the model's path (quotes, backslashes too)."""
    raw: dict[str, Any] = e2open_report(serial, model=text, distributor=text)
    raw |= {"ship_date": day.isoformat(), "end_customer": customer}
    plain = plain_report(raw)
    assert plain is not None
    landing = Landing(PartnerFleet(env=IN_MEMORY).mapper, Cause("feed:e2open", "c-1"))
    tenant, when = uuid4(), datetime.now(UTC)
    device_id = Device.id_for(serial)
    assert Device.id_for_normal(plain[0]) == device_id
    expected = landing.row(device_id, E2OpenReport.model_validate(raw), tenant, when)
    assert landing.plain_row(device_id, plain, tenant, when) == expected


def test_issue_11_plain_and_model_forms_of_one_pc_in_a_batch_r_hld_1(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """R-HLD-1: a PC sent plain and again padded (the model's path) is one PC: the same
    report is a duplicate, another report is rejected; in either order."""
    before = app.recorder.max_notification_id() or 0
    outcome = app.receive_e2open_batch(
        OPS,
        "mix-1",
        [
            e2open_report("PC1"),
            e2open_report(" pc1 "),  # padded: the model's path finds the plain one
            e2open_report("PC2", model=" ZBook "),  # padded model: the model's path
            e2open_report("pc2", model="ZBook"),  # plain, same report as the padded one
            e2open_report("PC2", model="Other"),  # plain, other content
            e2open_report("PC3", ship_date="2026-02-30"),  # not a day: the model says why
        ],
    )
    assert outcome.accepted == ["PC1", "PC2"]
    assert outcome.duplicates == ["PC1", "PC2"]
    assert [r.index for r in outcome.rejected] == [4, 5]
    assert "different content" in outcome.rejected[0].reason
    assert outcome.rejected[1].reason.startswith("malformed report: ship_date: ")
    assert names(events_since(app, before)) == ["Device.ReportedByE2Open"] * 2 + [
        "E2OpenBatch.Received"
    ]
    assert app.repository.get(Device.id_for("PC2")).model == "ZBook"


def test_issue_11_plain_reports_of_unknown_or_uncertified_partners_r_hld_1(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """R-HLD-1: plain reports name the partner problem as the model's path does, each time,
    and the reports behind them still land."""
    app.register_partner(OPS, "LOC-2", "Partner LOC-2")  # not certified: no holding tenant
    outcome = app.receive_e2open_batch(
        OPS,
        "mix-2",
        [
            e2open_report("PC1", "LOC-9"),
            e2open_report("PC2", "LOC-2"),
            e2open_report("PC3", "LOC-9"),
            e2open_report("PC4"),
        ],
    )
    assert outcome.accepted == ["PC4"]
    assert [(r.index, r.reason) for r in outcome.rejected] == [
        (0, "unknown partner Location ID LOC-9"),
        (1, "partner LOC-2 has no holding tenant (not certified)"),
        (2, "unknown partner Location ID LOC-9"),
    ]


@settings(max_examples=300, deadline=None)
@given(
    instants=st.lists(
        st.one_of(
            st.integers(0, 4_102_444_800 * 10**9),  # to 2100
            st.integers(0, 4_102_444_800).map(lambda s: s * 10**9),  # whole seconds
            st.integers(1_790_000_000 * 10**9, 1_790_000_002 * 10**9),  # one second apart
        ),
        min_size=1,
        max_size=20,
    )
)
def test_issue_11_landing_timestamps_are_isoformat(instants: list[int]) -> None:
    """Timestamps written from the clock read as `datetime.isoformat` writes them, whatever
    second the one before was in (whole seconds have no fraction)."""
    landing = Landing(PartnerFleet(env=IN_MEMORY).mapper, Cause("feed:e2open", "c-1"))
    for ns in instants:
        second, micro = divmod(ns // 1_000, 1_000_000)
        expected = datetime.fromtimestamp(second, UTC).replace(microsecond=micro)
        assert landing.iso_at(ns) == expected.isoformat()


def test_issue_11_plain_rows_are_stored_events_of_now(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """A row timestamped from the clock is an equal StoredEvent that reads back as the event
    of a PC landed just now."""
    landing = Landing(app.mapper, Cause("feed:e2open", "c-1"))
    plain = plain_report(e2open_report("PC9"))
    assert plain is not None
    before = datetime.now(UTC)
    row = landing.plain_row(Device.id_for("PC9"), plain, holding_tenant)
    event = app.mapper.to_domain_event(row)
    assert isinstance(event, Device.ReportedByE2Open)
    assert before <= event.timestamp <= datetime.now(UTC)
    assert row == StoredEvent(row.originator_id, 1, row.topic, row.state)
    assert landing.plain_row(Device.id_for("PC9"), plain, holding_tenant, event.timestamp) == row


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        (["PC1", "PC\x002", "PC3"], "accepted"),  # a NUL among texts: found and named
        (["PC1", 7, "PC\x1b4"], "accepted"),  # not all text: walked one by one
        ([["PC1"], ("PC\ud800",)], "accepted"),  # nested: walked one by one
    ],
)
def test_issue_11_storable_check_of_long_lists_still_names_bad_text(
    bad: list[object], where: str
) -> None:
    """The backstop checks a list of texts in one search and still refuses any bad one."""
    check_storable({"accepted": [f"PC{i}" for i in range(1_000)] + ["É ok", "tab\tok"]})
    with pytest.raises(TextError, match=where):
        check_storable({"batch_id": "b-1", where: [*bad, *(f"PC{i}" for i in range(1_000))]})
