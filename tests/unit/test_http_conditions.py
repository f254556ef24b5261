"""Issue 9: responses about one aggregate carry an ETag (its version); mutations honour
If-Match (RFC 9110): a stale or foreign tag is 412 and nothing is recorded."""

from __future__ import annotations

from fastapi.testclient import TestClient

from handlers import PartnerFleet
from tests.scenarios import event_count, in_memory_fleet
from tests.unit.http_client import OPS, bearer, client, problem_of, two_partners

MISSING = {"request_id": "REQ-1", "serials": ["PC-1"]}


def certified() -> tuple[PartnerFleet, TestClient]:
    """LOC-1 (Anna, Ben) certified, LOC-2 (Otto); a client over them."""
    fleet = in_memory_fleet()
    two_partners(fleet)
    fleet.certify_partner(OPS, "LOC-1", "resell_view_monitor")
    return fleet, client(fleet)


def test_r_hld_2_a_request_on_the_current_etag_is_accepted_and_answers_the_next_one() -> None:
    """R-HLD-2: Anna reads LOC-1 (ETag), reports missing PCs If-Match it: 201, a new ETag
    that is the partner's version now."""
    fleet, api = certified()
    tag = api.get("/partners/LOC-1", headers=bearer("anna")).headers["etag"]

    answer = api.post(
        "/partners/LOC-1/missing-device-requests",
        json=MISSING,
        headers=bearer("anna", if_match=tag),
    )

    partner = fleet.partner("LOC-1")
    assert answer.status_code == 201
    assert answer.headers["etag"] == f'"{partner.id}.{partner.version}"' != tag


def test_r_hld_2_a_stale_etag_is_412_and_records_nothing() -> None:
    """R-HLD-2: the partner changed since Anna read it: 412, no request recorded."""
    fleet, api = certified()
    tag = api.get("/partners/LOC-1", headers=bearer("anna")).headers["etag"]
    fleet.register_partner_user(OPS, "LOC-1", "cleo@LOC-1")
    stored = event_count(fleet)

    answer = api.post(
        "/partners/LOC-1/missing-device-requests",
        json=MISSING,
        headers=bearer("anna", if_match=tag),
    )

    assert (answer.status_code, problem_of(answer)["type"]) == (
        412,
        "/problems/precondition-failed",
    )
    assert event_count(fleet) == stored
    assert fleet.partner("LOC-1").missing_device_requests == {}


def test_r_par_1_a_stale_etag_answers_412_before_a_rule_would_refuse() -> None:
    """R-PAR-1: a precondition is evaluated first: a stale tag on an accreditation the rules
    would refuse (already a service partner) is still 412."""
    fleet, api = certified()
    tag = api.get("/partners/LOC-1", headers=bearer("anna")).headers["etag"]
    fleet.accredit_service_partner(OPS, "LOC-1", "CSDP-1")

    answer = api.post(
        "/partners/LOC-1/accreditation",
        json={"csdp_account": "CSDP-2"},
        headers=bearer("ops", if_match=tag),
    )

    assert answer.status_code == 412


def test_r_lnk_1_another_aggregates_etag_never_matches() -> None:
    """R-LNK-1: LOC-2's current tag sent on LOC-1 is 412: a tag names its own resource only."""
    fleet, api = certified()
    other = api.get("/partners/LOC-2", headers=bearer("otto")).headers["etag"]

    answer = api.post(
        "/partners/LOC-1/accreditation",
        json={"csdp_account": "C"},
        headers=bearer("ops", if_match=other),
    )

    assert answer.status_code == 412
    assert fleet.partner("LOC-1").partner_type == "reseller"


def test_i9_a_weak_tag_never_matches_and_star_always_does() -> None:
    """If-Match compares strongly: W/"…" of the current version is 412; `*` passes."""
    _, api = certified()
    tag = api.get("/partners/LOC-1", headers=bearer("anna")).headers["etag"]
    path, body = "/partners/LOC-1/missing-device-requests", MISSING

    weak = api.post(path, json=body, headers=bearer("anna", if_match=f"W/{tag}"))
    star = api.post(path, json=body, headers=bearer("anna", if_match="*"))

    assert (weak.status_code, star.status_code) == (412, 201)


def test_i9_an_if_match_without_entity_tags_is_400() -> None:
    """If-Match that lists no entity tag at all is malformed."""
    _, api = certified()

    answer = api.post(
        "/partners/LOC-1/missing-device-requests",
        json=MISSING,
        headers=bearer("anna", if_match="v7"),
    )

    assert (answer.status_code, problem_of(answer)["type"]) == (400, "/problems/malformed-request")
