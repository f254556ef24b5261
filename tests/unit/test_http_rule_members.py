"""Issue 9 over HTTP: a rule refusal's `rule` and its data (`reasons`, `admins`) come
through in problem+json, and an error's extensions never replace a standard member."""

from __future__ import annotations

from fastapi import APIRouter

from domain.base import DomainError, Msg
from domain.group_support import DeletionRefusedError
from infra.http.routing import FleetRoute
from tests.scenarios import in_memory_fleet
from tests.unit.http_client import bearer, client, problem_of, two_partners

raising = APIRouter(route_class=FleetRoute)
ERRORS: dict[str, DomainError] = {
    "deletion": DeletionRefusedError(
        [Msg("2 device(s) are still linked to it"), Msg("1 partner-created child group(s) remain")],
        ["anna@LOC-1", "otto@LOC-1"],
    ),
    "greedy": DomainError(
        "At most 25 favourites per user; unmark one first.",
        rule="R-FAV-2",
        extensions={
            "status": 200,
            "type": "/problems/none",
            "detail": "fine",
            "kind": "x",
            "headers": {"X-Evil": "1"},
            "rule": "R-XXX-0",
            "favourites": 25,
        },
    ),
}


@raising.post("/raise-rule/{name}")
def raise_rule(name: str) -> None:
    """Raises the refusal named in the path."""
    raise ERRORS[name]


def test_r_grp_2_a_refused_deletion_answers_its_rule_reasons_and_admins() -> None:
    """R-GRP-2: 409 rule-refused naming the rule, every reason and the admins to contact."""
    answer = client(in_memory_fleet(), None, raising).post("/raise-rule/deletion")

    body = problem_of(answer)
    assert (answer.status_code, body["type"], body["rule"]) == (
        409,
        "/problems/rule-refused",
        "R-GRP-2",
    )
    assert body["reasons"] == [
        "2 device(s) are still linked to it",
        "1 partner-created child group(s) remain",
    ]
    assert body["admins"] == ["anna@LOC-1", "otto@LOC-1"]
    assert "anna@LOC-1, otto@LOC-1" in body["detail"]


def test_r_fav_2_extensions_add_members_but_never_replace_standard_ones() -> None:
    """R-FAV-2: `favourites` is added; status, type, detail and rule stay the refusal's own."""
    answer = client(in_memory_fleet(), None, raising).post("/raise-rule/greedy")

    body = problem_of(answer)
    assert answer.status_code == 409
    assert "x-evil" not in answer.headers
    assert (body["type"], body["detail"], body["rule"], body["favourites"]) == (
        "/problems/rule-refused",
        "At most 25 favourites per user; unmark one first.",
        "R-FAV-2",
        25,
    )


def test_r_par_4_a_real_route_answers_the_rule_its_refusal_names_as_data() -> None:
    """R-PAR-4: certifying a reseller for Service Delivery is refused; the message names no
    rule, the problem does (from the error's `rule`), and nothing is recorded."""
    fleet = in_memory_fleet()
    two_partners(fleet)
    api = client(fleet)
    before = fleet.recorder.max_notification_id()

    answer = api.post(
        "/partners/LOC-1/certifications",
        json={"programme": "service_delivery"},
        headers=bearer("ops"),
    )

    body = problem_of(answer)
    assert (answer.status_code, body["rule"]) == (409, "R-PAR-4")
    assert "R-PAR-4" not in body["detail"]
    assert fleet.recorder.max_notification_id() == before
