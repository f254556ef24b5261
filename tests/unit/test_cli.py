"""The command line as a face: every verb has --help, bad arguments exit 2 with a clear
message, and a verb that causes something acts as the principal of `--as` or `--token`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from eventsourcing.utils import get_topic
from typer.core import TyperGroup
from typer.testing import CliRunner, Result

from domain.device import Device
from domain.intake import E2OpenBatch
from handlers import PartnerFleet
from handlers.access import Role, service_actor
from infra.bootstrap import build_fleet
from infra.cli.app import cli
from infra.cli.support import parse_as, principal
from infra.settings import Settings
from tests.auth_keys import ISSUER, claims_body, jwks_file, signed, signing_key, verifier

TOKEN = "eyJhbGciOiJFUzI1NiJ9.c2VjcmV0LWNsYWltcw.c2lnbmF0dXJl"  # never to be echoed


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """`partnerfleet ARGS` in this process."""
    return CliRunner().invoke(cli, list(args), env=env)


def said(done: Result) -> str:
    """What the command printed, without rich's boxes and line breaks."""
    text = "".join(" " if ch in "│╭╮╰╯─\n" else ch for ch in done.output)
    return " ".join(text.split())


def verbs(group: TyperGroup, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every verb of the command line, as the words that name it."""
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            yield from verbs(command, (*path, name))
        else:
            yield (*path, name)


VERBS = sorted(verbs(typer.main.get_group(cli)))


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    """The environment of a SQLite store of this test's own."""
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'events.sqlite3'}"}


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_has_help(verb: tuple[str, ...]) -> None:
    """Issue 9: `partnerfleet VERB --help` says what the verb does and how to call it."""
    done = invoke(*verb, "--help")

    assert done.exit_code == 0, done.output
    assert f"Usage: root {' '.join(verb)}" in done.output


def test_the_verbs_of_issue_9_are_there() -> None:
    """The demo, intake by hand and the principal options are part of the command line."""
    assert {("demo",), ("intake",), ("claim-keys",), ("serve",), ("policies", "lag")} <= set(VERBS)
    assert "--as" in invoke("claim-keys", "--help").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "No such command 'nope'"),
        (["demo", "--customers", "1"], "'--customers': Input should be greater than or equal to 2"),
        (["serve", "--port", "0"], "'--port': Input should be greater than or equal to 1"),
        (
            ["projections", "skip", "customers", "first", "--reason", "x"],
            "'notification_id': Input should be a valid integer",
        ),
        (["intake", "e2open", "missing.jsonl", "--as", "operator:ops"], "does not exist"),
        (["claim-keys", "--as", "nobody:x"], "unknown role 'nobody'; use operator, auditor, feed"),
        (["claim-keys", "--as", "operator"], "'operator' is not ROLE:SUBJECT"),
        (["claim-keys", "--as", "operator:  "], "is not ROLE:SUBJECT"),
        (["claim-keys", "--as", "partner_admin:anna"], "sign in with --token instead"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_a_bad_argument_gives_a_clear_message_and_exit_code_2(
    args: list[str], message: str
) -> None:
    """Issue 9: a usage error names what is wrong (typer's own, or ours) and exits 2."""
    done = invoke(*args)

    assert done.exit_code == 2
    assert message in said(done)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "say who acts: --as ROLE:SUBJECT or --token TOKEN"),
        (["--as", "operator:ops", "--token", TOKEN], "(one of them, not both)"),
        (["--token", TOKEN], "not signed in: JWT_ISSUER is not set"),
    ],
    ids=["neither", "both", "no verifier"],
)
def test_a_verb_that_causes_something_needs_exactly_one_principal(
    tmp_path: Path, store: dict[str, str], args: list[str], message: str
) -> None:
    """Issue 9: `--as` or `--token`, one of them (checked before the store is opened); a
    token is never echoed."""
    done = invoke("claim-keys", *args, env=store)

    assert done.exit_code == 2
    assert message in said(done)
    assert TOKEN not in done.output
    assert (tmp_path / "events.sqlite3").exists() == (args == ["--token", TOKEN])


def test_as_names_a_local_role_and_its_subject() -> None:
    """`--as ROLE:SUBJECT`: operator, auditor or feed, the subject trimmed."""
    assert parse_as("operator:ops@example.com") == (Role.OPERATOR, "ops@example.com")
    assert parse_as("auditor: audit@example.com ") == (Role.AUDITOR, "audit@example.com")
    assert parse_as("feed:e2open:eu") == (Role.FEED, "e2open:eu")


def test_r_par_2_a_token_of_a_partner_user_is_checked_against_the_store(
    sqlite_settings: Settings,
) -> None:
    """R-PAR-2: a verified token claiming a partner role for a Passport ID the partner does
    not have signs nobody in (exit 2); one the store confirms acts as that user, with admin
    rights from the store, not the token."""
    fleet = build_fleet(sqlite_settings)
    ops = service_actor("ops", Role.OPERATOR)
    fleet.register_partner(ops, "LOC-1", "Partner One")
    fleet.register_partner_user(ops, "LOC-1", "anna@LOC-1")
    anna = signed(claims_body(sub="anna@LOC-1", role="partner_user"))
    eve = signed(claims_body(sub="eve@elsewhere.example", role="partner_admin"))

    actor = principal(fleet, verifier, None, anna)
    with pytest.raises(typer.Exit) as refused:
        principal(fleet, verifier, None, eve)

    assert (actor.subject, actor.role, actor.tenant) == ("anna@LOC-1", Role.PARTNER_ADMIN, "LOC-1")
    assert refused.value.exit_code == 2
    fleet.close()


def reports_file(folder: Path) -> Path:
    """Two e2Open reports for LOC-1 (one PC, one without a serial) as JSON Lines."""
    good = {
        "serial": "5CGHAND01",
        "model": "HP EliteBook 840 G11",
        "reseller_location_id": "LOC-1",
        "distributor": "Ingram Micro",
        "ship_date": "2026-03-01",
    }
    path = folder / "reports.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "serial": ""}) + "\n")
    return path


def stored(fleet: PartnerFleet, cls: type[object]) -> list[Any]:
    """The stored events of one class."""
    found = fleet.recorder.select_notifications(start=1, limit=1_000, topics=[get_topic(cls)])
    return [fleet.mapper.to_domain_event(n) for n in found]


def test_r_hld_1_intake_by_hand_records_its_principal_and_keeps_the_rejected_report(
    tmp_path: Path, store: dict[str, str]
) -> None:
    """R-HLD-1, issue 9: `intake e2open FILE --as operator:…` lands the PC, keeps the bad
    report with its reason, and records the operator as the principal; the same file again
    records nothing."""
    fleet = build_fleet(Settings(database_url=store["DATABASE_URL"]))
    ops = service_actor("setup", Role.OPERATOR)
    fleet.register_partner(ops, "LOC-1", "Partner One")
    fleet.register_partner_user(ops, "LOC-1", "anna@loc1.example")
    fleet.certify_partner(ops, "LOC-1", "resell_view_monitor")
    path = reports_file(tmp_path)

    done = invoke("intake", "e2open", str(path), "--as", "operator:ops@example.com", env=store)
    head = fleet.recorder.max_notification_id()
    again = invoke("intake", "e2open", str(path), "--as", "operator:ops@example.com", env=store)

    assert done.exit_code == 0, done.output
    assert "1 accepted, 0 already taken, 1 rejected" in done.output
    assert "rejected line 2" in done.output
    [batch] = stored(fleet, E2OpenBatch.Received)
    [landed] = stored(fleet, Device.ReportedByE2Open)
    assert batch.principal == landed.principal == "ops@example.com"
    assert again.exit_code == 0
    assert "was taken before: nothing new recorded" in again.output
    # session 19 walkthrough: the first outcome is not printed again as if it were new
    assert "(when it was taken: 1 accepted, 0 already taken, 1 rejected)" in again.output
    assert f"batch {batch.batch_id}: 1 accepted" not in again.output
    assert "rejected line" not in again.output
    assert fleet.recorder.max_notification_id() == head
    fleet.close()


def test_a_token_on_the_command_line_is_the_principal_of_what_the_verb_causes(
    tmp_path: Path, store: dict[str, str]
) -> None:
    """Issue 9: `intake … --token` (here from PARTNERFLEET_TOKEN) verifies the token with the
    configured JWKS and issuer and records its subject, as HTTP would."""
    token = signed(claims_body(sub="e2open-feed", role="feed", tenant=None))
    keys = jwks_file(tmp_path, signing_key())
    env = {**store, "JWKS_PATH": str(keys), "JWT_ISSUER": ISSUER, "PARTNERFLEET_TOKEN": token}

    done = invoke("intake", "e2open", str(reports_file(tmp_path)), env=env)

    assert done.exit_code == 0, done.output
    assert token not in done.output
    fleet = build_fleet(Settings(database_url=store["DATABASE_URL"]))
    [batch] = stored(fleet, E2OpenBatch.Received)
    assert batch.principal == "e2open-feed"
    fleet.close()
