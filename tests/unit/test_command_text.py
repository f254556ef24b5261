"""Issue 8, kind 5 (command part): bad text is refused at the command, and nothing recorded.

Every text argument of every command (plain strings, list items, fields of NewDevice,
PartnerChoice and ServiceLevel, the cause, configuration data) is checked in one place
(`domain.text`, applied by `handlers.arguments`): no NUL or other control character (tab
and line breaks only in free text), no lone surrogate, bounded length, bounded data.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from domain import CustomerGroup, Device, NotFoundError, PartnerTenant
from domain.service_level import ServiceLevel
from domain.text import (
    MAX_DATA_CHARS,
    MAX_DATA_DEPTH,
    MAX_DATA_ITEMS,
    TextError,
    kind_of,
)
from handlers import PartnerFleet
from handlers.access import Actor
from handlers.base import COMMANDS
from handlers.devices import NewDevice
from tests.actors import customer, known_partner_user, operator, policy
from tests.unit.conftest import (
    ANNA,
    CUSTOMER,
    LOC,
    OPS,
    e2open_report,
    event_count,
    hosted_fleet,
    refused,
    register_partner,
    servers,
    to,
)

GROUP = CustomerGroup.id_for(LOC, "C1")
DASHBOARD = CustomerGroup.id_for(LOC, "C2")
HOLDING = PartnerTenant.holding_tenant_id_for(LOC)
LEVEL_DAYS = (date(2026, 1, 1), date(2026, 12, 31))


@pytest.fixture
def world(app: PartnerFleet) -> PartnerFleet:
    """LOC-1 certified; C1's S1 linked with consent and an alert, host H1; a dashboard for C2."""
    register_partner(app, LOC, ANNA.principal, f"ben@{LOC}")
    app.certify_partner(OPS, LOC, "resell_view_monitor")
    devices = [*servers("S1"), *hosted_fleet("H1", "CC1")]
    app.register_devices(CUSTOMER, "C1", devices, to(LOC), customer_name="Customer One")
    app.grant_consent(CUSTOMER, "C1", ["S1"])
    app.raise_alert(OPS, "S1", "A1", "warning", "Fan failure")
    app.create_child_group(ANNA, GROUP, "g1", "Racks")
    app.report_missing_devices(ANNA, LOC, "R1", ["PCX"])
    app.create_customer_dashboard(ANNA, LOC, "C2", "Customer Two", "4711")
    app.receive_e2open_batch(OPS, "b1", [e2open_report("PC1")])
    return app


@dataclass(frozen=True)
class Case:
    """One text argument of one command, and a call passing `text` in it."""

    command: str
    field: str
    call: Callable[[PartnerFleet, str], object]

    def __str__(self) -> str:
        return f"{self.command}.{self.field}"


def ben_as(passport_id: str) -> Actor:
    """LOC-1's user Ben, under another Passport ID (as a token might name it)."""
    return known_partner_user(LOC, passport_id, admin=False)


def _level(name: str) -> ServiceLevel:
    return ServiceLevel("warranty", name, *LEVEL_DAYS)


CASES = [
    Case("register_partner", "location_id", lambda a, t: a.register_partner(OPS, t, "P")),
    Case("register_partner", "name", lambda a, t: a.register_partner(OPS, "LOC-9", t)),
    Case("register_partner_user", "passport_id", lambda a, t: a.register_partner_user(OPS, LOC, t)),
    Case(
        "accredit_service_partner",
        "csdp_account",
        lambda a, t: a.accredit_service_partner(OPS, LOC, t),
    ),
    Case("certify_partner", "programme", lambda a, t: a.certify_partner(OPS, LOC, t)),
    Case(
        "report_missing_devices",
        "request_id",
        lambda a, t: a.report_missing_devices(ANNA, LOC, t, ["PCY"]),
    ),
    Case(
        "report_missing_devices",
        "serials",
        lambda a, t: a.report_missing_devices(ANNA, LOC, "R2", [t]),
    ),
    Case(
        "resolve_missing_devices",
        "resolution",
        lambda a, t: a.resolve_missing_devices(OPS, LOC, "R1", t),
    ),
    Case(
        "register_devices",
        "customer_id",
        lambda a, t: a.register_devices(customer(t), t, servers("S9")),
    ),
    Case("register_devices", "serial", lambda a, t: a.register_devices(CUSTOMER, "C1", servers(t))),
    Case(
        "register_devices",
        "model",
        lambda a, t: a.register_devices(
            CUSTOMER, "C1", [NewDevice(serial="S9", connection="direct_connect", model=t)]
        ),
    ),
    Case(
        "register_devices",
        "location_id",
        lambda a, t: a.register_devices(customer("C3"), "C3", servers("S9"), to(t)),
    ),
    Case(
        "register_devices",
        "customer_name",
        lambda a, t: a.register_devices(
            customer("C3"), "C3", servers("S9"), to(LOC), customer_name=t
        ),
    ),
    Case("link_devices", "serials", lambda a, t: a.link_devices(CUSTOMER, "C1", [t], to(LOC))),
    Case(
        "link_devices",
        "customer_name",
        lambda a, t: a.link_devices(CUSTOMER, "C1", ["S1"], to(LOC), t),
    ),
    Case("unlink_devices", "role", lambda a, t: a.unlink_devices(CUSTOMER, "C1", ["S1"], t)),
    Case(
        "set_hosting_partner",
        "host_serial",
        lambda a, t: a.set_hosting_partner(CUSTOMER, "C1", t, to(LOC)),
    ),
    Case("grant_consent", "text_version", lambda a, t: a.grant_consent(CUSTOMER, "C1", ["S1"], t)),
    Case(
        "withdraw_consent", "customer_id", lambda a, t: a.withdraw_consent(customer(t), t, ["S1"])
    ),
    Case(
        "grant_consent_on_host",
        "host_serial",
        lambda a, t: a.grant_consent_on_host(CUSTOMER, "C1", t),
    ),
    Case(
        "withdraw_consent_on_host",
        "host_serial",
        lambda a, t: a.withdraw_consent_on_host(CUSTOMER, "C1", t),
    ),
    Case(
        "correct_consent_record",
        "reason",
        lambda a, t: a.correct_consent_record(OPS, "S1", 3, t, None),
    ),
    Case(
        "collect_configuration",
        "serial",
        lambda a, t: a.collect_configuration(OPS, t, {"bios": "1.2"}),
    ),
    Case("add_service_level", "name", lambda a, t: a.add_service_level(OPS, "S1", _level(t))),
    Case(
        "record_service_event",
        "event_id",
        lambda a, t: a.record_service_event(OPS, "S1", t, "info", "ok"),
    ),
    Case(
        "record_service_event",
        "summary",
        lambda a, t: a.record_service_event(OPS, "S1", "E1", "info", t),
    ),
    Case(
        "choose_insight_rs_case_routing",
        "customer_id",
        lambda a, t: a.choose_insight_rs_case_routing(customer(t), t, ["H1"], True),
    ),
    Case(
        "create_child_group",
        "child_id",
        lambda a, t: a.create_child_group(ANNA, GROUP, t, "More racks"),
    ),
    Case("create_child_group", "name", lambda a, t: a.create_child_group(ANNA, GROUP, "g2", t)),
    Case(
        "create_customer_child_group",
        "name",
        lambda a, t: a.create_customer_child_group(CUSTOMER, "C1", GROUP, "c1", t),
    ),
    Case("share_child_group", "with_admin", lambda a, t: a.share_child_group(ANNA, GROUP, "g1", t)),
    Case("delete_child_group", "child_id", lambda a, t: a.delete_child_group(ANNA, GROUP, t)),
    Case("add_group_admin", "passport_id", lambda a, t: a.add_group_admin(ANNA, GROUP, t)),
    Case("choose_default_view", "view", lambda a, t: a.choose_default_view(ANNA, t)),
    Case("add_favourite", "principal", lambda a, t: a.add_favourite(ben_as(t), GROUP)),
    Case("remove_favourite", "principal", lambda a, t: a.remove_favourite(ben_as(t), GROUP)),
    Case(
        "delete_customer_group",
        "correlation_id",
        lambda a, t: a.delete_customer_group(
            known_partner_user(LOC, ANNA.principal, admin=True, correlation_id=t), GROUP
        ),
    ),
    Case(
        "create_customer_dashboard",
        "customer_name",
        lambda a, t: a.create_customer_dashboard(ANNA, LOC, "C3", t, "4711"),
    ),
    Case(
        "create_customer_dashboard",
        "cpin",
        lambda a, t: a.create_customer_dashboard(ANNA, LOC, "C3", "Three", t),
    ),
    Case(
        "switch_self_service_notifications",
        "location_id",
        lambda a, t: a.switch_self_service_notifications(ANNA, t, DASHBOARD, True),
    ),
    Case(
        "transfer_devices",
        "transfer_id",
        lambda a, t: a.transfer_devices(ANNA, LOC, ["PC1"], HOLDING, DASHBOARD, t),
    ),
    Case(
        "enrol_with_cpin",
        "cpin",
        lambda a, t: a.enrol_with_cpin(customer("C2"), "C2", DASHBOARD, t, "PC7"),
    ),
    Case(
        "enrol_with_cpin",
        "model",
        lambda a, t: a.enrol_with_cpin(customer("C2"), "C2", DASHBOARD, "4711", "PC7", model=t),
    ),
    Case("raise_alert", "alert_id", lambda a, t: a.raise_alert(OPS, "S1", t, "warning", "Fan")),
    Case("raise_alert", "message", lambda a, t: a.raise_alert(OPS, "S1", "A2", "warning", t)),
    Case(
        "submit_repair_case", "case_id", lambda a, t: a.submit_repair_case(CUSTOMER, "S1", "A1", t)
    ),
    Case(
        "receive_e2open_batch",
        "batch_id",
        lambda a, t: a.receive_e2open_batch(OPS, t, [e2open_report("PC8")]),
    ),
    Case("receive_alert_batch", "batch_id", lambda a, t: a.receive_alert_batch(OPS, t, [])),
    Case("claim_stored_keys", "principal", lambda a, t: a.claim_stored_keys(operator(t, "c"))),
    Case(
        "notify_alert",
        "alert_id",
        lambda a, t: a.notify_alert(policy(), Device.id_for("S1"), t),
    ),
    Case(
        "route_repair_case",
        "case_id",
        lambda a, t: a.route_repair_case(policy(), Device.id_for("S1"), t),
    ),
]


def bad_forms(field: str) -> dict[str, tuple[str, str]]:
    """Per bad form: a text of that form for `field`, and what the refusal must say."""
    kind = kind_of(field)
    forms = {
        "nul": ("ACME\x00 Corp", "NUL character"),
        "escape": ("ACME\x1b[31m Corp", r"control character \(U\+001B\)"),
        "c1_control": ("ACME\x85 Corp", r"control character \(U\+0085\)"),
        "delete": ("ACME\x7f Corp", r"control character \(U\+007F\)"),
        "lone_surrogate": ("ACME\ud800 Corp", "lone surrogate"),
        "too_long": ("A" * (kind.max_length + 1), f"more than the {kind.max_length:,} allowed"),
    }
    if not kind.multiline:
        forms["line_feed"] = ("ACME\n Corp", r"control character \(U\+000A\)")
    return forms


BAD = [
    pytest.param(case, text, says, id=f"{case}-{form}")
    for case in CASES
    for form, (text, says) in bad_forms(case.field).items()
]


@pytest.mark.parametrize(("case", "text", "says"), BAD)
def test_kind5_bad_text_in_any_command_argument_is_refused_and_records_nothing(
    world: PartnerFleet, case: Case, text: str, says: str
) -> None:
    """Issue 8, kind 5: each bad form, in each text argument, refused naming field and problem."""
    with refused(world, TextError, match=f"^{case.field}.*{says}"):
        case.call(world, text)


def test_kind5_a_nul_in_a_customer_name_is_refused_at_the_command(world: PartnerFleet) -> None:
    """Issue 8, kind 5, the given input: "ACME\\x00 Corp" is refused with a clear error."""
    with refused(world, TextError, match="customer_name: a NUL character .* at position 4"):
        world.register_devices(
            customer("C9"), "C9", servers("S9"), to(LOC), customer_name="ACME\x00 Corp"
        )

    with pytest.raises(NotFoundError):
        world.customer_group(CustomerGroup.id_for(LOC, "C9"))


def commands_of(app_class: type[PartnerFleet]) -> set[str]:
    """Every public command: a method whose first parameter is the actor."""
    return {
        name
        for name, member in inspect.getmembers(app_class, inspect.isfunction)
        if not name.startswith("_") and list(inspect.signature(member).parameters)[1:2] == ["actor"]
    }


def test_kind5_every_command_checks_its_text_and_has_a_case_here() -> None:
    """Issue 8, kind 5: no command escapes the check (each is declared, so checked), and
    each is proven above."""
    commands = commands_of(PartnerFleet)

    assert all(hasattr(getattr(PartnerFleet, c), "__command__") for c in commands)
    assert commands == {case.command for case in CASES} == set(COMMANDS)


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("reason", "Signed on paper;\n\tthe scan was mislabelled.\r\n"),
        ("summary", "Disk 2 replaced\nFirmware 1.2 -> 1.3"),
        ("message", "Fan 3:\tfailed"),
    ],
)
def test_kind5_tab_and_line_breaks_are_free_texts_own(
    world: PartnerFleet, field: str, text: str
) -> None:
    """Issue 8, kind 5: free text (reasons, summaries, alert messages) keeps its lines."""
    calls: dict[str, Callable[[], Any]] = {
        "reason": lambda: world.correct_consent_record(OPS, "S1", 3, text, None),
        "summary": lambda: world.record_service_event(OPS, "S1", "E1", "info", text),
        "message": lambda: world.raise_alert(OPS, "S1", "A2", "warning", text),
    }
    before = event_count(world)

    calls[field]()

    assert event_count(world) > before


def nested(depth: int) -> dict[str, Any]:
    """Configuration data `depth` objects deep."""
    data: dict[str, Any] = {"leaf": "1"}
    for _ in range(depth - 1):
        data = {"inner": data}
    return data


BAD_DATA = {
    "nul_value": ({"bios": "1.2\x00"}, r"data\.bios: a NUL character"),
    "nul_key": ({"bi\x00os": "1.2"}, "data key: a NUL character"),
    "escape_value": ({"bios": "\x1b[2J"}, r"data\.bios: a control character"),
    "lone_surrogate": ({"bios": ["\udfff"]}, r"data\.bios\[0\]: a lone surrogate"),
    "too_deep": (nested(MAX_DATA_DEPTH + 1), f"nested more than {MAX_DATA_DEPTH} levels"),
    "very_deep": (nested(100_000), f"nested more than {MAX_DATA_DEPTH} levels"),
    "too_many_values": ({"v": list(range(MAX_DATA_ITEMS))}, "more than 5,000 values"),
    "too_much_text": (
        {"a": "x" * (MAX_DATA_CHARS // 2), "b": "x" * (MAX_DATA_CHARS // 2 + 1)},
        "more than 256,000 characters of text",
    ),
    "one_text_too_long": ({"blob": "x" * (MAX_DATA_CHARS + 1)}, r"data\.blob: 256,001 characters"),
    "bytes": ({"bios": b"1.2"}, r"data\.bios: a bytes is not JSON data"),
    "not_a_number": ({"temp": float("nan")}, r"data\.temp: nan is not a JSON number"),
    "infinity": ({"temp": float("inf")}, r"data\.temp: inf is not a JSON number"),
    "key_not_text": ({1: "a"}, "key 1 is not text"),
    "tuple": ({"ports": (1, 2)}, r"data\.ports: a tuple is not JSON data"),
}


@pytest.mark.parametrize(("data", "says"), BAD_DATA.values(), ids=BAD_DATA.keys())
def test_kind5_configuration_data_is_bounded_and_plain_json(
    world: PartnerFleet, data: dict[str, Any], says: str
) -> None:
    """Issue 8, kind 5: data dicts bounded in size and depth; their texts checked too."""
    with refused(world, TextError, match=says):
        world.collect_configuration(OPS, "S1", data)


def test_kind5_configuration_data_within_the_bounds_is_collected(world: PartnerFleet) -> None:
    """Issue 8, kind 5: data at the bounds, with line breaks in its texts, is accepted."""
    data = {
        "deep": nested(MAX_DATA_DEPTH - 1),
        "notes": "line 1\nline 2",
        "values": [1, 2.5, True, None, "x" * 1_000],
    }
    before = event_count(world)

    world.collect_configuration(OPS, "S1", data)

    assert event_count(world) == before + 1


def test_kind5_no_event_holding_a_nul_is_recorded_even_past_the_argument_check(
    app: PartnerFleet,
) -> None:
    """Issue 8, kind 5: a backstop at save refuses any event with text no view can store."""
    sneaked = lambda w: w.add(PartnerTenant.register(OPS, "LOC-X", "Reseller\x00"))  # noqa: E731

    with refused(app, TextError, match="name: a NUL character"):
        app._run("register_partner", OPS, sneaked)
