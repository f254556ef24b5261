"""Issue 8, kind 5 (feeds): no single bad input stops a pipeline.

Every message of the e2Open and alerts feeds is input the service did not write. One that
breaks a bound (domain/feed_bounds.py) is rejected with its reason, dead-lettered when it
came from Kafka, and the messages behind it are taken; the offset moves on (R-HLD-1).
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.feed_bounds import (
    MAX_BATCH_MESSAGES,
    MAX_DEPTH,
    MAX_MESSAGE_BYTES,
    MAX_REASON_CHARS,
    Unreadable,
    read_message,
    screened,
)
from domain.intake import IntakeError, Rejection
from handlers import PartnerFleet
from tests.scenarios import CUSTOMER, OPS, partner, servers
from tests.unit.conftest import e2open_report, event_count, refused
from tests.unit.feed_fakes import FakeProducer, FakeTopic, feed_consumer

BRACKETS = b"[" * 100_000 + b"]" * 100_000


def alert(alert_id: str) -> bytes:
    """A valid alerts-feed message for server S1."""
    fields = {"serial": "S1", "alert_id": alert_id, "severity": "critical", "message": "PSU"}
    return json.dumps(fields).encode()


def nested(depth: int) -> bytes:
    """A JSON object `depth` levels deep."""
    return b'{"a":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


# --- reading one raw message ---------------------------------------------------------------

UNREADABLE = {
    "100,000 [ then 100,000 ]": (BRACKETS, "exceeds the limit of 65,536 bytes"),
    "30,000 levels in 60 KB": (b"[" * 30_000 + b"]" * 30_000, f"deeper than {MAX_DEPTH}"),
    "one level too deep": (nested(MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH} levels"),
    "too large": (b'"' + b"x" * MAX_MESSAGE_BYTES + b'"', "exceeds the limit"),
    "empty": (b"", "empty message"),
    "tombstone": (None, "empty message"),
    "invalid UTF-8": (b'{"serial": "\xff"}', "not UTF-8: invalid start byte at byte 12"),
    "an encoded surrogate": (b'"\xed\xa0\x80"', "not UTF-8"),
    "a byte order mark": (b"\xef\xbb\xbf{}", "not JSON: Expecting value"),
    "UTF-16": ('{"a": 1}'.encode("utf-16"), "not UTF-8"),
    "not JSON": (b"{not json", "not JSON: Expecting property name"),
    "NaN": (b'{"a": NaN}', "not JSON: NaN is not a JSON number"),
    "a 5,000-digit number": (b"1" * 5_000, "a number is out of range (beyond 64 bits)"),
    "2**63": (b'{"n": 9223372036854775808}', "a number is out of range (beyond 64 bits)"),
    "1e999": (b'{"n": 1e999}', "a number is out of range (infinite)"),
    "an escaped NUL": (b'{"serial": "PC\\u00001"}', "serial: a NUL character (U+0000) at"),
    "an escaped control character": (b'{"m": "\\u001b[31m"}', "m: a control character (U+001B)"),
    "a lone surrogate": (b'{"m": "\\ud800"}', "m: a lone surrogate (U+D800)"),
    "a NUL in a key": (b'{"a\\u0000": 1}', "(key): a NUL character (U+0000) at position 1"),
}


@pytest.mark.parametrize(("raw", "reason"), UNREADABLE.values(), ids=UNREADABLE.keys())
def test_a_message_breaking_a_feed_bound_is_unreadable_with_its_reason(
    raw: bytes | None, reason: str
) -> None:
    read = read_message(raw)

    assert isinstance(read, Unreadable)
    assert reason in read.reason
    assert len(read.reason) <= MAX_REASON_CHARS


READABLE = {
    "a report": (json.dumps(e2open_report("PC1")).encode(), e2open_report("PC1")),
    "as deep as allowed": (nested(MAX_DEPTH), json.loads(nested(MAX_DEPTH))),
    "brackets in text": (b'{"m": "[[[[[[[[[[[[[[[[[[[[[[[["}', {"m": "[" * 24}),
    "an emoji as a surrogate pair": (b'{"m": "\\ud83d\\ude00"}', {"m": "\N{GRINNING FACE}"}),
    "tabs and new lines": (b'{"m": "a\\tb\\nc\\u0009"}', {"m": "a\tb\nc\t"}),
    "not an object": (b"[1, 2]", [1, 2]),  # readable; the message model rejects it
    "64-bit numbers": (b"[9223372036854775807, -1.5e300]", [2**63 - 1, -1.5e300]),
}


@pytest.mark.parametrize(("raw", "value"), READABLE.values(), ids=READABLE.keys())
def test_a_message_within_the_feed_bounds_reads_as_its_json(raw: bytes, value: object) -> None:
    assert read_message(raw) == value


# --- the alerts feed: the given input and its other forms ---------------------------------


@pytest.fixture
def alerts() -> tuple[FakeTopic, FakeProducer]:
    """The alerts topic (one partition) and the dead-letter producer, both faked."""
    return FakeTopic("partnerfleet.device-alerts.v1"), FakeProducer()


def test_issue_8_kind_5_a_bracket_bomb_between_two_alerts_is_dead_lettered_and_both_raised(
    alerts: tuple[FakeTopic, FakeProducer],
) -> None:
    """Given input: 100,000 `[` then 100,000 `]` between two valid alerts (R-ALR-1)."""
    topic, producer = alerts
    consumer = feed_consumer("alerts", topic, producer)
    consumer.fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    topic.append(alert("A1"), BRACKETS, alert("A2"))

    handled = consumer.poll_once()

    assert handled == 3
    assert set(consumer.fleet.device("S1").alerts) == {"A1", "A2"}
    [dead] = producer.sent
    assert (dead.topic, dead.value) == ("partnerfleet.device-alerts.dlq.v1", BRACKETS)
    assert "exceeds the limit of 65,536 bytes" in producer.reasons()[0]
    assert dict(dead.headers)["source_offset"] == b"1"
    assert topic.committed == 3


def test_every_bad_form_between_alerts_is_dead_lettered_with_its_reason_in_one_poll(
    alerts: tuple[FakeTopic, FakeProducer],
) -> None:
    """Each unreadable form, a non-object, missing keys and an unknown device, all at once."""
    topic, producer = alerts
    consumer = feed_consumer("alerts", topic, producer)
    consumer.fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    bad = [raw for raw, _ in UNREADABLE.values()] + [b"[1]", b'{"serial": "S1"}', b'"S9"']
    topic.append(alert("A0"), *bad, alert("A9"))

    consumer.poll_once()

    assert set(consumer.fleet.device("S1").alerts) == {"A0", "A9"}
    assert [s.value for s in producer.sent] == bad
    assert all(producer.reasons())
    assert topic.committed == len(bad) + 2


def test_r_hld_1_a_bad_report_is_dead_lettered_and_the_reports_behind_it_land(
    alerts: tuple[FakeTopic, FakeProducer],
) -> None:
    topic, producer = FakeTopic("partnerfleet.e2open.reports.v1"), FakeProducer()
    consumer = feed_consumer("e2open", topic, producer)
    partner(consumer.fleet, "LOC-1")
    end_customer_with_nul = json.dumps(e2open_report("PC2", end_customer="ACME\x00 Corp"))
    topic.append(
        json.dumps(e2open_report("PC1")).encode(),
        end_customer_with_nul.encode(),
        BRACKETS,
        json.dumps(e2open_report("PC3")).encode(),
    )

    consumer.poll_once()

    holding = consumer.fleet.partner("LOC-1").holding_tenant_id
    assert [consumer.fleet.device(s).placement for s in ("PC1", "PC3")] == [holding] * 2
    assert producer.reasons()[0].startswith("end_customer: a NUL character (U+0000)")
    assert len(producer.sent) == 2
    assert topic.committed == 4


# --- intake commands called with values (no Kafka) ----------------------------------------


def cyclic() -> list[object]:
    """A list that contains itself."""
    loop: list[object] = []
    loop.append(loop)
    return loop


def deep(levels: int) -> object:
    """Lists nested `levels` deep."""
    value: object = []
    for _ in range(levels - 1):
        value = [value]
    return value


BAD_VALUES: dict[str, tuple[object, str]] = {
    "a NUL in a field": (e2open_report("PC2", end_customer="ACME\x00 Corp"), "end_customer: a NUL"),
    "a lone surrogate": (e2open_report("PC2", model="\ud800"), "model: a lone surrogate"),
    "an escape sequence": (e2open_report("PC2", model="\x1b[2J"), "model: a control character"),
    "a cycle": (cyclic(), f"nested deeper than {MAX_DEPTH} levels"),
    "nested 5,000 deep": (deep(5_000), f"nested deeper than {MAX_DEPTH} levels"),
    "bytes": ({"serial": b"PC2"}, "a bytes is not a JSON value"),
    "a set": ({"serial": {"PC2"}}, "a set is not a JSON value"),
    "an integer key": ({1: "PC2"}, "1: Keys should be strings"),
    "mixed keys": ({1: "PC2", "serial": "PC2"}, "an object key is not text"),
    "infinity": ({"serial": float("inf")}, "out of range"),
}


@pytest.mark.parametrize(("value", "reason"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_r_hld_1_an_unfit_value_given_to_the_intake_command_is_rejected_and_the_rest_lands(
    app: PartnerFleet, holding_tenant: UUID, value: object, reason: str
) -> None:
    reports = [e2open_report("PC1"), value, e2open_report("PC3")]

    outcome = app.receive_e2open_batch(OPS, "b1", reports)

    assert outcome.accepted == ["PC1", "PC3"]
    [rejection] = outcome.rejected
    assert rejection.index == 1
    assert reason in rejection.reason


def test_a_batch_of_more_than_the_bound_is_refused_as_a_whole_recording_nothing(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    with refused(app, IntakeError, f"at most {MAX_BATCH_MESSAGES:,} messages"):
        app.receive_e2open_batch(OPS, "big", [{}] * (MAX_BATCH_MESSAGES + 1))


def test_r_hld_1_a_huge_serial_or_reason_is_kept_bounded_and_printable() -> None:
    """What a sender wrote is cut and cleaned before it is stored or sent as a header."""
    rejection = Rejection(index=0, serial="PC\x00" * 1_000, reason="why\ud800" * 1_000)

    assert rejection.serial is not None
    assert len(rejection.serial) == 64
    assert "\x00" not in rejection.serial
    assert len(rejection.reason) == MAX_REASON_CHARS
    rejection.reason.encode()  # no lone surrogate left


def test_a_huge_number_as_serial_is_no_serial_of_the_rejection(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    outcome = app.receive_e2open_batch(OPS, "b1", [{"serial": 10**5_000}, {"serial": 7}])

    assert [r.serial for r in outcome.rejected] == [None, "7"]


# --- properties ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(json_values | st.binary().map(read_message), max_size=6))
def test_screening_any_values_never_raises_and_keeps_their_number(values: list[Any]) -> None:
    kept, fingerprint = screened(values)

    assert len(kept) == len(values)
    assert fingerprint.startswith("sha256:")
    assert screened(values)[1] == fingerprint  # the same content, the same fingerprint


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(garbage=st.lists(st.binary(max_size=80) | st.sampled_from([BRACKETS, None]), max_size=5))
def test_any_bytes_between_valid_alerts_never_stop_the_consumer(
    alerts: tuple[FakeTopic, FakeProducer], garbage: list[bytes | None]
) -> None:
    """Whatever the bytes, the alerts around them are raised and the offset moves past all."""
    topic, producer = alerts
    topic.recreate()
    producer.sent.clear()
    consumer = feed_consumer("alerts", topic, producer)
    consumer.fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    topic.append(alert("A1"), *garbage, alert("A2"))
    before = event_count(consumer.fleet)

    consumer.poll_once()

    assert {"A1", "A2"} <= set(consumer.fleet.device("S1").alerts)
    assert len(producer.sent) == len(garbage)
    assert topic.committed == len(garbage) + 2
    assert event_count(consumer.fleet) == before + 3  # two alerts and the batch
