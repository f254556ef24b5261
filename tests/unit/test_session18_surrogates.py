"""Session 18: a lone surrogate in outside text is one rejected item, never a crashed batch.

A JSON escape such as "\\ud800" decodes to a str no UTF-8 encoder takes. An e2Open batch
derives the ids of the partners (and, on a retry, the PCs) its raw reports name before
any report is checked (`handlers.holding._partners_named`, `_pcs_named`): `_uuid5`
raised UnicodeEncodeError there and the whole batch failed. Now every str has an id
(valid text the same id as ever); the report is rejected later with its own reason and
the rest of the batch lands. The faces (HTTP, the Kafka feed, the CLI) are checked too.
"""

from __future__ import annotations

import json
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from domain.base import NAMESPACE, _uuid5, fresh_natural_id, natural_id
from domain.device import Device
from domain.feed_bounds import read_message
from domain.idempotency import bytes_fingerprint
from domain.partner import PartnerTenant
from domain.text import TextError
from handlers import PartnerFleet
from handlers.access import AuthenticationError, Role, service_actor
from infra.bootstrap import build_fleet
from infra.cli.app import cli
from infra.follow.view_faults import ViewStuckError
from infra.settings import Settings
from tests.auth_keys import ISSUER, jwks_file, signing_key, verifier
from tests.scenarios import IN_MEMORY, OPS, event_count, partner, report
from tests.unit.feed_fakes import FakeProducer, FakeTopic, feed_consumer
from tests.unit.http_holding_world import LOC, bearer, wait_for, world
from tests.unit.test_view_runner import break_handler, linked_customers

HIGH, LOW = "\ud800", "\udfff"
FIELDS = ("reseller_location_id", "serial", "end_customer")


def spoilt(text: str, surrogate: str, where: str) -> str:
    """`text` with `surrogate` at its start, in its middle or at its end."""
    half = len(text) // 2
    return {
        "start": surrogate + text,
        "middle": text[:half] + surrogate + text[half:],
        "end": text + surrogate,
    }[where]


def bad_report(field: str, surrogate: str, where: str) -> dict[str, str]:
    """A good report of PCBAD whose `field` holds a lone surrogate."""
    raw = report("PCBAD", end_customer="Acme")
    return {**raw, field: spoilt(raw[field], surrogate, where)}


FORMS = [
    pytest.param(field, surrogate, where, id=f"{field}-{name}-{where}")
    for field in FIELDS
    for surrogate, name in ((HIGH, "high"), (LOW, "low"))
    for where in ("start", "middle", "end")
]


# ---- the ids: never a raise, valid text unchanged ----------------------------------------

VALID_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)  # no lone surrogate
ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=40)


@settings(max_examples=300, deadline=None)
@given(name=VALID_TEXT)
@example(name="LOC-1")
@example(name="device:5CG1234ABC")
@example(name="J\u00fcrgen \U0001f600")
def test_ids_of_valid_text_are_unchanged(name: str) -> None:
    """Every stored id stays: valid text gets uuid.uuid5's id, as before session 18."""
    assert _uuid5(name) == uuid.uuid5(NAMESPACE, name)
    assert natural_id("partner", name) == uuid.uuid5(
        NAMESPACE, "partner:" + unicodedata.normalize("NFC", name)
    )


@settings(max_examples=300, deadline=None)
@given(name=ANY_TEXT)
@example(name=HIGH)
@example(name=LOW)
@example(name="\ud83d\ude00")  # a pair of lone surrogates: not the emoji
def test_every_str_has_an_id_and_invalid_text_none_of_a_valid_texts(name: str) -> None:
    """Any str, lone surrogates included, has a natural id (no raise); text that is not
    valid Unicode gets the id of its "surrogatepass" bytes, which no valid text encodes to."""
    made = [_uuid5(name), natural_id("partner", name), fresh_natural_id("device", name)]

    assert all(isinstance(i, uuid.UUID) and i.version == 5 for i in made)
    if any(0xD800 <= ord(c) <= 0xDFFF for c in name):
        valid = name.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        assert _uuid5(name) != _uuid5(valid)


def test_two_lone_surrogates_are_not_the_character_they_would_pair_into() -> None:
    """ "\\ud83d\\ude00" as two code points is no emoji: another id than "\U0001f600"'s."""
    assert PartnerTenant.id_for("\ud83d\ude00") != PartnerTenant.id_for("\U0001f600")
    assert PartnerTenant.id_for(HIGH) != PartnerTenant.id_for(LOW)


# ---- the command: one rejected report, the rest landed ----------------------------------


def landed(fleet: PartnerFleet, serial: str) -> bool:
    """Whether a device of `serial` is stored."""
    return fleet.repository.latest([Device.id_for(serial)]).get(Device.id_for(serial)) is not None


@pytest.mark.parametrize(("field", "surrogate", "where"), FORMS)
def test_r_hld_1_a_surrogate_in_a_raw_report_rejects_that_report_only(
    field: str, surrogate: str, where: str
) -> None:
    """R-HLD-1: reports handed over as values with a fingerprint (not screened again):
    the bad one is rejected naming its field, the reports before and after it land."""
    fleet = PartnerFleet(env=IN_MEMORY)
    partner(fleet, LOC)
    reports = [report("PCOK1"), bad_report(field, surrogate, where), report("PCOK2")]

    outcome = fleet.receive_e2open_batch(OPS, "raw-1", reports, fingerprint="sha256:00")

    assert outcome.accepted == ["PCOK1", "PCOK2"]
    [rejected] = outcome.rejected
    assert rejected.index == 1
    assert field in rejected.reason
    assert "not valid Unicode" in rejected.reason or "unicode string" in rejected.reason
    assert landed(fleet, "PCOK1")
    assert landed(fleet, "PCOK2")
    assert not landed(fleet, "PCBAD")


@pytest.mark.parametrize("surrogate", [HIGH, LOW])
def test_r_hld_1_on_a_retry_the_pcs_looked_up_may_hold_surrogates_too(surrogate: str) -> None:
    """R-HLD-1: a PC landed before makes the first attempt conflict; the retry looks every
    PC of the raw reports up (`_pcs_named`) and still rejects only the bad ones."""
    fleet = PartnerFleet(env=IN_MEMORY)
    partner(fleet, LOC)
    fleet.receive_e2open_batch(OPS, "first", [report("PCOK1")])
    reports = [
        report("PCOK1"),
        report("PC" + surrogate, LOC),
        report("PCOK3", "LOC" + surrogate),
        report("PCOK2"),
    ]

    outcome = fleet.receive_e2open_batch(OPS, "again", reports, fingerprint="sha256:01")

    assert (outcome.accepted, outcome.duplicates) == (["PCOK2"], ["PCOK1"])
    assert [r.index for r in outcome.rejected] == [1, 2]
    assert "reseller_location_id: a lone surrogate" in outcome.rejected[1].reason
    assert landed(fleet, "PCOK2")
    assert not landed(fleet, "PCOK3")


@pytest.mark.parametrize(("field", "surrogate", "where"), FORMS)
def test_r_hld_1_a_surrogate_escape_read_from_bytes_is_rejected_with_its_reason(
    field: str, surrogate: str, where: str
) -> None:
    """R-HLD-1: as the feed and the CLI read them (JSON escapes in raw bytes)."""
    fleet = PartnerFleet(env=IN_MEMORY)
    partner(fleet, LOC)
    lines = [json.dumps(r).encode() for r in (report("PCOK1"), bad_report(field, surrogate, where))]

    outcome = fleet.receive_e2open_batch(
        OPS, "read-1", [read_message(x) for x in lines], fingerprint=bytes_fingerprint(lines)
    )

    assert outcome.accepted == ["PCOK1"]
    [rejected] = outcome.rejected
    assert rejected.reason.startswith(f"{field}: a lone surrogate (U+{ord(surrogate):04X})")


# ---- the faces: HTTP, the Kafka feed, the command line -----------------------------------


def posted(w: Any, body: dict[str, Any], **headers: Any) -> Any:
    """A raw JSON body (its escapes as written) posted by the feed's account."""
    return w.api.post(
        "/intake/e2open/batches",
        content=json.dumps(body),
        headers={**bearer("feed"), "content-type": "application/json", **headers},
    )


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("surrogate", [HIGH, LOW])
def test_r_hld_1_over_http_a_surrogate_is_one_rejection_in_a_200(
    field: str, surrogate: str
) -> None:
    """R-HLD-1: no 500: the answer lists the bad report's reason, the others wait in the
    holding tenant."""
    w = world(pcs=())

    answer = posted(
        w, {"batch_id": "B1", "reports": [report("PC6"), bad_report(field, surrogate, "middle")]}
    )
    pcs = w.api.get(
        f"/partners/{LOC}/holding-tenant/pcs", headers={**bearer("anna"), **wait_for(answer)}
    )

    assert answer.status_code == 200
    assert answer.json()["accepted"] == ["PC6"]
    [rejected] = answer.json()["rejected"]
    assert rejected["reason"].startswith(f"{field}: a lone surrogate")
    assert [pc["serial"] for pc in pcs.json()["items"]] == ["PC6"]


def test_over_http_a_surrogate_in_the_batch_id_is_a_422_and_records_nothing() -> None:
    """The batch id (an idempotency key) is checked by its schema: 422 naming it."""
    w = world(pcs=())
    before = event_count(w.fleet)

    answer = posted(w, {"batch_id": "B" + LOW, "reports": [report("PC6")]})

    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "batch_id"
    assert event_count(w.fleet) == before


def test_over_http_an_idempotency_key_of_surrogate_bytes_is_a_400() -> None:
    """A header is read as Latin-1 (never a surrogate); the bytes a surrogate would be
    encoded to are refused as no printable ASCII key, and nothing is recorded."""
    w = world(pcs=())
    before = event_count(w.fleet)

    answer = posted(
        w, {"batch_id": "B1", "reports": [report("PC6")]}, **{"Idempotency-Key": b"k\xed\xa0\x80"}
    )

    assert answer.status_code == 400
    assert "Idempotency-Key" in answer.json()["detail"]
    assert event_count(w.fleet) == before


@pytest.mark.parametrize("query", ["batch_id=%ED%A0%80", "batch_id=%ED%BF%BF", "after=%ED%A0%80"])
def test_over_http_a_query_parameter_of_surrogate_bytes_is_never_a_500(query: str) -> None:
    """Query text is decoded with replacement characters: a clear answer, never a 500."""
    w = world(pcs=())

    answer = w.api.get(f"/intake/e2open/rejected-reports?{query}", headers=bearer("ops"))

    assert answer.status_code in (200, 400, 422)
    assert answer.json().get("items", []) == []


def test_r_hld_1_the_feed_goes_on_past_a_surrogate_and_a_key_of_any_bytes() -> None:
    """R-HLD-1: the bad record (its key bytes no UTF-8) is dead-lettered with its reason
    and key as given; the records behind it land and the offset moves past all three."""
    topic, producer = FakeTopic("partnerfleet.e2open.reports.v1"), FakeProducer()
    consumer = feed_consumer("e2open", topic, producer)
    partner(consumer.fleet, LOC)
    bad = json.dumps(bad_report("reseller_location_id", HIGH, "end")).encode()
    topic.append(json.dumps(report("PC1")).encode(), bad, json.dumps(report("PC2")).encode())
    topic.records[1] = type(topic.records[1])(topic.name, 0, 1, b"\xed\xa0\x80\xff", bad)

    handled = consumer.poll_once()

    assert handled == 3
    assert topic.committed == 3
    [dead] = producer.sent
    assert (dead.key, dead.value) == (b"\xed\xa0\x80\xff", bad)
    assert producer.reasons()[0].startswith("reseller_location_id: a lone surrogate (U+D800)")
    assert landed(consumer.fleet, "PC1")
    assert landed(consumer.fleet, "PC2")


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    """The environment of a SQLite store of this test's own."""
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'events.sqlite3'}"}


def certified(store: dict[str, str]) -> PartnerFleet:
    """The store with LOC-1 certified."""
    fleet = build_fleet(Settings(database_url=store["DATABASE_URL"]))
    ops = service_actor("setup", Role.OPERATOR)
    fleet.register_partner(ops, LOC, "Partner One")
    fleet.register_partner_user(ops, LOC, "anna@loc1.example")
    fleet.certify_partner(ops, LOC, "resell_view_monitor")
    return fleet


def test_r_hld_1_the_cli_rejects_the_line_with_a_surrogate_and_lands_the_rest(
    tmp_path: Path, store: dict[str, str]
) -> None:
    """R-HLD-1: `intake e2open FILE`: the line is rejected with its reason, exit 0."""
    fleet = certified(store)
    path = tmp_path / "reports.jsonl"
    lines = [report("PC1"), bad_report("serial", LOW, "start"), report("PC2")]
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n")

    done = CliRunner().invoke(
        cli, ["intake", "e2open", str(path), "--as", "operator:ops"], env=store
    )

    assert done.exit_code == 0, done.output
    assert "2 accepted, 0 already taken, 1 rejected" in done.output
    assert "rejected line 2" in done.output
    assert "lone surrogate (U+DFFF)" in done.output
    assert landed(fleet, "PC1")
    assert landed(fleet, "PC2")
    fleet.close()


def test_a_batch_id_argument_of_undecodable_bytes_is_refused_clearly(
    tmp_path: Path, store: dict[str, str]
) -> None:
    """An argument that was not UTF-8 reaches Python as surrogate escapes ("\\udcff"): the
    command refuses it naming batch_id, and nothing is recorded."""
    fleet = certified(store)
    path = tmp_path / "reports.jsonl"
    path.write_text(json.dumps(report("PC1")) + "\n")
    before = fleet.recorder.max_notification_id()

    done = CliRunner().invoke(
        cli,
        ["intake", "e2open", str(path), "--batch-id", "B\udcff", "--as", "operator:ops"],
        env=store,
    )

    assert done.exit_code != 0
    assert done.exception is None or isinstance(done.exception, SystemExit)
    assert "batch_id" in done.output
    assert "lone surrogate" in done.output
    assert fleet.recorder.max_notification_id() == before
    fleet.close()


@pytest.mark.parametrize("token", ["ab\udcff", "e30\udcff.e30.c2ln", "e30.e30.c2ln\ud800"])
def test_a_token_holding_a_surrogate_is_malformed_not_a_crash(token: str) -> None:
    """A token from --token or PARTNERFLEET_TOKEN that was not UTF-8 (surrogate escapes):
    refused as malformed (it was a UnicodeEncodeError from the verifier's digest)."""
    with pytest.raises(AuthenticationError, match="The bearer token is malformed"):
        verifier().claims(token)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--token", "ey\udcff.e30.c2ln"], "The bearer token is malformed."),
        (["--as", "operator:ops\udcff"], "principal: a lone surrogate (U+DCFF)"),
    ],
    ids=["token", "as"],
)
def test_a_principal_argument_of_undecodable_bytes_is_refused_clearly(
    tmp_path: Path, store: dict[str, str], args: list[str], said: str
) -> None:
    """The principal options: a clear refusal, no traceback, nothing recorded."""
    fleet = certified(store)
    path = tmp_path / "reports.jsonl"
    path.write_text(json.dumps(report("PC1")) + "\n")
    keys = jwks_file(tmp_path, signing_key())
    env = {**store, "JWKS_PATH": str(keys), "JWT_ISSUER": ISSUER}
    before = fleet.recorder.max_notification_id()

    done = CliRunner().invoke(cli, ["intake", "e2open", str(path), *args], env=env)

    assert done.exit_code in (1, 2)
    assert done.exception is None or isinstance(done.exception, SystemExit)
    assert said in " ".join(done.output.split())
    assert fleet.recorder.max_notification_id() == before
    fleet.close()


@pytest.mark.parametrize(
    ("option", "field"),
    [("--device", "serial"), ("--partner", "partner"), ("--customer", "customer_id")],
)
def test_an_audit_argument_of_undecodable_bytes_is_refused_before_any_query(
    store: dict[str, str], option: str, field: str
) -> None:
    """`audit consent --device/--partner/--customer`: refused naming the field, exit 2,
    before any SQL parameter is bound."""
    done = CliRunner().invoke(
        cli, ["audit", "consent", option, "X\udcff", "--as", "auditor:a"], env=store
    )

    assert done.exit_code == 2
    assert done.exception is None or isinstance(done.exception, SystemExit)
    assert f"{field}: a lone surrogate (U+DCFF)" in done.output


@pytest.mark.parametrize("reason", ["stuck \udcff", "\ud800", "a\x00b"])
def test_a_parking_reason_no_store_keeps_is_refused_before_any_row(
    store: dict[str, str], reason: str
) -> None:
    """`projections skip VIEW N --reason …`: the reason went into a SQL parameter
    unchecked; now it is refused naming the field, exit 2, nothing parked."""
    done = CliRunner().invoke(
        cli, ["projections", "skip", "customers", "1", "--reason", reason], env=store
    )

    assert done.exit_code == 2
    assert done.exception is None or isinstance(done.exception, SystemExit)
    assert "reason: a " in done.output


@pytest.mark.parametrize("reason", ["corrupt \udcff", "\ud800 corrupt"])
def test_a_stuck_view_is_not_parked_for_a_reason_no_store_keeps(reason: str) -> None:
    """The view stays stuck on its event, nothing parked; a valid reason then parks it
    (before: a UnicodeEncodeError from the view database's parameter)."""
    runner = linked_customers(3)
    view = runner.view("customers")
    restore = break_handler(view, "DeviceAdded", {"S1"})
    try:
        with pytest.raises(ViewStuckError) as stuck:
            runner.rebuild(view)
        poison = stuck.value.fault.notification_id
        with pytest.raises(TextError, match="reason: a lone surrogate"):
            runner.park("customers", poison, reason)
        unparked = runner.parked()
        parked = runner.park("customers", poison, "corrupt")
    finally:
        restore()

    assert unparked == []
    assert parked.reason == "corrupt"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--role", "operator", "--subject", "ops\udcff"], "--subject: a lone surrogate (U+DCFF)"),
        (["--role", "partner_user", "--subject", "a@b", "--tenant", "\ud800L"], "--tenant: a lone"),
        (["--role", "end_user", "--subject", "u", "--tenant", "C1", "--pcs", "PC\udfff"], "--pcs"),
    ],
    ids=["subject", "tenant", "pcs"],
)
def test_no_token_is_issued_for_a_claim_a_verifier_would_refuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], said: str
) -> None:
    """`token issue`: a claim holding a lone surrogate (an argument that was not UTF-8)
    is refused with exit 2 and no token printed (it used to print one no verifier took)."""
    monkeypatch.chdir(tmp_path)
    for name in ("JWKS_PATH", "JWKS_URL", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_SIGNING_KEY_PATH"):
        monkeypatch.delenv(name, raising=False)

    done = CliRunner().invoke(cli, ["token", "issue", *args])

    assert done.exit_code == 2
    assert said in " ".join(done.output.split())
    assert "eyJ" not in done.output
