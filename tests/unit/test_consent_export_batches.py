"""Issue 11, R-CON-4: the batch export (`export_batches` + `encoded`) writes the very bytes
the record export (`consent_export` + `lines`) writes, on a varied history: every kind of
record, text beyond ASCII, every selection, empty results; and its reading thread ends
however the export ends."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import Device, NotFoundError
from handlers import PartnerFleet
from handlers.devices import PartnerChoice
from projections.base import MomentError, QueryError
from projections.consent import HISTORY_COLUMNS
from projections.consent_export import (
    consent_export,
    encoded,
    export_batches,
    lines,
    read_ahead,
)
from projections.consent_queries import Selection
from projections.export_lines import csv_lines, jsonl_lines
from tests.actors import auditor, customer
from tests.scopes import AUDIT, customer_of
from tests.unit.views_support import (
    CUSTOMER,
    LOC,
    OTHER_LOC,
    SERVICE_LOC,
    Reader,
    db,
    fleet,
    link_new_servers,
    new_partner,
    read,
    runner,
    times_of,
)

__all__ = ["db", "fleet", "read", "runner"]

DPO = auditor("dpo@hp.example", "corr-dpo")
REASON = 'Unterschrift fehlt \u2013 «Müller» 🖊, "J. Doe"\\intern\tsiehe\nAkte'


@pytest.fixture
def varied(fleet: PartnerFleet) -> dict[str, datetime]:
    """Every kind of record: links to a reseller and a service partner, a relink (unlink
    and link), grants, withdrawals, corrections (one of a correction) with a reason of
    quotes, a backslash, a tab, a line break, umlauts, guillemets and an emoji; two
    customers. Answers the moments between the steps."""
    for location, service in ((LOC, False), (OTHER_LOC, False), (SERVICE_LOC, True)):
        new_partner(fleet, location, service=service)
    link_new_servers(fleet, "C1", "S1", "S2", to=LOC)
    link_new_servers(fleet, "C2", "S3", to=OTHER_LOC)
    fleet.grant_consent(CUSTOMER, "C1", ["S1", "S2"])
    to_service = PartnerChoice(location_id=SERVICE_LOC, role="service_partner")
    fleet.link_devices(CUSTOMER, "C1", ["S2"], to_service)
    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id=OTHER_LOC))
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    [first, *_] = fleet.device("S1").consent_versions
    fleet.correct_consent_record(DPO, "S1", first, REASON, "2025-06")
    [correction] = fleet.device("S1").consent_versions[-1:]
    fleet.correct_consent_record(DPO, "S1", correction, "die Korrektur war falsch", None)
    fleet.grant_consent(customer("C2"), "C2", ["S3"])
    fleet.unlink_devices(CUSTOMER, "C1", ["S2"])
    [relinked] = times_of(fleet, "S1", Device.PartnerLinked)[-1:]
    [corrected, _] = times_of(fleet, "S1", Device.ConsentCorrected)
    return {"relinked": relinked, "corrected": corrected}


SELECTIONS: list[dict[str, Any]] = [
    {"serial": "S1"},
    {"customer_id": "C1"},
    {"customer_id": "C2"},
    {"partner": LOC},
    {"partner": SERVICE_LOC},
    {"partner": OTHER_LOC, "customer_id": "C1"},
    {"customer_id": "C1", "since": "relinked"},
    {"customer_id": "C1", "until": "corrected"},
    {"customer_id": "C1", "since": "corrected", "until": "corrected"},  # empty
    {"customer_id": "C-none"},  # empty
]


def chosen(selection: dict[str, Any], moments: dict[str, datetime]) -> dict[str, Any]:
    """The selection with its moments' names replaced by the moments."""
    return {k: moments[v] if k in ("since", "until") else v for k, v in selection.items()}


@pytest.mark.parametrize("size", [1, 2, 5_000])
@pytest.mark.parametrize(("form", "header"), [("jsonl", True), ("csv", True), ("csv", False)])
@pytest.mark.parametrize("selection", SELECTIONS, ids=str)
def test_issue_11_r_con_4_the_batch_export_writes_the_bytes_of_the_record_export(
    read: Reader,
    varied: dict[str, datetime],
    selection: dict[str, Any],
    form: str,
    header: bool,
    size: int,
) -> None:
    given_selection = chosen(selection, varied)
    with read() as tx:
        records = list(consent_export(tx, AUDIT, Selection(**given_selection)))
        old = "".join(lines(records, form, header=header)).encode()
        chunks = list(
            encoded(
                export_batches(tx, AUDIT, Selection(**given_selection), size=size),
                form,
                header=header,
            )
        )

    new = "".join(chunk.text for chunk in chunks).encode()
    assert new == old
    assert sum(chunk.records for chunk in chunks) == len(records)


def test_issue_11_r_con_4_the_varied_history_holds_every_kind_of_record_and_the_odd_text(
    read: Reader, varied: dict[str, datetime]
) -> None:
    """The comparison above covers what it claims to."""
    with read() as tx:
        records = list(consent_export(tx, AUDIT, Selection(customer_id="C1")))
        text = "".join(
            c.text for c in encoded(export_batches(tx, AUDIT, Selection(customer_id="C1")), "jsonl")
        )

    assert {r["action"] for r in records} == {
        "linked",
        "unlinked",
        "granted",
        "withdrawn",
        "corrected",
    }
    assert {r["role"] for r in records} >= {"reseller", "service_partner"}
    assert REASON in {r["reason"] for r in records}
    assert text.isascii()
    assert [json.loads(line) for line in text.splitlines()] == records


def test_issue_11_r_con_4_a_customer_exports_its_own_records_in_batches_too(
    read: Reader, varied: dict[str, datetime]
) -> None:
    with read() as tx:
        old = "".join(lines(consent_export(tx, customer_of("C1"), Selection()), "jsonl"))
        new = "".join(
            c.text
            for c in encoded(export_batches(tx, customer_of("C1"), Selection(), size=3), "jsonl")
        )

    assert new == old
    assert '"customer_id": "C2"' not in new


@pytest.mark.parametrize("selection", [{"customer_id": "C1"}, {"partner": LOC}], ids=str)
def test_issue_11_r_con_4_batches_resumed_after_any_position_give_exactly_the_rest(
    read: Reader, varied: dict[str, datetime], selection: dict[str, Any]
) -> None:
    with read() as tx:
        whole = [
            row
            for batch in export_batches(tx, AUDIT, Selection(**selection), size=2)
            for row in batch
        ]
        rest = {
            row[0]: [
                r
                for b in export_batches(tx, AUDIT, Selection(**selection), after=row[0])
                for r in b
            ]
            for row in whole
        }

    assert whole
    for index, row in enumerate(whole):
        assert rest[row[0]] == whole[index + 1 :]


@pytest.mark.parametrize(
    ("chosen", "ask", "error", "says"),
    [
        (Selection(serial="S404"), {}, NotFoundError, "S404"),
        (Selection(), {}, NotFoundError, "Name a device"),
        (Selection(serial="S1"), {"after": -1}, QueryError, "-1"),
        (Selection(serial="S1", until=datetime(2026, 1, 1)), {}, MomentError, "no time zone"),
        (Selection(serial="S1"), {"size": 0}, QueryError, "0"),
        (Selection(serial="S1"), {"size": True}, QueryError, "True"),
    ],
    ids=["unknown device", "nothing named", "after", "naive moment", "size 0", "size bool"],
)
def test_issue_11_r_con_4_batches_are_refused_on_the_call_before_any_row(
    read: Reader,
    varied: dict[str, datetime],
    chosen: Selection,
    ask: dict[str, Any],
    error: type[Exception],
    says: str,
) -> None:
    with read() as tx, pytest.raises(error, match=says):
        export_batches(tx, AUDIT, chosen, **ask)


def test_r_par_2_a_customer_gets_no_batches_of_another_customers_device(
    read: Reader, varied: dict[str, datetime]
) -> None:
    with read() as tx, pytest.raises(NotFoundError, match="S3"):
        export_batches(tx, customer_of("C1"), Selection(serial="S3"))


def test_issue_11_an_unknown_form_is_refused_before_any_batch_is_read() -> None:
    def never() -> Iterator[list[tuple[Any, ...]]]:
        raise AssertionError("read")
        yield []

    with pytest.raises(QueryError, match="xml"):
        encoded(never(), "xml")


def test_issue_11_a_row_of_another_width_is_a_value_error_not_shifted_text() -> None:
    with pytest.raises(ValueError, match="17 values"):
        list(encoded([[tuple(range(17)), tuple(range(16))]], "jsonl"))
    with pytest.raises(ValueError, match="17 values"):
        list(encoded([[tuple(range(18))]], "csv"))


def test_issue_11_closing_an_export_half_read_ends_its_thread_and_keeps_the_tx_usable(
    read: Reader, varied: dict[str, datetime]
) -> None:
    before = threading.active_count()
    with read() as tx:
        batches = export_batches(tx, AUDIT, Selection(customer_id="C1"), size=1)
        first = next(batches)
        batches.close()  # type: ignore[attr-defined]
        after_close = threading.active_count()
        [(count,)] = tx.query("SELECT count(*) FROM pf_k_history WHERE customer_id = 'C1'")

    assert len(first) == 1
    assert after_close == before
    assert count > 1


# --- the text writers, on any values -----------------------------------------------------

VALUES = st.one_of(
    st.none(),
    st.text(),
    st.text(alphabet=st.characters(max_codepoint=127)),
    st.integers(),
    st.booleans(),
    st.floats(),
)
# A column holds one kind of value, as a table's column does; or any mix of them.
COLUMN_KINDS = [
    st.none() | st.text(),
    st.none() | st.integers(),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126)),
    st.integers(),
    VALUES,
]


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names (unique, any text) and rows whose columns each draw from one kind."""
    names = draw(st.lists(st.text(min_size=1), min_size=1, max_size=6, unique=True))
    kinds = [draw(st.sampled_from(COLUMN_KINDS)) for _ in names]
    rows = draw(st.lists(st.tuples(*kinds), max_size=12))
    return names, rows


@settings(max_examples=300, deadline=None)
@given(table=tables(), cut=st.integers(min_value=1, max_value=5))
def test_issue_11_r_con_4_encoded_jsonl_is_json_dumps_with_sorted_keys_for_any_values(
    table: tuple[list[str], list[tuple[Any, ...]]], cut: int
) -> None:
    names, rows = table
    batches = [rows[start : start + cut] for start in range(0, len(rows), cut)]
    records = [dict(zip(names, row, strict=True)) for row in rows]

    text = "".join(chunk.text for chunk in encoded(batches, "jsonl", names))

    assert text == "".join(jsonl_lines(records))
    assert text == "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)


@settings(max_examples=200, deadline=None)
@given(table=tables(), cut=st.integers(min_value=1, max_value=5), header=st.booleans())
def test_issue_11_r_con_4_encoded_csv_is_what_the_record_csv_writes_for_any_values(
    table: tuple[list[str], list[tuple[Any, ...]]], cut: int, header: bool
) -> None:
    names, rows = table
    batches = [rows[start : start + cut] for start in range(0, len(rows), cut)]
    records = [dict(zip(names, row, strict=True)) for row in rows]

    text = "".join(chunk.text for chunk in encoded(batches, "csv", names, header=header))

    assert text == "".join(csv_lines(records, names, header=header))


def test_issue_11_r_con_4_a_column_of_history_shape_with_every_escape_is_written_as_json_is() -> (
    None
):
    row = (
        7,
        'd"1',
        2,
        "2026-01-01T00:00:00.000000Z",
        "ÄB1",
        None,
        "consent",
        "corrected",
        None,
        None,
        "\x00\x1f\x7f",
        "\\",
        "𝄞",
        "a\u2028b",
        3,
        "p@x",
        "",
    )
    rows = [row, tuple(None if isinstance(v, str) else v for v in row)]

    text = "".join(chunk.text for chunk in encoded([rows], "jsonl"))

    assert text == "".join(
        json.dumps(dict(zip(HISTORY_COLUMNS, r, strict=True)), sort_keys=True) + "\n" for r in rows
    )


# --- reading ahead -----------------------------------------------------------------------


def counted(items: list[int], taken: list[int]) -> Iterator[int]:
    """The items, noting each as it is taken; ends (finally) by noting -1."""
    try:
        for item in items:
            taken.append(item)
            yield item
    finally:
        taken.append(-1)


def test_issue_11_read_ahead_gives_every_item_in_order_and_ends_its_thread() -> None:
    before = threading.active_count()

    got = list(read_ahead(iter(range(100)), 2))

    assert got == list(range(100))
    assert threading.active_count() == before


def test_issue_11_read_ahead_raises_an_error_after_the_items_before_it() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ConnectionError("server closed the connection")

    ahead = read_ahead(failing(), 1)

    got = [next(ahead), next(ahead)]

    assert got == [1, 2]
    with pytest.raises(ConnectionError, match="server closed"):
        next(ahead)


def test_issue_11_read_ahead_closed_early_stops_reading_and_closes_its_source() -> None:
    taken: list[int] = []
    before = threading.active_count()
    ahead = read_ahead(counted(list(range(1_000)), taken), 2)

    assert next(ahead) == 0
    ahead.close()  # type: ignore[attr-defined]

    assert taken[-1] == -1  # the source was closed
    assert len(taken) < 10  # read no more than a few ahead
    assert threading.active_count() == before


def test_issue_11_read_ahead_starts_no_thread_until_the_first_item_is_asked_for() -> None:
    before = threading.active_count()

    ahead = read_ahead(iter([1]), 1)

    assert threading.active_count() == before
    assert list(ahead) == [1]
