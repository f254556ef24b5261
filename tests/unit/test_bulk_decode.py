"""Issue 11: a batch decoded with one JSON parse gives the mapper's events, one by one."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import MapperDeserialisationError

from handlers import PartnerFleet
from infra.follow.bulk_decode import BatchDecoder
from infra.follow.view_reads import topic_reader
from tests.scenarios import CUSTOMER, IN_MEMORY, OPS, SCENARIOS, Scenario, in_memory_fleet
from tests.unit.test_upcasting import stored_v1_repair_case

Row = tuple[Any, ...]


def stored_rows(fleet: PartnerFleet) -> list[Row]:
    """Every stored event of `fleet` as the view runner reads it."""
    read = topic_reader(fleet.recorder)
    topics = sorted({n.topic for n in fleet.recorder.select_notifications(1, 100_000)})
    return read(0, fleet.recorder.max_notification_id() or 0, 100_000, topics)


def mapped(fleet: PartnerFleet, rows: list[Row]) -> list[tuple[int, type[Any], dict[str, Any]]]:
    """The mapper's events for `rows`: position, class and attributes."""
    events = BatchDecoder(fleet.mapper).one_by_one(rows)
    return [(p, type(e), e.__dict__) for p, e in events]


def in_memory_fleet_with(env: dict[str, str]) -> PartnerFleet:
    """An in-memory fleet with more settings."""
    return PartnerFleet(env={**IN_MEMORY, **env})


def varied_history(scenario: Scenario = SCENARIOS[0]) -> PartnerFleet:
    """A scenario's events, then version 1 events to upcast and (after the first scenario)
    free-form configuration data holding a dict of the transcoder's marker form."""
    fleet = in_memory_fleet()
    scenario(fleet)
    fleet.recorder.insert_events(stored_v1_repair_case())  # a v1 device history with it
    if scenario is SCENARIOS[0]:
        fleet.grant_consent(CUSTOMER, "C1", ["S1"])
        fleet.collect_configuration(OPS, "S1", {"x": {"_type_": "uuid_hex", "_data_": "no"}})
    return fleet


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_issue_11_a_batch_decodes_to_the_mappers_events_upcast_and_free_form_alike(
    scenario: Scenario,
) -> None:
    fleet = varied_history(scenario)
    rows = stored_rows(fleet)

    decoded = BatchDecoder(fleet.mapper).decode(rows)

    assert len(rows) > 20
    assert "ConsentGranted" in {type(e).__name__ for _, e in decoded}
    assert [(p, type(e), e.__dict__) for p, e in decoded] == mapped(fleet, rows)


def test_issue_11_free_form_data_in_a_batch_reads_back_as_it_was_given() -> None:
    fleet = varied_history()

    decoded = BatchDecoder(fleet.mapper).decode(stored_rows(fleet))

    [data] = [e.data for _, e in decoded if type(e).__name__ == "ConfigurationCollected"]
    assert data == {"x": {"_type_": "uuid_hex", "_data_": "no"}}


@pytest.mark.parametrize(
    ("state", "after"),
    [
        (b'{"a": "x', b'y"}'),
        (b'{"a": "x', b'y"},{"b": 1}'),  # joined, the two would read as two objects
        (b'{"a": 1}{"b": 2}', None),
        (b"\xff\xfe", None),
        (b"[1]", None),
        (b" ", None),
    ],
    ids=["cut", "runs-into-next", "two-objects", "not-utf8", "not-an-object", "blank"],
)
def test_issue_11_a_bad_state_fails_with_the_mappers_error_at_its_event(
    state: bytes, after: bytes | None
) -> None:
    """A state that is not one JSON object alone: the batch is decoded one by one, so the
    mapper's own error names that event (no state is read with its neighbour's text)."""
    fleet = varied_history()
    rows = stored_rows(fleet)[:20]
    bad = (*rows[7][:4], state)
    follower = rows[8] if after is None else (*rows[8][:4], after)
    with pytest.raises((MapperDeserialisationError, TypeError)) as expected:
        BatchDecoder(fleet.mapper).one_by_one([bad])

    with pytest.raises(type(expected.value)) as failure:
        BatchDecoder(fleet.mapper).decode([*rows[:7], bad, follower, *rows[9:]])

    assert str(failure.value) == str(expected.value)


def test_issue_11_without_the_plain_json_codec_every_event_goes_through_the_mapper() -> None:
    """A compressed store's states are no JSON text: decoded by the mapper, one by one."""
    fleet = in_memory_fleet_with({"COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"})
    SCENARIOS[0](fleet)
    rows = stored_rows(fleet)

    decoded = BatchDecoder(fleet.mapper).decode(rows)

    assert rows[0][4][:1] != b"{"
    assert [(p, type(e), e.__dict__) for p, e in decoded] == mapped(fleet, rows)
