"""Policies that follow the store: who hears of an alert, where a repair case goes (R-ALR-*).

Given devices, partners and alerts / when the policies catch up with the store / then each
alert and each repair case has exactly one recorded decision, with its reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import Recording, Tracking

from domain import Device, NotFoundError
from domain.base import Msg
from domain.device import DeviceError
from handlers import PartnerFleet, PolicyRunner
from handlers.access import Actor
from handlers.base import Working
from handlers.devices import NewDevice
from handlers.policies import AlertsPolicy, PolicyStuckError, RepairRoutingPolicy
from handlers.routing import RoutingCommands
from infra.follow.policy_follower import PolicyFollower
from tests.actors import case_submitter, customer, feed
from tests.scenarios import IN_MEMORY
from tests.unit.conftest import (
    ANNA,
    CUSTOMER,
    CUSTOMER_ID,
    OPS,
    SERVICE_LOC,
    e2open_report,
    event_count,
    events_of,
    hosted_fleet,
    of_type,
    refused,
    servers,
    to,
)

CPIN = "4711-C1"
OTHER_SERVICE_LOC = "LOC-T"


def decide(app: PartnerFleet) -> int:
    """Run every policy over everything stored so far; the decisions recorded."""
    return PolicyRunner(app).catch_up()


def notified(app: PartnerFleet, serial: str) -> list[Device.AlertNotified]:
    """The device's AlertNotified events, oldest first."""
    return of_type(events_of(app, Device.id_for(serial)), Device.AlertNotified)


def routed(app: PartnerFleet, serial: str) -> list[Device.RepairCaseRouted]:
    """The device's RepairCaseRouted events, oldest first."""
    return of_type(events_of(app, Device.id_for(serial)), Device.RepairCaseRouted)


def audience(app: PartnerFleet, serial: str) -> tuple[str, str | None]:
    """Who the device's only alert went to: (audience, partner)."""
    [event] = notified(app, serial)
    return event.audience, event.location_id


def destination(app: PartnerFleet, serial: str) -> str:
    """Where the device's only repair case went."""
    [event] = routed(app, serial)
    return event.destination


def alert_and_case(
    app: PartnerFleet, serial: str, n: int = 1, source: str = "self_service"
) -> None:
    """Alert A<n> on the device and repair case K<n> submitted from it."""
    app.raise_alert(OPS, serial, f"A{n}", "critical", "Battery swelling")
    app.submit_repair_case(case_submitter(app, serial, source), serial, f"A{n}", f"K{n}", source)


@pytest.fixture
def landed(app: PartnerFleet, partner: str, holding_tenant: UUID) -> list[str]:
    """PC1 and PC2 reported through e2Open, in reseller LOC-1's holding tenant."""
    app.receive_e2open_batch(OPS, "batch-1", [e2open_report("PC1"), e2open_report("PC2")])
    return ["PC1", "PC2"]


@pytest.fixture
def dashboard(app: PartnerFleet, partner: str, holding_tenant: UUID, landed: list[str]) -> UUID:
    """LOC-1's dashboard for C1 with Premium PC1 in it: notifications on (R-ALR-3)."""
    group = app.create_customer_dashboard(ANNA, partner, CUSTOMER_ID, "Customer One", CPIN)
    app.transfer_devices(ANNA, partner, ["PC1"], holding_tenant, group, "T-1")
    return group


@pytest.fixture
def other_service_partner(app: PartnerFleet) -> str:
    """LOC-T, a second accredited service partner (CSDP account CSDP-88)."""
    app.register_partner(OPS, OTHER_SERVICE_LOC, "Partner LOC-T")
    app.register_partner_user(OPS, OTHER_SERVICE_LOC, f"tina@{OTHER_SERVICE_LOC}")
    app.accredit_service_partner(OPS, OTHER_SERVICE_LOC, "CSDP-88")
    return OTHER_SERVICE_LOC


# --- R-ALR-1, R-ALR-4: who hears of an alert ---------------------------------------------


def test_r_alr_1_an_alert_for_a_pc_in_the_holding_tenant_goes_to_its_end_user(
    app: PartnerFleet, landed: list[str]
) -> None:
    app.raise_alert(OPS, "PC2", "A1", "critical", "Battery swelling")

    decide(app)

    [event] = notified(app, "PC2")
    assert (event.alert_id, event.audience, event.location_id) == ("A1", "end_user", None)
    assert event.reason.startswith("R-ALR-1: PC PC2 is in partner LOC-1's holding tenant")
    assert app.device("PC2").alerts["A1"].notified == "end_user"


def test_r_alr_1_an_alert_for_a_pc_in_a_dashboard_with_notifications_on_goes_to_its_end_user(
    app: PartnerFleet, dashboard: UUID
) -> None:
    app.raise_alert(OPS, "PC1", "A1", "critical", "Battery swelling")

    decide(app)

    assert audience(app, "PC1") == ("end_user", None)
    assert "customer dashboard Customer One, with self-service notifications on" in (
        notified(app, "PC1")[0].reason
    )


def test_r_alr_4_with_notifications_off_an_alert_goes_to_the_partner_only(
    app: PartnerFleet, partner: str, dashboard: UUID
) -> None:
    app.switch_self_service_notifications(ANNA, partner, dashboard, on=False)
    app.raise_alert(OPS, "PC1", "A1", "critical", "Battery swelling")

    decide(app)

    assert audience(app, "PC1") == ("partner", partner)
    assert notified(app, "PC1")[0].reason.startswith(
        "R-ALR-4: self-service notifications are off in customer dashboard Customer One"
    )


def test_r_alr_4_switching_notifications_back_on_sends_later_alerts_to_the_end_user(
    app: PartnerFleet, partner: str, dashboard: UUID
) -> None:
    app.switch_self_service_notifications(ANNA, partner, dashboard, on=False)
    app.raise_alert(OPS, "PC1", "A1", "critical", "Battery swelling")
    decide(app)
    app.switch_self_service_notifications(ANNA, partner, dashboard, on=True)
    app.raise_alert(OPS, "PC1", "A2", "warning", "Fan noise")

    decide(app)

    assert [(e.alert_id, e.audience) for e in notified(app, "PC1")] == [
        ("A1", "partner"),
        ("A2", "end_user"),
    ]


def test_r_lnk_4_an_alert_for_a_linked_server_goes_to_its_service_partner_before_its_reseller(
    app: PartnerFleet, partner: str, service_partner: str
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers("S1"), to(partner))
    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(service_partner, "service_partner"))
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers("S2"), to(partner))
    app.raise_alert(OPS, "S1", "A1", "critical", "Disk failure predicted")
    app.raise_alert(OPS, "S2", "A1", "critical", "Disk failure predicted")

    decide(app)

    assert audience(app, "S1") == ("partner", service_partner)
    assert audience(app, "S2") == ("partner", partner)


def test_an_alert_for_a_server_without_partner_goes_to_hpe_support(
    app: PartnerFleet, customer_devices: list[str]
) -> None:
    app.raise_alert(OPS, "S1", "A1", "critical", "Disk failure predicted")

    decide(app)

    assert audience(app, "S1") == ("hpe_support", None)


# --- R-ALR-2: where a repair case goes --------------------------------------------------


def test_r_alr_2_a_case_of_a_pc_of_a_reseller_goes_to_hp_customer_support(
    app: PartnerFleet, landed: list[str]
) -> None:
    alert_and_case(app, "PC1")

    decide(app)

    [event] = routed(app, "PC1")
    assert (event.case_id, event.alert_id, event.destination) == ("K1", "A1", "hp_customer_support")
    assert event.location_id is None
    assert event.reason == (
        "R-ALR-2: partner LOC-1 is a reseller; HP customer support schedules the repair."
    )
    assert app.device("PC1").alerts["A1"].case_routed_to == "hp_customer_support"


def test_r_alr_2_a_case_of_a_server_of_a_reseller_goes_to_hpe_support(
    app: PartnerFleet, linked_group: UUID
) -> None:
    alert_and_case(app, "S1")

    decide(app)

    assert destination(app, "S1") == "hpe_support"


def test_r_alr_2_a_case_of_a_device_with_a_service_partner_goes_to_its_csdp_account(
    app: PartnerFleet, service_partner: str
) -> None:
    app.register_devices(
        CUSTOMER, CUSTOMER_ID, servers("S1"), to(service_partner, "service_partner")
    )
    alert_and_case(app, "S1")

    decide(app)

    [event] = routed(app, "S1")
    assert (event.destination, event.location_id) == ("csdp:CSDP-77", service_partner)
    assert "CSDP account CSDP-77" in event.reason


def test_r_alr_2_the_service_partner_link_wins_over_the_reseller_link(
    app: PartnerFleet, linked_group: UUID, service_partner: str
) -> None:
    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(service_partner, "service_partner"))
    alert_and_case(app, "S1")
    alert_and_case(app, "S2")

    decide(app)

    assert destination(app, "S1") == "csdp:CSDP-77"
    assert destination(app, "S2") == "hpe_support"


def test_r_alr_2_a_reseller_accredited_later_as_service_partner_gets_later_cases(
    app: PartnerFleet, partner: str, linked_group: UUID
) -> None:
    alert_and_case(app, "S1", 1)
    decide(app)
    app.accredit_service_partner(OPS, partner, "CSDP-11")
    alert_and_case(app, "S1", 2)

    decide(app)

    assert [e.destination for e in routed(app, "S1")] == ["hpe_support", "csdp:CSDP-11"]


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        (NewDevice(serial="PC9", connection="pc_agent"), "hp_customer_support"),
        (NewDevice(serial="S9", connection="direct_connect"), "hpe_support"),
    ],
    ids=["pc", "server"],
)
def test_r_alr_2_a_case_of_a_device_without_partner_goes_to_hp_or_hpe_support(
    app: PartnerFleet, device: NewDevice, expected: str
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, [device])
    alert_and_case(app, device.serial)

    decide(app)

    assert destination(app, device.serial) == expected
    assert "has no partner" in routed(app, device.serial)[0].reason


def test_r_alr_2_a_case_of_a_pc_held_by_a_service_delivery_partner_goes_to_its_csdp_account(
    app: PartnerFleet, service_partner: str
) -> None:
    app.certify_partner(OPS, service_partner, "service_delivery")
    app.receive_e2open_batch(OPS, "b-s", [e2open_report("PC5", service_partner)])
    alert_and_case(app, "PC5")

    decide(app)

    assert destination(app, "PC5") == "csdp:CSDP-77"


# --- R-ALR-2: Insight RS cases and the customer's choice --------------------------------


@pytest.fixture
def serviced(app: PartnerFleet, partner: str, service_partner: str) -> str:
    """Server S1 of C1 with reseller LOC-1 and service partner LOC-S; returns S1."""
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers("S1"), to(partner))
    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(service_partner, "service_partner"))
    return "S1"


def test_r_alr_2_insight_rs_cases_go_to_the_service_partner_when_the_customer_chose_that(
    app: PartnerFleet, serviced: str
) -> None:
    app.choose_insight_rs_case_routing(CUSTOMER, CUSTOMER_ID, [serviced], to_service_partner=True)
    alert_and_case(app, serviced, source="insight_rs")

    decide(app)

    [event] = routed(app, serviced)
    assert (event.destination, event.location_id) == ("csdp:CSDP-77", SERVICE_LOC)
    assert event.reason.startswith(
        "R-ALR-2: Insight RS case; the customer chose its service partner for these"
    )


def test_r_alr_2_insight_rs_cases_go_to_hpe_support_unless_the_customer_chose_its_partner(
    app: PartnerFleet, serviced: str
) -> None:
    alert_and_case(app, serviced, source="insight_rs")

    decide(app)

    [event] = routed(app, serviced)
    assert event.destination == "hpe_support"
    assert "has not chosen to send these to its service partner" in event.reason


def test_r_alr_2_insight_rs_cases_go_to_hpe_support_when_the_chosen_partner_is_not_linked(
    app: PartnerFleet, linked_group: UUID
) -> None:
    app.choose_insight_rs_case_routing(CUSTOMER, CUSTOMER_ID, ["S1"], to_service_partner=True)
    alert_and_case(app, "S1", source="insight_rs")

    decide(app)

    assert destination(app, "S1") == "hpe_support"
    assert "but none is linked" in routed(app, "S1")[0].reason


def test_r_alr_2_the_choice_switched_off_again_sends_insight_rs_cases_to_hpe_support(
    app: PartnerFleet, serviced: str
) -> None:
    app.choose_insight_rs_case_routing(CUSTOMER, CUSTOMER_ID, [serviced], to_service_partner=True)
    app.choose_insight_rs_case_routing(CUSTOMER, CUSTOMER_ID, [serviced], to_service_partner=False)
    alert_and_case(app, serviced, source="insight_rs")

    decide(app)

    assert destination(app, serviced) == "hpe_support"
    chosen = of_type(events_of(app, Device.id_for(serviced)), Device.InsightRSCaseRoutingChosen)
    assert [e.to_service_partner for e in chosen] == [True, False]


def test_r_alr_2_a_self_service_case_goes_to_the_service_partner_whatever_the_choice(
    app: PartnerFleet, serviced: str
) -> None:
    alert_and_case(app, serviced)

    decide(app)

    assert destination(app, serviced) == "csdp:CSDP-77"


def test_r_lnk_2_a_choice_made_on_the_insight_rs_host_applies_to_every_device_it_manages(
    app: PartnerFleet, service_partner: str
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, hosted_fleet("HOST1", "C1", "C2"))
    app.set_hosting_partner(CUSTOMER, CUSTOMER_ID, "HOST1", to(service_partner, "service_partner"))

    app.choose_insight_rs_case_routing(CUSTOMER, CUSTOMER_ID, ["HOST1"], to_service_partner=True)
    app.register_devices(
        CUSTOMER,
        CUSTOMER_ID,
        [NewDevice(serial="C3", connection="central_connect", hosting_serial="HOST1")],
    )
    alert_and_case(app, "C3", source="insight_rs")
    decide(app)

    chosen = [app.device(s).insight_rs_cases_to_service_partner for s in ("HOST1", "C1", "C2")]
    assert chosen == [True, True, True]
    assert destination(app, "C3") == "csdp:CSDP-77"


def test_r_alr_2_choosing_the_current_insight_rs_routing_records_nothing(
    app: PartnerFleet, serviced: str
) -> None:
    position = event_count(app)

    app.choose_insight_rs_case_routing(CUSTOMER, CUSTOMER_ID, [serviced], to_service_partner=False)

    assert event_count(app) == position


def test_r_alr_2_only_the_owner_chooses_where_insight_rs_cases_go(
    app: PartnerFleet, serviced: str
) -> None:
    with refused(app, NotFoundError, "No device with serial number"):
        app.choose_insight_rs_case_routing(
            customer("C2"), "C2", [serviced], to_service_partner=True
        )


def test_r_alr_2_a_pc_has_no_insight_rs_cases(app: PartnerFleet, landed: list[str]) -> None:
    app.raise_alert(OPS, "PC1", "A1", "critical", "Battery swelling")

    with refused(app, DeviceError, "PC PC1 is not monitored by Insight RS"):
        app.submit_repair_case(OPS, "PC1", "A1", "K1", source="insight_rs")
    with refused(app, DeviceError, "Unknown repair case source 'phone'"):
        app.submit_repair_case(OPS, "PC1", "A1", "K1", source="phone")


# --- the decisions on the Device aggregate ----------------------------------------------


def test_r_alr_2_a_case_is_routed_once_and_an_alert_notified_once(
    app: PartnerFleet, customer_devices: list[str]
) -> None:
    alert_and_case(app, "S1")
    decide(app)
    device = app.device("S1")

    with pytest.raises(DeviceError, match="Repair case K1 of device S1 was already routed to hpe"):
        device.route_repair_case(OPS, "K1", "hpe_support", "again", None)
    with pytest.raises(DeviceError, match="Alert A1 of device S1 was already notified to the hpe"):
        device.notify_alert(OPS, "A1", "hpe_support", "again", None)
    with pytest.raises(DeviceError, match="Device S1 has no repair case K9"):
        device.route_repair_case(OPS, "K9", "hpe_support", "unknown case", None)


def test_r_alr_1_an_alert_goes_to_a_known_audience_and_names_the_partner_only_for_partners(
    app: PartnerFleet, customer_devices: list[str]
) -> None:
    app.raise_alert(OPS, "S1", "A1", "critical", "Disk failure predicted")
    device = app.device("S1")

    with pytest.raises(DeviceError, match="Unknown alert audience 'customer'"):
        device.notify_alert(OPS, "A1", "customer", "why", None)
    with pytest.raises(DeviceError, match="names the partner, and only then"):
        device.notify_alert(OPS, "A1", "partner", "why", None)
    with pytest.raises(DeviceError, match="has no alert A9"):
        device.notify_alert(OPS, "A9", "hpe_support", "why", None)


def test_r_alr_1_a_repair_case_is_self_service_unless_said_otherwise(
    app: PartnerFleet, customer_devices: list[str]
) -> None:
    app.raise_alert(OPS, "S1", "A1", "critical", "Disk failure predicted")

    app.submit_repair_case(CUSTOMER, "S1", "A1", "K1")

    [submitted] = of_type(events_of(app, Device.id_for("S1")), Device.RepairCaseSubmitted)
    assert (submitted.case_id, submitted.source) == ("K1", "self_service")


def test_policy_decisions_name_the_policy_and_carry_the_alerts_correlation_id(
    app: PartnerFleet, customer_devices: list[str]
) -> None:
    app.raise_alert(feed("insight-rs", "corr-alert-7"), "S1", "A1", "critical", "Disk")
    app.submit_repair_case(customer("C1", "it@c1", "corr-case-7"), "S1", "A1", "K1")

    decide(app)

    [alert_decision], [case_decision] = notified(app, "S1"), routed(app, "S1")
    assert (alert_decision.principal, alert_decision.correlation_id) == (
        f"policy:{AlertsPolicy.name}",
        "corr-alert-7",
    )
    assert (case_decision.principal, case_decision.correlation_id) == (
        f"policy:{RepairRoutingPolicy.name}",
        "corr-case-7",
    )


# --- exactly once -----------------------------------------------------------------------


def many_cases(app: PartnerFleet, count: int) -> list[str]:
    """Servers S0…S<count-1> of C1, each with alert A1 and repair case K1; their serials."""
    serials = [f"S{n}" for n in range(count)]
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers(*serials))
    for serial in serials:
        alert_and_case(app, serial)
    return serials


def decided_once(app: PartnerFleet, serials: list[str]) -> bool:
    """Every device has exactly one alert decision and one routing decision."""
    return all(len(notified(app, s)) == len(routed(app, s)) == 1 for s in serials)


def test_running_the_policies_twice_records_each_decision_once(app: PartnerFleet) -> None:
    serials = many_cases(app, 5)
    runner = PolicyRunner(app, batch_size=2)

    assert runner.catch_up() == 10
    assert runner.catch_up() == 0
    assert PolicyRunner(app).catch_up() == 0

    assert decided_once(app, serials)
    assert runner.lag() == dict.fromkeys([AlertsPolicy.name, RepairRoutingPolicy.name], 0)


def test_a_policy_with_nothing_to_decide_still_moves_its_position(
    app: PartnerFleet, customer_devices: list[str]
) -> None:
    runner = PolicyRunner(app)
    assert all(behind > 0 for behind in runner.lag().values())

    assert runner.catch_up() == 0

    assert runner.lag() == dict.fromkeys([AlertsPolicy.name, RepairRoutingPolicy.name], 0)


class CrashError(Exception):
    """The process dies between two notifications."""


class CrashingAlertsPolicy(AlertsPolicy):
    """The alerts policy, dying when it reaches the third alert."""

    def decide(self, fleet: RoutingCommands, actor: Actor, event: Device.AlertRaised) -> None:
        if event.originator_id == Device.id_for("S2"):
            raise CrashError
        super().decide(fleet, actor, event)


def test_a_crash_between_notifications_loses_nothing_and_decides_nothing_twice(
    app: PartnerFleet,
) -> None:
    serials = many_cases(app, 4)
    with pytest.raises(PolicyStuckError, match="stuck at notification") as stuck:
        PolicyRunner(app, [CrashingAlertsPolicy()]).catch_up()
    assert isinstance(stuck.value.__cause__, CrashError)
    assert [len(notified(app, s)) for s in serials] == [1, 1, 0, 0]

    PolicyRunner(app).catch_up()

    assert decided_once(app, serials)


class InterruptedFleet(PartnerFleet):
    """A fleet on which `meanwhile` runs once just before a policy's decision is saved
    (the decision made on the state loaded before), counting the attempts of such saves."""

    def __init__(self) -> None:
        super().__init__(env=IN_MEMORY)
        self.meanwhile: Callable[[], object] = lambda: None
        self.attempts: list[int] = []
        self._interrupted = self._interrupting = False

    def _save(self, working: Working, tracking: Tracking | None) -> list[Recording[UUID]]:
        if tracking is not None and not self._interrupting:
            self.attempts.append(working.attempt)
            if not self._interrupted:
                self._interrupted = self._interrupting = True
                try:
                    self.meanwhile()
                finally:
                    self._interrupting = False
        return super()._save(working, tracking)


def test_two_runners_record_each_decision_once_and_the_loser_does_not_retry() -> None:
    fleet = InterruptedFleet()
    serials = many_cases(fleet, 3)
    rival = PolicyRunner(fleet, [AlertsPolicy()])
    fleet.meanwhile = rival.catch_up  # decides everything before the first decision is saved

    assert PolicyRunner(fleet, [AlertsPolicy()]).catch_up() == 0

    assert fleet.attempts == [1]  # the tracking conflict is "already done", not retried
    assert [len(notified(fleet, s)) for s in serials] == [1, 1, 1]


def test_a_policy_losing_a_race_on_the_device_decides_again_on_fresh_state() -> None:
    fleet = InterruptedFleet()
    many_cases(fleet, 1)
    fleet.meanwhile = lambda: fleet.raise_alert(
        OPS, "S0", "A-meanwhile", "info", "raised during the decision"
    )

    PolicyRunner(fleet, [AlertsPolicy()]).catch_up()

    assert fleet.attempts == [1, 2]  # decided again, on the device with A-meanwhile
    assert [e.alert_id for e in notified(fleet, "S0")] == ["A1"]
    assert PolicyRunner(fleet, [AlertsPolicy()]).catch_up() == 1  # A-meanwhile, once


def test_a_decision_the_device_refuses_is_logged_and_the_position_still_moves(
    app: PartnerFleet, customer_devices: list[str]
) -> None:
    app.raise_alert(OPS, "S1", "A1", "critical", "Disk failure predicted")

    def told_by_hand(w: Working) -> None:
        w.load(Device, Device.id_for("S1"), Msg("No device S1.")).notify_alert(
            OPS, "A1", "hpe_support", "told by phone", None
        )

    app._run("notify_alert", OPS, told_by_hand)  # a decision recorded outside the policy
    runner = PolicyRunner(app, [AlertsPolicy()])

    assert runner.catch_up() == 0

    assert [e.reason for e in notified(app, "S1")] == ["told by phone"]
    assert runner.lag() == {AlertsPolicy.name: 0}


def test_a_started_runner_follows_the_store_until_stopped(
    app: PartnerFleet, customer_devices: list[str]
) -> None:
    runner = PolicyFollower(PolicyRunner(app), poll_seconds=0.01)
    runner.start()
    try:
        alert_and_case(app, "S1")
        deadline = time.monotonic() + 5
        while not (notified(app, "S1") and routed(app, "S1")) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        runner.stop()

    assert decided_once(app, ["S1"])


def test_two_runners_in_threads_record_each_decision_once(app: PartnerFleet) -> None:
    serials = many_cases(app, 20)
    runners = [PolicyRunner(app, batch_size=3) for _ in range(2)]
    counts: list[int] = []
    errors: list[Any] = []

    def run(runner: PolicyRunner) -> None:
        try:
            counts.append(runner.catch_up())
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(counts) == 40
    assert decided_once(app, serials)
