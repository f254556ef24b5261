"""The demo data (`make run`, `partnerfleet demo`): seeded once through the public commands,
from a fixed seed, readable through the views, signed into as its principals.

A small demo here (SMALL customers, 15 devices each); the full size (200 customers, 3,000
devices) is seeded by `make run`'s end-to-end test (tests/e2e/test_serve.py).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.utils import get_topic

from domain.device import Device
from domain.partner import PartnerTenant
from handlers import PartnerFleet
from handlers.access import Role, authenticate
from infra.bootstrap import build_fleet, build_policy_runner, build_view_runner
from infra.demo import (
    DEMO_PRINCIPALS,
    RESELLER,
    SERVICE_PARTNER,
    open_demo_store,
    seed_demo,
    seeding,
    store_summary,
)
from infra.demo.plan import DEVICES_PER_CUSTOMER, plan
from infra.settings import Settings

SMALL = 10


@pytest.fixture
def fleet(sqlite_settings: Settings) -> Iterator[PartnerFleet]:
    """A fleet on a SQLite file of this test's own."""
    opened = build_fleet(sqlite_settings)
    yield opened
    opened.close()


def events_of(fleet: PartnerFleet, *classes: type[Any]) -> list[Any]:
    """Every stored event of these classes, oldest first."""
    topics = [get_topic(cls) for cls in classes]
    found = fleet.recorder.select_notifications(start=1, limit=1_000_000, topics=topics)
    return [fleet.mapper.to_domain_event(n) for n in found]


def devices_by_connection(fleet: PartnerFleet) -> Counter[str]:
    """Devices stored, by connection (a PC reported by e2Open is a pc_agent)."""
    created = events_of(fleet, Device.Registered, Device.ReportedByE2Open)
    return Counter(getattr(e, "connection", "pc_agent") for e in created)


def test_r_lnk_1_the_demo_seeds_its_partners_customers_and_devices_of_every_connection(
    fleet: PartnerFleet, record_property: Any
) -> None:
    """R-LNK-1, R-PAR-4, R-HLD-1: three partners (the reseller and the service partner
    certified, with holding tenants), every planned customer, 15 devices each of all three
    connections."""
    started = time.perf_counter()

    seeded = seed_demo(fleet, SMALL)

    record_property("seed_seconds", round(time.perf_counter() - started, 2))
    assert seeded.seeded
    assert len(events_of(fleet, PartnerTenant.Registered)) == 3
    for location_id in (RESELLER, SERVICE_PARTNER):
        partner: PartnerTenant = fleet.repository.get(PartnerTenant.id_for(location_id))
        assert partner.certifications
        assert partner.holding_tenant_id is not None
    connections = devices_by_connection(fleet)
    assert set(connections) == {"central_connect", "direct_connect", "pc_agent"}
    assert sum(connections.values()) == SMALL * DEVICES_PER_CUSTOMER
    owners = {e.customer_id for e in events_of(fleet, Device.Registered)}
    assert owners == {c.customer_id for c in plan(SMALL)}


def test_a_second_seeding_adds_nothing(fleet: PartnerFleet) -> None:
    """`make run` twice: the demo is there once."""
    seed_demo(fleet, SMALL)
    head = fleet.recorder.max_notification_id()

    again = seed_demo(fleet, SMALL)

    assert not again.seeded
    assert again.events == 0
    assert fleet.recorder.max_notification_id() == head


def test_the_demo_is_generated_from_a_fixed_seed(tmp_path: Any) -> None:
    """Two stores seeded apart hold the same events for the same aggregates."""
    histories = []
    for name in ("one", "two"):
        fleet = build_fleet(Settings(database_url=f"sqlite:///{tmp_path / name}.sqlite3"))
        seed_demo(fleet, 2)  # the smallest demo has every story too
        notifications = fleet.recorder.select_notifications(start=1, limit=1_000_000)
        histories.append([(n.topic, n.originator_id, n.originator_version) for n in notifications])
        fleet.close()

    assert histories[0] == histories[1]


def test_r_con_3_the_demo_holds_withdrawals_corrections_and_critical_service_events(
    fleet: PartnerFleet,
) -> None:
    """R-CON-3, R-CON-4, R-SVC-2, R-SVC-3, R-FAV-2: consent histories with withdrawals and
    a correction, service events with critical ones, service levels, favourites."""
    seed_demo(fleet, SMALL)

    held = dict(store_summary(fleet))

    for what in (
        "consent withdrawals",
        "consent corrections",
        "critical service events",
        "service levels",
        "favourites",
        "customer dashboards",
        "PCs enrolled with a cPIN",
    ):
        assert held[what] > 0, what
    assert held["partners"] == 3
    assert held["customers with devices"] == SMALL


def test_r_alr_2_the_views_show_unassigned_pcs_rejections_and_routed_repair_cases(
    sqlite_settings: Settings, fleet: PartnerFleet
) -> None:
    """R-HLD-1, R-ALR-1, R-ALR-2, R-SVC-1: after seeding (which runs the policies) the
    views list unassigned PCs, kept rejections, alerts told to end users and partners, cases
    in HP support's and the CSDP queue, and critical events only for the service partner."""
    seed_demo(fleet, SMALL)
    views = build_view_runner(sqlite_settings, fleet)

    views.catch_up()

    holding = str(PartnerTenant.holding_tenant_id_for(RESELLER))
    with views.db.transaction() as tx:
        unassigned = tx.query("SELECT count(*) FROM pf_h_pcs WHERE placement = ?", (holding,))
        rejected = tx.query("SELECT count(*) FROM pf_h_rejections")
        cases = dict(tx.query("SELECT destination, count(*) FROM pf_r_cases GROUP BY 1"))
        told = dict(tx.query("SELECT audience, count(*) FROM pf_r_alerts GROUP BY 1"))
        critical = dict(
            tx.query("SELECT partner, sum(critical_events) FROM pf_c_groups GROUP BY 1")
        )
    assert unassigned[0][0] > 0
    assert rejected[0][0] == 3
    assert set(cases) == {"csdp:CSDP-DEMO-1", "hp_customer_support", "hpe_support"}
    assert set(told) == {"end_user", "partner"}
    assert critical[SERVICE_PARTNER] > 0
    assert critical[RESELLER] == 0
    assert not any(build_policy_runner(fleet).lag().values())


def test_every_demo_principal_signs_in_to_the_seeded_store(fleet: PartnerFleet) -> None:
    """Issue 9: each demo principal authenticates (partner roles checked against the store,
    admin rights from it); the end user works on a PC of its own customer."""
    seed_demo(fleet, SMALL)

    actors = [authenticate(fleet, claims) for claims in DEMO_PRINCIPALS]

    assert [a.role.value for a in actors] == [c.role for c in DEMO_PRINCIPALS]
    roles = Counter(a.role for a in actors)
    assert roles[Role.PARTNER_ADMIN] == roles[Role.PARTNER_USER] == 3
    assert roles[Role.CUSTOMER_ADMIN] == 2
    [end_user] = [a for a in actors if a.role is Role.END_USER]
    [pc] = end_user.pcs
    device: Device = fleet.repository.get(Device.id_for(pc))
    assert device.customer_id == end_user.tenant


def test_a_first_seeding_stopped_half_way_leaves_no_store_and_the_next_start_seeds(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run` stopped during its first seeding (Ctrl-C, a kill): the demo is seeded
    aside and moved into place only when complete, so the next start finds no half-seeded
    store to refuse, seeds afresh, and what the stopped one left is removed (issue 9
    attack 5)."""
    store = tmp_path / "var" / "partnerfleet.sqlite3"
    settings = Settings(database_url=f"sqlite:///{store}")
    real_finish = seeding.finish

    def interrupted(*_args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(seeding, "finish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        open_demo_store(settings, 2)
    staging = store.with_name(store.name + ".seeding")
    assert not store.exists()
    assert staging.exists()  # what the stopped seeding wrote, never the store

    monkeypatch.setattr(seeding, "finish", real_finish)
    fleet, seeded = open_demo_store(settings, 2)
    again_fleet, again = open_demo_store(settings, 2)

    assert seeded.seeded
    assert not again.seeded
    assert not staging.exists()
    assert store_summary(fleet) == store_summary(again_fleet)
    fleet.close()
    again_fleet.close()
