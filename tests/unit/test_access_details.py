"""Details of the access model the matrix cannot show (issue 9): end users and their PCs,
the source of a repair case, consent corrections, undeclared commands, 404 words."""

from __future__ import annotations

import pytest

from domain import NotFoundError
from domain.consent import ConsentError
from handlers import PartnerFleet
from handlers.access import Actor, ForbiddenError
from handlers.base import COMMANDS, FleetApplication
from tests.actors import auditor, customer, end_user, feed
from tests.scenarios import event_count
from tests.unit.access_world import OPS, OTHER, OWN, consent_version, world


def test_r_alr_1_an_end_user_names_only_a_pc_it_works_on_as_a_missing_one() -> None:
    """R-ALR-1: a PC of its own customer that is not in the end user's PCs is not found, in
    the words used for a serial nobody registered."""
    fleet = world()
    someone_else = end_user(OWN.customer, ["PCZ"])

    told = []
    for serial in (OWN.s("PCC"), "PC404"):
        with pytest.raises(NotFoundError) as refused:
            fleet.submit_repair_case(someone_else, serial, "A1", "K1")
        told.append(str(refused.value).replace(serial, "<serial>"))

    assert told[0] == told[1] == "No device with serial number '<serial>'."


def test_r_alr_1_an_unassigned_pc_takes_the_case_of_whoever_works_on_it() -> None:
    """R-ALR-1: a PC in a holding tenant, with no customer recorded yet, takes the repair
    case of the end user working on it (its pop-up went there)."""
    fleet = world()
    fleet.raise_alert(OPS, OWN.s("PT"), "A1", "critical", "Battery swelling")

    fleet.submit_repair_case(end_user("C-ANY", [OWN.s("PT")]), OWN.s("PT"), "A1", "K1")

    assert fleet.device(OWN.s("PT")).alerts["A1"].repair_case_id == "K1"


@pytest.mark.parametrize(
    ("actor", "source"),
    [(customer(OWN.customer), "insight_rs"), (feed(), "self_service")],
    ids=["customer-insight-rs", "feed-self-service"],
)
def test_r_alr_2_insight_rs_cases_come_from_remote_support_self_service_from_the_customer(
    actor: Actor, source: str
) -> None:
    """R-ALR-2: the source of a case goes with who submits it; the other way is 403."""
    fleet = world()

    with pytest.raises(ForbiddenError, match=f"may not submit {source.replace('_', ' ')}"):
        fleet.submit_repair_case(actor, OWN.s("S"), "A1", "K1", source=source)


def test_r_con_4_a_correction_needs_a_reason_whoever_makes_it() -> None:
    """R-CON-4: an auditor's correction without a reason is refused; nothing is recorded."""
    fleet = world()
    before = event_count(fleet)

    with pytest.raises(ConsentError, match="must say why"):
        fleet.correct_consent_record(auditor(), OWN.s("S"), consent_version(fleet, OWN), " ", None)

    assert event_count(fleet) == before


def test_issue_9_an_undeclared_command_cannot_exist() -> None:
    """A public method taking an actor without @command is refused when its class is made."""
    with pytest.raises(TypeError, match=r"Sneaky\.grant_everything takes an actor but is not"):

        class Sneaky(FleetApplication):
            def grant_everything(self, actor: Actor) -> None:
                """Would bypass the access check."""

    class Inheriting(PartnerFleet):
        """Every command it inherits is declared: nothing to refuse."""

    assert all(hasattr(getattr(Inheriting, name), "__command__") for name in COMMANDS)


def test_issue_9_a_foreign_tenant_reads_the_same_as_a_missing_one_for_device_commands() -> None:
    """R-LNK-1: the customer admin of C1 naming C2's id is told what it is told for an id
    no one has; a PC of another customer is "no device", as an unknown serial."""
    fleet = world()
    c1 = customer(OWN.customer)

    with pytest.raises(NotFoundError) as theirs:
        fleet.grant_consent(c1, OTHER.customer, [OTHER.s("SN")])
    with pytest.raises(NotFoundError) as nobodys:
        fleet.grant_consent(c1, "C404", [OTHER.s("SN")])

    assert str(theirs.value).replace("C2", "<id>") == str(nobodys.value).replace("C404", "<id>")
    with pytest.raises(NotFoundError, match="No device with serial number 'SN2'"):
        fleet.grant_consent(c1, OWN.customer, [OTHER.s("SN")])
