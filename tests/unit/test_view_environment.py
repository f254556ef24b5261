"""My IT Environment (R-PAR-2): a customer's own devices by hosting device, links, consent."""

from __future__ import annotations

import pytest

from domain import NotFoundError
from domain.base import FleetAggregate
from handlers import PartnerFleet
from handlers.devices import NewDevice, PartnerChoice
from projections.base import QueryError
from projections.consent_queries import Selection, history
from projections.environment import (
    ConsentNow,
    EnvironmentDevice,
    EnvironmentView,
    HostGroup,
    environment_device,
    my_it_environment,
)
from tests.actors import customer as customer_admin
from tests.scenarios import report
from tests.scopes import customer_of
from tests.unit.views_support import (
    CUSTOMER,
    LOC,
    OPS,
    OTHER_LOC,
    SERVICE_LOC,
    Reader,
    admin,
    db,
    fleet,
    link_new_servers,
    new_partner,
    read,
    runner,
    servers,
)
from tests.views import dump, memory_runner

__all__ = ["db", "fleet", "read", "runner"]

NO_CONSENT = ConsentNow(False, None, None, None)


@pytest.fixture
def world(fleet: PartnerFleet) -> None:
    """C1: host H1 managing C0 and C9 (partner and consent set on the host), direct S1
    linked to LOC-1 as reseller and LOC-S as service partner; C2: S2 linked to LOC-2."""
    new_partner(fleet, LOC)
    new_partner(fleet, OTHER_LOC)
    new_partner(fleet, SERVICE_LOC, service=True)
    host = NewDevice(serial="H1", connection="direct_connect", is_hosting_device=True)
    hosted = [
        NewDevice(serial=s, connection="central_connect", hosting_serial="H1", model="MSA")
        for s in ("C9", "C0")
    ]
    fleet.register_devices(CUSTOMER, "C1", [host, *hosted])
    fleet.set_hosting_partner(CUSTOMER, "C1", "H1", PartnerChoice(location_id=LOC))
    fleet.grant_consent_on_host(CUSTOMER, "C1", "H1")
    link_new_servers(fleet, "C1", "S1", to=LOC)
    choice = PartnerChoice(location_id=SERVICE_LOC, role="service_partner")
    fleet.link_devices(CUSTOMER, "C1", ["S1"], choice)
    link_new_servers(fleet, "C2", "S2", to=OTHER_LOC)


def serials(groups: list[HostGroup]) -> list[tuple[str | None, list[str]]]:
    return [(g.host, [d.serial for d in g.devices]) for g in groups]


def test_r_par_2_a_customer_sees_its_own_devices_grouped_by_hosting_device(
    read: Reader, world: None
) -> None:
    with read() as tx:
        page = my_it_environment(tx, customer_of("C1"))

    assert page.customer_id == "C1"
    assert serials(page.groups) == [(None, ["S1"]), ("H1", ["H1", "C0", "C9"])]
    assert page.next_after is None


def test_r_par_2_each_device_shows_connection_model_links_and_consent(
    read: Reader, world: None
) -> None:
    with read() as tx:
        s1 = environment_device(tx, customer_of("C1"), "s1")
        c0 = environment_device(tx, customer_of("C1"), "C0")
        host = environment_device(tx, customer_of("C1"), "H1")

    assert s1 == EnvironmentDevice(
        "S1",
        "direct_connect",
        "DL380",
        None,
        False,
        {"reseller": LOC, "service_partner": SERVICE_LOC},
        NO_CONSENT,
    )
    assert (c0.connection, c0.model, c0.host, c0.links) == (
        "central_connect",
        "MSA",
        "H1",
        {"reseller": LOC},
    )
    assert (c0.consent.granted, c0.consent.scope) == (True, "insight_rs_host:H1")
    assert c0.consent.text_version is not None
    assert host.is_hosting_device


def test_r_par_2_another_customers_device_is_not_found_like_an_unknown_one(
    read: Reader, world: None
) -> None:
    with read() as tx:
        with pytest.raises(NotFoundError) as other:
            environment_device(tx, customer_of("C1"), "S2")
        with pytest.raises(NotFoundError) as unknown:
            environment_device(tx, customer_of("C1"), "S404")
        of_c2 = my_it_environment(tx, customer_of("C2"))

    assert str(other.value) == "No device with serial number 'S2'."
    assert str(unknown.value) == "No device with serial number 'S404'."
    assert serials(of_c2.groups) == [(None, ["S2"])]


def test_r_con_3_withdrawal_and_relink_show_at_once(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    with read() as tx:
        granted = environment_device(tx, customer_of("C1"), "S1").consent.granted

    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id=OTHER_LOC))
    fleet.unlink_devices(CUSTOMER, "C1", ["S1"], role="service_partner")
    with read() as tx:
        now = environment_device(tx, customer_of("C1"), "S1")

    assert granted
    assert (now.consent.granted, now.links) == (False, {"reseller": OTHER_LOC})


def test_r_con_4_a_correction_of_the_record_in_effect_changes_the_consent_shown(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    [first_grant, withdrawal] = fleet.device("S1").consent_versions
    fleet.correct_consent_record(OPS, "S1", first_grant, "entered twice", None)  # the past
    with read() as tx:
        after_past = environment_device(tx, customer_of("C1"), "S1").consent

    fleet.correct_consent_record(OPS, "S1", withdrawal, "never withdrawn", "2025-06")
    with read() as tx:
        after_present = environment_device(tx, customer_of("C1"), "S1").consent

    assert after_past.granted is False
    assert (after_present.granted, after_present.text_version) == (True, "2025-06")


def test_r_par_2_a_customer_reads_the_consent_history_of_its_own_device_only(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    with read() as tx:
        own = history(tx, customer_of("C1"), Selection(serial="S1")).rows
        everything = history(tx, customer_of("C1"), Selection()).rows
        with pytest.raises(NotFoundError, match="No device with serial number 'S2'"):
            history(tx, customer_of("C1"), Selection(serial="S2"))
        with pytest.raises(NotFoundError, match="No customer 'C2' found"):
            history(tx, customer_of("C1"), Selection(customer_id="C2"))

    assert [r["action"] for r in own] == ["linked", "linked", "granted"]
    assert {r["customer_id"] for r in everything} == {"C1"}
    assert "S2" not in {r["serial"] for r in everything}


def test_r_hld_3_a_pc_enrolled_by_cpin_joins_its_customers_environment(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    fleet.receive_e2open_batch(OPS, "b1", [report("PC0", LOC)])  # no end customer: nobody's
    with read() as tx:
        before = my_it_environment(tx, customer_of("C7")).groups
    dashboard = fleet.create_customer_dashboard(admin(LOC), LOC, "C7", "Customer Seven", "4711")
    fleet.enrol_with_cpin(customer_admin("C7"), "C7", dashboard, "4711", "PC1")
    with read() as tx:
        after = my_it_environment(tx, customer_of("C7")).groups

    assert before == []
    assert serials(after) == [(None, ["PC1"])]  # not PC0, which no customer owns yet
    assert after[0].devices[0].connection == "pc_agent"


def test_r_par_2_my_it_environment_is_keyset_paged(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    fleet.register_devices(CUSTOMER, "C1", servers("S3", "S4", "S5"))
    walked: list[str] = []
    after = None
    with read() as tx:
        while True:
            page = my_it_environment(tx, customer_of("C1"), after=after, limit=2)
            walked += [d.serial for g in page.groups for d in g.devices]
            if page.next_after is None:
                break
            after = page.next_after
        with pytest.raises(QueryError, match="1 to 200"):
            my_it_environment(tx, customer_of("C1"), limit=201)
        with pytest.raises(QueryError, match="cursor"):
            my_it_environment(tx, customer_of("C1"), after=("", "x", "S1"))

    assert walked == ["S1", "S3", "S4", "S5", "H1", "C0", "C9"]


def test_r_par_2_the_environment_view_rebuilds_and_reapplies_to_the_same_rows(
    fleet: PartnerFleet, world: None
) -> None:
    """Replay rebuilds the rows identically; handlers are idempotent (a batch applied
    twice, as a crash between rows and tracking would, changes nothing)."""
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    runner = memory_runner(fleet, batch_size=3)
    runner.catch_up()
    view = runner.view("environment")
    live = dump(runner.db, view)
    notifications = fleet.recorder.select_notifications(1, 1_000)
    events = [(n.id, fleet.mapper.to_domain_event(n)) for n in notifications]
    ours = [(p, e) for p, e in events if isinstance(e, FleetAggregate.Event)]

    with runner.db.transaction() as tx:
        EnvironmentView().process(tx, [e for _, e in ours], [p for p, _ in ours])
    again = dump(runner.db, view)
    runner.rebuild(view)

    assert again == live
    assert dump(runner.db, view) == live
