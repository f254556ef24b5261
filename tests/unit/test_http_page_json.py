"""The All Customers page body built without a model per tile (customer_list_json) is the
body pydantic gives for the route's declared schema, CustomerList, byte for byte."""

from __future__ import annotations

from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.http.schemas.customers import CustomerList, customer_list_json
from projections.customer_queries import CustomerPage, CustomerRow

counts = st.integers(min_value=0, max_value=2**53)
maybe_count = st.none() | counts
rows = st.builds(
    CustomerRow,
    group_id=st.uuids().map(str),
    customer_id=st.text(max_size=40),
    name=st.text(max_size=80),  # quotes, backslashes, control characters, any plane
    devices=st.fixed_dictionaries(
        {"central_connect": counts, "direct_connect": counts, "pc_agent": counts}
    ),
    service_events=maybe_count,
    critical_events=maybe_count,
    favourite=st.booleans(),
)
pages = st.builds(
    CustomerPage,
    view=st.sampled_from(["all_customers", "favorites_only"]),
    favorites_only_available=st.booleans(),
    rows=st.lists(rows, max_size=8),
    next_cursor=st.none(),
)


@given(pages, st.none() | st.text(max_size=60))
def test_the_page_body_is_the_schemas_body_byte_for_byte(
    page: CustomerPage, cursor: str | None
) -> None:
    expected = CustomerList.of_customers(page, cursor).model_dump_json().encode()
    assert customer_list_json(page, cursor) == expected


def test_a_group_id_in_another_spelling_is_written_canonical() -> None:
    upper = "A3F1C2D4-5B6E-4F70-8A9B-0C1D2E3F4A5B"
    row = CustomerRow(
        upper,
        "C1",
        'Ünïcode "quoted"\n',
        {"central_connect": 1, "direct_connect": 0, "pc_agent": 2},
        None,
        None,
        True,
    )
    page = CustomerPage("all_customers", True, [row], None)
    body = customer_list_json(page, "next")
    assert str(UUID(upper)) in body.decode()
    assert body == CustomerList.of_customers(page, "next").model_dump_json().encode()


def test_a_group_id_that_is_no_uuid_is_refused() -> None:
    row = CustomerRow(
        "not-a-uuid",
        "C1",
        "n",
        {"central_connect": 0, "direct_connect": 0, "pc_agent": 0},
        0,
        0,
        False,
    )
    with pytest.raises(ValueError, match="hexadecimal UUID"):
        customer_list_json(CustomerPage("all_customers", False, [row], None), None)
