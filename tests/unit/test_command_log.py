"""Every command logs one line with principal, correlation id, aggregate ids and outcome."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from domain import DomainError, PartnerTenant
from domain.key_claim import KeyClaim
from handlers.access import ForbiddenError, Role
from tests.actors import customer, operator
from tests.scenarios import in_memory_fleet


def test_an_accepted_command_logs_one_line_naming_who_what_and_the_outcome() -> None:
    """The line carries principal, correlation id, aggregate id and 'accepted'."""
    fleet = in_memory_fleet()
    with capture_logs() as logs:
        fleet.register_partner(operator("hp-ops", "corr-42"), "LOC-1", "Acme")
    [line] = [entry for entry in logs if entry["event"] == "command"]
    assert line["command"] == "register_partner"
    assert line["principal"] == "hp-ops"
    assert line["correlation_id"] == "corr-42"
    claim = KeyClaim.id_for("location", "LOC-1")  # the Location ID's one spelling (kind 4)
    assert line["aggregate_ids"] == [str(PartnerTenant.id_for("LOC-1")), str(claim)]
    assert line["outcome"] == "accepted"


def test_a_refused_command_logs_its_reason() -> None:
    """A refusal is logged once, as 'refused', with the reason a person can act on."""
    fleet = in_memory_fleet()
    with capture_logs() as logs, pytest.raises(DomainError):
        fleet.certify_partner(operator("hp-ops", "corr-43"), "NOPE", "resell_view_monitor")
    [line] = [entry for entry in logs if entry["event"] == "command"]
    assert line["outcome"] == "refused"
    assert "No partner has Location ID 'NOPE'" in line["reason"]
    assert line["correlation_id"] == "corr-43"


def test_a_command_refused_to_the_role_logs_one_line_with_role_and_reason() -> None:
    """Issue 9: a 403 is refused before any aggregate is loaded, and logged once too."""
    fleet = in_memory_fleet()
    with capture_logs() as logs, pytest.raises(ForbiddenError):
        fleet.certify_partner(customer("C1"), "LOC-1", "resell_view_monitor")
    [line] = [entry for entry in logs if entry["event"] == "command"]
    assert (line["command"], line["role"], line["outcome"]) == (
        "certify_partner",
        Role.CUSTOMER_ADMIN,
        "refused",
    )
    assert line["reason"] == "The role customer_admin may not certify partner."
