"""No answer of the HTTP API names another tenant's ids (issue 9, R-LNK-1, R-LNK-6, R-PAR-2).

Hypothesis draws a history over three partners (LOC-P0 and LOC-P2 resellers, LOC-P1 a
service partner, each with an admin) and three customers: devices registered (linked or
not), linked and relinked as reseller or service partner, unlinked, consent granted, child
groups made, groups marked favourite. Refused commands are part of the history (they
record nothing). Then every principal (each partner's admin, each customer's admin) asks
every GET route of the API with its own ids in the path, and no answer's body contains an
id of another tenant:

- a partner sees only devices linked to it now, customers it has a group for, its own
  groups, child groups, Location ID, users and holding tenant;
- a customer sees only its own devices and customer id, and its own groups' ids.

The ids are drawn so that none is part of another (fixed widths), so a substring is a leak.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import CustomerGroup, Device, DomainError, PartnerTenant
from handlers import PartnerFleet
from handlers.access import Claims
from handlers.devices import NewDevice, PartnerChoice
from tests.actors import customer, operator, partner_user
from tests.scenarios import in_memory_fleet
from tests.unit.http_operations import OPERATIONS, SERIALS, fill_ids
from tests.unit.http_world import Served, rebind, serve

OPS = operator()
PARTNERS = ("LOC-P0", "LOC-P1", "LOC-P2")  # LOC-P1 is a service partner
CUSTOMERS = ("CUS-K0", "CUS-K1", "CUS-K2")
DEVICES = 4  # per customer


def admin_of(location_id: str) -> str:
    return f"adm{location_id[-1]}@partner.example"


def serial(c: int, d: int) -> str:
    return f"SRLK{c}N{d}"


def customer_admin(c: int) -> str:
    return f"it{c}@customer.example"


TOKENS: dict[str, Claims] = {
    **{loc: Claims(admin_of(loc), "partner_user", loc) for loc in PARTNERS},
    **{cid: Claims(customer_admin(c), "customer_admin", cid) for c, cid in enumerate(CUSTOMERS)},
}


@cache
def partners_events() -> tuple[StoredEvent, ...]:
    """The three partners with their admins, certified; recorded once, copied per history."""
    fleet = in_memory_fleet()
    for loc in PARTNERS:
        fleet.register_partner(OPS, loc, f"Partner {loc}")
        fleet.register_partner_user(OPS, loc, admin_of(loc))
        if loc == "LOC-P1":
            fleet.accredit_service_partner(OPS, loc, "CSDP-P1")
        fleet.certify_partner(OPS, loc, "resell_view_monitor")
    stored = fleet.recorder.select_notifications(start=1, limit=10_000)
    return tuple(
        StoredEvent(n.originator_id, n.originator_version, n.topic, n.state) for n in stored
    )


customers = st.integers(0, len(CUSTOMERS) - 1)
devices = st.integers(0, DEVICES - 1)
partners = st.integers(0, len(PARTNERS) - 1)
roles = st.sampled_from(["reseller", "service_partner"])
actions = st.one_of(
    st.tuples(st.just("register"), customers, devices, st.none() | partners),
    st.tuples(st.just("link"), customers, devices, partners, roles),
    st.tuples(st.just("unlink"), customers, devices, roles),
    st.tuples(st.just("consent"), customers, devices),
    st.tuples(st.just("child"), partners, customers),
    st.tuples(st.just("favourite"), partners, customers),
)
Action = tuple[object, ...]


def play(fleet: PartnerFleet, action: Action) -> None:
    """One step of a history; a refusal is a step too (it records nothing)."""
    kind, *args = action
    with contextlib.suppress(DomainError):
        STEPS[str(kind)](fleet, *args)


def _register(fleet: PartnerFleet, c: int, d: int, p: int | None) -> None:
    choice = None if p is None else PartnerChoice(location_id=PARTNERS[p])
    device = NewDevice(serial=serial(c, d), connection="direct_connect", model="DL380")
    fleet.register_devices(customer(CUSTOMERS[c]), CUSTOMERS[c], [device], choice)


def _link(fleet: PartnerFleet, c: int, d: int, p: int, role: str) -> None:
    choice = PartnerChoice(location_id=PARTNERS[p], role=role)
    fleet.link_devices(customer(CUSTOMERS[c]), CUSTOMERS[c], [serial(c, d)], choice)


def _unlink(fleet: PartnerFleet, c: int, d: int, role: str) -> None:
    fleet.unlink_devices(customer(CUSTOMERS[c]), CUSTOMERS[c], [serial(c, d)], role)


def _consent(fleet: PartnerFleet, c: int, d: int) -> None:
    fleet.grant_consent(customer(CUSTOMERS[c]), CUSTOMERS[c], [serial(c, d)])


def _child(fleet: PartnerFleet, p: int, c: int) -> None:
    admin = partner_user(fleet, PARTNERS[p], admin_of(PARTNERS[p]))
    group = CustomerGroup.id_for(PARTNERS[p], CUSTOMERS[c])
    fleet.create_child_group(admin, group, f"cgP{p}K{c}", "Racks")


def _favourite(fleet: PartnerFleet, p: int, c: int) -> None:
    admin = partner_user(fleet, PARTNERS[p], admin_of(PARTNERS[p]))
    fleet.add_favourite(admin, CustomerGroup.id_for(PARTNERS[p], CUSTOMERS[c]))


STEPS: dict[str, Callable[..., None]] = {
    "register": _register,
    "link": _link,
    "unlink": _unlink,
    "consent": _consent,
    "child": _child,
    "favourite": _favourite,
}


# --- who owns which ids, after the history -----------------------------------------------


@dataclass(frozen=True)
class Tenant:
    """What a principal may see of the world, and its ids to put in paths."""

    token: str
    visible: frozenset[str]
    ids: dict[str, str]


def world_ids(fleet: PartnerFleet) -> Iterator[tuple[str, frozenset[str]]]:
    """Every id of the world, with the tenants (Location IDs, customer ids) it belongs to."""
    for c, cid in enumerate(CUSTOMERS):
        grouped = {loc for loc in PARTNERS if _group(fleet, loc, cid) is not None}
        yield cid, frozenset({cid, *grouped})  # a partner sees the customers it has a group of
        for d in range(DEVICES):
            found = _device(fleet, serial(c, d))
            if found is not None:
                yield serial(c, d), frozenset({cid, *found.links.values()})
        for p, loc in enumerate(PARTNERS):
            group = _group(fleet, loc, cid)
            if group is not None:
                yield str(group.id), frozenset({loc, cid})
                yield f"cgP{p}K{c}", frozenset({loc})
    for loc in PARTNERS:
        yield loc, frozenset({loc})
        yield admin_of(loc), frozenset({loc})
        yield str(PartnerTenant.holding_tenant_id_for(loc)), frozenset({loc})


def tenants(fleet: PartnerFleet) -> list[Tenant]:
    """Each principal: its token, the ids it may see, and its own ids by template name."""
    owners = dict(world_ids(fleet))
    found = []
    for token in (*PARTNERS, *CUSTOMERS):
        visible = frozenset(i for i, held in owners.items() if token in held)
        found.append(Tenant(token, visible | _public(token), _path_ids(fleet, token, visible)))
    return found


def _public(token: str) -> frozenset[str]:
    # A customer types partners' Location IDs to link them (R-LNK-1): they are public to it.
    return frozenset(PARTNERS) if token in CUSTOMERS else frozenset()


def _path_ids(fleet: PartnerFleet, token: str, visible: frozenset[str]) -> dict[str, str]:
    own_serials = sorted(i for i in visible if i.startswith("SRLK"))
    own_customers = sorted(i for i in visible if i.startswith("CUS-"))
    loc = token if token in PARTNERS else PARTNERS[0]
    cid = token if token in CUSTOMERS else (own_customers or ["CUS-NONE"])[0]
    group = CustomerGroup.id_for(loc, cid)
    return {
        "loc": loc,
        "customer": cid,
        "group": str(group),
        "holding": str(PartnerTenant.holding_tenant_id_for(loc)),
        "admin": admin_of(loc),
        "user": admin_of(loc),
        "n": "0",
        **dict.fromkeys(SERIALS, (own_serials or ["SRLNONE"])[0]),
    }


def _device(fleet: PartnerFleet, serial_number: str) -> Device | None:
    try:
        return fleet.device(serial_number)
    except DomainError:
        return None


def _group(fleet: PartnerFleet, loc: str, cid: str) -> CustomerGroup | None:
    try:
        found = fleet.customer_group(CustomerGroup.id_for(loc, cid))
    except DomainError:
        return None
    return None if found.deleted else found


def gets(*owners: str) -> list[str]:
    """The GET routes whose owner (tests/unit/http_operations.py) is one of `owners`."""
    return sorted(k for k, op in OPERATIONS.items() if k.startswith("GET ") and op.who in owners)


# What each kind of principal can reach: the partner routes, or the customer routes (any
# other answers it a 403 that names nothing).
REACHABLE = {**dict.fromkeys(PARTNERS, gets("anna", "ben")), **dict.fromkeys(CUSTOMERS, gets("c1"))}


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """One app and client for every example (each rebinds it to its own world)."""
    running = serve(in_memory_fleet(), TOKENS)
    yield running
    running.close()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=st.lists(actions, max_size=14))
def test_r_lnk_1_no_answer_names_another_tenants_ids(served: Served, history: list[Action]) -> None:
    """R-LNK-1, R-LNK-6, R-PAR-2, R-GRP-1: for any history, no GET answer to any partner or
    customer contains a serial, customer id, Location ID or group id of another tenant."""
    fleet = in_memory_fleet()
    fleet.recorder.insert_events(list(partners_events()))
    for action in history:
        play(fleet, action)
    api = rebind(served, fleet).api
    everything = {i for i, _ in world_ids(fleet)}

    for tenant in tenants(fleet):
        foreign = everything - tenant.visible
        for key in REACHABLE[tenant.token]:
            body = api.as_(tenant.token, "GET", fill_ids(OPERATIONS[key].path, tenant.ids)).text
            leaked = sorted(i for i in foreign if i in body)
            assert leaked == [], f"{key} as {tenant.token}: {leaked} in {body[:500]}"
