"""Kinds 5 and 7 on PostgreSQL and SQLite: caller data reads back exactly, and a snapshot
that does not fit the code is skipped, never fatal."""

from __future__ import annotations

import json
import uuid
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from structlog.testing import capture_logs

from domain import Device
from handlers import PartnerFleet
from handlers.base import SNAPSHOT_INTERVAL
from handlers.devices import PartnerChoice
from infra.bootstrap import build_fleet, build_view_runner
from infra.kafka.envelope import Envelope
from infra.kafka.relay import Relay, domain_topics
from infra.settings import Settings
from infra.storage.viewdb import SQLiteViewDB
from projections.consent_queries import configuration_for
from tests.conftest import FleetFactory
from tests.kafka import Broker, read_topics
from tests.scenarios import CUSTOMER, OPS, partner, servers
from tests.scopes import partner_at
from tests.snapshots import (
    MISFITS,
    NewerAlert,
    long_lived_device,
    plant_snapshot,
    replayed,
)

GIVEN: dict[str, Any] = {"_type_": "bios", "_data_": "1.2"}
NESTED: dict[str, Any] = {"bios": GIVEN, "dimms": [{"_type_": "uuid_hex", "_data_": "0" * 32}]}


def consenting_device(fleet: PartnerFleet) -> None:
    """S1 linked to LOC-1 with the customer's consent."""
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])


def collected(fleet: PartnerFleet) -> list[dict[str, Any]]:
    """S1's configuration data as its stored events read back."""
    events = fleet.events.get(Device.id_for("S1"))
    return [e.data for e in events if isinstance(e, Device.ConfigurationCollected)]


def skipped(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    """The snapshot_skipped lines among captured logs."""
    return [line for line in logs if line["event"] == "snapshot_skipped"]


def test_r_con_2_marker_shaped_configuration_data_reads_back_exactly_after_a_restart(
    fleet_factory: FleetFactory,
) -> None:
    """R-CON-2 (kind 5, given input): stored on PostgreSQL / SQLite, the data reads back as
    given in a new process, and the customer can still withdraw consent."""
    fleet = fleet_factory()
    consenting_device(fleet)
    fleet.collect_configuration(OPS, "S1", GIVEN)
    fleet.collect_configuration(OPS, "S1", NESTED)

    restarted = fleet_factory()
    restarted.withdraw_consent(CUSTOMER, "C1", ["S1"])

    assert collected(restarted) == [GIVEN, NESTED]
    assert restarted.device("S1").consent is None


def test_r_con_2_a_colliding_dict_stored_before_the_escape_still_loads(
    stored_fleet: PartnerFleet,
) -> None:
    """R-CON-2 (kind 5): a history written by the plain transcoder (an unescaped colliding
    dict in the stored row) loads, and the data reads back as stored."""
    consenting_device(stored_fleet)
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-02T03:04:05+00:00"},
        "principal": "hp-ops",
        "correlation_id": "corr-old",
        "data": NESTED,
    }
    version = stored_fleet.device("S1").version + 1
    topic = "domain.device:Device.ConfigurationCollected"
    row = StoredEvent(Device.id_for("S1"), version, topic, json.dumps(state).encode())
    stored_fleet.recorder.insert_events([row])

    stored_fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])

    assert collected(stored_fleet) == [NESTED]


def test_kind_7_after_a_roll_back_a_newer_releases_snapshot_is_skipped(
    fleet_factory: FleetFactory,
) -> None:
    """Kind 7 (given input): a newer release stored the device's snapshot with an extra field
    per alert; the rolled-back release loads the device from its events, logs it, and
    stores a fresh snapshot that the next load uses."""
    newer = fleet_factory()
    newer.mapper.transcoder.register(NewerAlert())  # type: ignore[attr-defined]
    device_id = long_lived_device(newer)
    rolled_back = fleet_factory()

    with capture_logs() as logs:
        loaded: object = rolled_back.repository.get(device_id)
    assert vars(loaded) == vars(replayed(rolled_back, device_id))
    with capture_logs() as again:
        rolled_back.raise_alert(OPS, "S1", "A-after", "critical", "disk")

    lines = skipped(logs)
    assert [(line["version"], line["replaced"]) for line in lines] == [(SNAPSHOT_INTERVAL, True)]
    assert "acknowledged_by" in lines[0]["reason"]
    assert skipped(again) == []


@pytest.mark.parametrize(
    "bad",
    [{"state": b'{"timestamp": {"_ty'}, {"change": MISFITS["missing field in an alert"]}],
    ids=["bad JSON", "missing alert field"],
)
def test_kind_7_unreadable_and_misfit_snapshots_are_skipped_on_real_storage(
    stored_fleet: PartnerFleet, bad: dict[str, Any]
) -> None:
    """Kind 7: a stored snapshot row that is not JSON, or lacks an alert field, at the
    device's current version: the device still loads (and is replayed on every load)."""
    device_id = long_lived_device(stored_fleet)
    plant_snapshot(stored_fleet, device_id, behind=0, **bad)

    with capture_logs() as logs:
        loaded: object = stored_fleet.repository.get(device_id)

    assert vars(loaded) == vars(replayed(stored_fleet, device_id))
    assert [line["replaced"] for line in skipped(logs)] == [False]


def test_r_con_2_the_relay_publishes_marker_shaped_configuration_data_exactly(
    stored_fleet: PartnerFleet, broker: Broker, tmp_path: Path
) -> None:
    """R-CON-2 (kind 5): through the Tansu broker, an independent reader gets the dict given,
    from the relay's mapper path (marker-shaped data) and its fast path (plain data)."""
    consenting_device(stored_fleet)
    plain = {"bios": "1.2", "dimms": [{"slot": 1}]}
    for data in (GIVEN, NESTED, plain):
        stored_fleet.collect_configuration(OPS, "S1", data)
    topics = f"pf{uuid.uuid4().hex[:8]}"
    positions = SQLiteViewDB(str(tmp_path / "positions.sqlite3"))
    relay = Relay(stored_fleet, positions, broker.bootstrap, batch_size=10, prefix=topics)

    while relay.relay_once():
        pass
    stored = stored_fleet.recorder.select_notifications(1, 10_000)
    records = read_topics(broker.bootstrap, domain_topics(topics), len(stored))

    envelopes = [Envelope.model_validate_json(r.value) for r in records]
    collected = [e for e in envelopes if e.type == "Device.ConfigurationCollected"]
    published = [e.payload["data"] for e in collected if e.payload is not None]
    assert published == [GIVEN, NESTED, plain]


def test_r_con_2_the_partners_view_returns_marker_shaped_and_odd_text_data_exactly(
    stored_settings: Settings, tmp_path: Path
) -> None:
    """R-CON-2 (kind 5): on PostgreSQL views (and SQLite), the configuration the partner reads
    is the dict given: marker-shaped, with text beyond the BMP."""
    settings = stored_settings.model_copy(update={"views_sqlite_path": tmp_path / "views.db"})
    fleet = build_fleet(settings)
    runner = build_view_runner(settings, fleet)
    odd = {**NESTED, "label": "rack A \U0001f5a5 Müller", "_type_": "x"}
    try:
        consenting_device(fleet)
        fleet.collect_configuration(OPS, "S1", odd)

        runner.catch_up()
        with runner.db.transaction() as tx:
            seen = configuration_for(tx, partner_at(fleet, "LOC-1"), "S1")

        assert seen == odd
    finally:
        runner.db.close()
        fleet.close()
