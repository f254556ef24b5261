"""Consent "Optimize my IT environment": R-CON-1 to R-CON-4."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain import Device, NotFoundError
from domain.consent import CONSENT_TEXTS, CURRENT_CONSENT_TEXT, ConsentError, ConsentState
from handlers import PartnerFleet
from tests.actors import customer
from tests.scenarios import in_memory_fleet
from tests.unit.conftest import (
    CUSTOMER,
    CUSTOMER_ID,
    event_count,
    events_of,
    events_since,
    hosted_fleet,
    names,
    of_type,
    refused,
    to,
)

HOST_SCOPE = "insight_rs_host:HOST1"


def wording_digest(text_version: str) -> str:
    """SHA-256 of the consent wording the customer was shown."""
    return hashlib.sha256(CONSENT_TEXTS[text_version].encode()).hexdigest()


def consent_in_effect(app: PartnerFleet, serial: str, location_id: str, at: datetime) -> bool:
    """R-CON-3: the auditor's question, answered from the device's stored history alone."""
    device_id = Device.id_for(serial)
    past = [e for e in events_of(app, device_id) if e.timestamp <= at]
    if not past:
        return False
    device: object = app.repository.get(device_id, version=past[-1].originator_version)
    assert isinstance(device, Device)
    return device.may_read_configuration(location_id)


def hosted_and_linked(app: PartnerFleet, location_id: str) -> None:
    """C1's Insight RS host HOST1 manages CC1 and CC2; all linked to `location_id`."""
    app.register_devices(CUSTOMER, CUSTOMER_ID, hosted_fleet("HOST1", "CC1", "CC2"))
    app.set_hosting_partner(CUSTOMER, CUSTOMER_ID, "HOST1", to(location_id))


# --- R-CON-1: off until granted; per host for central-connect, per device otherwise ------


def test_r_con_1_consent_is_off_until_the_customer_grants_it(
    app: PartnerFleet, linked_group: UUID, partner: str
) -> None:
    device = app.device("S1")

    assert device.consent is None
    assert not any("Consent" in name for name in names(events_of(app, device.id)))
    assert not app.may_read_configuration("S1", partner)


def test_r_con_1_direct_connect_consent_applies_only_to_the_chosen_devices(
    app: PartnerFleet, linked_group: UUID, partner: str
) -> None:
    position = event_count(app)

    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"])

    granted = of_type(events_since(app, position), Device.ConsentGranted)
    assert [(e.originator_id, e.scope) for e in granted] == [(Device.id_for("S1"), "device")]
    assert app.may_read_configuration("S1", partner)
    assert not app.may_read_configuration("S2", partner)


def test_r_con_1_central_connect_consent_is_one_setting_on_the_hosting_device(
    app: PartnerFleet, partner: str
) -> None:
    hosted_and_linked(app, partner)
    position = event_count(app)

    app.grant_consent_on_host(CUSTOMER, CUSTOMER_ID, "HOST1")

    granted = of_type(events_since(app, position), Device.ConsentGranted)
    assert {e.originator_id for e in granted} == {Device.id_for(s) for s in ("HOST1", "CC1", "CC2")}
    assert {e.scope for e in granted} == {HOST_SCOPE}
    assert all(app.may_read_configuration(s, partner) for s in ("HOST1", "CC1", "CC2"))


def test_r_con_1_a_device_added_under_a_consenting_host_follows_its_setting(
    app: PartnerFleet, partner: str
) -> None:
    hosted_and_linked(app, partner)
    app.grant_consent_on_host(CUSTOMER, CUSTOMER_ID, "HOST1")

    app.register_devices(CUSTOMER, CUSTOMER_ID, hosted_fleet("HOST1", "CC9")[1:])

    assert app.device("CC9").consent == ConsentState(CURRENT_CONSENT_TEXT, HOST_SCOPE)
    assert app.may_read_configuration("CC9", partner)


def test_r_con_1_consent_for_one_central_connect_device_is_refused_naming_its_host(
    app: PartnerFleet, partner: str
) -> None:
    hosted_and_linked(app, partner)

    with refused(app, ConsentError, "set consent once on its Insight RS hosting device HOST1"):
        app.grant_consent(CUSTOMER, CUSTOMER_ID, ["CC1"])


def test_r_con_1_withdrawing_for_one_central_connect_device_is_refused_naming_its_host(
    app: PartnerFleet, partner: str
) -> None:
    hosted_and_linked(app, partner)
    app.grant_consent_on_host(CUSTOMER, CUSTOMER_ID, "HOST1")

    with refused(app, ConsentError, "hosting device HOST1"):
        app.withdraw_consent(CUSTOMER, CUSTOMER_ID, ["CC1"])

    assert app.may_read_configuration("CC1", partner)


def test_r_con_1_granting_on_a_host_reaches_only_devices_without_that_consent(
    app: PartnerFleet, partner: str
) -> None:
    hosted_and_linked(app, partner)
    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["HOST1"])
    position = event_count(app)

    app.grant_consent_on_host(CUSTOMER, CUSTOMER_ID, "HOST1")

    granted = of_type(events_since(app, position), Device.ConsentGranted)
    assert {e.originator_id for e in granted} == {Device.id_for("CC1"), Device.id_for("CC2")}
    assert all(app.may_read_configuration(s, partner) for s in ("HOST1", "CC1", "CC2"))


def test_r_con_1_granting_on_a_host_whose_devices_all_have_consent_is_refused(
    app: PartnerFleet, partner: str
) -> None:
    hosted_and_linked(app, partner)
    app.grant_consent_on_host(CUSTOMER, CUSTOMER_ID, "HOST1")

    with refused(app, ConsentError, "Host HOST1: Consent is already granted for every device"):
        app.grant_consent_on_host(CUSTOMER, CUSTOMER_ID, "HOST1")


def test_r_con_1_only_the_owner_grants_consent(app: PartnerFleet, linked_group: UUID) -> None:
    with refused(app, NotFoundError, "No device with serial number .S1."):
        app.grant_consent(customer("C9"), "C9", ["S1"])


# --- R-CON-2: configuration data only while consent is granted and the partner linked ----


def test_r_con_2_a_partner_reads_configuration_data_only_with_consent_and_link(
    app: PartnerFleet, partner: str, other_partner: str, customer_devices: list[str]
) -> None:
    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"])
    assert not app.may_read_configuration("S1", partner), "consent without a link"

    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2"], to(partner))

    assert app.may_read_configuration("S1", partner)
    assert not app.may_read_configuration("S2", partner), "a link without consent"
    assert not app.may_read_configuration("S1", other_partner), "consent, another partner"


def test_r_con_2_consent_gives_a_service_partner_and_a_reseller_access_while_linked(
    app: PartnerFleet, linked_group: UUID, partner: str, service_partner: str
) -> None:
    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(service_partner, "service_partner"))
    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"])

    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1"], role="service_partner")

    assert not app.may_read_configuration("S1", service_partner)
    assert app.may_read_configuration("S1", partner)


# --- R-CON-3: withdrawal ends access at once; every grant and withdrawal is kept ---------


def test_r_con_3_withdrawing_consent_ends_access_at_once(
    app: PartnerFleet, linked_group: UUID, partner: str
) -> None:
    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"])
    position = event_count(app)

    app.withdraw_consent(CUSTOMER, CUSTOMER_ID, ["S1"])

    withdrawn = of_type(events_since(app, position), Device.ConsentWithdrawn)
    assert [(e.originator_id, e.text_version, e.scope) for e in withdrawn] == [
        (Device.id_for("S1"), CURRENT_CONSENT_TEXT, "device")
    ]
    assert not app.may_read_configuration("S1", partner)


def test_r_con_3_granting_again_starts_a_new_period(
    app: PartnerFleet, linked_group: UUID, partner: str
) -> None:
    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"])
    app.withdraw_consent(CUSTOMER, CUSTOMER_ID, ["S1"])

    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"])

    consent_events = [n for n in names(events_of(app, Device.id_for("S1"))) if "Consent" in n]
    assert consent_events == [
        "Device.ConsentGranted",
        "Device.ConsentWithdrawn",
        "Device.ConsentGranted",
    ]
    assert app.may_read_configuration("S1", partner)


def test_r_con_3_each_grant_records_who_when_which_device_and_the_wording(
    app: PartnerFleet, linked_group: UUID
) -> None:
    before = datetime.now(UTC)

    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"], text_version="2024-01")

    grant = of_type(events_of(app, Device.id_for("S1")), Device.ConsentGranted)[0]
    assert (grant.principal, grant.correlation_id) == (
        CUSTOMER.principal,
        CUSTOMER.correlation_id,
    )
    assert before <= grant.timestamp <= datetime.now(UTC)
    assert grant.originator_id == Device.id_for("S1")
    assert grant.text_version == "2024-01"
    assert grant.text_digest == wording_digest("2024-01")


def test_r_con_3_an_auditor_answers_whether_consent_was_in_effect_at_any_past_time(
    app: PartnerFleet, linked_group: UUID, partner: str, other_partner: str
) -> None:
    before_grant = datetime.now(UTC)
    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"])
    granted = datetime.now(UTC)
    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(other_partner))
    relinked = datetime.now(UTC)
    app.withdraw_consent(CUSTOMER, CUSTOMER_ID, ["S1"])
    withdrawn = datetime.now(UTC)

    answers = [
        (consent_in_effect(app, "S1", partner, at), consent_in_effect(app, "S1", other_partner, at))
        for at in (before_grant, granted, relinked, withdrawn)
    ]

    assert answers == [(False, False), (True, False), (False, True), (False, False)]


def test_r_con_3_an_unknown_consent_wording_is_refused_naming_the_known_versions(
    app: PartnerFleet, linked_group: UUID
) -> None:
    with refused(app, ConsentError, "Unknown consent text version '1999-01'; known: 2024-01"):
        app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"], text_version="1999-01")


def test_r_con_3_granting_consent_that_is_in_effect_is_refused(
    app: PartnerFleet, linked_group: UUID
) -> None:
    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"])

    with refused(app, ConsentError, "Consent for device S1 is already granted"):
        app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S2", "S1"])

    assert app.device("S2").consent is None


def test_r_con_3_withdrawing_consent_that_was_never_granted_is_refused(
    app: PartnerFleet, linked_group: UUID
) -> None:
    with refused(app, ConsentError, "Consent for device S1 is not granted"):
        app.withdraw_consent(CUSTOMER, CUSTOMER_ID, ["S1"])


def test_r_con_3_withdrawing_on_the_host_ends_access_for_every_device_it_manages(
    app: PartnerFleet, partner: str
) -> None:
    hosted_and_linked(app, partner)
    app.grant_consent_on_host(CUSTOMER, CUSTOMER_ID, "HOST1")
    position = event_count(app)

    app.withdraw_consent_on_host(CUSTOMER, CUSTOMER_ID, "HOST1")

    withdrawn = of_type(events_since(app, position), Device.ConsentWithdrawn)
    assert len(withdrawn) == 3
    assert {e.scope for e in withdrawn} == {HOST_SCOPE}
    assert not any(app.may_read_configuration(s, partner) for s in ("HOST1", "CC1", "CC2"))


def test_r_con_3_withdrawing_on_a_host_without_consent_is_refused(
    app: PartnerFleet, partner: str
) -> None:
    hosted_and_linked(app, partner)

    with refused(app, ConsentError, "Host HOST1: No device of this host has consent to withdraw"):
        app.withdraw_consent_on_host(CUSTOMER, CUSTOMER_ID, "HOST1")


def test_r_con_3_consent_set_on_a_host_can_always_be_withdrawn_for_the_devices_it_manages(
    app: PartnerFleet, partner: str
) -> None:
    """R-CON-3: the customer can withdraw consent at any time (R-CON-1: one setting per host).

    Consent granted on the hosting device, then withdrawn on the host's own configuration
    page: whether that per-device withdrawal is refused or accepted, the customer must still
    be able to withdraw consent for the central-connect devices the host manages.
    """
    hosted_and_linked(app, partner)
    app.grant_consent_on_host(CUSTOMER, CUSTOMER_ID, "HOST1")
    with contextlib.suppress(ConsentError):
        app.withdraw_consent(CUSTOMER, CUSTOMER_ID, ["HOST1"])

    app.withdraw_consent_on_host(CUSTOMER, CUSTOMER_ID, "HOST1")

    assert not any(app.may_read_configuration(s, partner) for s in ("HOST1", "CC1", "CC2"))


# --- R-CON-4: the history is never rewritten; corrections are new events -----------------


def test_r_con_4_later_grants_and_withdrawals_leave_earlier_events_unchanged(
    app: PartnerFleet, linked_group: UUID
) -> None:
    device_id = Device.id_for("S1")
    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"], text_version="2024-01")
    earlier = [vars(e).copy() for e in events_of(app, device_id)]

    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"], text_version="2025-06")
    app.withdraw_consent(CUSTOMER, CUSTOMER_ID, ["S1"])

    history = events_of(app, device_id)
    assert [vars(e) for e in history[: len(earlier)]] == earlier
    assert [e.originator_version for e in history] == list(range(1, len(history) + 1))


def test_r_con_4_a_new_wording_is_recorded_as_a_new_grant_beside_the_old_one(
    app: PartnerFleet, linked_group: UUID
) -> None:
    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"], text_version="2024-01")

    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"], text_version="2025-06")

    grants = of_type(events_of(app, Device.id_for("S1")), Device.ConsentGranted)
    assert [(g.text_version, g.text_digest) for g in grants] == [
        ("2024-01", wording_digest("2024-01")),
        ("2025-06", wording_digest("2025-06")),
    ]
    assert app.device("S1").consent == ConsentState("2025-06", "device")


def test_r_con_4_a_customers_consent_history_is_replayed_in_order_from_the_log(
    app: PartnerFleet, linked_group: UUID
) -> None:
    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1", "S2"])
    app.withdraw_consent(CUSTOMER, CUSTOMER_ID, ["S2"])
    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S2"])
    customer_devices = {Device.id_for("S1"), Device.id_for("S2")}

    replayed = [
        (type(e).__name__, e.originator_id)
        for e in events_since(app, 0)
        if isinstance(e, Device.ConsentGranted | Device.ConsentWithdrawn)
        and e.originator_id in customer_devices
    ]

    s1, s2 = Device.id_for("S1"), Device.id_for("S2")
    assert replayed == [
        ("ConsentGranted", s1),
        ("ConsentGranted", s2),
        ("ConsentWithdrawn", s2),
        ("ConsentGranted", s2),
    ]


def test_r_con_4_a_grant_stored_before_scope_and_digest_existed_is_read_not_rewritten(
    app: PartnerFleet, linked_group: UUID
) -> None:
    device_id = Device.id_for("S1")
    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"], text_version="2024-01")
    stored = list(app.recorder.select_events(device_id))
    state = app.mapper.transcoder.decode(stored[-1].state)
    for added_in_v2 in ("class_version", "scope", "text_digest"):
        state.pop(added_in_v2)
    v1 = StoredEvent(
        device_id,
        stored[-1].originator_version,
        stored[-1].topic,
        app.mapper.transcoder.encode(state),
    )
    older = in_memory_fleet()
    older.recorder.insert_events([*stored[:-1], v1])

    grant = of_type(events_of(older, device_id), Device.ConsentGranted)[0]

    assert (grant.scope, grant.text_digest) == ("device", wording_digest("2024-01"))
    assert older.device("S1").consent == ConsentState("2024-01", "device")
    assert list(older.recorder.select_events(device_id))[-1].state == v1.state
