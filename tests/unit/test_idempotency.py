"""Issue 8, kind 3: the content fingerprint and its comparison (domain/idempotency.py).

The contract the feeds use now and the HTTP `Idempotency-Key` uses next: one key, one
content; the same content again is a redelivery, other content is refused by name.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import DomainError
from domain.idempotency import (
    ContentMismatchError,
    bytes_fingerprint,
    content_fingerprint,
    same_content,
)
from tests.scenarios import CUSTOMER, event_count, servers
from tests.unit.feed_fakes import FakeProducer, FakeTopic, feed_consumer

scalars = st.none() | st.booleans() | st.integers() | st.text()
documents = st.dictionaries(st.text(), scalars | st.lists(scalars, max_size=3), max_size=6)


@given(documents)
def test_the_content_fingerprint_ignores_key_order_and_whitespace(
    document: dict[str, object],
) -> None:
    reversed_keys = dict(reversed(list(document.items())))
    reparsed = json.loads(json.dumps(document, indent=3))

    assert content_fingerprint(reversed_keys) == content_fingerprint(document)
    assert content_fingerprint(reparsed) == content_fingerprint(document)


@given(documents, documents)
def test_different_documents_have_different_fingerprints(
    a: dict[str, object], b: dict[str, object]
) -> None:
    assert (content_fingerprint(a) == content_fingerprint(b)) == (
        json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    )


@pytest.mark.parametrize(
    ("a", "b"), [(1, 1.0), ("a", ["a"]), ({"a": None}, {}), (True, 1), ([1, 2], [2, 1])]
)
def test_values_equal_in_python_but_not_in_json_text_differ(a: object, b: object) -> None:
    assert content_fingerprint(a) != content_fingerprint(b)


@given(st.lists(st.binary() | st.none(), max_size=5), st.lists(st.binary() | st.none(), max_size=5))
def test_raw_messages_have_the_same_fingerprint_only_when_they_are_the_same(
    a: list[bytes | None], b: list[bytes | None]
) -> None:
    assert (bytes_fingerprint(a) == bytes_fingerprint(b)) == (a == b)


def test_raw_fingerprints_tell_message_boundaries_and_empty_messages_apart() -> None:
    assert bytes_fingerprint([b"ab", b"c"]) != bytes_fingerprint([b"a", b"bc"])
    assert bytes_fingerprint([None]) != bytes_fingerprint([b""])
    assert bytes_fingerprint([]) != bytes_fingerprint([b""])


def test_the_same_content_again_is_a_redelivery() -> None:
    fingerprint = content_fingerprint({"amount": 5})

    assert same_content("idempotency key", "k1", fingerprint, fingerprint)


def test_a_key_used_again_with_other_content_is_refused_naming_the_key() -> None:
    first, other = content_fingerprint({"amount": 5}), content_fingerprint({"amount": 6})

    with pytest.raises(ContentMismatchError) as refused:
        same_content("idempotency key", "k1", first, other)

    assert str(refused.value) == "idempotency key k1 was already received with different content"
    assert isinstance(refused.value, DomainError)


def test_a_key_stored_without_fingerprint_is_left_to_the_callers_rule() -> None:
    assert not same_content("batch id", "old", None, content_fingerprint([]))


# --- batch ids the Kafka consumer derives from topic, partition and offsets ----------------


def alert(alert_id: str) -> bytes:
    """A valid alerts-feed message for server S1."""
    return json.dumps(
        {"serial": "S1", "alert_id": alert_id, "severity": "info", "message": "m"}
    ).encode()


def test_new_records_at_old_offsets_of_a_recreated_topic_are_taken_not_swallowed() -> None:
    """Offsets start at 0 again on a recreated topic: a new record there is no redelivery."""
    topic, producer = FakeTopic("partnerfleet.device-alerts.v1"), FakeProducer()
    consumer = feed_consumer("alerts", topic, producer)
    consumer.fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    topic.append(alert("A1"), alert("A2"))
    consumer.poll_once()
    topic.recreate()
    topic.append(alert("A3"), alert("A4"))

    consumer.poll_once()

    assert set(consumer.fleet.device("S1").alerts) == {"A1", "A2", "A3", "A4"}
    assert producer.sent == []
    assert topic.committed == 2


def test_the_same_records_at_the_same_offsets_again_are_a_redelivery() -> None:
    """A poll consumed twice (a crash before the commit) records nothing the second time."""
    topic, producer = FakeTopic("partnerfleet.device-alerts.v1"), FakeProducer()
    consumer = feed_consumer("alerts", topic, producer)
    consumer.fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    topic.append(alert("A1"), b"{oops")
    consumer.poll_once()
    position = event_count(consumer.fleet)
    topic.recreate()
    topic.append(alert("A1"), b"{oops")

    consumer.poll_once()

    assert event_count(consumer.fleet) == position
    assert [s.value for s in producer.sent] == [b"{oops", b"{oops"]  # dead letters: at least once
