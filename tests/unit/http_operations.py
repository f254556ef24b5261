"""Every operation of the HTTP API, as the access matrices know it (issue 9).

`OPERATIONS` maps each OpenAPI operation ("METHOD /path") to the command (handlers.base.
COMMANDS) or query (the query matrix, tests/unit/test_access_queries.py) it runs, and to one
call of it on a side of the access world (tests/unit/access_world.py):

- `who`: a principal of tests/unit/http_world.py whose call on its own side succeeds
  (`ok`), None for public routes;
- `path` and `body`: templates filled with a side's ids (`fill`), so the same call names
  the own tenant's (OWN) or another tenant's (OTHER) resources;
- `denied`: a principal whose role may never do it (403), None when every role may;
- `tenant`: the path names a tenant (a Location ID, customer id or its resource): the
  owner's role asking for OTHER's answers 404.

A route added to the API without a row here fails the coverage test, naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.unit.access_world import Side

PUBLIC = "public"  # routes without a token: health and the problem types


@dataclass(frozen=True)
class Op:
    """One operation: what it runs, and one call of it that `who` may make on its own side."""

    name: str
    who: str | None
    path: str
    body: Any = None
    ok: int = 200
    denied: str | None = "c1"
    tenant: bool = True
    query: dict[str, str] = field(default_factory=dict)


SERIALS = ("S", "SN", "H", "HC", "CC", "CCC", "PCC", "PT", "PD")  # the names of a side's serials


def fields(side: Side) -> dict[str, str]:
    """A side's ids, by the names the templates use: {loc}, {customer}, {group},
    {holding}, and serials such as {S} (S1 on OWN, S2 on OTHER)."""
    return {
        "loc": side.loc,
        "customer": side.customer,
        "group": str(side.group),
        "holding": str(side.holding),
        "admin": side.admin,
        "user": side.user,
        "n": str(side.n),
        **{serial: side.s(serial) for serial in SERIALS},
    }


def fill(template: Any, side: Side) -> Any:
    """`template` (a string, or lists and dicts of them) with `side`'s ids filled in."""
    return fill_ids(template, fields(side))


def fill_ids(template: Any, ids: Mapping[str, str]) -> Any:
    """`template` with `ids` filled in by name ({loc}, {S} ...)."""
    if isinstance(template, str):
        return template.format_map(ids)
    if isinstance(template, list):
        return [fill_ids(item, ids) for item in template]
    if isinstance(template, dict):
        return {key: fill_ids(value, ids) for key, value in template.items()}
    return template


OPERATIONS: dict[str, Op] = {
    # --- public ---
    "GET /healthz": Op(PUBLIC, None, "/healthz", denied=None, tenant=False),
    "GET /problems/{kind}": Op(PUBLIC, None, "/problems/not-found", denied=None, tenant=False),
    # --- partners and users (R-PAR-1, R-PAR-4, R-HLD-2) ---
    "POST /partners": Op(
        "register_partner",
        "ops",
        "/partners",
        {"location_id": "LOC-NEW{n}", "name": "New"},
        ok=201,
        denied="anna",
        tenant=False,
    ),
    "GET /partners/{location_id}": Op("partner_tenant", "ben", "/partners/{loc}"),
    "GET /partners/{location_id}/users": Op("partner_users", "ben", "/partners/{loc}/users"),
    "POST /partners/{location_id}/users": Op(
        "register_partner_user",
        "anna",
        "/partners/{loc}/users",
        {"passport_id": "new{n}@{loc}"},
        ok=201,
    ),
    "POST /partners/{location_id}/accreditation": Op(
        "accredit_service_partner",
        "ops",
        "/partners/{loc}/accreditation",
        {"csdp_account": "CSDP-{n}"},
        denied="anna",
        tenant=False,
    ),
    "POST /partners/{location_id}/certifications": Op(
        "certify_partner",
        "ops",
        "/partners/LOC-3/certifications",  # a spare partner of the world, not yet certified
        {"programme": "resell_view_monitor"},
        ok=201,
        denied="anna",
        tenant=False,
    ),
    "POST /partners/{location_id}/missing-device-requests": Op(
        "report_missing_devices",
        "ben",
        "/partners/{loc}/missing-device-requests",
        {"request_id": "R2", "serials": ["PCY{n}"]},
        ok=201,
    ),
    "POST /partners/{location_id}/missing-device-requests/{request_id}/resolution": Op(
        "resolve_missing_devices",
        "ops",
        "/partners/{loc}/missing-device-requests/R1/resolution",
        {"resolution": "found in e2Open"},
        denied="anna",
        tenant=False,
    ),
}
