"""R-FAV-*, R-GRP-*, R-LNK-1, R-SVC-2 over HTTP: the customers router (My Customers).

Given a world made through the fleet's commands, each route is called through the API and
read back through the API (views caught up by `Partnerfleet-Wait-For`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from domain.base import NotFoundError
from domain.customer_group import CustomerGroup
from handlers import PartnerFleet
from handlers.access import AuthenticationError, Claims, partner_scope
from handlers.devices import NewDevice, PartnerChoice
from handlers.group_queries import own_passport, partner_customer_group
from infra.follow.view_runner import ViewRunner
from infra.http.app import create_api
from infra.settings import Settings
from infra.storage.viewdb import ViewDB
from projections import all_views
from tests.actors import customer, partner_user
from tests.scenarios import OPS, event_count, in_memory_fleet, partner
from tests.unit.http_client import problem_of
from tests.views import memory_runner

RULE = re.compile(r"^R-[A-Z]{3}-\d+")
TOKENS = {
    "anna": Claims("anna@LOC-1", "partner_user", "LOC-1"),  # LOC-1's admin (service partner)
    "ben": Claims("ben@LOC-1", "partner_user", "LOC-1"),
    "otto": Claims("anna@LOC-2", "partner_user", "LOC-2"),  # LOC-2's admin (reseller)
    "c1": Claims("it@c1.example", "customer_admin", "C1"),
    "c2": Claims("it@c2.example", "customer_admin", "C2"),
    "ops": Claims("ops", "operator"),
}
C1 = CustomerGroup.id_for("LOC-1", "C1")
C2 = CustomerGroup.id_for("LOC-1", "C2")
GROUPS = "/partners/LOC-1/customer-groups"


class Verifier:
    """Accepts exactly the tokens of `TOKENS` (signatures are infra/http/auth.py's)."""

    def claims(self, token: str) -> Claims:
        """The claims a known token names."""
        if token not in TOKENS:
            raise AuthenticationError("The token's signature does not verify.")
        return TOKENS[token]


@dataclass
class World:
    """The fleet, and a client that reads its own writes."""

    fleet: PartnerFleet
    api: TestClient
    position: str = "0"

    def call(self, method: str, path: str, who: str, **kwargs: Any) -> Any:
        """The answer to `who`'s request; a command's position is waited for by later reads."""
        headers = {"Authorization": f"Bearer {who}", **kwargs.pop("headers", {})}
        if method == "GET":
            headers["Partnerfleet-Wait-For"] = str(self.fleet.recorder.max_notification_id())
        answer = self.api.request(method, path, headers=headers, **kwargs)
        self.position = answer.headers.get("partnerfleet-position", self.position)
        return answer


def devices(*serials: str, connection: str = "direct_connect") -> list[NewDevice]:
    """Devices of one connection type to register."""
    return [NewDevice(serial=s, connection=connection, model="DL380") for s in serials]


def world(fleet: PartnerFleet | None = None, db: ViewDB | None = None) -> World:
    """LOC-1 (service partner; admin Anna, user Ben) with customers C1 (S1 serviced, a
    critical event; S2 resold) and C2 (P1, a PC); LOC-2 (reseller; admin anna@LOC-2) with C9.
    In memory, or over `fleet` and read models in `db` (PostgreSQL tests).
    """
    fleet = in_memory_fleet() if fleet is None else fleet
    partner(fleet, "LOC-1", service=True)
    partner(fleet, "LOC-2")
    c1, c2 = customer("C1", "it@c1.example"), customer("C2", "it@c2.example")
    service = PartnerChoice(location_id="LOC-1", role="service_partner")
    fleet.register_devices(c1, "C1", devices("S1"), service, customer_name="Acme")
    fleet.register_devices(c1, "C1", devices("S2"), PartnerChoice(location_id="LOC-1"), "Acme")
    pcs = devices("P1", connection="pc_agent")
    fleet.register_devices(c2, "C2", pcs, PartnerChoice(location_id="LOC-1"), "Globex")
    fleet.register_devices(customer("C9"), "C9", devices("S9"), PartnerChoice(location_id="LOC-2"))
    fleet.record_service_event(OPS, "S1", "EV1", "critical", "Fan failed")
    fleet.record_service_event(OPS, "S1", "EV2", "info", "Firmware current")
    runner = memory_runner(fleet) if db is None else ViewRunner(fleet, db, all_views())
    api = create_api(fleet, Settings(), runner, verifier=Verifier())
    return World(fleet, TestClient(api, raise_server_exceptions=False))


def unlink_all(fleet: PartnerFleet) -> None:
    """C1 unlinks both its devices from LOC-1 (R-LNK-6)."""
    c1 = customer("C1", "it@c1.example")
    fleet.unlink_devices(c1, "C1", ["S1"], "service_partner")
    fleet.unlink_devices(c1, "C1", ["S2"])


def names(answer: Any) -> list[str]:
    """The customer ids of a page of All Customers, after checking it succeeded."""
    assert answer.status_code == 200, answer.text
    return [item["customer_id"] for item in answer.json()["items"]]


# --- All Customers / Favorites Only ----------------------------------------------------


def test_r_svc_2_all_customers_shows_each_group_with_its_service_summary() -> None:
    """R-FAV-1, R-SVC-2: customer objects by name, devices by connection, events counted."""
    w = world()

    page = w.call("GET", GROUPS, "anna").json()

    assert page["view"] == "all_customers"
    assert not page["favorites_only_available"]
    assert page["next_cursor"] is None
    [acme, globex] = page["items"]
    assert (acme["group_id"], acme["name"], globex["name"]) == (str(C1), "Acme", "Globex")
    assert acme["devices"] == {"central_connect": 0, "direct_connect": 2, "pc_agent": 0}
    assert (acme["service_events"], acme["critical_events"]) == (2, 1)
    assert globex["devices"]["pc_agent"] == 1
    assert not acme["favourite"]


def test_r_svc_1_a_reseller_sees_no_service_summary_on_its_tiles() -> None:
    """R-SVC-1, R-LNK-1: LOC-2 sees only its own customer, without service counts."""
    w = world()

    [tile] = w.call("GET", "/partners/LOC-2/customer-groups", "otto").json()["items"]

    assert (tile["customer_id"], tile["service_events"], tile["critical_events"]) == (
        "C9",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ({"has_critical": "true"}, ["C1"]),
        ({"has_critical": "false"}, ["C2"]),
        ({"connection": "pc_agent"}, ["C2"]),
        ({"search": "acm"}, ["C1"]),
        ({"search": "nobody"}, []),
    ],
)
def test_r_fav_5_filters_and_search_narrow_all_customers(
    query: dict[str, str], shown: list[str]
) -> None:
    """R-FAV-5, R-SVC-2: critical events, connection type and a part of the name."""
    w = world()

    assert names(w.call("GET", GROUPS, "anna", params=query)) == shown


def test_r_fav_1_pages_follow_by_cursor_and_a_cursor_is_its_users_only() -> None:
    """R-FAV-1: limit 1 gives a cursor to the next page; another user's use of it is 400."""
    w = world()
    first = w.call("GET", GROUPS, "anna", params={"limit": 1}).json()
    cursor = first["next_cursor"]

    second = w.call("GET", GROUPS, "anna", params={"limit": 1, "cursor": cursor}).json()
    stolen = w.call("GET", GROUPS, "ben", params={"limit": 1, "cursor": cursor})

    assert [first["items"][0]["customer_id"], second["items"][0]["customer_id"]] == ["C1", "C2"]
    assert second["next_cursor"] is None
    assert (stolen.status_code, problem_of(stolen)["type"]) == (400, "/problems/invalid-cursor")


def test_r_fav_3_favorites_only_without_a_favourite_is_refused_and_a_bad_view_is_422() -> None:
    """R-FAV-3: Favorites Only needs a favourite (409); an unknown view names the field."""
    w = world()

    empty = w.call("GET", GROUPS, "anna", params={"view": "favorites_only"})
    bogus = w.call("GET", GROUPS, "anna", params={"view": "everything"})

    assert (empty.status_code, problem_of(empty)["type"]) == (409, "/problems/rule-refused")
    assert "at least one favourite" in problem_of(empty)["detail"]
    assert (bogus.status_code, problem_of(bogus)["errors"][0]["field"]) == (422, "view")


# --- favourites, the default view, the profile -----------------------------------------


def test_r_fav_4_favourite_default_view_and_back_to_all_customers() -> None:
    """R-FAV-2, R-FAV-3, R-FAV-4: mark, remember Favorites Only, unmark the last: All again."""
    w = world()

    marked = w.call("POST", "/partners/LOC-1/me/favourites", "ben", json={"group_id": str(C2)})
    chosen = w.call(
        "PUT", "/partners/LOC-1/me/default-view", "ben", json={"view": "favorites_only"}
    )
    shown = w.call("GET", GROUPS, "ben").json()
    profile = w.call("GET", "/partners/LOC-1/me", "ben").json()
    unmarked = w.call("DELETE", f"/partners/LOC-1/me/favourites/{C2}", "ben")
    after = w.call("GET", "/partners/LOC-1/me", "ben").json()

    assert (marked.status_code, marked.json()) == (201, {"group_id": str(C2)})
    assert (chosen.status_code, chosen.json()) == (200, {"view": "favorites_only"})
    assert (shown["view"], [i["customer_id"] for i in shown["items"]]) == ("favorites_only", ["C2"])
    assert shown["items"][0]["favourite"]
    assert profile == {
        "passport_id": "ben@LOC-1",
        "location_id": "LOC-1",
        "partner_type": "service_partner",
        "admin": False,
        "default_view": "favorites_only",
        "favourites": 1,
        "max_favourites": 25,
        "favorites_only_available": True,
    }
    assert (unmarked.status_code, unmarked.content) == (204, b"")
    assert (after["default_view"], after["favorites_only_available"]) == ("all_customers", False)


def test_r_fav_2_the_26th_favourite_is_a_409_and_records_nothing() -> None:
    """R-FAV-2: 25 favourites at most; the refusal says so and stores nothing."""
    w = world()
    anna = partner_user(w.fleet, "LOC-1", "anna@LOC-1")
    for n in range(25):
        who = customer(f"F{n}")
        w.fleet.register_devices(
            who, f"F{n}", devices(f"FS{n}"), PartnerChoice(location_id="LOC-1")
        )
        w.fleet.add_favourite(anna, CustomerGroup.id_for("LOC-1", f"F{n}"))
    before = event_count(w.fleet)

    refused = w.call("POST", "/partners/LOC-1/me/favourites", "anna", json={"group_id": str(C1)})

    assert (refused.status_code, problem_of(refused)["type"]) == (409, "/problems/rule-refused")
    assert "25 favourites" in problem_of(refused)["detail"]
    assert event_count(w.fleet) == before


def test_r_fav_2_a_retried_favourite_answers_the_first_outcome_and_records_nothing() -> None:
    """R-FAV-2: the same Idempotency-Key and body: the first status, body and position."""
    w = world()
    headers = {"Idempotency-Key": '"fav-1"'}
    body = {"group_id": str(C1)}
    first = w.call("POST", "/partners/LOC-1/me/favourites", "anna", json=body, headers=headers)
    stored = event_count(w.fleet)

    again = w.call("POST", "/partners/LOC-1/me/favourites", "anna", json=body, headers=headers)

    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert first.status_code == 201
    assert again.headers["partnerfleet-position"] == first.headers["partnerfleet-position"]
    assert event_count(w.fleet) == stored


def test_r_fav_4_a_stale_profile_etag_refuses_the_view_change_with_412() -> None:
    """R-FAV-4: If-Match with the profile's ETag; after a change it is stale (412)."""
    w = world()
    w.call("POST", "/partners/LOC-1/me/favourites", "ben", json={"group_id": str(C1)})
    tag = w.call("GET", "/partners/LOC-1/me", "ben").headers["etag"]
    choose = {"json": {"view": "favorites_only"}, "headers": {"If-Match": tag}}

    first = w.call("PUT", "/partners/LOC-1/me/default-view", "ben", **choose)
    w.call("DELETE", f"/partners/LOC-1/me/favourites/{C1}", "ben")
    w.call("POST", "/partners/LOC-1/me/favourites", "ben", json={"group_id": str(C1)})
    stale = w.call("PUT", "/partners/LOC-1/me/default-view", "ben", **choose)

    assert first.status_code == 200
    assert (stale.status_code, problem_of(stale)["type"]) == (412, "/problems/precondition-failed")


# --- a customer group, its child groups and admins --------------------------------------


def test_r_grp_1_child_group_created_shared_seen_and_deleted() -> None:
    """R-GRP-1, R-GRP-3: Anna makes Ben an admin, creates a child group and shares it."""
    w = world()
    group = f"{GROUPS}/{C1}"

    made_admin = w.call("POST", f"{group}/admins", "anna", json={"passport_id": "ben@LOC-1"})
    created = w.call(
        "POST", f"{group}/child-groups", "anna", json={"child_id": "g1", "name": " East racks "}
    )
    hidden_from_ben = w.call("GET", group, "ben").json()["child_groups"]
    shared = w.call(
        "POST", f"{group}/child-groups/g1/shares", "anna", json={"passport_id": "ben@LOC-1"}
    )
    seen_by_ben = w.call("GET", group, "ben").json()
    deleted = w.call("DELETE", f"{group}/child-groups/g1", "ben")
    left = w.call("GET", group, "anna").json()["child_groups"]

    assert (made_admin.status_code, made_admin.json()["passport_id"]) == (201, "ben@LOC-1")
    assert (created.status_code, created.json()["name"]) == (201, "East racks")
    assert hidden_from_ben == []
    assert (shared.status_code, shared.json()["shared_with"]) == (201, "ben@LOC-1")
    assert seen_by_ben["child_groups"] == [
        {"child_id": "g1", "name": "East racks", "created_by": "anna@LOC-1"}
    ]
    assert seen_by_ben["admins"] == ["anna@LOC-1", "ben@LOC-1"]
    assert (deleted.status_code, left) == (204, [])


def test_r_grp_3_the_dashboard_shows_devices_and_admins_to_admins_only() -> None:
    """R-LNK-1, R-GRP-3: devices with why they are here; admins hidden from a non-admin."""
    w = world()

    anna = w.call("GET", f"{GROUPS}/{C1}", "anna")
    ben = w.call("GET", f"{GROUPS}/{C1}", "ben").json()

    assert anna.status_code == 200
    assert anna.headers["etag"] == f'"{C1}.{w.fleet.customer_group(C1).version}"'
    body = anna.json()
    assert (body["name"], body["admins"], ben["admins"]) == ("Acme", ["anna@LOC-1"], None)
    assert [(d["serial"], d["reasons"]) for d in body["devices"]] == [
        ("S1", ["service_partner"]),
        ("S2", ["reseller"]),
    ]


def test_r_grp_3_only_an_admin_of_the_group_creates_a_child_group() -> None:
    """R-GRP-3: Ben, a user but no admin of the group, is refused (403); nothing stored."""
    w = world()
    before = event_count(w.fleet)

    refused = w.call(
        "POST", f"{GROUPS}/{C1}/child-groups", "ben", json={"child_id": "g1", "name": "Mine"}
    )

    assert (refused.status_code, problem_of(refused)["type"]) == (403, "/problems/forbidden")
    assert "not an admin of customer group Acme" in problem_of(refused)["detail"]
    assert event_count(w.fleet) == before


def test_r_grp_2_deletion_refused_with_reasons_and_admins_then_allowed() -> None:
    """R-GRP-2: devices and a child group block deletion; the refusal names the admins."""
    w = world()
    group = f"{GROUPS}/{C1}"
    w.call("POST", f"{group}/child-groups", "anna", json={"child_id": "g1", "name": "Racks"})

    refused = w.call("DELETE", group, "anna")
    unlink_all(w.fleet)
    w.call("DELETE", f"{group}/child-groups/g1", "anna")
    deleted = w.call("DELETE", group, "anna")
    gone = w.call("GET", group, "anna")

    detail = problem_of(refused)["detail"]
    assert (refused.status_code, problem_of(refused)["type"]) == (409, "/problems/rule-refused")
    assert "2 device(s) are still linked" in detail
    assert "1 partner-created child group(s) remain" in detail
    assert "anna@LOC-1" in detail
    assert deleted.status_code == 204
    assert (gone.status_code, problem_of(gone)["type"]) == (404, "/problems/not-found")


def test_r_grp_2_a_stale_etag_refuses_the_deletion_with_412() -> None:
    """R-GRP-2: If-Match with the dashboard's ETag; a change since makes it 412."""
    w = world()
    unlink_all(w.fleet)
    tag = w.call("GET", f"{GROUPS}/{C1}", "anna").headers["etag"]
    w.call("POST", f"{GROUPS}/{C1}/admins", "anna", json={"passport_id": "ben@LOC-1"})

    stale = w.call("DELETE", f"{GROUPS}/{C1}", "anna", headers={"If-Match": tag})

    assert (stale.status_code, problem_of(stale)["type"]) == (412, "/problems/precondition-failed")
    assert not w.fleet.customer_group(C1).deleted


def test_r_grp_1_the_customers_own_subgroup_is_invisible_to_the_partner() -> None:
    """R-GRP-1: C1 creates a subgroup of its group at LOC-1; Anna does not see it."""
    w = world()

    created = w.call(
        "POST",
        f"/customers/C1/customer-groups/{C1}/child-groups",
        "c1",
        json={"child_id": "own", "name": "Our lab"},
    )
    seen = w.call("GET", f"{GROUPS}/{C1}", "anna").json()["child_groups"]

    assert (created.status_code, created.json()["child_id"]) == (201, "own")
    assert seen == []
    assert w.fleet.customer_group(C1).child_groups["own"].by_partner is False


# --- who may: 403 for a role, 404 for another tenant -------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "who", "body", "status"),
    [
        ("GET", GROUPS, "c1", None, 403),
        ("GET", "/partners/LOC-1/me", "ops", None, 403),
        ("POST", "/partners/LOC-1/me/favourites", "c1", {"group_id": str(C1)}, 403),
        ("GET", GROUPS, "otto", None, 404),
        ("GET", f"/partners/LOC-2/customer-groups/{C1}", "otto", None, 404),
        ("DELETE", f"{GROUPS}/{C1}", "otto", None, 404),
        ("DELETE", f"/partners/LOC-2/customer-groups/{C1}", "otto", None, 404),
        ("POST", "/partners/LOC-2/me/favourites", "otto", {"group_id": str(C1)}, 404),
        ("PUT", "/partners/LOC-1/me/default-view", "otto", {"view": "all_customers"}, 404),
        (
            "POST",
            f"/customers/C1/customer-groups/{C1}/child-groups",
            "anna",
            {"child_id": "x", "name": "X"},
            403,
        ),
        (
            "POST",
            f"/customers/C2/customer-groups/{C1}/child-groups",
            "c2",
            {"child_id": "x", "name": "X"},
            404,
        ),
        (
            "POST",
            f"/customers/C1/customer-groups/{C1}/child-groups",
            "c2",
            {"child_id": "x", "name": "X"},
            404,
        ),
    ],
)
def test_r_lnk_1_another_tenants_groups_are_not_found_and_other_roles_forbidden(
    method: str, path: str, who: str, body: dict[str, str] | None, status: int
) -> None:
    """R-LNK-1, R-PAR-2: 404 for another partner's or customer's, 403 for a role; no event."""
    w = world()
    before = event_count(w.fleet)

    answer = w.call(method, path, who, json=body)

    kind = {403: "/problems/forbidden", 404: "/problems/not-found"}[status]
    assert (answer.status_code, problem_of(answer)["type"]) == (status, kind)
    assert event_count(w.fleet) == before


def test_r_lnk_1_another_partners_group_is_told_in_the_words_of_a_missing_one() -> None:
    """R-LNK-1: LOC-2 asking for LOC-1's group and for no group at all read the same."""
    w = world()
    unknown = UUID(int=7)

    foreign = w.call("GET", f"/partners/LOC-2/customer-groups/{C1}", "otto")
    missing = w.call("GET", f"/partners/LOC-2/customer-groups/{unknown}", "otto")

    assert problem_of(foreign)["detail"] == f"No customer group {C1}."
    assert problem_of(missing)["detail"] == f"No customer group {unknown}."


def test_r_lnk_1_the_etag_read_gives_another_partners_or_a_deleted_group_as_missing() -> None:
    """R-LNK-1, R-GRP-2: the store read behind the ETag is scoped like the pages."""
    w = world()
    otto = partner_user(w.fleet, "LOC-2", "anna@LOC-2")
    anna = partner_user(w.fleet, "LOC-1", "anna@LOC-1")
    unlink_all(w.fleet)
    w.fleet.delete_customer_group(anna, C1)

    for scope, group_id in ((partner_scope(otto, "LOC-2"), C2), (partner_scope(anna, "LOC-1"), C1)):
        with pytest.raises(NotFoundError, match=f"No customer group {group_id}."):
            partner_customer_group(w.fleet, scope, group_id)
    assert partner_customer_group(w.fleet, partner_scope(anna, "LOC-1"), C2).customer_id == "C2"
    assert own_passport(w.fleet, partner_scope(anna, "LOC-1")).passport_id == "anna@LOC-1"


def test_r_fav_4_the_profile_read_without_wait_for_shows_what_its_etag_names() -> None:
    """R-FAV-2, R-FAV-4: the ETag is the Passport's version in the store, so the profile it
    comes with shows that version too: after a favourite the views have not applied yet, a
    read without Partnerfleet-Wait-For counts it (a stale body under a fresh ETag would let
    If-Match pass a change decided on the old state; issue 9 attack)."""
    w = world()
    before = w.call("GET", "/partners/LOC-1/me", "ben")
    w.fleet.add_favourite(partner_user(w.fleet, "LOC-1", "ben@LOC-1"), C1)

    after = w.api.get("/partners/LOC-1/me", headers={"Authorization": "Bearer ben"})

    assert before.json()["favourites"] == 0
    assert after.headers["etag"] != before.headers["etag"]
    assert (after.json()["favourites"], after.json()["favorites_only_available"]) == (1, True)


def test_r_lnk_1_the_group_read_without_wait_for_shows_what_its_etag_names() -> None:
    """R-LNK-1, R-LNK-5: a device linked after the views last caught up is listed by the
    group's read, with the ETag of the group that holds it (issue 9 attack)."""
    w = world()
    before = w.call("GET", f"{GROUPS}/{C1}", "anna")
    c1 = customer("C1", "it@c1.example")
    w.fleet.register_devices(c1, "C1", devices("S3"), PartnerChoice(location_id="LOC-1"), "Acme")

    after = w.api.get(f"{GROUPS}/{C1}", headers={"Authorization": "Bearer anna"})

    assert after.headers["etag"] != before.headers["etag"]
    assert [d["serial"] for d in after.json()["devices"]] == ["S1", "S2", "S3"]


def test_r_fav_1_every_customers_route_is_documented_with_its_rule_ids() -> None:
    """R-FAV-1: each operation's description starts with rule IDs; errors are problem+json."""
    paths = world().api.get("/openapi.json").json()["paths"]
    operations = [
        op for ops in paths.values() for op in ops.values() if op.get("tags") == ["customer groups"]
    ]

    assert len(operations) == 12
    assert all(RULE.match(str(op["description"])) for op in operations)
    assert all("application/problem+json" in op["responses"]["404"]["content"] for op in operations)
