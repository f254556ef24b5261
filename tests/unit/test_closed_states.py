"""Closed states of the other aggregates: what they still accept (docs/decisions.md, issue 8).

A deleted customer group is in test_deleted_groups.py; these are the other rows of the
decision table whose refusal was not yet said or proven elsewhere.
"""

from __future__ import annotations

from uuid import UUID

from domain.partner import PartnerError
from handlers import PartnerFleet
from tests.unit.conftest import ANNA, BEN, OPS, refused


def test_r_hld_2_a_resolved_request_is_not_reopened_by_reporting_under_its_id(
    app: PartnerFleet, partner: str, holding_tenant: UUID
) -> None:
    app.report_missing_devices(BEN, partner, "REQ-1", ["PC5"])
    app.resolve_missing_devices(OPS, partner, "REQ-1", "Found")

    with refused(app, PartnerError, "was resolved \\(Found\\); report PCs still missing in a new"):
        app.report_missing_devices(ANNA, partner, "REQ-1", ["PC5"])

    app.report_missing_devices(ANNA, partner, "REQ-2", ["PC5"])
    requests = app.partner(partner).missing_device_requests
    assert (requests["REQ-1"].resolution, requests["REQ-2"].resolution) == ("Found", None)
