"""R-CON-4: consent exports stream in store order, resume after a position, check first."""

from __future__ import annotations

import csv
import dataclasses
import inspect
import io
import json
import tracemalloc
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from domain import NotFoundError
from handlers import PartnerFleet
from handlers.access import ForbiddenError, audit_scope
from handlers.devices import PartnerChoice
from infra.storage.viewdb import SQLiteViewDB
from projections.base import MomentError, QueryError
from projections.consent import HISTORY_COLUMNS
from projections.consent_export import (
    consent_export,
    count_export,
    csv_lines,
    export_batches,
    jsonl_lines,
    lines,
)
from projections.consent_queries import Selection, history, history_statement
from tests.scopes import AUDIT, customer_actor, customer_of
from tests.unit.views_support import (
    CUSTOMER,
    LOC,
    OTHER_LOC,
    Reader,
    db,
    fleet,
    link_new_servers,
    new_partner,
    read,
    runner,
)

__all__ = ["db", "fleet", "read", "runner"]


@pytest.fixture
def world(fleet: PartnerFleet) -> None:
    """C1's S1 and S2 with LOC-1, S1 relinked to LOC-2; consent granted and withdrawn on
    both, in one command each (so their records interleave in the store)."""
    new_partner(fleet, LOC)
    new_partner(fleet, OTHER_LOC)
    link_new_servers(fleet, "C1", "S1", "S2", to=LOC)
    link_new_servers(fleet, "C2", "S3", to=OTHER_LOC)
    fleet.grant_consent(CUSTOMER, "C1", ["S1", "S2"])
    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id=OTHER_LOC))
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1", "S2"])


def test_r_con_4_an_export_streams_every_record_in_store_order_with_its_position(
    read: Reader, world: None
) -> None:
    with read() as tx:
        exported = list(consent_export(tx, AUDIT, Selection(customer_id="C1")))
        paged = history(tx, AUDIT, Selection(customer_id="C1"), limit=200).rows

    positions = [r["position"] for r in exported]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    assert exported == paged
    assert [(r["serial"], r["action"]) for r in exported][-2:] == [
        ("S1", "withdrawn"),
        ("S2", "withdrawn"),
    ]


@pytest.mark.parametrize(
    "selection",
    [{"serial": "S1"}, {"customer_id": "C1"}, {"partner": LOC}, {"partner": OTHER_LOC}],
    ids=str,
)
def test_r_con_4_an_export_resumed_after_any_position_gives_exactly_the_rest(
    read: Reader, world: None, selection: dict[str, Any]
) -> None:
    with read() as tx:
        whole = list(consent_export(tx, AUDIT, Selection(**selection)))
        resumed = {
            r["position"]: list(
                consent_export(tx, AUDIT, Selection(**selection), after=r["position"])
            )
            for r in whole
        }

    assert whole
    for index, record in enumerate(whole):
        assert resumed[record["position"]] == whole[index + 1 :]


def test_r_con_4_a_partners_export_holds_the_records_of_its_link_periods(
    read: Reader, world: None
) -> None:
    """R-CON-4: LOC-1 keeps S1's records up to its unlink, and all of S2's."""
    with read() as tx:
        of_loc_1 = list(consent_export(tx, AUDIT, Selection(partner=LOC)))
        paged = history(tx, AUDIT, Selection(partner=LOC)).rows

    assert of_loc_1 == paged
    assert [(r["serial"], r["action"]) for r in of_loc_1 if r["serial"] == "S1"] == [
        ("S1", "linked"),
        ("S1", "granted"),
        ("S1", "unlinked"),
    ]


@pytest.mark.parametrize(
    ("ask", "error", "says"),
    [
        (lambda tx: consent_export(tx, AUDIT, Selection(serial="S404")), NotFoundError, "S404"),
        (lambda tx: consent_export(tx, AUDIT, Selection()), NotFoundError, "Name a device"),
        (
            lambda tx: consent_export(tx, customer_of("C1"), Selection(serial="S3")),
            NotFoundError,
            "S3",
        ),
        (
            lambda tx: consent_export(tx, customer_of("C1"), Selection(customer_id="C2")),
            NotFoundError,
            "C2",
        ),
        (lambda tx: consent_export(tx, AUDIT, Selection(serial="S1"), after=-1), QueryError, "-1"),
    ],
    ids=["unknown device", "nothing named", "other's device", "other customer", "after"],
)
def test_r_con_4_an_export_is_refused_when_asked_before_any_row_is_read(
    read: Reader, world: None, ask: Callable[..., object], error: type[Exception], says: str
) -> None:
    """R-CON-4: the refusal comes from the call itself, not from the first `next()`, so an
    HTTP response or a file is never started for it."""
    with read() as tx, pytest.raises(error, match=says):
        ask(tx)


def test_r_con_4_only_auditors_operators_and_the_customer_get_a_scope_to_export() -> None:
    with pytest.raises(ForbiddenError, match="customer_admin may not"):
        audit_scope(customer_actor("C1"))


def test_r_con_4_a_naive_moment_is_refused_before_the_export_starts(
    read: Reader, world: None
) -> None:
    with read() as tx, pytest.raises(MomentError, match="no time zone"):
        consent_export(tx, AUDIT, Selection(serial="S1", until=datetime(2026, 1, 1)))


def test_r_par_2_a_customer_exports_its_own_devices_records_only(read: Reader, world: None) -> None:
    with read() as tx:
        own = list(consent_export(tx, customer_of("C1"), Selection()))

    assert {r["customer_id"] for r in own} == {"C1"}
    assert {r["serial"] for r in own} == {"S1", "S2"}


def test_r_con_4_json_lines_and_csv_lines_parse_back_to_the_records(
    read: Reader, world: None
) -> None:
    with read() as tx:
        records = list(consent_export(tx, AUDIT, Selection(customer_id="C1")))

    as_json = [json.loads(line) for line in jsonl_lines(records)]
    as_csv = list(csv.DictReader(io.StringIO("".join(csv_lines(records)))))
    appended = list(lines(records[:1], "csv", header=False))
    assert as_json == records
    assert [r["position"] for r in as_csv] == [str(r["position"]) for r in records]
    assert list(as_csv[0]) == list(HISTORY_COLUMNS)
    assert len(appended) == 1
    with pytest.raises(QueryError, match="xml"):
        lines(records, "xml")


def test_r_con_4_a_stream_holds_a_batch_of_rows_not_the_whole_result() -> None:
    """R-CON-4: reading 40,000 rows through `Tx.stream` allocates a small fraction of what
    reading them at once does (SQLite; PostgreSQL's named cursor is tested in
    tests/integration/test_viewdb.py)."""
    database = SQLiteViewDB(":memory:")
    with database.transaction() as tx:
        tx.execute("CREATE TABLE big (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        tx.executemany("INSERT INTO big VALUES (?, ?)", ((n, "x" * 100) for n in range(40_000)))

    def peak(read_all: Callable[[], int]) -> tuple[int, int]:
        tracemalloc.start()
        try:
            count = read_all()
            return count, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    with database.transaction() as tx:
        streamed, streaming_peak = peak(lambda: sum(1 for _ in tx.stream("SELECT * FROM big")))
        listed, listing_peak = peak(lambda: len(tx.query("SELECT * FROM big")))
    database.close()

    assert streamed == listed == 40_000
    assert streaming_peak * 10 < listing_peak


@pytest.mark.parametrize(
    "query",
    [history, history_statement, consent_export, export_batches, count_export],
    ids=lambda q: q.__name__,
)
def test_r_con_4_every_history_query_takes_its_filters_as_one_selection(query: Any) -> None:
    """The five filters are declared once (`Selection`), not as keywords of each query."""
    parameters = inspect.signature(query).parameters

    assert list(parameters)[:3] == ["tx", "scope", "selection"]
    assert parameters["selection"].annotation in (Selection, "Selection")
    assert not {f.name for f in dataclasses.fields(Selection)} & set(parameters)
