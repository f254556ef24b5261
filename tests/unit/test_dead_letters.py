"""R-HLD-1, issue 8 kind 5: a dead letter never blocks the feed, whatever the message's size."""

from __future__ import annotations

import gzip
import os
from typing import Any

from kafka.errors import MessageSizeTooLargeError

from infra.kafka.feeds import send_dead_letter

LIMIT = 10_000
HEADERS = [("reason", b"malformed report"), ("batch_id", b"t/0/1-1#0")]


class LimitedProducer:
    """The edge of the world: a producer refusing records over LIMIT bytes, as kafka-python."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, topic: str, *, key: bytes | None, value: bytes | None, headers: Any) -> str:
        size = len(value or b"") + sum(len(k) + len(v) for k, v in headers)
        if size > LIMIT:
            raise MessageSizeTooLargeError(f"{size} bytes")
        self.sent.append({"topic": topic, "key": key, "value": value, "headers": dict(headers)})
        return "future"


def test_kind5_a_small_rejected_message_is_copied_unchanged() -> None:
    producer = LimitedProducer()

    send_dead_letter(producer.send, "dlq", (b"k", b'{"serial": 1}', HEADERS))

    [sent] = producer.sent
    assert sent["value"] == b'{"serial": 1}'
    assert "content_encoding" not in sent["headers"]


def test_kind5_a_message_our_headers_push_over_the_limit_is_dead_lettered_compressed() -> None:
    """A message just under the broker's limit plus our headers: gzip, never a crash loop."""
    producer = LimitedProducer()
    value = b"[" * (LIMIT - 10)

    send_dead_letter(producer.send, "dlq", (b"k", value, HEADERS))

    [sent] = producer.sent
    assert sent["headers"]["content_encoding"] == b"gzip"
    assert gzip.decompress(sent["value"]) == value


def test_kind5_a_message_too_large_even_compressed_is_dead_lettered_without_its_value() -> None:
    """The rejection and its reason stay recorded in the store; the copy says what it left."""
    producer = LimitedProducer()
    value = os.urandom(LIMIT * 2)  # random bytes do not compress

    send_dead_letter(producer.send, "dlq", (b"k", value, HEADERS))

    [sent] = producer.sent
    assert sent["value"] is None
    assert sent["headers"]["value_omitted"] == str(len(value)).encode()
    assert sent["headers"]["reason"] == b"malformed report"
