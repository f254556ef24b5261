"""Issue 11, session 21: view ids as text without `UUID.__str__` (projections/ids.py) and
`device_ref` without `Device.id_for`'s cache: always exactly `str` of the UUID."""

from __future__ import annotations

import random
import uuid
from uuid import UUID

import pytest

from domain import Cause, CustomerGroup
from domain.device import Device, SerialError
from projections import ids
from projections.customers import CustomersView, device_ref

EDGES = [0, 1, 2**128 - 1, 2**127, 2**64 - 1, 2**64, 0xF << 76, 0xC000 << 48, 0x0123456789ABCDEF]


def odd_uuids() -> list[UUID]:
    rng = random.Random(21)
    made = [UUID(int=n) for n in EDGES]
    made += [UUID(int=rng.getrandbits(128)) for _ in range(2_000)]
    made += [uuid.uuid1(), uuid.uuid3(uuid.NAMESPACE_DNS, "x"), uuid.uuid4()]
    made += [uuid.uuid5(uuid.NAMESPACE_URL, "ü\u0301")]
    text = "{0123ABCD-EF01-4567-89AB-CDEF01234567}"
    made += [UUID(text), UUID("urn:uuid:" + text.strip("{}").lower()), UUID(bytes=b"\xff" * 16)]
    made += [UUID(fields=(1, 2, 3, 4, 5, 6)), UUID(int=7, version=4)]
    return made


@pytest.fixture(autouse=True)
def empty_memory() -> None:
    ids._texts.clear()


def test_id_text_is_str_of_the_uuid_formatted_and_remembered() -> None:
    for value in odd_uuids():
        assert ids.formatted(value.int) == str(value)
        assert ids.id_text(value) == str(value)  # formatted, then remembered
        assert ids.id_text(value) == str(value)  # from memory
        assert ids.id_text(UUID(str(value))) == str(value)  # an equal, other object


def test_id_text_of_other_values_is_their_str() -> None:
    class Shouting(UUID):
        def __str__(self) -> str:
            return super().__str__().upper()

    loud = Shouting(int=2**100 + 0xABC)
    assert ids.id_text(loud) == str(loud) != str(UUID(int=loud.int))
    assert ids.remembered() == 0  # nothing remembered for a subclass
    assert ids.id_text("already-text") == "already-text"
    assert ids.id_text(42) == "42"


def test_id_memory_is_bounded_and_still_exact_past_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ids, "LIMIT", 16)
    values = odd_uuids()[:100]
    for round_ in range(2):
        for value in values:
            assert ids.id_text(value) == str(value), round_
            assert 1 <= ids.remembered() <= 16
    ids.remember(1, str(UUID(int=1)))
    assert ids.remembered() <= 16


@pytest.mark.parametrize(
    "serial",
    [
        "ABC123",
        "abc123",
        "  ab12  ",
        "\uff21\uff22\uff23\uff11\uff12\uff13",
        "Ǆ1",
        "é1",
        "e\u03011",
        "٣٤٥",
        "X" * 32,
        "1",
    ],
)
def test_device_ref_is_str_of_device_id_for(serial: str) -> None:
    device_ref.cache_clear()
    assert device_ref(serial) == str(Device.id_for(serial))
    assert device_ref(serial) == str(Device.id_for(serial))  # remembered


@pytest.mark.parametrize("serial", ["", "   ", "AB-12", "X" * 33, "a b", "\ud800"])
def test_device_ref_refuses_what_device_id_for_refuses(serial: str) -> None:
    device_ref.cache_clear()
    with pytest.raises(SerialError):
        Device.id_for(serial)
    with pytest.raises(SerialError):
        device_ref(serial)


class RecordingTx:
    """A Tx that keeps what the view writes."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, tuple[object, ...]]] = []

    def execute(self, statement: str, params: tuple[object, ...] = ()) -> None:
        self.writes.append((statement, tuple(params)))


def member_events() -> list[CustomerGroup.DeviceAdded]:
    why = Cause("it@c1.example", "s21-ids")
    events = []
    for k in range(3):
        group = CustomerGroup.create(why, "LOC-1", f"C-{k}", f"Customer {k}", ["a@x.example"])
        for serial in (f"sn{k}a", f"\uff33\uff2e{k}\uff22"):
            group.add_device(why, serial, "reseller")
        events += [e for e in group.collect_events() if isinstance(e, CustomerGroup.DeviceAdded)]
    return events


def test_a_rebuilding_batch_keeps_no_touched_groups_and_following_does() -> None:
    view = CustomersView()
    events = member_events()
    tx = RecordingTx()
    view.rebuilding = True
    for event in events:
        view._member(tx, event)  # type: ignore[arg-type]
    assert view._touched == set()
    view.rebuilding = False
    for event in events:
        view._member(tx, event)  # type: ignore[arg-type]
    assert view._touched == {str(e.originator_id) for e in events}
    expected = [(str(e.originator_id), str(Device.id_for(e.serial)), e.reason) for e in events]
    assert [params for _, params in tx.writes] == expected * 2
