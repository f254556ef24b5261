"""Kind 7: a snapshot whose fields have the right names but another shape is skipped.

A later release may keep a field's name and change what it holds (a dict of links becomes
a list of link records, a list of versions a mapping). Loading such a snapshot at the
current version (no later event to trip over) must not hand the commands an aggregate
of the wrong shape: it is skipped and the aggregate replayed, with `snapshot_skipped`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from structlog.testing import capture_logs

from domain import CustomerGroup, Device
from domain.passport import Passport
from handlers import PartnerFleet
from handlers.devices import PartnerChoice
from tests.scenarios import CUSTOMER, in_memory_fleet, partner, servers
from tests.snapshots import in_state, plant_snapshot, replayed

SHAPES: dict[str, tuple[str, str, Any]] = {
    "device links as a list": ("Device", "links", [["reseller", "LOC-1"]]),
    "device consent versions as a mapping": ("Device", "consent_versions", {"3": True}),
    "device serial as a number": ("Device", "serial", 1),
    "device alerts as a list": ("Device", "alerts", []),
    "device hosted as text": ("Device", "hosted", "S2"),
    "passport favourites as a mapping": ("Passport", "favourites", {}),
    "group devices as text": ("CustomerGroup", "devices", "S1"),
    "group deleted as text": ("CustomerGroup", "deleted", "no"),
}


def world() -> tuple[PartnerFleet, dict[str, UUID]]:
    """LOC-1 with Anna; C1's S1 linked to it; a snapshot of each aggregate at its version."""
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    ids = {
        "Device": Device.id_for("S1"),
        "Passport": Passport.id_for("anna@LOC-1"),
        "CustomerGroup": CustomerGroup.id_for("LOC-1", "C1"),
    }
    for aggregate_id in ids.values():
        fleet.take_snapshot(aggregate_id, version=1)
    return fleet, ids


@pytest.mark.parametrize("form", sorted(SHAPES))
def test_kind_7_a_snapshot_field_of_another_shape_is_skipped(form: str) -> None:
    """Kind 7: same field names, other shapes: the aggregate loads as its events give it."""
    fleet, ids = world()
    kind, field, value = SHAPES[form]
    plant_snapshot(fleet, ids[kind], in_state(lambda s: s.update({field: value})), behind=0)

    with capture_logs() as logs:
        loaded: object = fleet.repository.get(ids[kind])

    assert vars(loaded) == vars(replayed(fleet, ids[kind]))
    skipped = [line for line in logs if line["event"] == "snapshot_skipped"]
    assert [line["aggregate_id"] for line in skipped] == [str(ids[kind])]
    assert field in skipped[0]["reason"]


def test_kind_7_commands_go_on_past_a_snapshot_of_another_shape() -> None:
    """Kind 7: the customer can still unlink and link after such a snapshot."""
    fleet, ids = world()
    plant_snapshot(fleet, ids["Device"], in_state(lambda s: s.update(links=[])), behind=0)

    fleet.unlink_devices(CUSTOMER, "C1", ["S1"])
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])

    assert fleet.device("S1").links == {}
    assert not fleet.may_read_configuration("S1", "LOC-1")
