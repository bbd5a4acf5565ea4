"""message.timestamp.after.max.ms / before.max.ms (KIP-937): a CreateTime
record too far ahead of the broker's clock (Kafka 4's default window is one
hour) or, when configured, too far behind it is refused with
INVALID_TIMESTAMP (32), naming the record, so that one bad clock cannot hold
back time retention. Checked on the wire (Produce v8 record errors) and
with librdkafka (confluent-kafka)."""

from __future__ import annotations

import time

import compat
import kafkawire as kw

HOUR_MS = 3_600_000
INVALID_TIMESTAMP = 32


def now_ms() -> int:
    return int(time.time() * 1000)


def test_far_future_timestamp_is_refused_with_record_errors(bootstrap):
    topic = compat.unique("ts-future")
    compat.create_topic(bootstrap, topic, 1)
    host, port = bootstrap.rsplit(":", 1)
    with kw.Connection(host, int(port), timeout=15) as c:
        ahead = now_ms() + 2 * HOUR_MS
        r = c.produce(topic, 0, kw.record_batch([(b"k", b"ahead")], base_timestamp_ms=ahead), version=8)
        assert r["error_code"] == INVALID_TIMESTAMP, r
        assert r["base_offset"] == -1, r
        assert r["error_message"] == "One or more records have been rejected due to invalid timestamp", r
        [(index, message)] = r["record_errors"]
        assert index == 0
        assert message.startswith(f"Timestamp {ahead} of message with offset 0 is out of range. "
                                  "The timestamp should be within ["), message
        # Within the hour is fine.
        r = c.produce(topic, 0, kw.record_batch([(b"k", b"soon")], base_timestamp_ms=now_ms() + 60_000),
                      version=8)
        assert (r["error_code"], r["base_offset"]) == (0, 0), r


def test_window_is_a_topic_config(bootstrap):
    """before.max.ms refuses old records where set; after.max.ms set to
    Long.MAX takes any future timestamp; librdkafka reports the error."""
    from confluent_kafka import KafkaError, Producer

    strict = compat.unique("ts-strict")
    lax = compat.unique("ts-lax")
    compat.create_topic(bootstrap, strict, 1, configs={"message.timestamp.before.max.ms": 60_000})
    compat.create_topic(bootstrap, lax, 1, configs={"message.timestamp.after.max.ms": 9223372036854775807})
    results = {}

    def report(err, msg):
        results[(msg.topic(), msg.value())] = err

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "retries": 0})
    # One flush each: a batch is accepted or refused whole.
    p.produce(strict, b"old", timestamp=now_ms() - 2 * 60_000, on_delivery=report)
    assert p.flush(30) == 0
    p.produce(strict, b"fresh", timestamp=now_ms() - 1_000, on_delivery=report)
    assert p.flush(30) == 0
    p.produce(lax, b"next-year", timestamp=now_ms() + 365 * 24 * HOUR_MS, on_delivery=report)
    assert p.flush(30) == 0
    assert results[(strict, b"old")] is not None
    assert results[(strict, b"old")].code() == KafkaError.INVALID_TIMESTAMP, results
    assert results[(strict, b"fresh")] is None, results
    assert results[(lax, b"next-year")] is None, results
    assert [m.value() for m in compat.consume_all(bootstrap, strict, 1)] == [b"fresh"]
