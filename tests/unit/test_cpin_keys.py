"""R-HLD-3: a cPIN checked under another CPIN_KEY than it was set under says so.

A process started with the wrong CPIN_KEY cannot open any dashboard made under the right
one. Without a key id in the verifier the customer heard "the cPIN does not match" for the
right cPIN, and nobody learnt that the service's key was wrong (issue 8, kind 9, attack2).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from domain.base import NotAllowedError
from domain.cpin import CpinKeyMismatchError, cpin_matches, cpin_verifier, key_id, verifier_key_id
from handlers import PartnerFleet
from tests.actors import partner_user
from tests.scenarios import CUSTOMER, OPS, event_count, in_memory_fleet, partner, report

RIGHT, WRONG = b"r" * 32, b"w" * 32


def dashboard(fleet: PartnerFleet, cpin: str = "4711") -> object:
    """LOC-1's dashboard for C1, with `cpin`, made under the fleet's key."""
    partner(fleet, "LOC-1")
    fleet.receive_e2open_batch(OPS, "b1", [report("PC1")])
    return fleet.create_customer_dashboard(
        partner_user(fleet, "LOC-1", "anna@LOC-1"), "LOC-1", "C1", "One", cpin
    )


def test_r_hld_3_a_dashboard_made_under_another_cpin_key_says_so_and_records_nothing() -> None:
    """The right cPIN, the wrong key: a key error naming both key ids, logged as an error."""
    fleet = in_memory_fleet()
    fleet.cpin_key = RIGHT
    made = dashboard(fleet)
    fleet.cpin_key = WRONG
    before = event_count(fleet)

    with capture_logs() as logs, pytest.raises(CpinKeyMismatchError, match="CPIN_KEY") as refused:
        fleet.enrol_with_cpin(CUSTOMER, "C1", made, "4711", "PC9")  # type: ignore[arg-type]

    assert key_id(RIGHT) in str(refused.value)
    assert key_id(WRONG) in str(refused.value)
    assert "does not match" not in str(refused.value)
    assert event_count(fleet) == before
    assert [e["log_level"] for e in logs if e["event"] == "cpin_key_mismatch"] == ["error"]


def test_r_hld_3_under_the_right_key_a_wrong_cpin_is_still_only_a_mismatch() -> None:
    """The key id changes nothing for a process with the right key."""
    fleet = in_memory_fleet()
    fleet.cpin_key = RIGHT
    made = dashboard(fleet)

    with pytest.raises(NotAllowedError, match="does not match"):
        fleet.enrol_with_cpin(CUSTOMER, "C1", made, "4712", "PC9")  # type: ignore[arg-type]
    fleet.enrol_with_cpin(CUSTOMER, "C1", made, "4711", "PC9")  # type: ignore[arg-type]


@given(cpin=st.text(min_size=4, max_size=8), salt=st.binary(min_size=16, max_size=16))
def test_r_hld_3_a_verifier_names_its_key_by_an_id_that_opens_nothing(
    cpin: str, salt: bytes
) -> None:
    """The id is the key's, not the cPIN's: same for every verifier under the key."""
    verifier = cpin_verifier(cpin, RIGHT, salt)

    assert verifier_key_id(verifier) == key_id(RIGHT) != key_id(WRONG)
    assert cpin_matches(verifier, cpin, RIGHT)
    assert not cpin_matches(verifier, cpin, WRONG)
    assert RIGHT.decode() not in verifier


def test_verifiers_written_before_key_ids_still_open_and_name_no_key() -> None:
    """`hmac-sha256$salt$mac` (no key id) and `sha256$digest` load as before."""
    with_id = cpin_verifier("4711", RIGHT, b"s" * 16)
    without = with_id.rsplit("$", 1)[0]

    assert verifier_key_id(without) is None
    assert cpin_matches(without, "4711", RIGHT)
    assert verifier_key_id("sha256$00") is None
