"""The partners view (issue 10, operator pages): every partner tenant with its type,
certifications and users, for HP/HPE operations only (R-PAR-1, R-PAR-4)."""

from __future__ import annotations

import pytest

from domain import NotFoundError
from handlers.access import operator_scope
from projections.partners import PartnerUser, partner_overview, partners_overview, users_of_partner
from tests.actors import operator
from tests.scenarios import in_memory_fleet
from tests.scopes import OPERATOR
from tests.views import assert_rebuild_equals_live, memory_runner

OPS = operator()


def test_r_par_1_r_par_4_operations_see_each_partner_its_type_programmes_and_users() -> None:
    fleet = in_memory_fleet()
    for location in ("LOC-B", "LOC-A", "LOC-C"):
        fleet.register_partner(OPS, location, f"Partner {location}")
    fleet.register_partner_user(OPS, "LOC-A", "anna@a")
    fleet.register_partner_user(OPS, "LOC-A", "ben@a")
    fleet.accredit_service_partner(OPS, "LOC-B", "CSDP-SECRET-ACCOUNT")
    fleet.certify_partner(OPS, "LOC-B", "service_delivery")
    runner = memory_runner(fleet)
    runner.catch_up()
    scope = operator_scope(OPERATOR)

    with runner.db.transaction() as tx:
        first = partners_overview(tx, scope, limit=2)
        rest = partners_overview(tx, scope, after=first.next_after, limit=2)
        users = users_of_partner(tx, scope, "LOC-A")
        dumped = repr(tx.query("SELECT * FROM pf_p_partners"))

    assert [p.location_id for p in first.rows + rest.rows] == ["LOC-A", "LOC-B", "LOC-C"]
    assert rest.next_after is None
    a, b = first.rows
    assert (a.users, a.partner_type, a.certifications, a.holding_tenant) == (
        2,
        "reseller",
        [],
        False,
    )
    assert (b.partner_type, b.certifications, b.holding_tenant) == (
        "service_partner",
        ["service_delivery"],
        True,
    )
    assert users.rows == [PartnerUser("anna@a", "admin"), PartnerUser("ben@a", "user")]
    assert "CSDP-SECRET-ACCOUNT" not in dumped
    assert_rebuild_equals_live(runner)


def test_r_par_1_an_unknown_location_id_is_not_found() -> None:
    runner = memory_runner(in_memory_fleet())
    runner.catch_up()

    with runner.db.transaction() as tx, pytest.raises(NotFoundError, match="LOC-9"):
        partner_overview(tx, operator_scope(OPERATOR), "LOC-9")
