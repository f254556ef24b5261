"""Issue 8, kind 4: a query takes its keys in any normal form; it refuses what no store compares.

Commands store keys (Location IDs, customer ids, serials, destinations, batch ids) in NFC
(docs/decisions.md, "Text at the boundary"). A query given the same key decomposed (as
pasted text sends it) must find what the composed key finds, on every backend; a key no
database can compare (NUL: PostgreSQL refuses it outright) is a `QueryError` naming the
field, never a driver error.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from handlers import PartnerFleet
from handlers.access import PartnerScope
from handlers.devices import PartnerChoice
from handlers.policies import PolicyRunner
from projections import consent_queries, holding, repair_queues, service
from projections.base import Tx
from projections.consent_queries import Selection
from projections.customer_queries import QueryError, customer_dashboard
from tests.actors import customer, partner_user
from tests.scenarios import OPS, report, servers
from tests.scopes import AUDIT, OPERATIONS, partner_of
from tests.unit.views_support import Reader, db, fleet, read, runner

__all__ = ["db", "fleet", "read", "runner"]

LOC = "LOC-É"  # composed, as the commands store it
CUSTOMER_ID = "CÜST"
SERIAL = "SÉ1"
CUSTOMER = customer(CUSTOMER_ID, "it@cüst.example", "corr-c")


def nfd(text: str) -> str:
    """The same text decomposed (E + U+0301), as pasted text sends it."""
    return unicodedata.normalize("NFD", text)


@pytest.fixture
def world(fleet: PartnerFleet) -> None:
    """Service partner LOC-É; customer CÜST's SÉ1 linked with consent, data, a service
    event, an alert with a routed repair case; a PC reported for LOC-É; a missing-PC request."""
    fleet.register_partner(OPS, LOC, "Partner É")
    fleet.register_partner_user(OPS, LOC, "anna@loc-é")
    fleet.accredit_service_partner(OPS, LOC, "CSDP-É")
    fleet.certify_partner(OPS, LOC, "service_delivery")
    choice = PartnerChoice(location_id=LOC, role="service_partner")
    fleet.register_devices(CUSTOMER, CUSTOMER_ID, servers(SERIAL), choice)
    fleet.grant_consent(CUSTOMER, CUSTOMER_ID, [SERIAL])
    fleet.collect_configuration(OPS, SERIAL, {"bios": "1.2"})
    fleet.record_service_event(OPS, SERIAL, "E1", "critical", "PSU failed")
    fleet.choose_insight_rs_case_routing(CUSTOMER, CUSTOMER_ID, [SERIAL], to_service_partner=True)
    fleet.raise_alert(OPS, SERIAL, "A1", "critical", "Failure predicted")
    fleet.submit_repair_case(OPS, SERIAL, "A1", "K1", source="insight_rs")
    PolicyRunner(fleet).catch_up()
    landed = fleet.receive_e2open_batch(OPS, "bÉ", [report("PC1", LOC), report("PC2", "LOC-?")])
    assert landed.accepted == ["PC1"]
    fleet.report_missing_devices(partner_user(fleet, LOC, "anna@loc-é"), LOC, "R1", ["PC9"])


NOW = datetime(9999, 1, 1, tzinfo=UTC)
Query = Callable[[Tx, PartnerScope, Callable[[str], str]], Any]
# The partner's own Location ID comes in its scope, made by the access layer; the keys a
# query still takes (serials, customer ids, partners named by an auditor, batch ids,
# destinations, audiences) are what these tests pass in either normal form.
QUERIES: dict[str, Query] = {
    "history(partner)": lambda tx, _, f: (
        consent_queries.history(tx, AUDIT, Selection(partner=f(LOC))).rows
    ),
    "history(customer_id)": lambda tx, _, f: (
        consent_queries.history(tx, AUDIT, Selection(customer_id=f(CUSTOMER_ID))).rows
    ),
    "history(serial)": lambda tx, _, f: (
        consent_queries.history(tx, AUDIT, Selection(serial=f(SERIAL))).rows
    ),
    "consent_in_effect": lambda tx, _, f: (
        consent_queries.consent_in_effect(tx, AUDIT, f(SERIAL), f(LOC), NOW).in_effect
    ),
    "configuration_for": lambda tx, p, f: consent_queries.configuration_for(tx, p, f(SERIAL)),
    "service_events": lambda tx, p, f: (
        service.service_events(tx, p, customer_id=f(CUSTOMER_ID), serial=f(SERIAL)).rows
    ),
    "service_levels": lambda tx, p, f: (
        service.service_levels(tx, p, f(SERIAL), date(2026, 1, 1), all_active=True) == []
    ),
    "rejected_reports": lambda tx, _, f: (
        holding.rejected_reports(tx, OPERATIONS, batch_id=f("bÉ")).rows
    ),
    "repair_queue": lambda tx, _, f: (
        repair_queues.repair_queue(tx, OPERATIONS, f("csdp:CSDP-É")).rows
    ),
    "alert_notifications": lambda tx, _, f: (
        repair_queues.alert_notifications(
            tx, OPERATIONS, audience=f("partner"), partner=f(LOC)
        ).rows
    ),
}


@pytest.mark.parametrize("query", sorted(QUERIES))
def test_kind4_a_query_finds_with_its_keys_decomposed_what_it_finds_composed(
    fleet: PartnerFleet, world: None, read: Reader, query: str
) -> None:
    """Kind 4 (R-CON-3, R-SVC-2, R-HLD-1, R-ALR-2): NFD keys answer as the NFC ones."""
    with read() as tx:
        composed = QUERIES[query](tx, partner_of(fleet, "anna@loc-é", LOC), str)
        decomposed = QUERIES[query](tx, partner_of(fleet, "anna@loc-é", LOC), nfd)
    assert composed
    assert decomposed == composed


@pytest.mark.parametrize("query", sorted(QUERIES))
def test_kind4_a_query_key_with_a_nul_is_a_query_error(
    fleet: PartnerFleet, world: None, read: Reader, query: str
) -> None:
    """Kind 4/5: a NUL in a key is refused by the query, naming it (PostgreSQL cannot take it)."""
    with read() as tx, pytest.raises(QueryError, match=r"NUL|control character"):
        QUERIES[query](tx, partner_of(fleet, "anna@loc-é", LOC), lambda key: key + "\x00")


def test_kind4_the_command_side_query_takes_a_decomposed_location_id(
    fleet: PartnerFleet, world: None
) -> None:
    """Kind 4, R-CON-2: may_read_configuration answers alike for LOC-É in either form."""
    assert fleet.may_read_configuration(SERIAL, LOC)
    assert fleet.may_read_configuration(nfd(SERIAL), nfd(LOC))


def test_kind4_a_dashboard_id_with_a_nul_is_a_query_error(
    fleet: PartnerFleet, world: None, read: Reader
) -> None:
    """Kind 4/5: the dashboard query refuses a group id no database can compare."""
    with read() as tx, pytest.raises(QueryError, match="group_id"):
        customer_dashboard(tx, partner_of(fleet, "anna@loc-é", LOC), "g\x00")
