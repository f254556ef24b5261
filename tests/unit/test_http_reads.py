"""Issue 9: reads wait for a command's position (read-your-writes), and lists are paged
with opaque cursors bound to the principal, the route and the filter."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.testclient import TestClient

from infra.http.deps import ViewsDep
from infra.http.routing import FleetRoute
from infra.storage.tracking import read_position
from tests.scenarios import in_memory_fleet
from tests.unit.http_client import OPS, bearer, client, problem_of, two_partners
from tests.unit.test_view_runner import break_handler, linked_customers
from tests.views import memory_runner

reads = APIRouter(route_class=FleetRoute)


@reads.get("/test-views/position")
def views_position(views: ViewsDep) -> dict[str, int]:
    """Where the customers view is (a stand-in for the resource routes' reads)."""
    with views.transaction() as tx:
        return {"position": read_position(tx, "customers")}


def test_r_par_1_a_read_waiting_for_a_commands_position_sees_its_write() -> None:
    """R-PAR-1: register a partner, then read with Partnerfleet-Wait-For its position."""
    fleet = in_memory_fleet()
    api = client(fleet, memory_runner(fleet), reads)
    written = api.post("/partners", json={"location_id": "L", "name": "N"}, headers=bearer("ops"))
    position = written.headers["partnerfleet-position"]

    answer = api.get("/test-views/position", headers={"Partnerfleet-Wait-For": position})

    assert answer.json()["position"] >= int(position) > 0


def test_r_lnk_1_views_that_cannot_reach_the_position_answer_503_with_retry_after() -> None:
    """R-LNK-1: a view stuck before the position: 503 `views-behind` + Retry-After, in ~1 s."""
    runner = linked_customers(2)
    restore = break_handler(runner.view("customers"), "DeviceAdded", {"S1"})
    api = client(runner.fleet, runner, reads)

    try:
        answer = api.get(
            "/test-views/position", headers={"Partnerfleet-Wait-For": str(runner.head())}
        )
    finally:
        restore()

    assert (answer.status_code, problem_of(answer)["type"]) == (503, "/problems/views-behind")
    assert answer.headers["retry-after"] == "1"


def test_i9_a_wait_for_that_is_not_a_position_is_422_naming_the_header() -> None:
    """Partnerfleet-Wait-For must be a non-negative integer."""
    fleet = in_memory_fleet()
    api = client(fleet, memory_runner(fleet), reads)

    answer = api.get("/test-views/position", headers={"Partnerfleet-Wait-For": "soon"})

    [error] = problem_of(answer)["errors"]
    assert (answer.status_code, error["in"], error["field"]) == (
        422,
        "header",
        "Partnerfleet-Wait-For",
    )


def with_users(count: int) -> TestClient:
    """LOC-1 with Anna (admin), Ben and `count` more users; LOC-2 with Otto."""
    fleet = in_memory_fleet()
    two_partners(fleet)
    for n in range(count):
        fleet.register_partner_user(OPS, "LOC-1", f"user{n}@LOC-1")
    return client(fleet)


def test_r_par_1_pages_follow_one_another_to_the_last() -> None:
    """R-PAR-1: 7 users by 3: three pages, each once, the last without a next cursor."""
    api = with_users(5)
    seen: list[str] = []
    cursor: str | None = None

    for _ in range(3):
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = api.get("/partners/LOC-1/users", params=params, headers=bearer("anna")).json()
        seen += [u["passport_id"] for u in page["items"]]
        cursor = page["next_cursor"]

    assert cursor is None
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == 7


def first_cursor(api: TestClient) -> str:
    """Anna's cursor after the first page of 2."""
    page = api.get("/partners/LOC-1/users", params={"limit": "2"}, headers=bearer("anna"))
    cursor: str = page.json()["next_cursor"]
    return cursor


def test_r_par_1_a_cursor_of_another_principal_is_400() -> None:
    """R-PAR-1: Ben cannot continue Anna's listing with her cursor."""
    api = with_users(2)

    answer = api.get(
        "/partners/LOC-1/users", params={"cursor": first_cursor(api)}, headers=bearer("ben")
    )

    assert (answer.status_code, problem_of(answer)["type"]) == (400, "/problems/invalid-cursor")
    assert "another principal" in problem_of(answer)["detail"]


def test_r_par_1_a_cursor_under_another_filter_is_400() -> None:
    """R-PAR-1: a cursor of all users cannot continue the list of role=user."""
    api = with_users(2)

    answer = api.get(
        "/partners/LOC-1/users",
        params={"cursor": first_cursor(api), "role": "user"},
        headers=bearer("anna"),
    )

    assert answer.status_code == 400
    assert "another list or filter" in problem_of(answer)["detail"]


def test_i9_an_altered_cursor_is_400() -> None:
    """A cursor changed by one character, or made up, was not issued here."""
    api = with_users(2)
    cursor = first_cursor(api)
    # A character in the middle: the last base64 character may carry only padding bits,
    # so changing it can leave the decoded cursor as it was.
    middle = len(cursor) // 2
    altered = cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :]

    answers = [
        api.get("/partners/LOC-1/users", params={"cursor": c}, headers=bearer("anna"))
        for c in (altered, "eyJrIjpbInoiXX0")
    ]

    assert [a.status_code for a in answers] == [400, 400]


def test_i9_limit_is_bounded_to_1_to_200() -> None:
    """limit=0 and limit=201 are 422 naming `limit`; 200 is fine."""
    api = with_users(0)

    answers = {
        n: api.get("/partners/LOC-1/users", params={"limit": str(n)}, headers=bearer("anna"))
        for n in (0, 200, 201)
    }

    assert {n: a.status_code for n, a in answers.items()} == {0: 422, 200: 200, 201: 422}
    assert problem_of(answers[201])["errors"][0]["field"] == "limit"
