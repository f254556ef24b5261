"""Issue 9: commands take an `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header).

The key is scoped to principal (role, tenant), method and path, with the body's fingerprint,
and saved in the same transaction as the command's events: same key and body -> the first
outcome and nothing new; another body -> 422; still in flight -> 409; a refused command keeps
no key.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from domain.idempotency import IdempotencyRecord
from handlers.access import Role, service_actor
from handlers.conditions import Conditions, IdempotencyKey, applied
from tests.scenarios import event_count, in_memory_fleet
from tests.unit.conftest import events_since, names
from tests.unit.http_client import bearer, client, problem_of

NEW = {"location_id": "LOC-1", "name": "Partner One"}


def key(value: str = "8e03978e-40d5-43e8-bc93-6894a57f9324") -> dict[str, str]:
    """The operator's headers with an Idempotency-Key (a structured-field string)."""
    return bearer("ops", idempotency_key=f'"{value}"')


def test_r_par_1_the_same_key_and_body_answer_the_first_outcome_and_record_nothing() -> None:
    """R-PAR-1: a retried registration: same status, body and position; no new event."""
    fleet = in_memory_fleet()
    api = client(fleet)
    first = api.post("/partners", json=NEW, headers=key())
    stored = event_count(fleet)

    again = api.post(
        "/partners", json={"name": "Partner One", "location_id": "LOC-1"}, headers=key()
    )

    assert (
        (again.status_code, again.json())
        == (first.status_code, first.json())
        == (201, again.json())
    )
    assert again.headers["partnerfleet-position"] == first.headers["partnerfleet-position"]
    assert event_count(fleet) == stored


def test_r_par_1_the_key_is_saved_with_the_commands_events_as_their_last() -> None:
    """R-PAR-1: the record is in the command's transaction; its position is the answer's."""
    fleet = in_memory_fleet()

    answer = client(fleet).post("/partners", json=NEW, headers=key("k-1"))

    recorded = events_since(fleet, 0)
    assert names(recorded)[-1] == "IdempotencyRecord.Recorded"
    assert int(answer.headers["partnerfleet-position"]) == len(recorded)
    record: IdempotencyRecord = fleet.repository.get(
        IdempotencyRecord.id_for("ops\noperator@\nPOST\n/partners\nk-1")
    )
    assert record.fingerprint.startswith("sha256:")


def test_r_par_1_the_same_key_with_another_body_is_422_and_records_nothing() -> None:
    """R-PAR-1: a key reused for another request is refused, saying so; nothing recorded."""
    fleet = in_memory_fleet()
    api = client(fleet)
    api.post("/partners", json=NEW, headers=key())
    stored = event_count(fleet)

    other = api.post("/partners", json={**NEW, "name": "Another"}, headers=key())

    body = problem_of(other)
    assert (other.status_code, body["type"]) == (422, "/problems/idempotency-key-reused")
    assert "different request body" in body["detail"]
    assert event_count(fleet) == stored


def test_r_par_1_a_refused_command_keeps_no_key_so_it_can_be_used_again() -> None:
    """R-PAR-1: a user for a partner not yet registered is refused and the key not kept;
    once the partner exists the same key and body are accepted."""
    fleet = in_memory_fleet()
    api = client(fleet)
    user = {"passport_id": "anna@LOC-1"}

    refused = api.post("/partners/LOC-1/users", json=user, headers=key("k-user"))
    after_refusal = event_count(fleet)
    api.post("/partners", json=NEW, headers=bearer("ops"))
    accepted = api.post("/partners/LOC-1/users", json=user, headers=key("k-user"))

    assert (refused.status_code, after_refusal) == (404, 0)
    assert (accepted.status_code, accepted.json()) == (
        201,
        {"passport_id": "anna@LOC-1", "role": "admin"},
    )


def test_r_par_1_a_key_still_in_flight_is_409(monkeypatch: pytest.MonkeyPatch) -> None:
    """R-PAR-1: while the first request with a key is being stored, a second gets 409; the
    first then completes as usual."""
    fleet = in_memory_fleet()
    api = client(fleet)
    storing, release = threading.Event(), threading.Event()
    insert = fleet.recorder.insert_events

    def slow_insert(*args: Any, **kwargs: Any) -> Any:  # the store, at the edge of the world
        storing.set()
        release.wait(5)
        return insert(*args, **kwargs)

    monkeypatch.setattr(fleet.recorder, "insert_events", slow_insert)
    answers: list[Any] = []
    first = threading.Thread(
        target=lambda: answers.append(api.post("/partners", json=NEW, headers=key()))
    )
    first.start()
    assert storing.wait(5)

    second = api.post("/partners", json=NEW, headers=key())
    release.set()
    first.join(5)

    assert (second.status_code, problem_of(second)["type"]) == (409, "/problems/key-in-flight")
    assert answers[0].status_code == 201


def test_r_par_1_one_key_on_two_paths_is_two_keys() -> None:
    """R-PAR-1: the key is scoped to the path: the same key and body accredit two partners."""
    fleet = in_memory_fleet()
    api = client(fleet)
    for location in ("LOC-1", "LOC-2"):
        api.post(
            "/partners", json={"location_id": location, "name": location}, headers=bearer("ops")
        )

    answers = [
        api.post(f"/partners/{loc}/accreditation", json={"csdp_account": "C-1"}, headers=key("k"))
        for loc in ("LOC-1", "LOC-2")
    ]

    assert [a.status_code for a in answers] == [200, 200]
    assert fleet.partner("LOC-2").partner_type == "service_partner"


def test_r_par_1_one_key_of_two_principals_is_two_keys() -> None:
    """R-PAR-1: the key is scoped to the principal: another's use of it is no replay."""
    fleet = in_memory_fleet()
    same = IdempotencyKey("k", "POST", "/partners", "sha256:" + "0" * 64)
    outcomes = []

    for subject, location in (("ops-a", "LOC-A"), ("ops-b", "LOC-B")):
        conditions = Conditions(idempotency=same)
        with applied(conditions):
            fleet.register_partner(service_actor(subject, Role.OPERATOR), location, location)
        outcomes.append(conditions.replayed)

    assert outcomes == [False, False]
    assert fleet.partner("LOC-B").location_id == "LOC-B"


@pytest.mark.parametrize(
    "value", ['"unterminated', "two words", '"' + "k" * 256 + '"', '"tab\there"']
)
def test_i9_a_malformed_idempotency_key_is_400(value: str) -> None:
    """A key that is not one string of 1-255 printable ASCII characters: 400, nothing run."""
    fleet = in_memory_fleet()

    answer = client(fleet).post("/partners", json=NEW, headers=bearer("ops", idempotency_key=value))

    assert (answer.status_code, problem_of(answer)["type"]) == (400, "/problems/malformed-request")
    assert event_count(fleet) == 0


@pytest.mark.parametrize(
    ("value", "key"),
    [('"a\\"b"', 'a"b'), ('"a\\\\b"', "a\\b"), ('"\\"' + "k" * 254 + '"', '"' + "k" * 254)],
    ids=["escaped quote", "escaped backslash", "255 once unescaped"],
)
def test_s21_an_escaped_structured_field_string_is_a_key(value: str, key: str) -> None:
    """RFC 8941 3.3.3: a quote or a backslash escaped in the string (session 21's
    walkthrough: refused 400); the key is the unescaped text, replayed the same way."""
    fleet = in_memory_fleet()
    api = client(fleet)
    headers = bearer("ops", idempotency_key=value)

    first = api.post("/partners", json=NEW, headers=headers)
    recorded = event_count(fleet)
    again = api.post("/partners", json=NEW, headers=headers)

    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()) == (201, first.json())
    assert event_count(fleet) == recorded > 0


@pytest.mark.parametrize("value", ['"a\\b"', '"a\\"', '"\\"' + "k" * 255 + '"', '"\\\\\\"'])
def test_s21_a_bad_escape_is_still_malformed(value: str) -> None:
    """A backslash before anything but a quote or a backslash, an escaped closing quote,
    more than 255 characters once unescaped: 400, nothing run."""
    fleet = in_memory_fleet()

    answer = client(fleet).post("/partners", json=NEW, headers=bearer("ops", idempotency_key=value))

    assert (answer.status_code, problem_of(answer)["type"]) == (400, "/problems/malformed-request")
    assert event_count(fleet) == 0
