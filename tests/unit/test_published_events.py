"""What leaves the service is complete and holds no secret (issue 8, kind 9).

The event types are found here by reading domain/*.py, not through infra.kafka.envelope's
generator, and real records of every scenario are checked against the files in docs/events.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import given
from hypothesis import strategies as st

from domain import CustomerGroup
from domain.base import FleetAggregate, NotAllowedError
from domain.cpin import cpin_matches, cpin_verifier
from handlers import PartnerFleet
from infra.kafka.envelope import Record, envelope_record, event_classes, event_type, stored_record
from tests.actors import partner_user
from tests.scenarios import CUSTOMER, OPS, SCENARIOS, Scenario, in_memory_fleet, partner, report

ROOT = Path(__file__).parent.parent.parent
DOCS = ROOT / "docs" / "events"
GENERIC = {"FleetAggregate.Event", "FleetAggregate.Created"}


def declared_events() -> dict[str, set[str]]:
    """Class name → names of the event classes declared in its body, read from the source.

    An event class is a nested class whose base is a generic event or another event class
    found so far (`InboundBatch.Received`), so the search repeats until nothing new appears.
    """
    nested = [
        (outer.name, inner.name, {ast.unparse(base) for base in inner.bases})
        for path in sorted((ROOT / "domain").glob("*.py"))
        for outer in ast.parse(path.read_text()).body
        if isinstance(outer, ast.ClassDef)
        for inner in outer.body
        if isinstance(inner, ast.ClassDef)
    ]
    events = set(GENERIC)
    while new := {f"{o}.{i}" for o, i, bases in nested if bases & events} - events:
        events |= new
    found: dict[str, set[str]] = {}
    for qualname in events - GENERIC:
        owner, name = qualname.split(".")
        found.setdefault(owner, set()).add(name)
    return found


def stored_aggregates() -> list[type[FleetAggregate]]:
    """Every aggregate class of the domain that has no subclass (those are what is stored)."""
    found, todo = [], list(FleetAggregate.__subclasses__())
    while todo:
        cls = todo.pop()
        subclasses = cls.__subclasses__()
        todo.extend(subclasses)
        if not subclasses and cls.__module__.startswith("domain."):
            found.append(cls)
    return found


def publishable_types() -> set[str]:
    """`Aggregate.Event` of every event an aggregate (or a base or mixin of it) declares."""
    declared = declared_events()
    return {
        f"{aggregate.__name__}.{name}"
        for aggregate in stored_aggregates()
        for owner in aggregate.__mro__
        for name in declared.get(owner.__name__, ())
    }


@cache
def schema(name: str) -> dict[str, Any]:
    """A schema file of docs/events."""
    loaded: dict[str, Any] = json.loads((DOCS / f"{name}.schema.json").read_text())
    return loaded


@cache
def validator(name: str) -> Any:
    """A checked validator of one schema file, made once (jsonschema.validate re-checks the
    schema on every call: most of a 1,500-device scenario's time)."""
    found = jsonschema.validators.validator_for(schema(name))
    found.check_schema(schema(name))
    return found(schema(name))


def test_every_event_type_that_can_be_stored_has_its_schema_found_without_the_generator() -> None:
    """Kind 9: CustomerGroup.Created and every other declared event type has a schema file."""
    expected = publishable_types()

    on_disk = {p.name.removesuffix(".schema.json") for p in DOCS.glob("*.schema.json")}

    assert "CustomerGroup.Created" in expected
    assert len(expected) > 40
    assert on_disk - {"envelope"} == expected
    assert {event_type(cls) for cls in event_classes()} == expected


def relay_records(fleet: PartnerFleet) -> list[tuple[str, Record]]:
    """Every stored event as the relay publishes it: its type and its Kafka record."""
    out = []
    for n in fleet.recorder.select_notifications(start=1, limit=100_000):
        event = fleet.mapper.to_domain_event(n)
        assert isinstance(event, FleetAggregate.Event)
        record = stored_record(n.topic, str(n.originator_id), n.originator_version, n.state, n.id)
        out.append((event_type(type(event)), record or envelope_record(event, n.id)))
    return out


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_every_published_record_of_every_scenario_fits_the_schemas_in_docs_events(
    scenario: Scenario,
) -> None:
    """Kind 9: envelope and payload validate; the payload has exactly the schema's fields."""
    fleet = in_memory_fleet()
    scenario(fleet)

    records = relay_records(fleet)

    assert records
    for name, (_key, value, _headers) in records:
        envelope = json.loads(value)
        validator("envelope").validate(envelope)
        validator(name).validate(envelope["payload"])
        assert set(envelope["payload"]) == set(schema(name)["properties"]), name


def dashboard_history(cpin: str) -> PartnerFleet:
    """The holding-tenant scenario, whose dashboard has `cpin`."""
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    anna = partner_user(fleet, "LOC-1", "anna@LOC-1")
    fleet.receive_e2open_batch(OPS, "b1", [report("PC1")])
    dashboard = fleet.create_customer_dashboard(anna, "LOC-1", "C1", "Customer One", cpin)
    fleet.enrol_with_cpin(CUSTOMER, "C1", dashboard, cpin, "PC9")
    return fleet


def published_bytes(fleet: PartnerFleet) -> bytes:
    """Every key, value and header the relay would publish, in one byte string."""
    return b"\n".join(
        b"".join([key, value, *(k.encode() + v for k, v in headers)])
        for _, (key, value, headers) in relay_records(fleet)
    )


@pytest.mark.parametrize("cpin", ["4711", "123456", "company-pin-99"])
def test_r_hld_3_no_published_record_holds_the_cpin_or_anything_it_can_be_recovered_from(
    cpin: str,
) -> None:
    """Kind 9: not the cPIN, not its unsalted digest, not the keyed verifier, not its name."""
    fleet = dashboard_history(cpin)
    group = fleet.customer_group(CustomerGroup.id_for("LOC-1", "C1"))

    published = published_bytes(fleet)

    assert group.cpin_verifier is not None
    assert cpin.encode() not in published
    assert hashlib.sha256(cpin.encode()).hexdigest().encode() not in published
    assert group.cpin_verifier.encode() not in published
    assert group.cpin_verifier.split("$")[2].encode() not in published
    assert b"cpin_verifier" not in published
    assert b"cpin_digest" not in published


def as_version_1(stored: StoredEvent, digest: str) -> StoredEvent:
    """A stored CustomerDashboardCreated as version 1 wrote it: the unsalted digest."""
    state = json.loads(stored.state)
    del state["class_version"], state["cpin_verifier"]
    state["cpin_digest"] = digest
    return replace(stored, state=json.dumps(state).encode())


def fleet_with_a_version_1_dashboard(cpin: str) -> PartnerFleet:
    """A store whose dashboard was created before cPIN verifiers were keyed."""
    digest = hashlib.sha256(cpin.encode()).hexdigest()
    written = dashboard_history(cpin).recorder.select_notifications(start=1, limit=100_000)
    old = [
        as_version_1(n, digest) if n.topic.endswith(".CustomerDashboardCreated") else n
        for n in written
    ]
    fleet = in_memory_fleet()
    fleet.recorder.insert_events(
        [StoredEvent(n.originator_id, n.originator_version, n.topic, n.state) for n in old]
    )
    return fleet


def test_r_hld_3_a_version_1_dashboard_still_takes_its_cpin_and_its_digest_is_not_published() -> (
    None
):
    """Kind 9: the old unsalted digest loads, verifies, and never reaches a published record."""
    fleet = fleet_with_a_version_1_dashboard("4711")
    dashboard = CustomerGroup.id_for("LOC-1", "C1")

    fleet.enrol_with_cpin(CUSTOMER, "C1", dashboard, "4711", "PC10")

    assert "PC10" in fleet.customer_group(dashboard).devices
    with pytest.raises(NotAllowedError, match="cPIN does not match"):
        fleet.enrol_with_cpin(CUSTOMER, "C1", dashboard, "4712", "PC11")
    digest = hashlib.sha256(b"4711").hexdigest().encode()
    assert digest not in published_bytes(fleet)


def test_r_hld_3_a_version_1_snapshot_of_a_dashboard_loads_and_takes_its_cpin() -> None:
    """A snapshot taken before verifiers were keyed holds `cpin_digest`: it is upcast."""
    digest = hashlib.sha256(b"4711").hexdigest()
    old = dashboard_history("4711")  # its events hold a keyed verifier: only the snapshot not
    dashboard = CustomerGroup.id_for("LOC-1", "C1")
    old.take_snapshot(dashboard)
    assert old.snapshots is not None
    [stored] = old.snapshots.recorder.select_events(dashboard)
    snapshot = json.loads(stored.state)
    del snapshot["state"]["class_version"], snapshot["state"]["cpin_verifier"]
    snapshot["state"]["cpin_digest"] = digest
    fleet = in_memory_fleet()
    fleet.recorder.insert_events(old.recorder.select_events(dashboard))
    assert fleet.snapshots is not None
    fleet.snapshots.recorder.insert_events([replace(stored, state=json.dumps(snapshot).encode())])

    group = fleet.customer_group(dashboard)

    assert group.cpin_verifier == f"sha256${digest}"
    group.check_cpin("4711", fleet.cpin_key)


KEY = b"k" * 32


@given(
    cpin=st.text(min_size=4, max_size=12).filter(lambda c: len(c.strip()) >= 4),
    other=st.text(min_size=4, max_size=12),
    salts=st.lists(st.binary(min_size=16, max_size=16), min_size=2, max_size=2, unique=True),
)
def test_r_hld_3_a_verifier_opens_for_its_cpin_only_and_differs_per_salt(
    cpin: str, other: str, salts: list[bytes]
) -> None:
    """R-HLD-3: same cPIN, two dashboards: two unrelated verifiers, each opened by it alone."""
    first, second = (cpin_verifier(cpin, KEY, salt) for salt in salts)

    assert first != second
    assert cpin_matches(first, cpin, KEY)
    assert cpin_matches(second, f" {cpin} ", KEY)
    assert cpin_matches(first, other, KEY) == (other.strip() == cpin.strip())
    assert not cpin_matches(first, cpin, b"j" * 32)


def test_r_hld_3_no_verifier_is_made_with_a_short_key_or_salt_and_unknown_ones_open_nothing() -> (
    None
):
    """A weak verifier is never recorded; a verifier of an unknown scheme opens nothing."""
    with pytest.raises(ValueError, match="at least 32 bytes"):
        cpin_verifier("4711", b"short", b"s" * 16)
    with pytest.raises(ValueError, match="salt of at least 16"):
        cpin_verifier("4711", KEY, b"s")
    assert not cpin_matches("md5$81dc9bdb52d04dc20036dbd8313ed055", "4711", KEY)
    assert not cpin_matches("hmac-sha256$zz$00", "4711", KEY)
